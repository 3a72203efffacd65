/*
 * A compute-bound guest for `npm run bench`: recursion (calls and returns, which is what makes
 * sparc64's register windows expensive) and a memory-bound loop. Prints a checksum so a wrong
 * run cannot pass for a fast one.
 */
#include "common.h"

NOIPA long fib(int n)
{
	return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static unsigned char sieve[2000000];

NOIPA long primes(int n)
{
	long count = 0;
	for (int i = 2; i < n; i++) {
		if (sieve[i])
			continue;
		count++;
		for (int j = 2 * i; j < n; j += i)
			sieve[j] = 1;
	}
	return count;
}

int main(void)
{
	long f = fib(29);
	long p = primes(2000000);
	printf("fib(29) = %ld, primes below 2000000 = %ld\n", f, p);
	return (int)((f + p) & 0x7f);
}
