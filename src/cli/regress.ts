/**
 * `uniprobe regress DIR [--update] [--target T...] [--format text|json]`: run a golden-trace suite
 * (src/regress) on every target and compare. A progress bar on stderr, only on a terminal.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { TARGETS, type Target } from '../../arch/types.js';
import type { CaseResult } from '../regress/regress.js';
import { setStatus } from './explain.js';
import { LineSink, paint, useColour } from './terminal.js';
import { bar, progressLine } from './progress.js';

interface RegressOpts {
  update?: boolean;
  target?: Target[];
  seed: number;
  format: 'text' | 'json';
}

function seedArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 2 ** 32 - 1) throw new InvalidArgumentError('--seed must be an integer from 0 to 4294967295');
  return n;
}

/**
 * `uniprobe: [#####.....] 12/30 fib ppc64, 3.1 s` on stderr (the shared progress line: a terminal
 * only, after the first second, at most 4 redraws/s); erased at the end and before anything else
 * written to the stream.
 */
export function progressBar(stream: NodeJS.WriteStream): (done: number, total: number, label: string) => void {
  const p = progressLine(stream);
  return (done, total, label) => {
    if (done >= total) p?.done();
    else p?.update(() => bar(done, total, label));
  };
}

function resultLine(r: CaseResult, colour: boolean): string {
  const mark = r.ok ? paint(colour, 'green', r.updated ? 'updated' : 'ok') : paint(colour, 'red', 'FAIL');
  return `${mark.padEnd(r.ok ? 7 : 4)}  ${r.case} ${r.target}${r.detail ? ` — ${r.detail}` : ''}`;
}

export function regressCommand(program: Command): Command {
  return new Command('regress')
    .copyInheritedSettings(program)
    .description('cross-architecture regression: run each case of a golden-trace suite on every target and compare the normalised traces with the goldens')
    .argument('<dir>', 'suite directory: NAME.case.json files and NAME[.TARGET].golden.jsonl goldens')
    .option('--update', 'write the goldens from this run (the first target of a case writes the shared golden; the others are checked against it)')
    .addOption(new Option('--target <t...>', 'only these targets').choices([...TARGETS]))
    .option('--seed <n>', 'scheduler seed', seedArg, 1)
    .addOption(new Option('--format <fmt>', 'report format').choices(['text', 'json']).default('text'))
    .addHelpText(
      'after',
      `
A case (NAME.case.json):
  { "name": "fib", "program": "../fixtures/{target}/fib-nolibc",
    "probes": [ { "event": "fib_entry", "at": "fib", "fetch": [ { "name": "n", "arg": 1, "type": "s32" } ] },
                { "event": "fib_return", "at": "fib", "return": true,
                  "fetch": [ { "name": "ret", "retval": true, "type": "long" } ] } ] }
Fetch: "arg": N (the N-th word argument), "retval", or "symbol": DATA_SYMBOL; "deref": OFFSET reads
memory at the value + OFFSET; "type": s8..s64 u8..u64 x8..x64 long ulong symbol string.
Golden lines are normalised: symbols instead of addresses, values cut to their C type, memory in
the target's byte order, lines ordered by process.

Exit status: 0 when every (case, target) matches its golden, 1 otherwise or on an error.
`,
    )
    .action(async function (this: Command, dir: string) {
      const o = this.opts<RegressOpts>();
      const tty = process.stderr.isTTY === true;
      // Loaded here, not at the top: the other commands must not pay for the regression runner.
      const { runSuite } = await import('../regress/regress.js');
      const results = await runSuite(dir, { update: o.update, targets: o.target, seed: o.seed, progress: tty ? progressBar(process.stderr) : undefined });
      const out = LineSink.stdout();
      if (o.format === 'json') {
        out.write(JSON.stringify(results.map((r) => ({ case: r.case, target: r.target, ok: r.ok, updated: r.updated ?? false, detail: r.detail ?? null, golden: r.golden, events: r.lines.length })), null, 2));
      } else {
        const colour = useColour(process.stdout);
        for (const r of results) out.write(resultLine(r, colour));
        const bad = results.filter((r) => !r.ok).length;
        out.write(`${results.length - bad}/${results.length} passed${bad ? `, ${bad} failed` : ''}`);
      }
      setStatus(this, results.every((r) => r.ok) ? 0 : 1);
    });
}
