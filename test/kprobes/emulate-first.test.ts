/**
 * powerpc's kprobe_handler emulates before it steps (try_to_emulate → emulate_step) and remembers
 * the first outcome in p->ainsn.boostable: 1 after a success (tried again at every hit), -1
 * after a first failure (stepped from then on, never tried again). A pre + post probe on
 * ksys_write's entry (mflr r0 / stwu r1) of bench/guest/<target>/writes:
 * - runs as the unprobed program runs (output, status) with one trap per hit: no step, so the
 *   CPU executes two instructions fewer per hit (the copy and its trap in the slot) than when the
 *   same probe is stepped;
 * - calls the post handler once per hit, as Linux does after an emulated instruction;
 * - keeps Linux's memory of a decline: an emulation that declines at its first try is never
 *   tried again (stepped at every hit), one that declines after succeeding is tried every time.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import { Kprobes } from '../../src/kprobes/kprobes.js';
import { Kprobe } from '../../src/kprobes/kprobe.js';
import type { ProbeCpu } from '../../arch/probes.js';
import type { Target } from '../../arch/types.js';
import { repoRoot, supported } from '../helpers.js';

const TARGETS = (['ppc32', 'ppc64'] as Target[]).filter((t) => supported.has(t));
const WRITES = 40;

interface Run {
  stdout: string;
  status: number;
  insns: bigint | number;
  nhit: number;
  posts: number;
  tries: number;
  emulated: number;
}

/** `decide(n)`: what the n-th emulation attempt does (undefined = the real emulation). */
async function run(target: Target, probe: boolean, decide?: (n: number) => boolean | undefined): Promise<Run> {
  let stdout = '';
  const m = new Machine({ target, stdout: (b) => (stdout += Buffer.from(b).toString()), report: () => undefined });
  try {
    const k = new Kprobes(m, { optimization: false });
    let posts = 0;
    let tries = 0;
    const kp = new Kprobe({
      symbolName: 'ksys_write',
      preHandler: () => 0,
      postHandler: () => void posts++,
    });
    if (probe) {
      expect(await m.kernelCall('reg', (t) => k.register(t, kp))).toBe(0);
      const ai = kp.ainsn!;
      expect(ai.prep.mode).toBe('step');
      expect(ai.prep.tryEmulate).toBeTypeOf('function');
      // The hit path calls the Ainsn's copy (kprobe.ts makeAinsn): the attempts are counted there.
      const real = ai.tryEmulate!;
      (ai as { tryEmulate?: (cpu: ProbeCpu) => boolean }).tryEmulate = (cpu) => {
        const n = tries++;
        const d = decide?.(n);
        return d === false ? false : real(cpu);
      };
    }
    m.spawn(join(repoRoot, 'bench', 'guest', target, 'writes'), ['writes', String(WRITES)]);
    const r = await m.runAsync();
    return { stdout, status: r.status, insns: r.insns, nhit: kp.nhit, posts, tries, emulated: kp.ainsn?.emulated ?? 0 };
  } finally {
    m.close();
  }
}

describe.each(TARGETS)('%s kprobes: emulate first, step when that fails (try_to_emulate)', (target) => {
  it('the entry of ksys_write is emulated at every hit: same run, one trap per hit, the post handler at each', async () => {
    const plain = await run(target, false);
    const emul = await run(target, true);
    expect({ stdout: emul.stdout, status: emul.status }).toEqual({ stdout: plain.stdout, status: plain.status });
    expect(emul.nhit).toBeGreaterThanOrEqual(WRITES);
    expect(emul.tries).toBe(emul.nhit);
    expect(emul.emulated).toBe(1);
    expect(emul.posts).toBe(emul.nhit);
    // Stepped at every hit instead (the first try declines): the CPU runs the copy and its trap.
    const stepped = await run(target, true, (n) => (n === 0 ? false : undefined));
    expect({ stdout: stepped.stdout, status: stepped.status, nhit: stepped.nhit, posts: stepped.posts }).toEqual({
      stdout: plain.stdout,
      status: plain.status,
      nhit: emul.nhit,
      posts: emul.nhit,
    });
    expect(Number(stepped.insns) - Number(emul.insns)).toBe(2 * emul.nhit);
  });

  it('a first decline is remembered (boostable = -1: never tried again); a later one is not', async () => {
    const first = await run(target, true, (n) => (n === 0 ? false : undefined));
    expect(first.tries).toBe(1);
    expect(first.emulated).toBe(-1);
    const later = await run(target, true, (n) => (n === 3 ? false : undefined));
    expect(later.tries).toBe(later.nhit);
    expect(later.emulated).toBe(1);
    expect(later.stdout).toBe(first.stdout);
  });
});
