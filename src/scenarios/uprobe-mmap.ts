/**
 * Seed 001 (2011, "Here is another take at locking for uprobes") on the engine: uprobe
 * register/unregister racing the mmap and munmap of the probed file.
 *
 * Actors: guest processes running mmapexec-nolibc, each of which maps fixtures' blob.bin
 * executable (a private file mapping: the mmap hook installs registered probes), calls into it
 * and unmaps it; a launcher kernel thread that starts a new such process every few ticks; and a
 * registrar kernel thread that registers and unregisters a uprobe on the blob's first
 * instruction over and over. The seed decides the interleaving.
 * Variants (Uprobes.policy.register): 'fixed' — mainline (VMAs collected under i_mmap_rwsem,
 * each mm touched after the lock is dropped); 'old' — the code the proposal was written
 * against: breakpoints written while the rmap walk holds i_mmap_rwsem, taking mmap_lock and
 * allocating under it, while mmap/munmap link and unlink VMAs under mmap_lock → i_mmap_rwsem.
 * Invariants, checked between every two scheduler steps: every live mm that maps the probed
 * page has the breakpoint exactly while the probe is registered (outside the register and
 * unregister calls themselves); lockdep sees no inversion and no allocation under the rmap lock.
 */
import { Rng } from '../kernel/rng.js';
import type { Mm } from '../mm/mm.js';
import { Uprobes } from '../uprobes/uprobes.js';
import type { UprobeConsumer } from '../uprobes/uprobe.js';
import { fixture, scenarioMachine } from './machine.js';
import { deadlockFinding, lockdepFindings, problemFindings, type Finding, type RunOptions, type Scenario, type ScenarioRun } from './scenario.js';

/** Probed offset in blob.bin: its first instruction. */
const OFFSET = 0n;

async function run(o: RunOptions): Promise<ScenarioRun> {
  const program = fixture('mmapexec-nolibc');
  const blob = fixture('blob.bin');
  const { m, reports } = scenarioMachine({ seed: o.seed, cpus: o.cpus ?? 3, allowFiles: [blob] });
  const choice = new Rng(BigInt(o.seed) * 0x9e3779b1n + 17n);
  try {
    const up = new Uprobes(m);
    up.policy.register = o.variant;
    const inode = m.inodeFor(blob);
    const stats = { processes: 0, registrations: 0, hits: 0, checks: 0, mappedWhileOn: 0, mappedWhileOff: 0 };
    const uc: UprobeConsumer = { handler: () => (stats.hits++, 0) };
    let state: 'on' | 'off' | 'transition' = 'off';
    const violations = new Map<string, Finding>();
    const violate = (f: Finding): void => void (violations.has(f.title) || violations.set(f.title, f));

    // The invariant, between every two steps.
    m.sync.sched.betweenSteps.push(() => {
      if (state === 'transition') return;
      stats.checks++;
      const seen = new Set<Mm>();
      for (const p of m.processes) {
        const mm = p.mm;
        if (!p.alive || seen.has(mm) || mm.destroyed) continue;
        seen.add(mm);
        for (const vma of mm.vmas) {
          if (vma.file !== inode || !up.validVma(vma, true)) continue;
          const vaddr = up.offsetToVaddr(vma, OFFSET);
          if (vaddr < vma.start || vaddr >= vma.end) continue;
          const bp = mm.read(vaddr, up.arch.swbp.length).every((b, i) => b === up.arch.swbp[i]);
          if (state === 'on') stats.mappedWhileOn++;
          else stats.mappedWhileOff++;
          const where = `${p.comm}[${p.pid}] maps ${inode.path} at 0x${vma.start.toString(16)}; probe at 0x${vaddr.toString(16)}`;
          if (state === 'on' && !bp) {
            violate({ kind: 'missed-breakpoint', title: 'a process maps the probed page without the breakpoint while the probe is registered', detail: [where, `scheduler step ${m.sync.sched.steps}`] });
          }
          if (state === 'off' && bp) {
            violate({ kind: 'stray-breakpoint', title: 'a breakpoint is left in a process after the probe was unregistered', detail: [where, `scheduler step ${m.sync.sched.steps}`] });
          }
        }
      }
    });

    const alive = (): boolean => m.processes.some((p) => p.alive);
    const launch = (): void => {
      m.spawn(program, [program, blob]);
      stats.processes++;
    };
    launch();
    m.kthread('launcher', async (t) => {
      for (let i = 0; i < 3; i++) {
        for (let k = 2 + choice.below(12); k > 0; k--) await m.sync.sched.tick(t);
        launch();
      }
    });
    m.kthread('registrar', async (t) => {
      for (let k = choice.below(6); k > 0; k--) await m.sync.sched.tick(t);
      for (let round = 0; round < 60 && alive(); round++) {
        state = 'transition';
        const rc = await up.register(t, inode, OFFSET, uc);
        if (rc) throw new Error(`uprobe_register = ${rc}`);
        stats.registrations++;
        state = 'on';
        for (let k = choice.below(4); k > 0; k--) await m.sync.sched.tick(t);
        state = 'transition';
        await up.unregister(t, inode, OFFSET, uc);
        state = 'off';
        for (let k = choice.below(3); k > 0; k--) await m.sync.sched.tick(t);
      }
    });
    const r = await m.runAsync();
    const findings: Finding[] = [...violations.values(), ...lockdepFindings(m.sync.lockdep.reports), ...problemFindings(m.sync.sched.problems)];
    if (r.reason === 'deadlock') findings.push(...deadlockFinding(reports.filter((l) => l.includes('blocked'))));
    return { seed: o.seed, variant: o.variant, findings, stats };
  } finally {
    m.close();
  }
}

export const uprobeMmap: Scenario = {
  name: 'uprobe-mmap',
  seed: '001',
  summary: 'uprobe register/unregister racing mmap/munmap of the probed file (rmap walk vs mmap_lock)',
  cpus: 3,
  run,
};
