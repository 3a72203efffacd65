/**
 * `uniprobe explain ELF [SYMBOL...] [--kernel] [--format text|json]`: the placement map.
 * Registered by main.ts; errors are thrown (UniprobeError) and worded by main's handler.
 */
import { Command, Option } from 'commander';
import { writeFileSync } from 'node:fs';
// The placement map, the HTML report and the verifier (Capstone, the kprobe back-ends) load only
// when `explain` runs: main.ts builds every command, and `run` must not pay for them.
import type { HtmlColumn } from '../placement/html.js';
import type { Target } from '../../arch/types.js';
import { UniprobeError } from '../errors.js';
import { LineSink } from './terminal.js';
import { progressLine, verifyStatus, type Progress } from './progress.js';

interface ExplainOpts {
  kernel?: boolean;
  format: 'text' | 'json';
  html?: string;
  run: boolean;
}

/** `--html FILE`: the map of every target side by side, with hits from a verify run each. */
async function writeHtml(elf: string, symbols: string[], o: ExplainOpts, progress: Progress | undefined): Promise<string> {
  const [{ explain, siblingPrograms }, { explainHtml }, { verify }] = await Promise.all([
    import('../placement/explain.js'),
    import('../placement/html.js'),
    import('../verify/verify.js'),
  ]);
  const columns = new Map<Target, HtmlColumn>();
  let names: string[] = symbols;
  const siblings = [...siblingPrograms(elf)];
  for (const [i, [t, path]] of siblings.entries()) {
    const step = `explain --html: ${t} (${i + 1}/${siblings.length})`;
    const doc = await explain(path, { kernel: o.kernel, symbols, onProgress: progress && ((k, n, name) => progress.update(() => `${step}: mapping ${name} (${k + 1}/${n})`)) });
    if (names.length === 0) names = doc.functions.map((f) => f.name);
    const onProgress = progress && ((phase: string, n: number, total?: number) => progress.update(() => `${step}: ${verifyStatus(phase, n, total)}`));
    const run = !o.kernel && o.run ? await verify(path, { probes: doc.functions.map((f) => f.name), onProgress }) : undefined;
    columns.set(t, { doc, run });
  }
  const what = o.kernel ? `kprobes on the guest kernel (${[...columns.keys()].join(', ')})` : `uprobes on ${elf}`;
  try {
    writeFileSync(o.html!, explainHtml(`uniprobe explain: ${what}`, names, columns));
  } catch (e) {
    throw new UniprobeError('IO', `${o.html}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return `wrote ${o.html}: ${names.length} function(s) on ${columns.size} target(s)`;
}

/** Sets the command's exit status where main() reads it (the root program's `__status`). */
export function setStatus(cmd: Command, status: number): void {
  let root = cmd;
  while (root.parent) root = root.parent;
  root.setOptionValue('__status', status);
}

/** `program` = the root command, whose settings (exit override, error wording) are inherited. */
export function explainCommand(program: Command): Command {
  return new Command('explain')
    .copyInheritedSettings(program)
    .description('placement map: for every instruction, may a uprobe (or with --kernel a kprobe) go there, how it runs, the slot bytes and the cost per hit')
    .argument('<elf>', 'static ELF for x86_64, i386, ppc32, ppc64 or sparc64 (with --kernel: selects the target whose guest kernel is mapped)')
    .argument('[symbols...]', 'functions to map (default: every function)')
    .option('--kernel', 'map kprobes on the guest kernel of the ELF\'s target instead of uprobes on the ELF')
    .addOption(new Option('--format <fmt>', 'output format').choices(['text', 'json']).default('text'))
    .option('--html <file>', 'write one self-contained HTML report instead: every target side by side (siblings found as DIR/<target>/NAME), modes coloured, hits of a run as a heat column')
    .option('--no-run', 'with --html: no run, no heat column')
    .addHelpText(
      'after',
      `
Placement: emulate (the handler path performs the instruction, no slot), boost (kprobes: slot
copy + jump back), step (slot copy + step trap), or refused with the kernel's errno and reason.
Cost per hit: host crossings / guest instructions executed in the slot (steady state).

Examples:
  uniprobe explain fixtures/x86_64/fib-nolibc fib
  uniprobe explain fixtures/sparc64/fib-nolibc --format json
  uniprobe explain fixtures/ppc64/fib-nolibc --kernel ksys_write vfs_write
  uniprobe explain fixtures/x86_64/fib-nolibc fib main --html fib.html

Exit status: 0, or 1 for an error (unreadable ELF, unknown function), 2 for bad usage.
`,
    )
    .action(async function (this: Command, elf: string, symbols: string[]) {
      const o = this.opts<ExplainOpts>();
      const out = LineSink.stdout();
      // A map of every function of a glibc program takes seconds; --html runs verify five times.
      const progress = progressLine(process.stderr);
      try {
        if (o.html) {
          const line = await writeHtml(elf, symbols, o, progress);
          progress?.done();
          out.write(line);
          return setStatus(this, 0);
        }
        const { explain, explainJson, explainText } = await import('../placement/explain.js');
        const doc = await explain(elf, { kernel: o.kernel, symbols, onProgress: progress && ((k, n, name) => progress.update(() => `explain: mapping ${name} (${k + 1}/${n})`)) });
        progress?.done();
        if (o.format === 'json') out.write(explainJson(doc));
        else for (const line of explainText(doc)) out.write(line);
        setStatus(this, 0);
      } finally {
        progress?.done();
      }
    });
}
