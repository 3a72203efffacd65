// Run a bundled sample on x86-64 and collect what it prints: npx tsx examples/run-fib.ts
import { Machine } from '../src/index.js';

const machine = new Machine({ target: 'x86_64', cpus: 2, seed: 7, stdout: (b) => process.stdout.write(b) });
try {
  const proc = machine.spawn('fixtures/x86_64/fib');
  const result = machine.run();
  console.log(`pid ${proc.pid} exited with status ${result.status} `);
} finally {
  machine.close();
}
