/**
 * glibc threads that really wait (futex): fixtures/x86_64/threads (built by the host's gcc from
 * fixtures/src/threads.c, static glibc) — a contended mutex, a condition variable handing turns
 * over in id order, a timed wait that times out, nanosleep, pthread_join — prints what it prints
 * under qemu-user on every scheduler seed and vCPU count, and its futex calls wait and time out
 * as Linux's do.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, runProgram, skipWithout } from '../helpers.js';

const prog = join(repoRoot, 'fixtures', 'x86_64', 'threads');

describe('threads that wait on futexes (x86_64, static glibc)', () => {
  it('print what they print under qemu-user, on every seed and vCPU count tried', () => {
    const q = spawnSync('qemu-x86_64', [prog], { encoding: 'utf8' });
    if (skipWithout('qemu-user', q.status !== null && !q.error)) return;
    expect(q.status).toBe(0);
    for (const [seed, cpus] of [
      [1, 1],
      [2, 2],
      [3, 2],
      [7, 4],
    ] as const) {
      const r = runProgram('x86_64', prog, [], { seed, cpus, quantum: 2000 });
      expect(r.reports, `seed ${seed}`).toEqual([]);
      expect(r.stdout, `seed ${seed} cpus ${cpus}`).toBe(q.stdout);
      expect(r.status).toBe(0);
    }
  });

  it('sleep in FUTEX_WAIT until woken (returns 0) and time out with ETIMEDOUT', () => {
    const lines: string[] = [];
    const r = runProgram('x86_64', prog, [], { cpus: 2, quantum: 2000, strace: (l) => lines.push(l) });
    expect(r.status).toBe(0);
    const futex = lines.filter((l) => /\bfutex\(/.test(l));
    // a waiter (FUTEX_WAIT_BITSET|PRIVATE = 0x89, FUTEX_WAIT|PRIVATE = 0x80) that came back with 0 after sleeping
    expect(futex.some((l) => /futex\(0x[0-9a-f]+, 0x8[09],.* = 0$/.test(l))).toBe(true);
    expect(futex.some((l) => / = -1 ETIMEDOUT \(Connection timed out\)$/.test(l))).toBe(true);
  });
});
