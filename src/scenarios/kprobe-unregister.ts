/**
 * Seed 003 (2005, "Kprobes - Changed from using spinlock to mutext", 2.6.16) on the engine:
 * unregister_kprobe while another vCPU is between its breakpoint trap and the end of its
 * single-step.
 *
 * Actors: the guest program fib-nolibc, whose every write() runs the guest kernel's ksys_write,
 * and a kernel thread ("module") that registers a kprobe on ksys_write (with a post handler, so
 * the copied instruction is single-stepped in its insn slot), waits until some vCPU has trapped
 * on it, unregisters it, and starts again while the program runs.
 * Interleaving: every hit is split between the trap and the step (a forced switch at
 * 'kprobe:before-step': the task stays pinned to its vCPU, an RCU reader, PC on the slot), so
 * the unregister always lands inside the window; the seed decides what runs when after that.
 * Variants (Kprobes.policy.unregister): 'fixed' — mainline, slot freed after synchronize_rcu;
 * 'old' — the seed's removed lines, slot freed (arch_remove_kprobe) before the grace period.
 * Invariant: no vCPU executes a freed slot. Freed slots hold the arch's poison (insn-slots.ts),
 * so a violation is a trap inside a freed slot: the task dies of SIGTRAP and the slot cache
 * records the slot and the vCPU.
 */
import { Rng } from '../kernel/rng.js';
import { Kprobe } from '../kprobes/kprobe.js';
import { Kprobes } from '../kprobes/kprobes.js';
import { deadlockFinding, lockdepFindings, problemFindings, type Finding, type RunOptions, type Scenario, type ScenarioRun } from './scenario.js';
import { fixture, scenarioMachine } from './machine.js';

async function run(o: RunOptions): Promise<ScenarioRun> {
  const cpus = o.cpus ?? 2;
  if (cpus < 2) throw new RangeError('kprobe-unregister needs 2 vCPUs or more: one for the stepping task, one for the unregister');
  const { m, reports } = scenarioMachine({ seed: o.seed, cpus });
  const choice = new Rng(BigInt(o.seed) * 0x9e3779b1n + 3n);
  try {
    const kprobes = new Kprobes(m);
    kprobes.policy.unregister = o.variant;
    const stats = { cycles: 0, hits: 0, unregisteredMidStep: 0 };
    const freedBy: string[] = [];
    const program = fixture('fib-nolibc');
    m.spawn(program, [program]);
    m.sync.sched.switchRules.push((point) => point === 'kprobe:before-step');
    const alive = (): boolean => m.processes.some((p) => p.alive);
    m.kthread('module', async (t) => {
      while (alive()) {
        const kp = new Kprobe({ symbolName: 'ksys_write', postHandler: () => undefined });
        const rc = await kprobes.register(t, kp);
        if (rc) throw new Error(`register_kprobe(ksys_write) = ${rc}`);
        const slot = kp.ainsn?.slot;
        while (alive() && !m.tasks.some((x) => x.pinnedCpu !== undefined)) await m.sync.sched.tick(t);
        const pinned = m.tasks.find((x) => x.pinnedCpu !== undefined);
        if (pinned) {
          stats.unregisteredMidStep++;
          freedBy.push(`unregister_kprobe(ksys_write) by kthread module on vCPU ${t.cpu} while ${pinned.process.comm}[${pinned.tid}] on vCPU ${pinned.pinnedCpu} was between trap and step; slot 0x${slot?.toString(16)}`);
        }
        await kprobes.unregister(t, kp);
        stats.cycles++;
        stats.hits += kp.nhit;
        for (let i = choice.below(4); i > 0; i--) await m.sync.sched.tick(t);
      }
    });
    const r = await m.runAsync();
    const findings: Finding[] = [];
    for (const h of kprobes.slots.poisonHits) {
      findings.push({
        kind: 'use-after-free',
        title: 'a vCPU executed a freed kprobe insn slot (it still single-stepped the unregistered probe)',
        detail: [
          `vCPU ${h.cpu} (${h.task}) trapped at 0x${h.addr.toString(16)}, inside freed slot 0x${h.slot.toString(16)} (poisoned with the breakpoint)`,
          ...freedBy.filter((f) => f.endsWith(`0x${h.slot.toString(16)}`)).slice(-1),
          ...reports.filter((l) => l.includes('SIGTRAP')),
        ],
      });
    }
    findings.push(...lockdepFindings(m.sync.lockdep.reports), ...problemFindings(m.sync.sched.problems));
    if (r.reason === 'deadlock') findings.push(...deadlockFinding(reports.filter((l) => l.includes('blocked'))));
    return { seed: o.seed, variant: o.variant, findings, stats };
  } finally {
    m.close();
  }
}

export const kprobeUnregister: Scenario = {
  name: 'kprobe-unregister',
  seed: '003',
  summary: 'unregister_kprobe while another vCPU is between its trap and the end of its single-step',
  cpus: 2,
  run,
};
