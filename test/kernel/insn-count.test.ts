/**
 * Instruction accounting (src/emu/insn-counter.ts): the machine's instruction count is what the
 * guest really executed, checked against an independent count — a UC_HOOK_CODE hook on every
 * instruction of every address space, Unicorn's own per-instruction callback.
 *
 * The hook also sees an instruction that faults and is restarted once its fault is resolved (a
 * copy-on-write write): it counts it twice, the machine once. So the hook's count minus the
 * machine's is exactly the number of such restarts, which the test counts itself (runs that end
 * with UC_ERR_WRITE_PROT).
 *
 * Runs of the engine's own stubs (Engine.start rather than Engine.run) are not guest instructions.
 * sparc64 restarts a run that stopped in a delay slot at the delayed branch (Arch.runStart), so
 * the hook sees the branch again: the machine does not count such replays; the test counts them.
 *
 * Multi-task runs with short quanta stop in the middle of translated blocks all the time, which
 * is where the block counter must give back what never ran.
 */
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import { nativeCounterUnavailable } from '../../src/emu/insn-counter.js';
import { UC_ERR, type Engine } from '../../src/emu/unicorn.js';
import type { Mm } from '../../src/mm/mm.js';
import type { Target } from '../../arch/types.js';
import { archFor } from '../../arch/index.js';
import { fixturePath, supported } from '../helpers.js';

const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as const).filter((t) => supported.has(t));

interface Counted {
  insns: number;
  hooked: number;
  /** Instructions the hook saw twice: restarted after a copy-on-write fault, replayed, or retried. */
  restarts: number;
  status: number;
  stdout: string;
}

function countBoth(target: Target, name: string, opts: { quantum?: number; cpus?: number; seed?: number } = {}): Counted {
  let stdout = '';
  let hooked = 0;
  let restarts = 0;
  const arch = archFor(target)!;
  const runStart = arch.runStart;
  if (runStart) {
    arch.runStart = (e) => {
      const at = runStart.call(arch, e);
      restarts += at.replay;
      return at;
    };
  }
  const seen = new Set<Engine>();
  // Every address space, including those fork creates: hook them before their first quantum.
  const hookAll = (): void => {
    for (const mm of (m as unknown as { mms: Set<Mm> }).mms) {
      const e = mm.engine;
      if (seen.has(e)) continue;
      seen.add(e);
      e.hookCode(() => void hooked++);
      // Run again by the CPU after a trap served in the hook (sparc64 window spills and fills).
      e.retryHooks.push(() => void restarts++);
      // Raw runs are the engine's own stubs (sparc64 reads %ccr/%y through a 2-instruction stub
      // between runs, ppc drops its reservation with one), not the guest's instructions: the
      // hook's count leaves them out.
      const start = e.start.bind(e);
      e.start = (begin, until, count) => {
        const h0 = hooked;
        const r = start(begin, until, count);
        hooked = h0;
        return r;
      };
      const runStub = e.runStub.bind(e);
      e.runStub = (begin, insns) => {
        const h0 = hooked;
        const r = runStub(begin, insns);
        hooked = h0;
        return r;
      };
      const run = e.run.bind(e);
      e.run = (begin, budget, pcAfter, uncounted) => {
        const r = run(begin, budget, pcAfter, uncounted);
        if (r.err === UC_ERR.WRITE_PROT) restarts++;
        return r;
      };
    }
  };
  const m = new Machine({
    target,
    ...opts,
    stdout: (b) => (stdout += Buffer.from(b).toString()),
    report: () => {},
    // A child's address space is created inside its parent's quantum and first runs in a later one.
    onQuantum: () => hookAll(),
  });
  try {
    m.spawn(fixturePath(target, name));
    hookAll();
    const r = m.run();
    return { insns: r.insns, hooked, restarts, status: r.status, stdout };
  } finally {
    m.close();
    if (runStart) arch.runStart = runStart;
  }
}

describe('instruction accounting', () => {
  it('uses the native block counter (a C compiler is on every machine the project runs on)', () => {
    const m = new Machine({ target: 'x86_64' });
    m.spawn(fixturePath('x86_64', 'fib-nolibc'));
    m.close();
    expect(nativeCounterUnavailable()).toBeUndefined();
  });

  for (const target of TARGETS) {
    it(`${target}: a lone task's count equals a per-instruction hook's`, () => {
      const c = countBoth(target, 'fib-nolibc');
      expect(c.status).toBe(55);
      expect(c.insns).toBeGreaterThan(20_000);
      expect(c.hooked - c.restarts).toBe(c.insns);
    });

    it(`${target}: fork with 2 vCPUs and 37-instruction quanta (stops inside blocks): still exact, on several seeds`, () => {
      for (const seed of [1, 2, 3]) {
        const c = countBoth(target, 'fork-nolibc', { quantum: 37, cpus: 2, seed });
        expect(c.status).toBe(0);
        expect(c.stdout).toContain('child');
        expect(c.hooked - c.restarts).toBe(c.insns);
      }
    });
  }
});
