/**
 * The verifier catches a broken fixup, at the right instruction: the test breaks one stepped
 * instruction's arch_uprobe_post_xol (after the real fixup it flips a bit of the return-value
 * register) and verify must report the first divergence at the next instruction, naming the
 * broken one as the step before it and the register. A fixup that never lets the task leave the
 * probe (the PC put back on the breakpoint, forever) ends through the watchdog, not as a hang.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { archFor, uprobeArchFor } from '../../arch/index.js';
import { isRefusal, type PreparedUprobe, type UprobeArch } from '../../arch/probes.js';
import type { Target } from '../../arch/types.js';
import { readElfFileSync } from '../../src/elf/index.js';
import { UprobePlacer } from '../../src/placement/placement.js';
import { verify, type VerifyReport } from '../../src/verify/verify.js';
import { repoRoot } from '../helpers.js';
import { TARGETS } from '../uprobes/harness.js';

let restore: (() => void) | undefined;
afterEach(() => {
  restore?.();
  restore = undefined;
});

/** Make analyzeUprobe return, for `vaddr` only, a prepared insn whose postXol is `post`. */
function breakPostXol(up: UprobeArch, vaddr: bigint, post: (orig: PreparedUprobe, ...a: Parameters<PreparedUprobe['postXol']>) => void): void {
  const analyze = up.analyzeUprobe;
  up.analyzeUprobe = (addr, bytes) => {
    const prep = analyze.call(up, addr, bytes);
    if (addr !== vaddr || isRefusal(prep)) return prep;
    const broken = Object.create(prep) as PreparedUprobe & { postXol: PreparedUprobe['postXol']; plainStepNext?: number };
    broken.postXol = (cpu, slot, va, state) => post(prep, cpu, slot, va, state);
    // A fixup that does more than move the PC is not plain: the engine must call it.
    broken.plainStepNext = undefined;
    return broken;
  };
  restore = () => {
    up.analyzeUprobe = analyze;
  };
}

const fibPath = (t: Target): string => `${repoRoot}/fixtures/${t}/fib-nolibc`;

/** One clean verify of fib per target (which of its instructions run), shared by the tests. */
const clean = new Map<Target, Promise<VerifyReport>>();
const cleanRun = (t: Target): Promise<VerifyReport> => {
  if (!clean.has(t)) clean.set(t, verify(fibPath(t), { probes: ['fib'] }));
  return clean.get(t)!;
};

describe.each(TARGETS)('verify on a broken fixup, %s', (target: Target) => {
  it('a corrupted register after one stepped instruction of fib: first divergence at the next instruction, naming the register', async () => {
    const arch = archFor(target)!;
    const placer = new UprobePlacer(arch, readElfFileSync(fibPath(target)));
    // The first stepped instruction of fib that runs (an unbroken verify says how often) and
    // falls through to another instruction of fib.
    const base = await cleanRun(target);
    expect(base.transparent).toBe(true);
    const ran = new Set(base.probes.filter((p) => p.hits > 0).map((p) => p.addr));
    const walked = placer.walk(placer.functionNamed('fib')!);
    const k = walked.findIndex((w, i) => {
      const v = placer.verdictAt(w.addr);
      return i + 1 < walked.length && ran.has(w.addr) && ran.has(walked[i + 1]!.addr) && v.ok && v.mode === 'step' && !/^(call|b|j|ret|save|restore)/.test(w.insn?.text ?? '');
    });
    expect(k).toBeGreaterThanOrEqual(0);
    const bad = walked[k]!.addr;
    const next = walked[k + 1]!.addr;
    breakPostXol(uprobeArchFor(arch), bad, (orig, cpu, slot, va, state) => {
      orig.postXol(cpu, slot, va, state);
      arch.writeReturnValue(cpu.engine, arch.readReturnValue(cpu.engine) ^ 0x100n);
    });
    // A corrupted argument can make fib run far longer: the watchdog at twice the clean run.
    const r = await verify(fibPath(target), { probes: ['fib'], maxSteps: base.executed * 2 });
    expect(r.transparent).toBe(false);
    const at = (a: bigint) => `${placer.where(a)} (0x${a.toString(16)})`;
    expect(r.firstDivergence).toContain(`instruction sequence: thread 1, step `);
    expect(r.firstDivergence).toContain(`at ${at(next)} after ${at(bad)} [step]: %`);
    // The register and both values are named: expected vs got differ by exactly the flipped bit.
    const m = /: %(\w+) = (0x[0-9a-f]+), expected (0x[0-9a-f]+)$/.exec(r.firstDivergence!)!;
    expect(m).not.toBeNull();
    expect(BigInt(m[2]!) ^ BigInt(m[3]!)).toBe(0x100n);
    expect(Number.isInteger(Number(/step (\d+)/.exec(r.firstDivergence!)![1]))).toBe(true);
  });

  it('a fixup that always puts the PC back on the breakpoint: the watchdog ends the run and verify reports it', async () => {
    const arch = archFor(target)!;
    const placer = new UprobePlacer(arch, readElfFileSync(fibPath(target)));
    const ran = new Set((await cleanRun(target)).probes.filter((p) => p.hits > 0).map((p) => p.addr));
    const bad = placer.walk(placer.functionNamed('fib')!).find((w) => {
      const v = placer.verdictAt(w.addr);
      return ran.has(w.addr) && v.ok && v.mode === 'step';
    })!.addr;
    breakPostXol(uprobeArchFor(arch), bad, (orig, cpu, slot, va, state) => {
      orig.postXol(cpu, slot, va, state);
      arch.setPc(cpu.engine, va);
    });
    const r = await verify(fibPath(target), { probes: ['fib'], maxSteps: 50_000 });
    expect(r.transparent).toBe(false);
    expect(r.checks.find((c) => c.name === 'exit status')!.ok).toBe(false);
    expect(r.checks.find((c) => c.name === 'fault reports')!.detail).toContain('verify: more than 50000 user');
    expect(r.firstDivergence).toContain(`after ${placer.where(bad)} (0x${bad.toString(16)}) [step], executed ${placer.where(bad)}`);
  });
});
