/*
 * A system-call-bound guest for the kprobes benchmark (bench/kprobes.ts): N one-byte write(2)s,
 * so every kernel function on the write path (do_syscall, ksys_write, vfs_write) runs N times
 * and a probe there is hit N times. N = argv[1] (default 4000). Little user-space work per call,
 * so the probe's cost is a large share of the difference between runs, which keeps it stable.
 */
#include "common.h"

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
	long n = parse(argc > 1 ? argv[1] : 0, 4000);
	long done = 0;
	for (long i = 0; i < n; i++)
		done += write(1, ".", 1);
	printf("\n%ld writes, %ld bytes\n", n, done);
	return done == n ? 0 : 1;
}
