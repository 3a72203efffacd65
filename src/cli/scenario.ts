/**
 * `uniprobe scenario --list` and `uniprobe scenario NAME [--variant old|fixed] [--seeds N]
 * [--seed S] [--cpus N] [--format text|json]`: the four seed discussions run on the engine
 * (src/scenarios). Exit status 0 when nothing was found, 3 when something was (so `old` exits 3
 * and `fixed` 0), 1 for an error, 2 for bad usage. Registered by main.ts.
 */
import { bar, progressLine } from './progress.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import { UniprobeError } from '../errors.js';
import { setStatus } from './explain.js';
import { LineSink } from './terminal.js';

/** Exit status of a sweep that found something. */
export const EXIT_FOUND = 3;

interface ScenarioOpts {
  list?: boolean;
  variant: 'old' | 'fixed';
  seeds?: number;
  seed?: number;
  cpus?: number;
  format: 'text' | 'json';
}

function positive(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = /^\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

export function scenarioCommand(program: Command): Command {
  return new Command('scenario')
    .copyInheritedSettings(program)
    .description("run a seed discussion's actors on the engine over scheduler seeds and report what breaks")
    .argument('[name]', 'scenario (see --list)')
    .option('--list', 'one line per scenario: name, seed discussion, summary')
    .addOption(new Option('--variant <v>', "the code under test: 'old' (before the seed's patch) or 'fixed'").choices(['old', 'fixed']).default('old'))
    .option('--seeds <n>', 'how many scheduler seeds to run (default 10; 1 with --seed)', positive('--seeds', 1, 100000))
    .option('--seed <s>', 'first scheduler seed (default 1): --seed S alone replays that one seed', positive('--seed', 0, 2 ** 32 - 1))
    .option('--cpus <n>', "vCPUs (default: the scenario's)", positive('--cpus', 1, 64))
    .addOption(new Option('--format <fmt>', 'output format').choices(['text', 'json']).default('text'))
    .addHelpText(
      'after',
      `
Examples:
  uniprobe scenario --list
  uniprobe scenario kprobe-unregister --variant old --seeds 20
  uniprobe scenario uprobe-mmap --variant fixed --seeds 50 --cpus 4
  uniprobe scenario hmm-mirror --seed 2          # replay one seed

Exit status: 0 nothing found, ${EXIT_FOUND} something found, 1 an error, 2 bad usage.
`,
    )
    .action(async function (this: Command, name: string | undefined) {
      const o = this.opts<ScenarioOpts>();
      const { SCENARIOS, scenarioByName, sweep, formatSweep } = await import('../scenarios/index.js');
      const out = LineSink.stdout();
      if (o.list) {
        const w = Math.max(...SCENARIOS.map((s) => s.name.length));
        for (const s of SCENARIOS) out.write(`${s.name.padEnd(w)}  seed ${s.seed}  ${s.summary}`);
        return setStatus(this, 0);
      }
      if (!name) throw new UniprobeError('USAGE', 'scenario: name a scenario (uniprobe scenario --list shows them)');
      const s = scenarioByName(name);
      if (!s) throw new UniprobeError('USAGE', `scenario: no scenario named ${name} (known: ${SCENARIOS.map((x) => x.name).join(', ')})`);
      const first = o.seed ?? 1;
      const count = o.seeds ?? (o.seed !== undefined ? 1 : 10);
      const seeds = Array.from({ length: count }, (_, i) => first + i);
      let w;
      // Sweeps over many seeds take a while: the progress line counts them on a terminal.
      const progress = progressLine(process.stderr);
      try {
        w = await sweep(s, {
          variant: o.variant,
          seeds,
          cpus: o.cpus,
          onSeed: progress && ((done, total, found) => progress.update(() => `scenario ${name}: ${bar(done, total, `seed ${seeds[done]}, ${found} found`)}`)),
        });
      } catch (e) {
        if (e instanceof RangeError) throw new UniprobeError('USAGE', `scenario ${name}: ${e.message}`);
        throw e;
      } finally {
        progress?.done();
      }
      if (o.format === 'json') out.write(JSON.stringify(w));
      else for (const line of formatSweep(w)) out.write(line);
      setStatus(this, w.found.length ? EXIT_FOUND : 0);
    });
}
