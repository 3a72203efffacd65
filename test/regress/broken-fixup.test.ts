/**
 * The regression suite catches a deliberately broken fixup: the fixup of fib's first
 * instruction (emulation or post-step, whichever the arch uses there) is made to skip the
 * instruction after it. The fib case must then fail on that target, naming the first trace line
 * that differs from the golden — and pass again once the fixup is restored.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { archFor, probeArchFor, uprobeArchFor } from '../../arch/index.js';
import { isRefusal, type PreparedUprobe, type ProbeCpu } from '../../arch/probes.js';
import type { Target } from '../../arch/types.js';
import { readElfFileSync } from '../../src/elf/index.js';
import { checkCase, loadSuite } from '../../src/regress/regress.js';
import { repoRoot } from '../helpers.js';
import { TARGETS } from '../uprobes/harness.js';

const dir = join(repoRoot, 'test', 'regress', 'suite');
const fibCase = loadSuite(dir).find((c) => c.name === 'fib')!;

let restore: (() => void) | undefined;
afterEach(() => {
  restore?.();
  restore = undefined;
});

describe.each(TARGETS)('regress on a broken fixup, %s', (target: Target) => {
  it('fib: the fixup of its first instruction skips the next one → the fib case fails at a named line', async () => {
    const arch = archFor(target)!;
    const up = uprobeArchFor(arch);
    const decoder = probeArchFor(arch);
    const entry = readElfFileSync(join(repoRoot, 'fixtures', target, 'fib-nolibc')).symbolByName('fib')!.localEntry;
    // After the real fixup, jump over the instruction the task would run next.
    const skipNext = (cpu: ProbeCpu): void => {
      const pc = arch.getPc(cpu.engine);
      const insn = decoder.decode(pc, cpu.mem.read(pc, decoder.maxInsnLength));
      arch.setPc(cpu.engine, pc + BigInt(insn?.length ?? 4));
    };
    const analyze = up.analyzeUprobe;
    let broken = 0;
    up.analyzeUprobe = (addr, bytes) => {
      const prep = analyze.call(up, addr, bytes);
      if (addr !== entry || isRefusal(prep)) return prep;
      broken++;
      const b = Object.create(prep) as PreparedUprobe & { emulate?: PreparedUprobe['emulate']; postXol: PreparedUprobe['postXol']; plainStepNext?: number };
      // A fixup that does more than move the PC is not plain: the engine must call it.
      b.plainStepNext = undefined;
      if (prep.mode === 'emulate') {
        b.emulate = (cpu, vaddr) => {
          const ok = prep.emulate!(cpu, vaddr);
          if (ok) skipNext(cpu);
          return ok;
        };
      }
      b.postXol = (cpu, slot, vaddr, state) => {
        prep.postXol(cpu, slot, vaddr, state);
        skipNext(cpu);
      };
      return b;
    };
    restore = () => {
      up.analyzeUprobe = analyze;
    };
    // fib-nolibc runs ~35,000 instructions; a broken copy that loops is stopped at ~6 times that
    // (i386's does: exit 124 where the golden trace has its second line). With 2 M, each fib
    // call a traced uprobe hit, that one case took 20 s of the suite.
    const bad = await checkCase(dir, fibCase, target, { maxInsns: 200_000 });
    expect(broken).toBe(1);
    expect(bad.ok).toBe(false);
    expect(bad.detail).toMatch(/^(line \d+: expected .*, got .*|could not run: .*)$/);
    restore();
    restore = undefined;
    const good = await checkCase(dir, fibCase, target);
    expect(good.ok).toBe(true);
  });
});
