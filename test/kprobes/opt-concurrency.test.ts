/**
 * Optimized kprobes under concurrency (x86-64, i386, ppc64): while guest tasks on other vCPUs run
 * through ksys_write and vfs_write, a kernel thread registers probes there, waits until the
 * optimizer jumped them, then disables, re-enables and unregisters them — over many scheduler
 * seeds with short quanta, so tasks are often stopped inside the bytes a jump replaces or inside
 * a detour. Each run: output unchanged, no lockdep report, no kernel-thread problem, nothing left
 * registered, the text back to the ELF's bytes, and every freed detour poisoned (a task still in
 * one would have trapped on the poison and been killed, changing the output).
 */
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import { Kprobes } from '../../src/kprobes/kprobes.js';
import { Kprobe } from '../../src/kprobes/kprobe.js';
import { KprobePlacer } from '../../src/placement/placement.js';
import { DETOUR_SLOTS } from '../../src/kprobes/optimizer.js';
import { manifest, repoRoot, supported } from '../helpers.js';
import type { Target } from '../../arch/types.js';

const TARGETS = (['x86_64', 'i386', 'ppc64'] as Target[]).filter((t) => supported.has(t));
const alive = (m: Machine) => m.processes.some((p) => p.alive);

describe.each(TARGETS)('optimized kprobes under concurrency on %s', (target) => {
  it('disable / enable / unregister optimized probes while other vCPUs run through them (16 seeds)', async () => {
    let optimizedHits = 0;
    let quiesceTicks = 0;
    let rounds = 0;
    for (let seed = 1; seed <= 16; seed++) {
      const program = seed % 2 ? 'fork-nolibc' : 'fib-nolibc';
      const e = manifest.find((x) => x.target === target && x.name === program)!;
      const out: string[] = [];
      const reports: string[] = [];
      const dec = new TextDecoder();
      const m = new Machine({ target, cpus: 3, seed, quantum: 40 + seed * 7, stdout: (s) => out.push(dec.decode(s)), report: (l) => reports.push(l) });
      m.spawn(`${repoRoot}/fixtures/${e.path}`, [e.path, ...e.args]);
      try {
        const kprobes = new Kprobes(m, { optimization: true });
        const placer = new KprobePlacer(kprobes);
        // ksys_write's entry and an optimizable instruction inside vfs_write.
        const inner = placer.map(placer.functionNamed('vfs_write')!).filter((r) => r.verdict.ok && r.verdict.mode === 'optimize')[1]!;
        const used = new Set<number>();
        const th = m.kthread<number>('churn', async (t) => {
          let n = 0;
          while (alive(m)) {
            const ps = [new Kprobe({ symbolName: 'ksys_write', preHandler: () => 0 }), new Kprobe({ addr: inner.addr, preHandler: () => 0 })];
            for (const p of ps) expect(await kprobes.register(t, p)).toBe(0);
            // Until the optimizer jumped them (or the program ended).
            for (let i = 0; i < 400 && alive(m) && !ps.every((p) => kprobes.optimizer.isOptimized(p.addr!)); i++) await m.sync.sched.tick(t);
            for (const p of ps) {
              const op = kprobes.optimizer.optimized(p.addr!);
              if (op) used.add(op.index);
            }
            for (let i = 0; i < 1 + (n % 4); i++) await m.sync.sched.tick(t);
            if (n % 3 === 0) {
              expect(await kprobes.disable(t, ps[0]!)).toBe(0);
              await m.sync.sched.tick(t);
              expect(await kprobes.enable(t, ps[0]!)).toBe(0);
              await m.sync.sched.tick(t);
            }
            if (n % 2) await kprobes.unregisterBatch(t, ps);
            else for (const p of ps) await kprobes.unregister(t, p);
            n++;
          }
          return n;
        });
        const r = await m.runAsync();
        rounds += await th.done;
        await m.kernelCall('optimizer', (t) => kprobes.optimizer.flush(t));
        expect(out.join('')).toBe(e.stdout);
        expect(r.status).toBe(e.exit);
        expect(reports).toEqual([]);
        expect(m.sync.lockdep.reports).toEqual([]);
        expect(m.sync.sched.problems).toEqual([]);
        expect(kprobes.list()).toEqual([]);
        expect(kprobes.optimizer.optimizedCount).toBe(0);
        const k = m.kernel;
        const len = Number(k.textEnd - k.textStart);
        expect(Buffer.from(m.readKernelText(k.textStart, len)).equals(Buffer.from(k.elf.textBytesAt(k.textStart, len)))).toBe(true);
        // Freed detours are poisoned with breakpoints.
        const bp = Buffer.from(kprobes.arch.breakpoint).toString('hex');
        expect(used.size).toBeGreaterThan(0);
        for (const i of used) {
          expect(i).toBeLessThan(DETOUR_SLOTS);
          const { entry, body } = kprobes.optimizer.detourAt(i);
          for (const at of [entry, body]) expect(Buffer.from(m.readKernelText(at, kprobes.arch.breakpoint.length)).toString('hex')).toBe(bp);
        }
        optimizedHits += kprobes.optimizer.hits;
        quiesceTicks += kprobes.optimizer.quiesceTicks;
      } finally {
        m.close();
      }
    }
    expect(rounds).toBeGreaterThan(16);
    expect(optimizedHits).toBeGreaterThan(0);
    console.log(`${target}: ${rounds} rounds over 16 seeds, ${optimizedHits} optimized hits, ${quiesceTicks} ticks waiting for tasks to leave replaced bytes or detours`);
  });

  it('unregistering while a handler is inside a kernel call it made from the detour: the detour outlives the call (8 seeds)', async () => {
    let caught = 0;
    for (let seed = 1; seed <= 8; seed++) {
      const e = manifest.find((x) => x.target === target && x.name === 'fib-nolibc')!;
      const out: string[] = [];
      const reports: string[] = [];
      const dec = new TextDecoder();
      const m = new Machine({ target, cpus: 2, seed, quantum: 3, stdout: (s) => out.push(dec.decode(s)), report: (l) => reports.push(l) });
      m.spawn(`${repoRoot}/fixtures/${e.path}`, [e.path, ...e.args]);
      try {
        const kprobes = new Kprobes(m, { optimization: true });
        let inCall = false;
        const got: bigint[] = [];
        const a = new Kprobe({
          symbolName: 'ksys_write',
          preHandler: function* (_p, regs) {
            inCall = true;
            got.push(yield regs.call('kprobe_target', 30n));
            inCall = false;
            return 0;
          },
        });
        expect(await m.kernelCall('reg', (t) => kprobes.register(t, a))).toBe(0);
        await m.kernelCall('optimizer', (t) => kprobes.optimizer.flush(t));
        expect(kprobes.optimizer.isOptimized(a.addr!)).toBe(true);
        const th = m.kthread<boolean>('unregister', async (t) => {
          while (alive(m) && !inCall) await m.sync.sched.tick(t);
          const during = inCall;
          await kprobes.unregister(t, a);
          // The optimizer frees the detour; the handler's call has not returned yet.
          await kprobes.optimizer.flush(t);
          return during;
        });
        const r = await m.runAsync();
        if (await th.done) caught++;
        expect(out.join('')).toBe(e.stdout);
        expect(r.status).toBe(e.exit);
        expect(reports).toEqual([]);
        expect(got.every((v) => v === 10n)).toBe(true);
        expect(m.sync.lockdep.reports).toEqual([]);
      } finally {
        m.close();
      }
    }
    expect(caught).toBeGreaterThan(0);
  });
});
