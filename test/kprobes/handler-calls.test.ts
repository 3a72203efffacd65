/**
 * kprobe handlers that call guest kernel functions (HandlerCalls: `yield regs.call(fn, …)`), the
 * way Linux handlers call kernel code. The call runs on the trapped vCPU in the middle of the
 * hit; the trapped state must come back exactly (every register, the flags / condition codes,
 * sparc64's pending next PC), a probe hit inside the call is a reentry (missed, counted on every
 * child of an aggregate, instruction still run), and a handler that throws after its call
 * unwinds the trap context like one that throws at once.
 */
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import { Kprobes } from '../../src/kprobes/kprobes.js';
import { Kprobe } from '../../src/kprobes/kprobe.js';
import { manifest, repoRoot, supported } from '../helpers.js';
import { dctiClass } from '../../arch/sparc/kprobes/tables.js';
import type { Target } from '../../arch/types.js';

const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as Target[]).filter((t) => supported.has(t));

/** kprobe_test_run's case for kprobe_target2 (fixtures/kernel/ABI.md): returns v / 3 + 1. */
const KPROBE_TEST_TARGET2 = 2n;

function machine(target: Target, program: string | undefined, opts: { cpus?: number; seed?: number } = {}) {
  const out: string[] = [];
  const reports: string[] = [];
  const dec = new TextDecoder();
  const m = new Machine({ target, cpus: opts.cpus ?? 1, seed: opts.seed ?? 1, stdout: (s) => out.push(dec.decode(s)), report: (l) => reports.push(l) });
  const e = program ? manifest.find((x) => x.target === target && x.name === program)! : undefined;
  if (e) m.spawn(`${repoRoot}/fixtures/${e.path}`, [e.path, ...e.args]);
  const kprobes = new Kprobes(m);
  return { m, e, out, reports, kprobes };
}

/** Instruction starts of kernel function `name` (original text). */
function instructionStarts(m: Machine, kprobes: Kprobes, name: string): bigint[] {
  const f = m.kernel.elf.functions().find((s) => s.name === name)!;
  const out: bigint[] = [];
  for (let pc = f.codeAddress; pc < f.codeAddress + f.size; ) {
    out.push(pc);
    if (m.arch.family !== 'x86') pc += 4n;
    else pc += BigInt(kprobes.arch.decode(pc, m.kernel.elf.textBytesAt(pc, 15))!.length);
  }
  return out;
}

/** sparc64: a probed DCTI's delay slot may not hold another armed probe; probe those apart. */
function passes(m: Machine, all: bigint[]): bigint[][] {
  if (m.arch.target !== 'sparc64') return [all];
  const word = (a: bigint) => {
    const b = m.kernel.elf.textBytesAt(a, 4);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, false);
  };
  const slot = (a: bigint) => all.includes(a - 4n) && dctiClass(word(a - 4n)) !== undefined;
  return [all.filter((a) => !slot(a)), all.filter(slot)];
}

describe.each(TARGETS)('kprobe handlers calling kernel functions on %s', (target) => {
  it('every instruction of do_syscall, ksys_write and vfs_write: pre and post handler each call kprobe_test_run (flags/condition codes clobbered); program output unchanged, every call right', async () => {
    let total = 0;
    for (let pass = 0; ; pass++) {
      const { m, e, out, reports, kprobes } = machine(target, 'fib-nolibc', { seed: 5 });
      try {
        const all = ['do_syscall', 'ksys_write', 'vfs_write'].flatMap((f) => instructionStarts(m, kprobes, f));
        const mine = passes(m, all)[pass];
        if (!mine) break;
        const wrong: string[] = [];
        let calls = 0;
        const check = (what: string, v: bigint, got: bigint) => {
          calls++;
          if (got !== v / 3n + 1n) wrong.push(`${what}: kprobe_test_run(2, ${v}) = ${got}`);
        };
        const kps = mine.map((addr, i) => {
          const v = BigInt(1000 + i);
          return new Kprobe({
            addr,
            preHandler: function* (_p, regs) {
              check(`pre ${m.kernelSymbolize(addr)}`, v, yield regs.call('kprobe_test_run', KPROBE_TEST_TARGET2, v));
              return 0;
            },
            postHandler: function* (_p, regs) {
              check(`post ${m.kernelSymbolize(addr)}`, v + 1n, yield regs.call('kprobe_test_run', KPROBE_TEST_TARGET2, v + 1n));
            },
          });
        });
        const rcs = await m.kernelCall<number[]>('register-all', async (t) => {
          const r: number[] = [];
          for (const kp of kps) r.push(await kprobes.register(t, kp));
          return r;
        });
        const ok = kps.filter((_kp, i) => rcs[i] === 0);
        expect(ok.length).toBeGreaterThan(pass === 0 ? 30 : 3);
        const r = await m.runAsync();
        expect(out.join('')).toBe(e!.stdout);
        expect(r.status).toBe(e!.exit);
        expect(reports).toEqual([]);
        expect(wrong).toEqual([]);
        const hits = ok.reduce((n, kp) => n + kp.nhit, 0);
        expect(hits).toBeGreaterThan(pass === 0 ? 100 : 3);
        // Every hit ran both handlers, each made its call; kprobe_test_run is not probed: no miss.
        expect(calls).toBe(2 * hits);
        for (const kp of ok) expect(kp.nmissed).toBe(0);
        total += hits;
        await m.kernelCall('unregister-all', (t) => kprobes.unregisterBatch(t, ok));
        expect(m.sync.rcu.readers()).toEqual([]);
      } finally {
        m.close();
      }
    }
    expect(total).toBeGreaterThan(100);
  });

  it('a call that hits another probe is a reentry there: missed and counted, that probe’s handler does not run; its own calls later do', async () => {
    const { m, e, out, kprobes } = machine(target, 'fib-nolibc', { cpus: 2, seed: 3 });
    try {
      const got: bigint[] = [];
      let inner = 0;
      const a = new Kprobe({
        symbolName: 'ksys_write',
        preHandler: function* (_p, regs) {
          got.push(yield regs.call('kprobe_target', regs.arg(2)));
          return 0;
        },
      });
      const b = new Kprobe({ symbolName: 'kprobe_target', preHandler: () => (inner++, 0), postHandler: () => void inner++ });
      expect(await m.kernelCall('reg', (t) => kprobes.registerBatch(t, [a, b]))).toBe(0);
      expect((await m.runAsync()).status).toBe(e!.exit);
      expect(out.join('')).toBe(e!.stdout);
      // One call per write(2); each hit b while a's handler ran.
      expect(a.nhit).toBeGreaterThan(0);
      expect(got).toHaveLength(a.nhit);
      expect(b.nmissed).toBe(a.nhit);
      expect([b.nhit, inner, a.nmissed]).toEqual([0, 0, 0]);
      // write(2)'s count argument, divided by 3 by the re-entered (still executed) kprobe_target.
      const lens = e!.stdout.split(/(?<=\n)/).map((l) => BigInt(l.length));
      expect(got).toEqual(lens.slice(0, got.length).map((n) => n / 3n));
      // From the host, not inside a handler: b's handlers run.
      expect(await m.callKernelFunction('kprobe_target', [30n])).toBe(10n);
      expect([b.nhit, inner, b.nmissed]).toEqual([1, 2, a.nhit]);
      await m.kernelCall('unreg', (t) => kprobes.unregisterBatch(t, [a, b]));
    } finally {
      m.close();
    }
  });

  it('an aggregate: the children run in order around a child’s calls; a reentry from one child counts on every child', async () => {
    const { m, kprobes } = machine(target, undefined);
    try {
      const seen: string[] = [];
      let recurse = false;
      const c1 = new Kprobe({
        symbolName: 'kprobe_target',
        preHandler: function* (_p, regs) {
          seen.push('c1 pre');
          // Two calls in a row from one handler; the second re-enters the probe when asked to.
          seen.push(`c1 got ${yield regs.call('kprobe_target2', 30)}`);
          seen.push(`c1 got ${yield regs.call(recurse ? 'kprobe_target' : 'kprobe_recursed_target', 60)}`);
          return 0;
        },
        postHandler: function* (_p, regs) {
          seen.push(`c1 post got ${yield regs.call('kprobe_target2', 90)}`);
        },
      });
      const c2 = new Kprobe({ symbolName: 'kprobe_target', preHandler: () => (seen.push('c2 pre'), 0), postHandler: () => void seen.push('c2 post') });
      expect(await m.kernelCall('reg', (t) => kprobes.registerBatch(t, [c1, c2]))).toBe(0);
      expect(await m.callKernelFunction('kprobe_target', [9])).toBe(3n);
      expect(seen).toEqual(['c1 pre', 'c1 got 11', 'c1 got 20', 'c2 pre', 'c1 post got 31', 'c2 post']);
      expect([c1.nmissed, c2.nmissed]).toEqual([0, 0]);
      seen.length = 0;
      recurse = true;
      expect(await m.callKernelFunction('kprobe_target', [9])).toBe(3n);
      expect(seen).toEqual(['c1 pre', 'c1 got 11', 'c1 got 20', 'c2 pre', 'c1 post got 31', 'c2 post']);
      // kprobes_inc_nmissed_count on an aggregate: every child, not the aggregate.
      expect([c1.nmissed, c2.nmissed, c1.nhit, c2.nhit]).toEqual([1, 1, 2, 2]);
      await m.kernelCall('unreg', (t) => kprobes.unregisterBatch(t, [c1, c2]));
    } finally {
      m.close();
    }
  });

  it('a handler that throws after its call returned: the call fails naming the probe, the trap context is unwound, the kernel goes on', async () => {
    const { m, kprobes, reports } = machine(target, undefined);
    try {
      const kp = new Kprobe({
        symbolName: 'kprobe_target',
        postHandler: function* (_p, regs) {
          const v = yield regs.call('kprobe_target2', 3);
          throw new Error(`handler bug after a call that returned ${v}`);
        },
      });
      expect(await m.kernelCall('reg', (t) => kprobes.register(t, kp))).toBe(0);
      await expect(m.callKernelFunction('kprobe_target', [9])).rejects.toThrow(/kprobe handler at kprobe_target\+0x[0-9a-f]+ threw: handler bug after a call that returned 2/);
      expect(m.sync.rcu.readers()).toEqual([]);
      expect(m.tasks.every((t) => t.pinnedCpu === undefined)).toBe(true);
      // The control block is free again: the same probe works on the next call.
      kp.postHandler = undefined;
      let pre = 0;
      kp.preHandler = () => (pre++, 0);
      expect(await m.callKernelFunction('kprobe_target', [9])).toBe(3n);
      expect([pre, kp.nmissed]).toEqual([1, 0]);
      await m.kernelCall('unreg', (t) => kprobes.unregister(t, kp));
      expect(reports).toEqual([]);
      // A call of something that is not a kernel function is refused the same way.
      const bad = new Kprobe({
        symbolName: 'kprobe_target',
        preHandler: function* (_p, regs) {
          yield regs.call('no_such_function');
          return 0;
        },
      });
      expect(await m.kernelCall('reg', (t) => kprobes.register(t, bad))).toBe(0);
      await expect(m.callKernelFunction('kprobe_target', [9])).rejects.toThrow(/threw: the handler called no_such_function, which is not a kernel function/);
      expect(m.sync.rcu.readers()).toEqual([]);
      await m.kernelCall('unreg', (t) => kprobes.unregister(t, bad));
      expect(await m.callKernelFunction('kprobe_target', [9])).toBe(3n);
    } finally {
      m.close();
    }
  });
});
