import { Machine } from '../src/kernel/machine.js';
import { benchThroughput } from './throughput.js';
if (process.env.PRE !== '0') for (const t of ['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as const) for (let r = 0; r < 3; r++) {
  const m = new Machine({ target: t, stdout: () => {}, report: () => {} });
  m.spawn(`bench/guest/${t}/compute`); m.run(); m.close();
}
benchThroughput(3, { record: false });
