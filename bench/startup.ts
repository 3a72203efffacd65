/**
 * `npx tsx bench/startup.ts` (also part of `npm run bench`): how long the command line takes to
 * start, as a ratio to a bare `node -e 0` measured in the same interleaved rounds (issue 15's bar:
 * `uniprobe run` of a small program within 3x). Rows:
 * - `node -e 0`: the floor, Node.js itself;
 * - `uniprobe --help`: the command line alone (commander, the option tables), no engine;
 * - `uniprobe run fixtures/x86_64/fib-nolibc`: the engine, Unicorn and one short guest run, no
 *   probe (so no Capstone: arch/capstone.ts);
 * - `uniprobe run … -e 'p fib'`: the same with a uprobe, which loads Capstone to decode.
 * Each is a fresh process started from the compiled dist/ (bin/uniprobe.mjs; `npm run build`
 * first). Wall time, median of STARTUP_RUNS rounds (default 15); on a busy machine the medians
 * move, the ratios much less.
 *
 * STARTUP_BEFORE=DIR adds the same rows for another built checkout (e.g. `git worktree add DIR
 * <commit>`, node_modules linked, `npm run build` there), in the same rounds: a before/after
 * comparison within one run.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, recordResults } from './harness.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'uniprobe.mjs');

interface Row {
  name: string;
  args: string[];
  /** Exit status of a good start (a fast failure must not pass for a fast start). */
  status: number;
  ms: number[];
}

function wallMs(r: Row): number {
  const t0 = performance.now();
  const p = spawnSync(process.execPath, r.args, { cwd: root, stdio: 'ignore' });
  const ms = performance.now() - t0;
  if (p.error) throw p.error;
  if (p.status !== r.status) throw new Error(`${r.name}: exit status ${p.status}, expected ${r.status}`);
  return ms;
}

/** Refuse to time a stale or missing dist/: bin/uniprobe.mjs would run the sources through tsx. */
function requireFreshDist(dir: string): void {
  // scripts/build.mjs held the check before scripts/dist-state.mjs (a STARTUP_BEFORE checkout).
  const script =
    "import { existsSync } from 'node:fs'; const m = await import(existsSync('./scripts/dist-state.mjs') ? './scripts/dist-state.mjs' : './scripts/build.mjs'); process.stdout.write(m.distState());";
  const state = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, encoding: 'utf8' }).stdout;
  if (state !== 'fresh') throw new Error(`${dir}: dist/ is ${state || 'unknown'}; run \`npm run build\` there first`);
}

export function benchStartup(runs = Number(process.env.STARTUP_RUNS ?? 15), opts: { record?: boolean } = {}): Record<string, unknown> {
  const commands = (prefix: string, b: string): Row[] => [
    { name: `${prefix}uniprobe --help`, args: [b, '--help'], status: 0, ms: [] },
    // fib-nolibc exits with fib(10) = 55.
    { name: `${prefix}uniprobe run fib-nolibc`, args: [b, 'run', 'fixtures/x86_64/fib-nolibc'], status: 55, ms: [] },
    { name: `${prefix}uniprobe run fib-nolibc -e 'p fib'`, args: [b, 'run', 'fixtures/x86_64/fib-nolibc', '-e', 'p fixtures/x86_64/fib-nolibc:fib'], status: 55, ms: [] },
  ];
  const before = process.env.STARTUP_BEFORE;
  const rows: Row[] = [
    { name: 'node -e 0', args: ['-e', '0'], status: 0, ms: [] },
    ...commands('', bin),
    ...(before ? commands('before: ', join(resolve(before), 'bin', 'uniprobe.mjs')) : []),
  ];
  requireFreshDist(root);
  if (before) requireFreshDist(resolve(before));
  for (const r of rows) wallMs(r); // warm the page cache
  for (let i = 0; i < runs; i++) for (const r of rows) r.ms.push(wallMs(r));
  const floor = median(rows[0]!.ms);
  console.log(`\nstart-up: wall ms, median of ${runs} interleaved rounds; ratio to node -e 0 (bar: run <= 3x)`);
  const out: Record<string, unknown> = {};
  for (const r of rows) {
    const m = median(r.ms);
    console.log(`  ${r.name.padEnd(44)} ${m.toFixed(0).padStart(6)} ms  ${(m / floor).toFixed(2).padStart(5)}x`);
    out[r.name] = { ms: +m.toFixed(1), vsNode: +(m / floor).toFixed(3) };
  }
  if (opts.record !== false) recordResults('startup', out);
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) benchStartup();
