/**
 * Engine.reset gives back the engine `new Engine` made (the differential harnesses reuse engines
 * through it: test/arch/engine-pool.ts). The reference is a fresh engine: each target's
 * fib-nolibc fixture runs from its ELF entry to its first system call on a fresh engine and on
 * one that first ran the same program, was left with every register scrambled, a code hook, trap
 * hooks and an extra mapping, then was reset. Registers, memory, the stop and the instruction count must
 * agree. On sparc64, whose CPU Unicorn's uc_context_save does not hold, the arch saves and puts it
 * back itself (arch/sparc/cpu-state.ts).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openEngine } from '../../arch/engine.js';
import { archFor } from '../../arch/index.js';
import type { Arch, TrapSink } from '../../arch/types.js';
import { Engine, UC_PROT } from '../../src/emu/unicorn.js';
import { readElfFileSync } from '../../src/elf/index.js';
import { elfRegions, memAccess } from '../arch/uprobe-harness.js';
import { repoRoot } from '../helpers.js';

const STACK = 0x10000;

interface Outcome {
  regs: string;
  memory: string[];
  stop: string;
  retired: number;
}

/**
 * fib-nolibc from its entry to its first system call (or 200,000 instructions); `scramble` then
 * leaves every register changed, a code hook and an extra mapping behind.
 */
function runFib(arch: Arch, e: Engine, scramble: boolean): Outcome {
  const path = join(repoRoot, 'fixtures', arch.target, 'fib-nolibc');
  const elf = readElfFileSync(path);
  const regions = elfRegions(path, arch.layout.pageSize);
  arch.setupEngine(e, { mapPrivate: (a, size, x) => e.memMap(a, size, x ? UC_PROT.ALL : UC_PROT.READ | UC_PROT.WRITE) });
  for (const r of regions) {
    e.memMap(r.base, r.bytes.length, UC_PROT.ALL);
    e.memWrite(r.base, r.bytes);
  }
  const stackBase = arch.layout.stackTop - BigInt(STACK);
  e.memMap(stackBase, STACK, UC_PROT.READ | UC_PROT.WRITE);
  let stop = 'budget';
  const sink: TrapSink = {
    isKernelText: () => false,
    syscall: (pc) => ((stop = `syscall@${pc.toString(16)}`), { stop: true }),
    hypercall: (pc) => ((stop = `hypercall@${pc.toString(16)}`), { stop: true }),
    breakpoint: (addr) => ((stop = `breakpoint@${addr.toString(16)}`), { stop: true, pc: addr }),
    fault: (f, pc) => ((stop = `fault:${f.reason}@${pc.toString(16)}`), { stop: true, pc }),
    memory: () => Object.assign(memAccess(e, arch), { unsettled: false }),
  };
  arch.installTrapHooks(e, sink);
  arch.startRegisters(e, { entry: elf.entry, sp: arch.layout.stackTop - 0x100n - BigInt(arch.stackBias), elf });
  const before = e.retired;
  const r = e.start(arch.getPc(e), 0n, 200_000);
  if (r.err !== 0) stop += ` err${r.err}`;
  const out = {
    regs: arch.snapshot(e).values.map((v) => v.toString(16)).join(' '),
    memory: [...regions.map((g) => g.base), stackBase].map((a, i) => Buffer.from(e.memRead(a, i < regions.length ? regions[i]!.bytes.length : STACK)).toString('hex')),
    stop,
    retired: e.retired - before,
  };
  if (scramble) {
    // After the run: what the next user of the engine would find if reset missed it.
    // Every register the arch names, to a value of its own; registers that refuse it keep theirs.
    let k = 1n;
    for (const { id, size } of arch.registers.byName.values()) {
      if (size > 8) continue;
      try {
        e.regWrite(id, (0x5a5a_0000n + k++ * 0x1111n) & ((1n << BigInt(size * 8)) - 1n));
      } catch {
        /* read-only or not writable through the API */
      }
    }
    e.hookCode(() => {});
    e.memMap(0x7000_0000n, 0x4000, UC_PROT.ALL);
  }
  return out;
}

/**
 * Two saved contexts hold the same CPU. The last 8 bytes are not compared: uc_context_alloc does
 * not clear its allocation and the size rounds the CPU state up, so padding at the end (4 bytes on
 * x86) holds whatever malloc left there.
 */
function sameContext(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.subarray(0, -8)).equals(Buffer.from(b.subarray(0, -8)));
}

const TARGETS = ['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as const;

describe('Engine.reset', () => {
  for (const t of TARGETS) {
    it(`${t}: a reset engine runs fib-nolibc to its first system call as a fresh one does`, () => {
      const arch = archFor(t)!;
      const fresh = openEngine(arch);
      let reused: Engine | undefined;
      try {
        // The fresh run first: it also has sparc64 measure its CPU layout, which a reset point needs.
        const want = runFib(arch, fresh, false);
        expect(want.stop).toMatch(/^syscall@/);
        expect(want.retired).toBeGreaterThan(500);
        reused = openEngine(arch);
        const point = reused.resetPoint()!;
        expect(point).toBeDefined();
        // Only the arch whose CPU Unicorn's context leaves out saves it itself.
        expect(point.cpu !== undefined).toBe(arch.cpuOutsideContext !== undefined);
        expect(runFib(arch, reused, true).stop).toMatch(/^syscall@/);
        expect(reused.resettable).toBe(true);
        reused.reset(point);
        // Nothing the first run left: no hooks, no mappings, no count, and the CPU as it was.
        expect(reused.hookCount).toBe(0);
        expect(reused.tryMemRead(0x7000_0000n, 1)).toBeUndefined();
        expect(reused.retired).toBe(0);
        const now = reused.resetPoint()!;
        expect(sameContext(now.context, point.context)).toBe(true);
        expect(Buffer.from(now.cpu ?? []).equals(Buffer.from(point.cpu ?? []))).toBe(true);
        expect(runFib(arch, reused, false)).toEqual(want);
        // Reset twice in a row, and the third run agrees too.
        reused.reset(point);
        reused.reset(point);
        expect(runFib(arch, reused, false)).toEqual(want);
      } finally {
        fresh.close();
        reused?.close();
      }
    });
  }

  it('an engine that is closed or has an MMU attached is not resettable', () => {
    const arch = archFor('x86_64')!;
    const e = openEngine(arch);
    e.attachMmu({ beginRun() {}, endRun() {}, mapped() {}, unmapped() {}, loosely: <T>(f: () => T): T => f(), takeRefusal: () => undefined });
    expect(e.resettable).toBe(false);
    e.close();
    expect(e.resettable).toBe(false);
  });
});
