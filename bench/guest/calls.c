/*
 * A call-bound guest for the uprobes benchmark (bench/uprobes.ts): fib(N) by recursion, N =
 * argv[1] (default 20; gcc -O2 turns one of the two calls into a loop, fib still runs ~10,000
 * times for 20). A few instructions of work per call, so a probe on fib makes most of the
 * difference between runs, which keeps the per-hit figures (the bare hook's too) out of the
 * noise of a whole run (process start-up and exit).
 */
#include "common.h"

NOIPA long fib(int n)
{
	return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static long parse(const char *s, long dflt)
{
	long v = 0;
	if (!s || !*s)
		return dflt;
	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (*s - '0');
	return v;
}

int main(int argc, char **argv)
{
	int n = (int)parse(argc > 1 ? argv[1] : 0, 20);
	printf("fib(%d) = %ld\n", n, fib(n));
	return 0;
}
