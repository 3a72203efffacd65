/**
 * Seed 002 ("mm/hmm: Simplify hmm_get_or_create and make it reliable", Linux 5.3) on the engine:
 * device drivers get-or-create the mirror (struct hmm) of one process's mm, use it and drop
 * their reference, over and over — so a creator meets a mirror whose last reference just went.
 *
 * Actors: kernel threads ("mirror_user") on the machine's vCPUs, each holding the mm's
 * mmap_lock for write around get-or-create as both variants' callers did (hmm_mirror_register's
 * callers), then using the mirror and putting it without the lock. The mm is a real process's
 * (fib-nolibc, loaded, not run), its notifiers and locks the machine's own.
 * Variants (Mirrors.policy.getOrCreate): 'fixed' — 5.3's lookup under page_table_lock with
 * kref_get_unless_zero and unpublish in the release; 'old' — 5.2's compare-and-publish, which
 * gives up while a dying mirror still occupies mm->hmm.
 * Invariants: get-or-create never fails (memory is always available here), never hands out a
 * dead mirror, nothing leaks once the SRCU callbacks ran, lockdep stays quiet.
 */
import { Mirrors } from '../mm/mirror.js';
import { fixture, scenarioMachine } from './machine.js';
import { deadlockFinding, lockdepFindings, problemFindings, type Finding, type RunOptions, type Scenario, type ScenarioRun } from './scenario.js';

async function run(o: RunOptions): Promise<ScenarioRun> {
  const { m } = scenarioMachine({ seed: o.seed, cpus: o.cpus ?? 3 });
  try {
    const program = fixture('fib-nolibc');
    const mm = m.spawn(program, [program]).mm;
    const mirrors = new Mirrors(m.mmLocks, m.notifiers);
    mirrors.policy.getOrCreate = o.variant;
    const stats = { gets: 0, created: 0 };
    const failures: string[] = [];
    const dead: string[] = [];
    const world = m.sync;
    const seen = new Set<object>();
    for (let k = 0; k < 4; k++) {
      world.spawn(`mirror_user${k}`, async (t) => {
        for (let round = 0; round < 3; round++) {
          const mmap = m.mmLocks.mmapLock(mm);
          await mmap.downWrite(t, 'hmm_mirror_register');
          const prev = mirrors.current(mm);
          const mirror = await mirrors.getOrCreate(t, mm);
          mmap.upWrite(t, 'hmm_mirror_register');
          stats.gets++;
          if (!mirror) {
            const held = prev ? `mm->hmm held a mirror with kref ${prev.kref.value} (${prev.kref.value === 0 ? 'dying: its release had not unpublished it yet' : 'live'})` : 'mm->hmm was empty at the lookup';
            failures.push(`${t.name} round ${round}: hmm_get_or_create returned NULL; ${held}`);
            continue;
          }
          if (mirror !== prev) stats.created++;
          seen.add(mirror);
          if (mirror.dead) dead.push(`${t.name} round ${round}: got a mirror already released`);
          await world.sched.tick(t);
          await mirrors.put(t, mirror);
          await world.sched.tick(t);
        }
      });
    }
    const outcome = await world.run();
    const findings: Finding[] = [];
    if (failures.length) findings.push({ kind: 'false-failure', title: 'hmm_get_or_create failed although memory was available (a dying mirror still published)', detail: failures.slice(0, 4) });
    if (dead.length) findings.push({ kind: 'use-after-free', title: 'a released mirror was handed out', detail: dead.slice(0, 4) });
    const leaked = [...seen].filter((x) => !world.slab.isFreed(x)).length;
    if (outcome === 'idle' && leaked > 0) findings.push({ kind: 'kasan', title: 'mirrors leaked', detail: [`${leaked} mirror(s) still allocated after every thread finished and SRCU callbacks ran`] });
    for (const r of world.slab.reports) findings.push({ kind: 'kasan', title: r.split('\n')[0]!, detail: r.split('\n') });
    findings.push(...lockdepFindings(world.lockdep.reports), ...problemFindings(world.sched.problems), ...deadlockFinding(world.deadlocks.flat()));
    return { seed: o.seed, variant: o.variant, findings, stats };
  } finally {
    m.close();
  }
}

export const hmmMirror: Scenario = {
  name: 'hmm-mirror',
  seed: '002',
  summary: 'hmm_get_or_create racing a mirror whose last reference is going (false failures)',
  cpus: 3,
  run,
};
