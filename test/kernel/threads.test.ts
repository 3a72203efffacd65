/**
 * glibc threads that really wait (futex): fixtures/<target>/threads (fixtures/src/threads.c,
 * static glibc, on all five targets) — a contended mutex, a condition variable handing turns
 * over in id order, a timed wait that times out, nanosleep, pthread_join — prints what it prints
 * under qemu-user on every scheduler seed and vCPU count, and its futex calls wait and time out
 * as Linux's do.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Target } from '../../arch/types.js';
import { repoRoot, runProgram, skipWithout, supported } from '../helpers.js';

/** qemu-user's program for each target. */
const QEMU: Record<Target, string> = { x86_64: 'qemu-x86_64', i386: 'qemu-i386', ppc32: 'qemu-ppc', ppc64: 'qemu-ppc64', sparc64: 'qemu-sparc64' };
const prog = (t: Target): string => join(repoRoot, 'fixtures', t, 'threads');

describe.each((Object.keys(QEMU) as Target[]).filter((t) => supported.has(t)))('threads that wait on futexes (%s, static glibc)', (target) => {
  it('print what they print under qemu-user, on every seed and vCPU count tried', () => {
    const q = spawnSync(QEMU[target], [prog(target)], { encoding: 'utf8' });
    if (skipWithout('qemu-user', q.status !== null && !q.error)) return;
    expect(q.status).toBe(0);
    for (const [seed, cpus] of [
      [1, 1],
      [2, 2],
      [3, 2],
      [7, 4],
    ] as const) {
      const r = runProgram(target, prog(target), [], { seed, cpus, quantum: 2000 });
      expect(r.reports, `seed ${seed}`).toEqual([]);
      expect(r.stdout, `seed ${seed} cpus ${cpus}`).toBe(q.stdout);
      expect(r.status).toBe(0);
    }
  });

  it('sleep in FUTEX_WAIT until woken (returns 0) and time out with ETIMEDOUT', () => {
    const lines: string[] = [];
    const r = runProgram(target, prog(target), [], { cpus: 2, quantum: 2000, strace: (l) => lines.push(l) });
    expect(r.status).toBe(0);
    const futex = lines.filter((l) => /\bfutex\(/.test(l));
    // a waiter (FUTEX_WAIT_BITSET|PRIVATE = 0x89, FUTEX_WAIT|PRIVATE = 0x80) that came back with 0 after sleeping
    expect(futex.some((l) => /futex\(0x[0-9a-f]+, 0x8[09],.* = 0$/.test(l))).toBe(true);
    expect(futex.some((l) => / = -1 ETIMEDOUT \(Connection timed out\)$/.test(l))).toBe(true);
  });
});
