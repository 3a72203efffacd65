/**
 * `uniprobe demo` (npm start): the same sample program on every supported target, probed: a
 * kprobe on the guest kernel's ksys_write (the descriptor and length of each write(2) the program
 * makes) and a uretprobe on the program's own main (its return value), with the trace lines
 * between the program's output lines, and how each run ended — so a newcomer sees kprobes and
 * uprobes work on each CPU family, the way `uniprobe run -e …` shows them.
 */
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Machine } from '../kernel/machine.js';
import { supportedTargets } from '../../arch/index.js';
import { TARGETS } from '../../arch/types.js';
import { PACKAGE_ROOT } from '../package-root.js';
import { machineSymbolizer } from '../trace/fetch-env.js';
import { formatTraceRecord } from '../trace/output.js';
import { defineEvents } from './probes.js';

// The freestanding build: the smallest program, the same C on every target.
const SAMPLE = 'fib-nolibc';

/** The events the demo attaches (kprobe_events/uprobe_events syntax; `$argN` reads the C ABI). */
export function demoEvents(program: string): string[] {
  return ['p:write ksys_write fd=$arg1 len=$arg3', `r:main ${program}:main ret=$retval`];
}

const quote = (s: string): string => `'${s}'`;

export async function runDemo(write: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
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
    const events = demoEvents(shown);
    write(`== ${target}: uniprobe run ${shown} ${events.map((e) => `-e ${quote(e)}`).join(' ')}\n`);
    const reports: string[] = [];
    // Program output and trace lines share one stream, in the order they happened.
    const m = new Machine({ target, stdout: (b) => write(Buffer.from(b).toString('utf8')), stderr: (b) => write(Buffer.from(b).toString('utf8')), report: (l) => reports.push(l) });
    try {
      m.spawn(path, [path]);
      const symbolizer = machineSymbolizer(m);
      const session = await defineEvents(m, events, (r) => write(`${formatTraceRecord(r, 'text', symbolizer)}\n`), true, { program: path, warn: (l) => write(`${l}\n`) });
      const r = await m.runAsync();
      for (const l of reports) write(`${l}\n`);
      const hits = session.profile().map((p) => `${p.event} ${p.hits} hit(s)`).join(', ');
      write(`-- exit status ${r.status} (${r.quanta} scheduler quanta); ${hits}\n\n`);
      if (r.status !== 55) failures++;
    } finally {
      m.close();
    }
  }
  return failures ? 1 : 0;
}
