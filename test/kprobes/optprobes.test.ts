/**
 * Jump-optimized kprobes (optprobes) on the guest kernel, against the unoptimized engine and the
 * placement map:
 * - x86-64, i386, ppc64: a probe at every instruction of several kernel functions that the map
 *   calls optimizable is [OPTIMIZED] in the list once the optimizer ran, and hits exactly as
 *   often, in the same order, with the same registers, as the same probes with optimization off
 *   (debug.kprobes-optimization = 0); the program's output is unchanged;
 * - the addresses the map refuses stay traps, with the optimizer's reason equal to the map's;
 * - a post handler, a disabled probe, the sysctl switched off prevent or undo optimization;
 *   aggregated probes optimize as one; a breakpoint armed inside the replaced bytes
 *   unoptimizes first;
 * - ppc32 and sparc64 never optimize (the arch hook says why);
 * - a kretprobe on an optimized entry still sees every return.
 */
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import { Kprobes } from '../../src/kprobes/kprobes.js';
import { Kprobe } from '../../src/kprobes/kprobe.js';
import { Kretprobe, Kretprobes } from '../../src/kprobes/kretprobe.js';
import { canOptimize } from '../../src/kprobes/checks.js';
import { KprobePlacer } from '../../src/placement/placement.js';
import { ensureListings } from '../../src/placement/explain.js';
import { isRefusal } from '../../arch/probes.js';
import { manifest, repoRoot, supported } from '../helpers.js';
import type { Target } from '../../arch/types.js';

const OPT_TARGETS = (['x86_64', 'i386', 'ppc64'] as Target[]).filter((t) => supported.has(t));
const NO_OPT_TARGETS = (['ppc32', 'sparc64'] as Target[]).filter((t) => supported.has(t));
const FUNCTIONS = ['ksys_write', 'vfs_write', 'do_syscall', 'host_syscall'];

function machine(target: Target, program = 'fib-nolibc', opts: { cpus?: number; seed?: number; quantum?: number } = {}) {
  const e = manifest.find((m) => m.target === target && m.name === program)!;
  const out: string[] = [];
  const dec = new TextDecoder();
  const m = new Machine({ target, cpus: opts.cpus ?? 1, seed: opts.seed ?? 1, ...(opts.quantum ? { quantum: opts.quantum } : {}), stdout: (s) => out.push(typeof s === 'string' ? s : dec.decode(s)) });
  m.spawn(`${repoRoot}/fixtures/${e.path}`, [e.path, ...e.args]);
  return { m, e, out };
}

interface RunResult {
  trace: string[];
  hits: number[];
  out: string;
  status: number;
  optimized: bigint[];
  list: string[];
}

/** Register probes at `addrs`, let the optimizer run (when on), run the program, trace every hit. */
async function runWith(target: Target, addrs: bigint[], optimization: boolean): Promise<RunResult> {
  const { m, out } = machine(target);
  try {
    const kprobes = new Kprobes(m, { optimization });
    const trace: string[] = [];
    const probes = addrs.map(
      (addr) =>
        new Kprobe({
          addr,
          preHandler: (p, regs) => {
            trace.push(`${p.addr!.toString(16)} ip=${regs.ip.toString(16)} a0=${regs.arg(0).toString(16)} a1=${regs.arg(1).toString(16)} sp=${regs.sp().toString(16)}`);
            return 0;
          },
        }),
    );
    for (const p of probes) expect(await m.kernelCall('reg', (t) => kprobes.register(t, p))).toBe(0);
    await m.kernelCall('optimizer', (t) => kprobes.optimizer.flush(t));
    const optimized = addrs.filter((a) => kprobes.optimizer.isOptimized(a));
    const list = kprobes.list();
    const r = await m.runAsync();
    return { trace, hits: probes.map((p) => p.nhit), out: out.join(''), status: r.status, optimized, list };
  } finally {
    m.close();
  }
}

/** Split addresses into groups whose replaced ranges do not overlap (they would block each other). */
function disjointGroups(items: Array<{ addr: bigint; size: number }>): bigint[][] {
  const groups: Array<Array<{ addr: bigint; size: number }>> = [];
  for (const it of items) {
    const free = (g: typeof it[]) => g.every((o) => it.addr + BigInt(it.size) <= o.addr || o.addr + BigInt(o.size) <= it.addr);
    const g = groups.find(free);
    if (g) g.push(it);
    else groups.push([it]);
  }
  return groups.map((g) => g.map((x) => x.addr));
}

describe.each(OPT_TARGETS)('optprobes on %s', (target) => {
  it('every optimizable instruction of ksys_write, vfs_write, do_syscall, host_syscall: [OPTIMIZED], same hits and same trace as unoptimized', async () => {
    await ensureListings();
    const m0 = new Machine({ target });
    let items: Array<{ addr: bigint; size: number }>;
    let refusedRows: number;
    try {
      const placer = new KprobePlacer(new Kprobes(m0));
      const rows = FUNCTIONS.flatMap((n) => placer.map(placer.functionNamed(n)!));
      items = rows
        .filter((r) => r.verdict.ok && r.verdict.mode === 'optimize')
        .map((r) => {
          const prep = canOptimize(m0.kernel, placer.decoder, r.addr);
          if (isRefusal(prep)) throw new Error('map and canOptimize disagree');
          return { addr: r.addr, size: prep.size };
        });
      refusedRows = rows.filter((r) => r.verdict.ok && r.verdict.mode !== 'optimize').length;
    } finally {
      m0.close();
    }
    // Both kinds exist in these functions (prologues optimize; calls, stores, branches do not).
    expect(items.length).toBeGreaterThan(5);
    expect(refusedRows).toBeGreaterThan(0);
    let totalHits = 0;
    for (const group of disjointGroups(items)) {
      const on = await runWith(target, group, true);
      const off = await runWith(target, group, false);
      expect(on.optimized.sort()).toEqual([...group].sort());
      expect(off.optimized).toEqual([]);
      expect(on.list.every((l) => l.endsWith('[OPTIMIZED]'))).toBe(true);
      expect(off.list.some((l) => l.includes('[OPTIMIZED]'))).toBe(false);
      expect(on.status).toBe(off.status);
      expect(on.out).toBe(off.out);
      expect(on.hits).toEqual(off.hits);
      expect(on.trace).toEqual(off.trace);
      totalHits += on.trace.length;
    }
    expect(totalHits).toBeGreaterThan(20);
  });

  it('addresses the map refuses to optimize stay traps, with the same reason; hits still counted', async () => {
    await ensureListings();
    const { m, e, out } = machine(target);
    try {
      const kprobes = new Kprobes(m, { optimization: true });
      const placer = new KprobePlacer(kprobes);
      const rows = FUNCTIONS.flatMap((n) => placer.map(placer.functionNamed(n)!)).filter((r) => r.verdict.ok && r.verdict.mode !== 'optimize');
      expect(rows.length).toBeGreaterThan(0);
      const probes = rows.map((r) => new Kprobe({ addr: r.addr, preHandler: () => 0 }));
      for (const p of probes) expect(await m.kernelCall('reg', (t) => kprobes.register(t, p))).toBe(0);
      await m.kernelCall('optimizer', (t) => kprobes.optimizer.flush(t));
      for (const r of rows) {
        expect(kprobes.optimizer.isOptimized(r.addr)).toBe(false);
        const why = kprobes.optimizer.refusals.get(r.addr);
        const v = r.verdict as { notOptimized?: { errno: number; reason: string } };
        expect(why, placer.where(r.addr)).toMatchObject({ errno: v.notOptimized!.errno, reason: v.notOptimized!.reason });
      }
      expect(kprobes.list().some((l) => l.includes('[OPTIMIZED]'))).toBe(false);
      const r = await m.runAsync();
      expect(r.status).toBe(e.exit);
      expect(out.join('')).toBe(e.stdout);
      expect(probes.some((p) => p.nhit > 0)).toBe(true);
    } finally {
      m.close();
    }
  });

  it('a post handler, disable, the sysctl: not optimized or unoptimized with the text restored; aggregates optimize as one', async () => {
    const { m, e, out } = machine(target);
    try {
      const kprobes = new Kprobes(m, { optimization: true });
      const k = m.kernel;
      const sym = k.symbol('ksys_write')!;
      const addr = sym.localEntry ?? sym.codeAddress;
      const flush = () => m.kernelCall('optimizer', (t) => kprobes.optimizer.flush(t));
      const text = () => Buffer.from(m.readKernelText(addr, 8)).toString('hex');
      const bp = Buffer.from(kprobes.arch.breakpoint).toString('hex');
      let aHits = 0;
      let bHits = 0;
      const a = new Kprobe({ addr, preHandler: () => (aHits++, 0) });
      expect(await m.kernelCall('reg', (t) => kprobes.register(t, a))).toBe(0);
      expect(text().startsWith(bp)).toBe(true);
      await flush();
      expect(kprobes.optimizer.isOptimized(addr)).toBe(true);
      expect(text().startsWith(bp)).toBe(false);
      // A second probe at the address: the aggregate keeps the jump.
      const b = new Kprobe({ addr, preHandler: () => (bHits++, 0) });
      expect(await m.kernelCall('reg', (t) => kprobes.register(t, b))).toBe(0);
      await flush();
      expect(kprobes.optimizer.isOptimized(addr)).toBe(true);
      expect(kprobes.list()).toHaveLength(2);
      expect(kprobes.list().every((l) => l.endsWith('[OPTIMIZED]'))).toBe(true);
      // A third with a post handler: unoptimized at once (forced), the breakpoint back.
      const c = new Kprobe({ addr, postHandler: () => undefined });
      expect(await m.kernelCall('reg', (t) => kprobes.register(t, c))).toBe(0);
      expect(kprobes.optimizer.isOptimized(addr)).toBe(false);
      expect(text().startsWith(bp)).toBe(true);
      await flush();
      expect(kprobes.optimizer.refusals.get(addr)?.reason).toMatch(/post_handler/);
      // It leaves: re-optimized.
      await m.kernelCall('unreg', (t) => kprobes.unregister(t, c));
      await flush();
      expect(kprobes.optimizer.isOptimized(addr)).toBe(true);
      // Disabling both children disarms: the original bytes come back, nothing optimized.
      await m.kernelCall('dis', async (t) => {
        await kprobes.disable(t, a);
        await kprobes.disable(t, b);
      });
      expect(kprobes.optimizer.isOptimized(addr)).toBe(false);
      const orig = Buffer.from(k.elf.textBytesAt(addr, 8)).toString('hex');
      expect(text()).toBe(orig);
      await m.kernelCall('en', (t) => kprobes.enable(t, a));
      await flush();
      expect(kprobes.optimizer.isOptimized(addr)).toBe(true);
      expect(kprobes.list().filter((l) => l.includes('[OPTIMIZED]'))).toHaveLength(2);
      expect(kprobes.list().filter((l) => l.includes('[DISABLED]'))).toHaveLength(1);
      // The sysctl off: unoptimized; on again: optimized.
      await m.kernelCall('sysctl0', (t) => kprobes.setOptimization(t, false));
      expect(kprobes.optimizer.isOptimized(addr)).toBe(false);
      expect(text().startsWith(bp)).toBe(true);
      await m.kernelCall('sysctl1', (t) => kprobes.setOptimization(t, true));
      await flush();
      expect(kprobes.optimizer.isOptimized(addr)).toBe(true);
      const r = await m.runAsync();
      expect(r.status).toBe(e.exit);
      expect(out.join('')).toBe(e.stdout);
      expect(aHits).toBeGreaterThan(0);
      expect(bHits).toBe(0); // disabled child: skipped by the callback
      await m.kernelCall('unreg', (t) => kprobes.unregisterBatch(t, [a, b]));
      await flush();
      expect(text()).toBe(orig);
      // The freed detour is poisoned with breakpoints.
      const { entry, body } = kprobes.optimizer.detourAt(0);
      for (const at of [entry, body]) {
        const bytes = m.readKernelText(at, kprobes.arch.breakpoint.length);
        expect(Buffer.from(bytes).toString('hex')).toBe(bp);
      }
    } finally {
      m.close();
    }
  });

  it('a breakpoint armed inside the bytes a jump replaced unoptimizes that probe first (x86; ppc64 replaces one word)', async () => {
    const { m } = machine(target);
    try {
      const kprobes = new Kprobes(m, { optimization: true });
      const placer = new KprobePlacer(kprobes);
      const f = placer.functionNamed('ksys_write')!;
      const rows = placer.map(f);
      const first = rows.find((r) => r.verdict.ok && r.verdict.mode === 'optimize')!;
      const prep = canOptimize(m.kernel, kprobes.arch, first.addr);
      if (isRefusal(prep)) throw new Error(prep.reason);
      const a = new Kprobe({ addr: first.addr, preHandler: () => 0 });
      expect(await m.kernelCall('reg', (t) => kprobes.register(t, a))).toBe(0);
      await m.kernelCall('optimizer', (t) => kprobes.optimizer.flush(t));
      expect(kprobes.optimizer.isOptimized(first.addr)).toBe(true);
      const inside = rows.find((r) => r.addr > first.addr && r.addr < first.addr + BigInt(prep.size));
      if (m.arch.family === 'ppc') {
        expect(prep.size).toBe(4);
        expect(inside).toBeUndefined();
        return;
      }
      expect(inside).toBeDefined();
      const b = new Kprobe({ addr: inside!.addr, preHandler: () => 0 });
      expect(await m.kernelCall('reg', (t) => kprobes.register(t, b))).toBe(0);
      expect(kprobes.optimizer.isOptimized(first.addr)).toBe(false);
      await m.kernelCall('optimizer', (t) => kprobes.optimizer.flush(t));
      expect(kprobes.optimizer.isOptimized(first.addr)).toBe(false);
      expect(kprobes.optimizer.refusals.get(first.addr)?.errno).toBe(17); // EEXIST
      await m.kernelCall('unreg', (t) => kprobes.unregister(t, b));
      await m.kernelCall('optimizer', (t) => kprobes.optimizer.flush(t));
      expect(kprobes.optimizer.isOptimized(first.addr)).toBe(true);
    } finally {
      m.close();
    }
  });

  it('an optimized probe whose handler calls a kernel function: the call runs from the detour, hits another optimized probe as a reentry (missed), and the detour goes on', async () => {
    const { m, e, out } = machine(target, 'fib-nolibc', { cpus: 2, seed: 3 });
    try {
      const kprobes = new Kprobes(m, { optimization: true });
      const got: bigint[] = [];
      let inner = 0;
      const a = new Kprobe({
        symbolName: 'ksys_write',
        preHandler: function* (_p, regs) {
          got.push(yield regs.call('kprobe_target', regs.arg(2)));
          return 0;
        },
      });
      const b = new Kprobe({ symbolName: 'kprobe_target', preHandler: () => (inner++, 0) });
      expect(await m.kernelCall('reg', (t) => kprobes.registerBatch(t, [a, b]))).toBe(0);
      await m.kernelCall('optimizer', (t) => kprobes.optimizer.flush(t));
      expect(kprobes.optimizer.isOptimized(a.addr!)).toBe(true);
      expect(kprobes.optimizer.isOptimized(b.addr!)).toBe(true);
      expect((await m.runAsync()).status).toBe(e.exit);
      expect(out.join('')).toBe(e.stdout);
      expect(a.nhit).toBeGreaterThan(0);
      expect(kprobes.optimizer.hits).toBe(a.nhit + b.nmissed);
      expect(got).toHaveLength(a.nhit);
      expect(b.nmissed).toBe(a.nhit);
      expect([b.nhit, inner, a.nmissed]).toEqual([0, 0, 0]);
      // write(2)'s count divided by 3 by kprobe_target, which still ran in full.
      const lens = e.stdout.split(/(?<=\n)/).map((l) => BigInt(l.length));
      expect(got).toEqual(lens.slice(0, got.length).map((n) => n / 3n));
      // From the host, outside any handler: b's handler runs, through its detour.
      expect(await m.callKernelFunction('kprobe_target', [30n])).toBe(10n);
      expect([b.nhit, inner]).toEqual([1, 1]);
    } finally {
      m.close();
    }
  });

  it('a kretprobe on an optimized function entry: every return still seen', async () => {
    const { m, e, out } = machine(target);
    try {
      const kprobes = new Kprobes(m, { optimization: true });
      const krp = new Kretprobes(kprobes);
      let total = 0n;
      let entries = 0;
      const rp = new Kretprobe({ symbolName: 'ksys_write', entryHandler: () => void entries++, handler: (_ri, regs) => void (total += BigInt.asIntN(m.arch.wordSize * 8, regs.returnValue())) });
      expect(await m.kernelCall('reg', (t) => krp.register(t, rp))).toBe(0);
      await m.kernelCall('optimizer', (t) => kprobes.optimizer.flush(t));
      const addr = rp.kp.addr!;
      expect(kprobes.optimizer.isOptimized(addr)).toBe(true);
      expect(kprobes.list()[0]).toMatch(/  r  ksys_write\+0x[0-9a-f]+    \[OPTIMIZED\]$/);
      const r = await m.runAsync();
      expect(r.status).toBe(e.exit);
      expect(out.join('')).toBe(e.stdout);
      expect(entries).toBeGreaterThan(0);
      expect(total).toBe(BigInt(new TextEncoder().encode(e.stdout).length));
    } finally {
      m.close();
    }
  });
});

describe.each(NO_OPT_TARGETS)('optprobes on %s', (target) => {
  it('never optimized: every probe of ksys_write stays a trap and the arch hook says why', async () => {
    const { m, e, out } = machine(target);
    try {
      const kprobes = new Kprobes(m, { optimization: true });
      const placer = new KprobePlacer(kprobes);
      // Every other instruction: sparc64 refuses a probe in the delay slot of a probed branch.
      const rows = placer.map(placer.functionNamed('ksys_write')!).filter((r, i) => r.verdict.ok && i % 2 === 0);
      expect(rows.length).toBeGreaterThan(3);
      for (const r of rows) expect(r.verdict.ok && r.verdict.mode).not.toBe('optimize');
      const probes = rows.map((r) => new Kprobe({ addr: r.addr, preHandler: () => 0 }));
      for (const p of probes) expect(await m.kernelCall('reg', (t) => kprobes.register(t, p))).toBe(0);
      await m.kernelCall('optimizer', (t) => kprobes.optimizer.flush(t));
      expect(kprobes.optimizer.optimizedCount).toBe(0);
      expect(kprobes.optimizer.rounds).toBe(0);
      for (const r of rows) expect(kprobes.optimizer.refusals.get(r.addr)?.reason).toMatch(/optprobes not supported/);
      expect(kprobes.list().some((l) => l.includes('[OPTIMIZED]'))).toBe(false);
      const res = await m.runAsync();
      expect(res.status).toBe(e.exit);
      expect(out.join('')).toBe(e.stdout);
    } finally {
      m.close();
    }
  });
});
