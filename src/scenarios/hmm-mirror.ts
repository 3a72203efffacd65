/**
 * Seed 002 ("mm/hmm: Simplify hmm_get_or_create and make it reliable", Linux 5.3) as a runnable
 * scenario: several kernel threads get-or-create the mirror of one mm, use it, and drop their
 * reference, while others keep doing so — so creators race each other and an object whose last
 * reference just went. The invariant: get-or-create never fails when memory is available, and
 * never hands out a mirror that is already dead.
 *
 * 'fixed' callers hold mmap_lock for write, as the patch requires; 'old' callers did not.
 */
import { archFor } from '../../arch/index.js';
import { Rng } from '../kernel/rng.js';
import { MmLocks } from '../mm/locking.js';
import { Mirrors, type MirrorPattern } from '../mm/mirror.js';
import { Mm } from '../mm/mm.js';
import { MmuNotifiers } from '../mm/notifier.js';
import { SyncWorld, type LockdepReport } from '../sync/index.js';

export interface MirrorScenarioResult {
  /** get_or_create returned NULL although nothing was wrong. */
  falseFailures: number;
  /** A mirror handed out after its last reference was gone. */
  deadHandedOut: number;
  /** Mirrors created (allocated and published). */
  created: number;
  lockdep: LockdepReport[];
  kasan: string[];
  /** Mirrors still allocated after every thread finished and callbacks ran (leaks). */
  leaked: number;
  outcome: string;
}

export async function runMirrorScenario(opts: { seed: number; pattern: MirrorPattern; cpus?: number; threads?: number; rounds?: number }): Promise<MirrorScenarioResult> {
  const world = new SyncWorld(opts.cpus ?? 3, new Rng(opts.seed));
  const locks = new MmLocks(world);
  const notifiers = new MmuNotifiers(locks);
  const mirrors = new Mirrors(locks, notifiers);
  const mm = new Mm(archFor('x86_64')!, []);
  notifiers.attach(mm);
  const r = { falseFailures: 0, deadHandedOut: 0, created: 0 };
  const before = world.slab.live;
  try {
    for (let k = 0; k < (opts.threads ?? 4); k++) {
      world.spawn(`mirror_user${k}`, async (t) => {
        for (let round = 0; round < (opts.rounds ?? 3); round++) {
          const mmap = locks.mmapLock(mm);
          if (opts.pattern === 'fixed') await mmap.downWrite(t, 'hmm_mirror_register');
          const prev = mirrors.current(mm);
          const m = await mirrors.getOrCreate(t, mm, opts.pattern);
          if (opts.pattern === 'fixed') mmap.upWrite(t);
          if (!m) {
            r.falseFailures++;
            continue;
          }
          if (m !== prev) r.created++;
          if (m.dead) r.deadHandedOut++;
          await world.sched.tick(t);
          await mirrors.put(t, m, opts.pattern);
          await world.sched.tick(t);
        }
      });
    }
    const outcome = await world.run();
    mm.destroy();
    return {
      ...r,
      lockdep: world.lockdep.reports,
      kasan: world.slab.reports,
      leaked: world.slab.live - before,
      outcome: [outcome, ...world.sched.problems].join('; '),
    };
  } finally {
    if (!mm.destroyed) mm.destroy();
  }
}
