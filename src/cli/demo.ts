/**
 * `uniprobe demo` (npm start): the same sample program on every supported target, with what it
 * printed and how it ended, so a newcomer sees the engine work on each CPU family.
 */
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Machine } from '../kernel/machine.js';
import { supportedTargets } from '../../arch/index.js';
import { TARGETS } from '../../arch/types.js';
import { PACKAGE_ROOT } from '../package-root.js';

// The freestanding build: the smallest program, the same C on every target.
const SAMPLE = 'fib-nolibc';

export function runDemo(write: (s: string) => void = (s) => process.stdout.write(s)): number {
  let failures = 0;
  const supported = new Set(supportedTargets());
  for (const target of TARGETS) {
    const path = join(PACKAGE_ROOT, 'fixtures', target, SAMPLE);
    const shown = relative(process.cwd(), path);
    if (!supported.has(target)) {
      write(`== ${target}: not supported yet\n\n`);
      continue;
    }
    if (!existsSync(path)) {
      write(`== ${target}: ${shown} is missing\n\n`);
      failures++;
      continue;
    }
    write(`== ${target}: uniprobe run ${shown}\n`);
    const out: Buffer[] = [];
    const reports: string[] = [];
    const m = new Machine({ target, stdout: (b) => out.push(Buffer.from(b)), stderr: (b) => out.push(Buffer.from(b)), report: (l) => reports.push(l) });
    try {
      m.spawn(path, [path]);
      const r = m.run();
      write(Buffer.concat(out).toString('utf8'));
      for (const l of reports) write(`${l}\n`);
      write(`-- exit status ${r.status} (${r.quanta} scheduler quanta)\n\n`);
    } finally {
      m.close();
    }
  }
  return failures ? 1 : 0;
}
