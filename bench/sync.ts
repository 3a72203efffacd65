/**
 * Costs of the synchronisation layer (issue 4): an RCU grace period with 1, 2 and 8 vCPUs, where
 * every other vCPU runs a kernel thread that keeps entering and leaving read-side sections (the
 * grace period must wait for each of them), and uncontended lock/unlock pairs. Host time per
 * operation, median of runs, plus scheduler steps per grace period (deterministic: seeded).
 */
import { Rng } from '../src/kernel/rng.js';
import { LockClass, Mutex, RwSem, SpinLock, SyncWorld } from '../src/sync/index.js';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function gracePeriod(cpus: number, n: number): Promise<{ usPerGp: number; stepsPerGp: number }> {
  const w = new SyncWorld(cpus, new Rng(1));
  let stop = false;
  for (let c = 1; c < cpus; c++) {
    w.spawn(`reader${c}`, async (t) => {
      while (!stop) {
        w.rcu.readLock(t);
        await w.sched.tick(t);
        w.rcu.readUnlock(t);
        await w.sched.tick(t);
      }
    }, { cpu: c });
  }
  const stepsBefore = w.sched.steps;
  const t0 = performance.now();
  const syncer = w.spawn('syncer', async (t) => {
    for (let i = 0; i < n; i++) await w.rcu.synchronize(t);
    stop = true;
  }, { cpu: 0 });
  await w.join(syncer);
  const ms = performance.now() - t0;
  await w.run();
  return { usPerGp: (ms * 1000) / n, stepsPerGp: (w.sched.steps - stepsBefore) / n };
}

async function lockPairs(kind: 'mutex' | 'rwsem-read' | 'rwsem-write' | 'spinlock', n: number): Promise<number> {
  const w = new SyncWorld(1, new Rng(1));
  const m = new Mutex(w.sched, new LockClass('bench_mutex', 'mutex'));
  const s = new RwSem(w.sched, new LockClass('bench_rwsem', 'rwsem'));
  const sp = new SpinLock(w.sched, new LockClass('bench_spin', 'spinlock'));
  const t0 = performance.now();
  const th = w.spawn('locker', async (t) => {
    for (let i = 0; i < n; i++) {
      if (kind === 'mutex') {
        await m.lock(t, 'bench');
        m.unlock(t);
      } else if (kind === 'rwsem-read') {
        await s.downRead(t, 'bench');
        s.upRead(t);
      } else if (kind === 'rwsem-write') {
        await s.downWrite(t, 'bench');
        s.upWrite(t);
      } else {
        await sp.lock(t, 'bench');
        sp.unlock(t);
      }
    }
  });
  await w.join(th);
  return ((performance.now() - t0) * 1e6) / n;
}

async function sequential(n: number, f: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await f());
  return out;
}

export async function benchSync(runs = 3): Promise<Record<string, unknown>> {
  const json: Record<string, unknown> = { usPerGracePeriod: {}, nsPerLockPair: {} };
  console.log('\nsync: RCU grace period (synchronize_rcu on vCPU 0; a reader thread looping on every other vCPU)');
  console.log('vCPUs   us/grace period   scheduler steps/grace period');
  const base: Record<number, number> = {};
  await gracePeriod(8, 2000); // warm up the JIT so the first row is not penalised
  for (const cpus of [1, 2, 8]) {
    const rs = [];
    for (let i = 0; i < runs; i++) rs.push(await gracePeriod(cpus, 2000));
    const us = median(rs.map((r) => r.usPerGp));
    base[cpus] = us;
    (json.usPerGracePeriod as Record<number, number>)[cpus] = +us.toFixed(3);
    console.log(`${String(cpus).padStart(5)}   ${us.toFixed(2).padStart(15)}   ${rs[0]!.stepsPerGp.toFixed(1).padStart(28)}`);
  }
  console.log(`  ratio 8 vCPUs / 1 vCPU: ${(base[8]! / base[1]!).toFixed(1)}x, 2 / 1: ${(base[2]! / base[1]!).toFixed(1)}x`);
  json.gracePeriod8vs1 = +(base[8]! / base[1]!).toFixed(3);
  json.gracePeriod2vs1 = +(base[2]! / base[1]!).toFixed(3);
  console.log('\nsync: uncontended lock + unlock (one kernel thread), ns per pair');
  for (const kind of ['mutex', 'rwsem-read', 'rwsem-write', 'spinlock'] as const) {
    await lockPairs(kind, 50_000);
    const ns = median(await sequential(runs, () => lockPairs(kind, 50_000)));
    console.log(`  ${kind.padEnd(12)} ${ns.toFixed(0).padStart(8)} ns`);
    (json.nsPerLockPair as Record<string, number>)[kind] = Math.round(ns);
  }
  return json;
}
