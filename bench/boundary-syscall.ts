/**
 * The cost of the user/kernel boundary (src/emu/boundary.ts) per system call round trip: N one-byte
 * write(2)s of bench/guest/T/writes, CPU time of the whole run divided by N, best of 5 (CPU time,
 * not wall time: the figures stay usable on a loaded machine). Run it twice and compare:
 *   UNIPROBE_BOUNDARY=0 npx tsx bench/boundary-syscall.ts [targets]   # without the boundary
 *   npx tsx bench/boundary-syscall.ts [targets]                        # with it
 */
import { Machine } from '../src/kernel/machine.js';
import type { Target } from '../arch/types.js';
const targets = (process.argv[2] ?? 'x86_64,i386,ppc32,ppc64,sparc64').split(',') as Target[];
const N = 20000;
for (const target of targets) {
  let best = Infinity;
  for (let rep = 0; rep < 5; rep++) {
    const m = new Machine({ target, stdout: () => {} });
    m.spawn(`bench/guest/${target}/writes`, ['writes', String(N)]);
    const c0 = process.cpuUsage();
    const r = m.run();
    const c = process.cpuUsage(c0); const ms = (c.user + c.system) / 1000;
    if (r.status !== 0) throw new Error(`status ${r.status}`);
    best = Math.min(best, ms);
    m.close();
  }
  console.log(`${target} boundary=${process.env.UNIPROBE_BOUNDARY === '0' ? 'off' : 'on'}: ${(best * 1000 / N).toFixed(2)} us per write() round trip (best of 5, CPU time, ${N} writes)`);
}
