/**
 * The guest system-call fuzzer (issue 14): fixtures/<target>/sysfuzz-nolibc issues random system
 * call numbers with random arguments (NULL, -1, sizes, pointers into its buffer, the kernel half,
 * the top page, anything) from a seed, in children its parent reaps or SIGKILLs (see
 * fixtures/src/sysfuzz.c). What a fuzzer's calls return is no reference; what is checked is the
 * engine's side, on every target: the run ends by itself (the parent prints "done" and exits 0,
 * no instruction budget), no engine error is thrown (`uniprobe: error:`), no guest
 * kernel oops is reported, and every child ended in a way Linux can end a process.
 *
 * `npm test` runs 400 calls per target and seed 1; `npm run test:full` 3,000 calls on three
 * seeds; UNIPROBE_FUZZ="SEEDS CALLS" (e.g. "1-20 5000") any other amount.
 *
 * Found with it, and fixed: a copy to user memory that crossed from a copy-on-write page into an
 * unmapped one was deferred past the system call and failed after the run as an engine error
 * (Mm.write now faults at the call: EFAULT); a legacy clone's exit signal above 64 crashed the
 * parent's notification (do_notify_parent sends only valid signals); a MAP_FIXED mapping at 0 on
 * ppc64 reached Unicorn over the kernel image's alias there (mmap_min_addr now refuses it with
 * EPERM, and the alias is kept out of user mappings). i386 seed 6 with 2,000 calls, once seen
 * to run past 60 s, finishes in ~2 s (UNIPROBE_FUZZ="1-8 2000": 0.6–5.6 s per seed), at this code
 * and at the code it was seen with; that slow run was not reproduced.
 */
import { describe, expect, it } from 'vitest';
import { FULL, fixturePath, runProgram, supported } from '../helpers.js';
import { TARGETS } from '../../arch/types.js';

function plan(): { seeds: number[]; calls: number } {
  const env = process.env.UNIPROBE_FUZZ;
  if (env) {
    const [range, calls] = env.split(/\s+/);
    const [a, b] = range!.split('-').map(Number);
    const seeds = Array.from({ length: (b ?? a!) - a! + 1 }, (_, k) => a! + k);
    return { seeds, calls: Number(calls ?? 2000) };
  }
  return FULL ? { seeds: [1, 2, 3], calls: 3000 } : { seeds: [1], calls: 400 };
}

const { seeds, calls } = plan();
const CHILD = /^child \d+: (exit \d+|signal \d+|killed|fork failed -?\d+)$/;

describe.each(TARGETS.filter((t) => supported.has(t)))('system-call fuzzer on %s', (target) => {
  it.each(seeds)(`seed %i, ${calls} calls: the run ends cleanly`, (seed) => {
    const r = runProgram(target, fixturePath(target, 'sysfuzz-nolibc'), [String(seed), String(calls)], { seed, maxInsns: 4e8 });
    // The parent finished: it printed "done" and exited 0. A grandchild that left the child's
    // process group (setsid) and sleeps for ever may outlive it; the machine then ends the run
    // as a deadlock (every task blocked, no timer), which is an end, not a hang.
    expect(['exit', 'deadlock']).toContain(r.reason);
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.at(-1)).toBe('done');
    for (const l of lines.slice(0, -1)) expect(l).toMatch(CHILD);
    expect(lines.length - 1).toBe(Math.ceil(calls / 25));
    for (const l of r.reports) {
      expect(l).not.toMatch(/uniprobe: error|guest kernel oops|internal/);
    }
  });
});
