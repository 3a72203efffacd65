// The README's kernel-thread example: run it with `npx tsx examples/kthread-rcu.ts`.
import { Machine, Mutex, LockClass } from '../src/index.js';

const m = new Machine({ target: 'x86_64', cpus: 2, seed: 3, stdout: (b) => process.stdout.write(b) });
try {
  m.spawn('fixtures/x86_64/fib-nolibc');
  const big = new Mutex(m.sync.sched, new LockClass('my_mutex', 'mutex'));
  m.kthread('worker', async (t) => {
    await big.lock(t, 'worker');
    m.sync.rcu.readLock(t);
    await m.sync.sched.tick(t);
    m.sync.rcu.readUnlock(t);
    big.unlock(t);
    await m.sync.rcu.synchronize(t);
  });
  const r = await m.runAsync();
  console.log(`status ${r.status}; grace periods ${m.sync.rcu.gracePeriods}; ${m.sync.lockdep.reports.map((x) => x.text).join('\n') || 'lockdep: no reports'}`);
} finally {
  m.close();
}
