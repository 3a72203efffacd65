/**
 * kprobes under concurrency, on several vCPUs, with real programs' system calls hitting the probes:
 *
 * (a) unregister while another vCPU is mid-step: a forced switch at 'kprobe:before-step' ends the
 *     guest's run between the trap and the single-step (the task stays pinned, an RCU reader); a
 *     kernel thread on another vCPU unregisters the probe right then. The breakpoint goes at
 *     once, but the slot the pinned task is about to run must stay in use until its step is done:
 *     unregister's synchronize_rcu waits for it, and only then is the slot freed.
 * (b) register/unregister while other vCPUs hit: a kernel thread arms and disarms probes on
 *     ksys_write/vfs_write over and over while the guest's processes write on the other vCPUs.
 *     Output unchanged, no lockdep report, nothing left armed, the text back to the ELF's bytes.
 */
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import { Kprobes } from '../../src/kprobes/kprobes.js';
import { Kprobe } from '../../src/kprobes/kprobe.js';
import { manifest, repoRoot, supported } from '../helpers.js';
import type { Target } from '../../arch/types.js';

const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as Target[]).filter((t) => supported.has(t));

function machine(target: Target, program: string, opts: { cpus: number; seed: number; quantum?: number }) {
  const e = manifest.find((m) => m.target === target && m.name === program)!;
  const out: string[] = [];
  const reports: string[] = [];
  const dec = new TextDecoder();
  const m = new Machine({ target, cpus: opts.cpus, seed: opts.seed, ...(opts.quantum ? { quantum: opts.quantum } : {}), stdout: (s) => out.push(dec.decode(s)), report: (l) => reports.push(l) });
  m.spawn(`${repoRoot}/fixtures/${e.path}`, [e.path, ...e.args]);
  return { m, e, out, reports };
}

/**
 * The first instruction of `name` a probe with a post handler single-steps: the entry, except on
 * ppc, where emulate_step carries out the entry's mflr/stwu at the hit (no step).
 */
function firstStepped(m: Machine, kprobes: Kprobes, name: string): bigint {
  const f = m.kernel.elf.functions().find((s) => s.name === name)!;
  for (let pc = f.codeAddress; pc < f.codeAddress + f.size; ) {
    const p = kprobes.arch.prepareKprobe(pc, m.kernel.elf.textBytesAt(pc, kprobes.arch.maxInsnLength), { hasPostHandler: true });
    if ('refused' in p) break;
    if (p.mode === 'step' && !p.tryEmulate) return pc;
    pc += BigInt(p.insn.length);
  }
  throw new Error(`no stepped instruction in ${name}`);
}

/** The kernel text is the ELF's again: no breakpoint left anywhere. */
function expectPristineText(m: Machine): void {
  const k = m.kernel;
  const len = Number(k.textEnd - k.textStart);
  const now = Buffer.from(m.readKernelText(k.textStart, len));
  expect(now.equals(Buffer.from(k.elf.textBytesAt(k.textStart, len)))).toBe(true);
}

const alive = (m: Machine) => m.processes.some((p) => p.alive);

describe.each(TARGETS)('kprobes concurrency on %s', (target) => {
  it('(a) unregister while another vCPU is between trap and step: the slot is freed only after that step', async () => {
    const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8];
    for (const seed of SEEDS) {
      const { m, e, out, reports } = machine(target, 'fib-nolibc', { cpus: 2, seed });
      try {
        const kprobes = new Kprobes(m);
        const events: string[] = [];
        // A post handler: no boosting, the copy runs in the slot and ends in the step trap.
        const kp = new Kprobe({
          addr: firstStepped(m, kprobes, 'ksys_write'),
          preHandler: (_p, regs) => {
            events.push(`pre cpu${regs.cpu}`);
            return 0;
          },
          postHandler: (_p, regs) => void events.push(`post cpu${regs.cpu} slot=${kprobes.slots.stateOf(slot)}`),
        });
        expect(await m.kernelCall('register', (t) => kprobes.register(t, kp))).toBe(0);
        expect(kp.ainsn!.prep.mode).toBe('step');
        const slot = kp.ainsn!.slot!;
        expect(kprobes.slots.stateOf(slot)).toBe('used');

        // insn_slot free, observed: who is still an RCU reader when the slot is let go?
        const free = kprobes.slots.free.bind(kprobes.slots);
        kprobes.slots.free = async (t, s, dirty) => {
          events.push(`free ${s === slot ? 'slot' : 'other'} dirty=${dirty} readers=${m.sync.rcu.readers().length}`);
          return free(t, s, dirty);
        };

        let fired = false;
        m.sync.sched.switchRules.push((point) => point === 'kprobe:before-step' && !fired && (fired = true));

        const th = m.kthread<string>('unregister', async (t) => {
          while (alive(m) && !m.tasks.some((x) => x.pinnedCpu !== undefined)) await m.sync.sched.tick(t);
          const pinned = m.tasks.find((x) => x.pinnedCpu !== undefined);
          if (!pinned) return 'never pinned';
          expect(t.cpu).not.toBe(pinned.pinnedCpu);
          const readers = m.sync.rcu.readers();
          events.push(`unregister (task on cpu${pinned.pinnedCpu} mid-step, ${readers.length} reader on cpu${readers[0]?.cpu})`);
          await kprobes.unregister(t, kp);
          events.push(`unregistered slot=${kprobes.slots.stateOf(slot)}`);
          return 'ok';
        });

        const r = await m.runAsync();
        expect(await th.done).toBe('ok');
        expect(out.join('')).toBe(e.stdout);
        expect(r.status).toBe(e.exit);
        expect(reports).toEqual([]);
        // The hit that was pinned: pre on one vCPU, the kthread unregisters from the other, the
        // pinned step completes (slot still in use), then — after the grace period — the free.
        expect(events[0]).toMatch(/^pre cpu\d$/);
        expect(events[1]).toMatch(/^unregister \(task on cpu\d mid-step, 1 reader on cpu\d\)$/);
        expect(events[1]).toContain(`cpu${events[0]!.slice(-1)}`);
        expect(events.slice(2)).toEqual([`post cpu${events[0]!.slice(-1)} slot=used`, 'free slot dirty=false readers=0', 'unregistered slot=clean']);
        expect(kp.nhit).toBe(1);
        expect(kprobes.list()).toEqual([]);
        expect(m.sync.lockdep.reports).toEqual([]);
        expectPristineText(m);
      } finally {
        m.close();
      }
    }
  });

  it('(b) register/unregister on ksys_write and vfs_write over and over while other vCPUs hit them (20 seeds)', async () => {
    let hits = 0;
    let rounds = 0;
    const cpus = new Set<number>();
    for (let seed = 1; seed <= 20; seed++) {
      const program = seed % 2 ? 'fork-nolibc' : 'fib-nolibc';
      const { m, e, out, reports } = machine(target, program, { cpus: 3, seed, quantum: 400 });
      try {
        const kprobes = new Kprobes(m);
        const all: Kprobe[] = [];
        const slots = new Set<bigint>();
        const th = m.kthread<number>('churn', async (t) => {
          let n = 0;
          while (alive(m)) {
            // Alternate lone probes and an aggregate (two probes at ksys_write, one with a post
            // handler: the boosted copy on x86 must become a stepped one).
            const ps = [new Kprobe({ symbolName: 'ksys_write', preHandler: (_p, regs) => (cpus.add(regs.cpu), 0) }), new Kprobe({ symbolName: 'vfs_write', postHandler: () => undefined })];
            if (n % 2) ps.push(new Kprobe({ symbolName: 'ksys_write', postHandler: () => undefined }));
            for (const p of ps) {
              expect(await kprobes.register(t, p)).toBe(0);
              if (p.ainsn?.slot !== undefined) slots.add(p.ainsn.slot);
              all.push(p);
              await m.sync.sched.tick(t);
            }
            for (let i = 0; i < 1 + (n % 3); i++) await m.sync.sched.tick(t);
            if (n % 2) {
              await kprobes.unregisterBatch(t, ps);
            } else {
              for (const p of ps) await kprobes.unregister(t, p);
            }
            n++;
          }
          return n;
        });
        const r = await m.runAsync();
        rounds += await th.done;
        expect(out.join('')).toBe(e.stdout);
        expect(r.status).toBe(e.exit);
        expect(reports).toEqual([]);
        expect(m.sync.lockdep.reports).toEqual([]);
        expect(m.sync.sched.problems).toEqual([]);
        expect(kprobes.list()).toEqual([]);
        for (const p of all) expect(kprobes.isRegistered(p)).toBe(false);
        for (const s of slots) expect(kprobes.slots.stateOf(s)).not.toBe('used');
        expectPristineText(m);
        for (const p of all) {
          expect(p.nmissed).toBe(0);
          hits += p.nhit;
        }
      } finally {
        m.close();
      }
    }
    expect(rounds).toBeGreaterThan(20);
    expect(hits).toBeGreaterThan(0);
    expect(cpus.size).toBeGreaterThan(1);
    console.log(`${target}: ${rounds} register/unregister rounds over 20 seeds, ${hits} hits on vCPUs ${[...cpus].sort().join(',')}`);
  });
});
