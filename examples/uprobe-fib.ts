// examples/uprobe-fib.ts — run it with: npx tsx examples/uprobe-fib.ts
// A uprobe and a uretprobe on fib() of the bundled fixture, plus a kprobe on ksys_write in the
// guest kernel, while two processes run the same binary.
import { realpathSync } from 'node:fs';
import { Kprobe, Kprobes, Machine, Uprobes, readElfFileSync, type UprobeConsumer } from '../src/index.js';

const path = realpathSync('fixtures/x86_64/fib-nolibc');
const fib = readElfFileSync(path).symbolByName('fib')!;
const offset = readElfFileSync(path).vaddrToOffset(fib.localEntry)!; // uprobes take file offsets

const m = new Machine({ target: 'x86_64', cpus: 2, seed: 1, stdout: () => {} });
try {
  const uprobes = new Uprobes(m);
  const kprobes = new Kprobes(m);
  const calls = new Map<number, number>();
  let returns = 0;
  const consumer: UprobeConsumer = {
    handler: (_c, regs) => {
      const pid = regs.task.process.pid;
      calls.set(pid, (calls.get(pid) ?? 0) + 1);
      return 0;
    },
    retHandler: () => (returns++, 0),
  };
  const writes = new Kprobe({ symbolName: 'ksys_write' });
  m.spawn(path);
  m.spawn(path);
  await m.kernelCall('register', async (t) => {
    const rc = await uprobes.register(t, m.inodeFor(path), offset, consumer);
    if (rc) throw new Error(`uprobe_register: ${rc}`);
    return kprobes.register(t, writes);
  });
  const r = await m.runAsync();
  console.log(`status ${r.status}; fib() calls per pid: ${[...calls].map(([p, n]) => `${p}: ${n}`).join(', ')}; returns ${returns}; ksys_write hits ${writes.nhit}`);
  await m.kernelCall('unregister', (t) => uprobes.unregister(t, m.inodeFor(path), offset, consumer));
} finally {
  m.close();
}
