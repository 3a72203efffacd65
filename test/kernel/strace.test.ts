/**
 * `--strace` in strace(1)'s shape (src/kernel/strace.ts), on the raw system calls of
 * syscalls-nolibc, whose own output says what each call returned (recorded under qemu-user in
 * fixtures/manifest.json): the strace line of each call must agree with it. Error names are
 * Linux's generic ones on every target, sparc64's Solaris-numbered ABI included.
 */
import { describe, expect, it } from 'vitest';
import { fixturePath, runProgram, supported } from '../helpers.js';

const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as const).filter((t) => supported.has(t));

describe.each(TARGETS)('--strace on %s', (t) => {
  const lines: string[] = [];
  const r = runProgram(t, fixturePath(t, 'syscalls-nolibc'), [], { strace: (l) => lines.push(l) });

  it('prints each call with its result: decimal, or -1 ERRNO (strerror)', () => {
    expect(r.status).toBe(0);
    // The program prints "write(-1, buf, 1) = -EBADF (-9)" after making that call.
    expect(lines).toContain('[1] write(-1, "\\0", 1) = -1 EBADF (Bad file descriptor)');
    expect(lines).toContain('[1] write(99, "\\0", 1) = -1 EBADF (Bad file descriptor)');
    expect(lines.some((l) => /^\[1\] write\(1, 0x[0-9a-f]+, 8\) = -1 EFAULT \(Bad address\)$/.test(l))).toBe(true);
    // Its own report lines are writes to fd 1 whose result is their length.
    for (const l of lines.filter((x) => x.startsWith('[1] write(1, "'))) {
      const m = /, (\d+)\) = (\d+)$/.exec(l)!;
      expect(m[2], l).toBe(m[1]);
    }
  });

  it('decodes paths and AT_FDCWD, and ends exit_group with " = ?"', () => {
    expect(lines.some((l) => /^\[1\] (openat\(AT_FDCWD, |open\()".*syscalls-nolibc", 0x0(, 0x0)?\) = 3$/.test(l))).toBe(true);
    expect(lines.at(-1)).toBe('[1] exit_group(0) = ?');
  });
});
