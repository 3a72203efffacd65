/**
 * `uniprobe regress DIR [--update] [--target T...] [--jobs N] [--shard I/N] [--format text|json]`:
 * run a golden-trace suite (src/regress) on every target and compare. A progress bar on stderr,
 * only on a terminal.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { TARGETS, type Target } from '../../arch/types.js';
import type { CaseResult } from '../regress/regress.js';
// Type only: `run` and the other commands must not load src/regress (test/package checks it).
import type { Shard } from '../regress/shard.js';
import { setStatus } from './explain.js';
import { LineSink, paint, useColour } from './terminal.js';
import { bar, progressLine } from './progress.js';

interface RegressOpts {
  update?: boolean;
  target?: Target[];
  seed: number;
  format: 'text' | 'json';
  jobs: number;
  shard?: Shard;
}

function jobsArg(v: string): number {
  const n = Number(v);
  if (!/^[0-9]+$/.test(v) || !Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('--jobs must be an integer from 1 to 64');
  return n;
}

/** `i/n` with 1 ≤ i ≤ n (src/regress/shard.ts): the shard, or why not (a usage message). */
export function parseShard(text: string): Shard | { error: string } {
  const m = /^([0-9]+)\/([0-9]+)$/.exec(text.trim());
  if (!m) return { error: 'Expected INDEX/COUNT, such as 1/3.' };
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (!Number.isSafeInteger(count) || count < 1) return { error: 'The count must be at least 1.' };
  if (!Number.isSafeInteger(index) || index < 1 || index > count) return { error: `The index must be from 1 to ${count}.` };
  return { index, count };
}

function shardArg(v: string): Shard {
  const s = parseShard(v);
  if ('error' in s) throw new InvalidArgumentError(s.error);
  return s;
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
    .option('-j, --jobs <n>', 'run cases on N worker threads (the report is the same as with 1)', jobsArg, 1)
    .option('--shard <i/n>', "run only shard I of N: the suite's cases, in name order, cut into N near-equal blocks (a case's targets stay together)", shardArg)
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

--jobs spreads a run over this machine's cores, --shard over machines (one CI job per shard,
e.g. --shard 1/3, 2/3 and 3/3): together the shards run every case once.

Exit status: 0 when every (case, target) matches its golden (or the shard has no cases), 1
otherwise or on an error, 2 on bad usage (such as --shard 3/2).
`,
    )
    .action(async function (this: Command, dir: string) {
      const o = this.opts<RegressOpts>();
      const tty = process.stderr.isTTY === true;
      // Loaded here, not at the top: the other commands must not pay for the regression runner.
      const { runSuite } = await import('../regress/regress.js');
      const results = await runSuite(dir, { update: o.update, targets: o.target, seed: o.seed, jobs: o.jobs, shard: o.shard, progress: tty ? progressBar(process.stderr) : undefined });
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
