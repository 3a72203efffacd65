/**
 * The synchronisation primitives against the Linux rules they reproduce: mutual exclusion, RCU
 * grace periods that wait for exactly the pre-existing readers, lockdep's reports, SRCU domains,
 * kref, poisoning, and seeded replay.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/kernel/rng.js';
import { Kref, LockClass, Mutex, RcuHashTable, RwSem, SpinLock, Srcu, SyncWorld, UseAfterFree, type Kthread } from '../../src/sync/index.js';

const world = (cpus: number, seed: number) => new SyncWorld(cpus, new Rng(seed));

describe('scheduler', () => {
  it('replays an interleaving exactly under the same seed, and seeds differ', async () => {
    const trace = async (seed: number) => {
      const w = world(2, seed);
      const log: string[] = [];
      for (const name of ['a', 'b', 'c']) {
        w.spawn(name, async (t) => {
          for (let i = 0; i < 5; i++) {
            log.push(`${name}${i}@${t.cpu}`);
            await w.sched.tick(t);
          }
        });
      }
      expect(await w.run()).toBe('idle');
      return log.join(' ');
    };
    expect(await trace(7)).toBe(await trace(7));
    const all = new Set<string>();
    for (let s = 1; s <= 10; s++) all.add(await trace(s));
    expect(all.size).toBeGreaterThan(5);
  });

  it('a scheduling point on behalf of a thread that is not running is refused', async () => {
    const w = world(1, 1);
    const idle = w.spawn('idle', async () => undefined);
    const t = w.spawn('rogue', async () => {
      await w.sched.tick(idle as Kthread);
    });
    await w.run();
    expect(t.state).toBe('done');
    expect(String(t.error)).toMatch(/not running/);
    expect(w.sched.problems.join()).toMatch(/rogue#2 failed/);
  });

  it('a forced switch point makes another vCPU run next', async () => {
    const w = world(2, 3);
    const log: string[] = [];
    w.sched.switchRules.push((p) => p === 'after-trap');
    w.spawn('hit', async (t) => {
      log.push('trap');
      await w.sched.point(t, 'after-trap');
      log.push('step');
    }, { cpu: 0 });
    w.spawn('other', async (t) => {
      for (let i = 0; i < 3; i++) {
        log.push('other');
        await w.sched.tick(t);
      }
    }, { cpu: 1 });
    // Whatever the seed picks first, once "trap" ran the next step is on the other vCPU.
    await w.run();
    const i = log.indexOf('trap');
    if (log.slice(i + 1).includes('other')) expect(log[i + 1]).toBe('other');
  });
});

describe('mutex and rwsem', () => {
  it('a mutex keeps a read-modify-write atomic on every seed; without it updates are lost', async () => {
    let lostWithout = 0;
    for (let seed = 1; seed <= 40; seed++) {
      for (const locked of [true, false]) {
        const w = world(3, seed);
        const m = new Mutex(w.sched, new LockClass('counter_mutex', 'mutex'));
        let counter = 0;
        for (let k = 0; k < 4; k++) {
          w.spawn(`inc${k}`, async (t) => {
            for (let i = 0; i < 5; i++) {
              if (locked) await m.lock(t, 'inc');
              const v = counter;
              await w.sched.tick(t);
              counter = v + 1;
              if (locked) m.unlock(t);
              await w.sched.tick(t);
            }
          });
        }
        expect(await w.run()).toBe('idle');
        if (locked) expect(counter).toBe(20);
        else if (counter !== 20) lostWithout++;
        expect(w.lockdep.reports).toEqual([]);
      }
    }
    expect(lostWithout).toBeGreaterThan(30);
  });

  it('rwsem: readers share, a writer excludes, a waiting writer holds back new readers', async () => {
    const w = world(3, 5);
    const sem = new RwSem(w.sched, new LockClass('sem', 'rwsem'));
    const log: string[] = [];
    const r1 = w.spawn('r1', async (t) => {
      await sem.downRead(t, 'r1');
      log.push(`r1 in (readers ${sem.readers.size})`);
      for (let i = 0; i < 6; i++) await w.sched.tick(t);
      log.push('r1 out');
      sem.upRead(t);
    });
    await w.run({ until: () => sem.readers.size === 1 });
    const wr = w.spawn('w', async (t) => {
      await sem.downWrite(t, 'w');
      log.push(`w in (readers ${sem.readers.size})`);
      sem.upWrite(t);
    });
    await w.run({ until: () => wr.state === 'blocked' });
    const r2 = w.spawn('r2', async (t) => {
      await sem.downRead(t, 'r2');
      log.push('r2 in');
      sem.upRead(t);
    });
    await w.join(r1, wr, r2);
    expect(log).toEqual(['r1 in (readers 1)', 'r1 out', 'w in (readers 0)', 'r2 in']);
  });
});

describe('RCU', () => {
  /** Readers on vCPUs 0 and 1 for `lenA`/`lenB` ticks; vCPU 2 calls synchronize_rcu meanwhile. */
  async function gracePeriod(seed: number, lenA: number, lenB: number) {
    const w = world(4, seed);
    const events: string[] = [];
    const reader = (name: string, cpu: number, len: number) =>
      w.spawn(name, async (t) => {
        w.rcu.readLock(t);
        events.push(`${name} lock`);
        while (!events.includes('gp start')) await w.sched.tick(t);
        for (let i = 0; i < len; i++) await w.sched.tick(t);
        events.push(`${name} unlock`);
        w.rcu.readUnlock(t);
      }, { cpu });
    reader('A', 0, lenA);
    reader('B', 1, lenB);
    await w.run({ until: () => w.rcu.readers().length === 2 });
    expect(w.rcu.readers().map((r) => r.cpu).sort()).toEqual([0, 1]);
    let late: Kthread | undefined;
    const syncer = w.spawn('sync', async (t) => {
      events.push('gp start');
      // A reader that starts after the grace period began is not waited for.
      late = w.spawn('late', async (lt) => {
        w.rcu.readLock(lt);
        events.push('late lock');
        for (let i = 0; i < 1000; i++) await w.sched.tick(lt);
        events.push('late unlock');
        w.rcu.readUnlock(lt);
      }, { cpu: 3 });
      await w.rcu.synchronize(t);
      events.push('gp end');
    }, { cpu: 2 });
    await w.join(syncer);
    return { events, w, late: late! };
  }

  it('synchronize_rcu waits for every vCPU in a read-side section, and no longer', async () => {
    for (let seed = 1; seed <= 30; seed++) {
      const { events, w, late } = await gracePeriod(seed, 3 + (seed % 5), 1 + (seed % 7));
      const end = events.indexOf('gp end');
      expect(end).toBeGreaterThan(events.indexOf('A unlock'));
      expect(end).toBeGreaterThan(events.indexOf('B unlock'));
      // Not longer: the late reader (1000 ticks, started after the GP began) is still inside.
      expect(events.includes('late unlock')).toBe(false);
      expect(late.state).not.toBe('done');
      expect(w.rcu.gracePeriods).toBe(1);
    }
  });

  it('call_rcu runs the callback after the grace period, in softirq context, and rcu_barrier waits for it', async () => {
    const w = world(2, 9);
    const log: string[] = [];
    w.spawn('reader', async (t) => {
      w.rcu.readLock(t);
      log.push('reader in');
      while (!log.includes('queued')) await w.sched.tick(t);
      await w.sched.tick(t);
      log.push('reader out');
      w.rcu.readUnlock(t);
    }, { cpu: 0 });
    await w.run({ until: () => log.length === 1 });
    const caller = w.spawn('caller', async (t) => {
      w.rcu.call(() => log.push('callback'));
      log.push('queued');
      await w.rcu.barrier(t);
      log.push('barrier done');
    }, { cpu: 1 });
    await w.join(caller);
    expect(log).toEqual(['reader in', 'queued', 'reader out', 'callback', 'barrier done']);
  });

  it('SRCU domains are independent and their readers may sleep', async () => {
    const w = world(2, 4);
    const a = new Srcu(w.sched, 'srcu_a');
    const b = new Srcu(w.sched, 'srcu_b');
    const m = new Mutex(w.sched, new LockClass('m', 'mutex'));
    const log: string[] = [];
    const reader = w.spawn('reader', async (t) => {
      const tok = a.readLock(t);
      await m.lock(t, 'reader sleeps in srcu');
      for (let i = 0; i < 4; i++) await w.sched.tick(t);
      m.unlock(t);
      log.push('reader out');
      a.readUnlock(t, tok);
    });
    await w.run({ until: () => a.readers().length === 1 });
    const sb = w.spawn('sync b', async (t) => {
      await b.synchronize(t);
      log.push('b done');
    });
    const sa = w.spawn('sync a', async (t) => {
      await a.synchronize(t);
      log.push('a done');
    });
    await w.join(reader, sa, sb);
    expect(log.indexOf('b done')).toBeLessThan(log.indexOf('reader out'));
    expect(log.indexOf('a done')).toBeGreaterThan(log.indexOf('reader out'));
    expect(w.lockdep.reports).toEqual([]);
  });

  it('walking an RCU hash table outside a reader is suspicious RCU usage', async () => {
    const w = world(1, 1);
    const table = new RcuHashTable<number, string>(64, (k) => k, w.lockdep);
    table.bucket(5).addHead('x');
    w.spawn('walker', async (t) => {
      w.rcu.readLock(t);
      expect([...table.walk(t, 5)]).toEqual(['x']);
      w.rcu.readUnlock(t);
      expect(w.lockdep.reports).toHaveLength(0);
      [...table.walk(t, 5, false, 'get_kprobe')];
    });
    await w.run();
    expect(w.lockdep.reports.map((r) => r.kind)).toEqual(['suspicious-rcu']);
    expect(w.lockdep.reports[0]!.text).toMatch(/get_kprobe/);
  });
});

describe('lockdep', () => {
  it('catches an AB-BA inversion across two vCPUs on every seed, naming both chains', async () => {
    let realDeadlocks = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const w = world(2, seed);
      const A = new Mutex(w.sched, new LockClass('lock_A', 'mutex'));
      const B = new Mutex(w.sched, new LockClass('lock_B', 'mutex'));
      const pair = (name: string, first: Mutex, second: Mutex, cpu: number) =>
        w.spawn(name, async (t) => {
          t.frames.push(name);
          await first.lock(t, `${name}_first`);
          await w.sched.tick(t);
          await second.lock(t, `${name}_second`);
          second.unlock(t);
          first.unlock(t);
        }, { cpu });
      pair('path_ab', A, B, 0);
      pair('path_ba', B, A, 1);
      const outcome = await w.run();
      if (outcome === 'deadlock') realDeadlocks++;
      const circ = w.lockdep.reports.filter((r) => r.kind === 'circular');
      expect(circ).toHaveLength(1);
      expect(circ[0]!.locks.slice(0, 2).sort()).toEqual(['lock_A', 'lock_B']);
      expect(circ[0]!.text).toMatch(/path_ab/);
      expect(circ[0]!.text).toMatch(/path_ba/);
    }
    // Some interleavings really deadlock; lockdep reported the others too.
    expect(realDeadlocks).toBeGreaterThan(0);
    expect(realDeadlocks).toBeLessThan(40);
  });

  it('is deterministic: the same seed gives the same report text', async () => {
    const texts = [];
    for (let i = 0; i < 2; i++) {
      const w = world(2, 11);
      const A = new Mutex(w.sched, new LockClass('lock_A', 'mutex'));
      const B = new Mutex(w.sched, new LockClass('lock_B', 'mutex'));
      w.spawn('x', async (t) => {
        await A.lock(t, 'x');
        await B.lock(t, 'x');
        B.unlock(t);
        A.unlock(t);
        await B.lock(t, 'y');
        await A.lock(t, 'y');
        A.unlock(t);
        B.unlock(t);
      });
      await w.run();
      texts.push(w.lockdep.reports.map((r) => r.text).join('\n'));
    }
    expect(texts[0]).toMatch(/circular/);
    expect(texts[0]).toBe(texts[1]);
  });

  it('reports a GFP_KERNEL allocation under a lock that reclaim takes (fs_reclaim), not GFP_NOWAIT', async () => {
    const w = world(1, 1);
    const iMmap = new RwSem(w.sched, new LockClass('&mapping->i_mmap_rwsem', 'rwsem'));
    w.lockdep.reclaimTakes(iMmap.cls);
    w.spawn('walker', async (t) => {
      await iMmap.downRead(t, 'build_map_info');
      w.slab.alloc(t, 'map_info', 'GFP_NOWAIT', 'build_map_info', { x: 1 });
      expect(w.lockdep.reports).toHaveLength(0);
      w.slab.alloc(t, 'map_info', 'GFP_KERNEL', 'build_map_info', { x: 1 });
      iMmap.upRead(t);
    });
    await w.run();
    expect(w.lockdep.reports).toHaveLength(1);
    const r = w.lockdep.reports[0]!;
    expect(r.kind).toBe('circular');
    expect(r.locks).toEqual(expect.arrayContaining(['fs_reclaim', '&mapping->i_mmap_rwsem']));
    expect(r.text).toMatch(/kswapd/);
  });

  it('reports recursive locking, and allows it under a nest lock', async () => {
    const w = world(1, 1);
    const cls = new LockClass('&mapping->i_mmap_rwsem', 'rwsem');
    const outer = new Mutex(w.sched, new LockClass('mm_all_locks_mutex', 'mutex'));
    const s1 = new RwSem(w.sched, cls);
    const s2 = new RwSem(w.sched, cls);
    w.spawn('all_locks', async (t) => {
      await outer.lock(t, 'mm_take_all_locks');
      await s1.downWrite(t, 'vm_lock_mapping', { nestLock: outer });
      await s2.downWrite(t, 'vm_lock_mapping', { nestLock: outer });
      s2.upWrite(t);
      s1.upWrite(t);
      outer.unlock(t);
      expect(w.lockdep.reports).toHaveLength(0);
      await s1.downWrite(t, 'first');
      void s2.downWrite(t, 'second').catch(() => undefined);
    });
    await w.run();
    expect(w.lockdep.reports.map((r) => r.kind)).toContain('recursive');
  });

  it('reports sleeping in atomic context: a mutex under a spinlock, synchronize_rcu in a reader', async () => {
    const w = world(2, 1);
    const spin = new SpinLock(w.sched, new LockClass('&mm->page_table_lock', 'spinlock'));
    const m = new Mutex(w.sched, new LockClass('kprobe_mutex', 'mutex'));
    w.spawn('bad', async (t) => {
      await spin.lock(t, 'hmm_get_or_create');
      await m.lock(t, 'register_kprobe');
      m.unlock(t);
      spin.unlock(t);
      w.rcu.readLock(t);
      await w.rcu.synchronize(t, 'unregister_kprobe');
      w.rcu.readUnlock(t);
    });
    await w.run();
    const sleeps = w.lockdep.reports.filter((r) => r.kind === 'sleep-in-atomic');
    expect(sleeps).toHaveLength(2);
    expect(sleeps[0]!.text).toMatch(/preemption disabled/);
    expect(sleeps[1]!.text).toMatch(/rcu_read_lock/);
  });
});

describe('kref and poisoning', () => {
  it('get_unless_zero refuses a dying object; get on zero is a warning', () => {
    const k = new Kref('hmm');
    expect(k.getUnlessZero()).toBe(true);
    expect(k.put(() => undefined)).toBe(false);
    let released = 0;
    expect(k.put(() => released++)).toBe(true);
    expect(released).toBe(1);
    expect(k.getUnlessZero()).toBe(false);
    k.get();
    expect(k.warnings[0]).toMatch(/addition on 0/);
  });

  it('a freed object is poisoned: any access reports use-after-free naming who freed it', async () => {
    const w = world(1, 1);
    let caught: unknown;
    w.spawn('user', async (t) => {
      const o = w.slab.alloc(t, 'kprobe_insn_page', 'GFP_KERNEL', 'get_insn_slot', { n: 1 });
      w.slab.free(t, o, 'free_insn_page');
      try {
        void o.n;
      } catch (e) {
        caught = e;
      }
    });
    await w.run();
    expect(caught).toBeInstanceOf(UseAfterFree);
    expect(w.slab.reports[0]).toMatch(/kprobe_insn_page\.n/);
    expect(w.slab.reports[0]).toMatch(/free_insn_page/);
  });
});

describe('machine: guests and kernel threads under one seeded scheduler', () => {
  it('--seed N replays the interleaving of a kernel thread with a guest program exactly', async () => {
    const { Machine } = await import('../../src/kernel/machine.js');
    const { manifest, repoRoot } = await import('../helpers.js');
    const entry = manifest.find((e) => e.target === 'x86_64' && e.name.startsWith('fork-nolibc'))!;
    const trace = async (seed: number) => {
      const m = new Machine({ target: 'x86_64', cpus: 2, seed, quantum: 2000, stdout: () => undefined });
      try {
        m.spawn(`${repoRoot}/fixtures/${entry.path}`, [entry.path, ...entry.args]);
        const seen: string[] = [];
        m.kthread('observer', async (t) => {
          for (let i = 0; i < 20; i++) {
            seen.push(`${m.insns}/${t.cpu}`);
            await m.sync.sched.tick(t);
          }
        });
        const r = await m.runAsync();
        return { r: r.status, seen: seen.join(' '), quanta: m.quanta };
      } finally {
        m.close();
      }
    };
    const a = await trace(5);
    expect(await trace(5)).toEqual(a);
    expect(a.r).toBe(entry.exit);
    const others = await Promise.all([6, 7, 8].map(trace));
    expect(others.some((o) => o.seen !== a.seen)).toBe(true);
  });

  it('kernelCall runs a kernel thread to completion with the guests paused', async () => {
    const { Machine } = await import('../../src/kernel/machine.js');
    const { manifest, repoRoot } = await import('../helpers.js');
    const entry = manifest.find((e) => e.target === 'x86_64' && e.name.startsWith('fib-nolibc'))!;
    const m = new Machine({ target: 'x86_64', cpus: 2, seed: 1, stdout: () => undefined });
    try {
      m.spawn(`${repoRoot}/fixtures/${entry.path}`, [entry.path, ...entry.args]);
      const v = await m.kernelCall('init', async (t) => {
        await m.sync.rcu.synchronize(t);
        return m.insns;
      });
      expect(v).toBe(0);
      expect(m.insns).toBe(0);
      expect(() => m.run()).not.toThrow();
    } finally {
      m.close();
    }
  });
});

describe('documented lock order (src/sync/lock-order.ts)', () => {
  it('is acyclic, and a path that takes register_rwsem under mmap_lock is reported against it', async () => {
    const { primeLockOrder, UPROBE_LOCKS, KPROBE_LOCKS } = await import('../../src/sync/index.js');
    const w = world(1, 1);
    primeLockOrder(w.lockdep);
    expect(w.lockdep.dependencies()).toContain('&mm->mmap_lock -> uprobes_mmap_mutex');
    expect(w.lockdep.dependencies()).toContain('jump_label_mutex -> text_mutex');
    const mmap = new RwSem(w.sched, UPROBE_LOCKS.mmapLock);
    const reg = new RwSem(w.sched, UPROBE_LOCKS.registerRwsem);
    const text = new Mutex(w.sched, KPROBE_LOCKS.textMutex);
    const kp = new Mutex(w.sched, KPROBE_LOCKS.kprobeMutex);
    w.spawn('bad_mmap_hook', async (t) => {
      await text.lock(t, 'text_poke');
      await kp.lock(t, 'register_kprobe');
      kp.unlock(t);
      text.unlock(t);
      await mmap.downWrite(t, 'vm_mmap');
      await reg.downRead(t, 'uprobe_mmap (wrong)');
      reg.upRead(t);
      mmap.upWrite(t);
    });
    await w.run();
    expect(w.lockdep.reports.map((r) => r.locks.slice(0, 2).join(' -> '))).toEqual(['text_mutex -> kprobe_mutex', '&mm->mmap_lock -> &uprobe->register_rwsem']);
    expect(w.lockdep.reports[0]!.text).toMatch(/documented order/);
  });
});
