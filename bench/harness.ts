/**
 * What the probe benchmarks (kprobes.ts, uprobes.ts) share: CPU-time runs of several variants
 * taken in interleaved rounds, the per-hit estimate, and the JSON results file.
 *
 * Measuring a sub-microsecond difference on a shared two-core machine: every variant lives in its
 * own Machine, set up once and warmed by one discarded run; runs are taken in rounds (every
 * variant once, back to back, each round starting one variant later) after a full GC, timed in
 * the main thread's CPU time (clock_gettime(CLOCK_THREAD_CPUTIME_ID): the guest, Unicorn and the
 * probe cores all run on it; time other processes held the core is not counted, and neither is the
 * work of V8's GC helper threads, which made process-wide CPU time vary by ±30% between runs).
 * Interference from other jobs only ever adds time (cache and core contention, preemption
 * costs), so a variant's cost is the mean of its fastest third of runs; per-hit cost =
 * (that of the probed variant − that of its baseline) / hits. Every ratio the benchmarks print
 * divides two figures of the same process and the same rounds.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import koffi from 'koffi';
import { runInNewContext } from 'node:vm';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * A full garbage collection before each timed run, so no run pays for the garbage of the run (or
 * the set-up) before it. `npm run bench` starts node without --expose-gc; the flag can still be
 * set at run time, and a new context then sees `gc`.
 */
setFlagsFromString('--expose-gc');
export const collectGarbage = runInNewContext('gc') as () => void;

const libc = koffi.load('libc.so.6');
const timespec = koffi.struct('bench_timespec', { tv_sec: 'long', tv_nsec: 'long' });
const clockGettime = libc.func('int clock_gettime(int clock, _Out_ bench_timespec *ts)') as (clock: number, out: { tv_sec: number; tv_nsec: number }) => number;
const CLOCK_THREAD_CPUTIME_ID = 3;
const ts = { tv_sec: 0, tv_nsec: 0 };
void timespec;

/** The main thread's CPU time so far, in ms. */
export const cpuMs = (): number => {
  clockGettime(CLOCK_THREAD_CPUTIME_ID, ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1e6;
};

export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Mean of the fastest third (at least one) of a variant's run times. */
export function low(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const k = Math.max(1, Math.floor(s.length / 3));
  let sum = 0;
  for (let i = 0; i < k; i++) sum += s[i]!;
  return sum / k;
}

/** One instrumented way of running a workload, set up once. */
export interface Rig {
  readonly label: string;
  /** Run the workload once: CPU ms of the run and hits it produced. */
  run(): Promise<{ ms: number; hits: number }>;
  close(): void;
}

export interface Samples {
  label: string;
  ms: number[];
  hits: number;
}

/**
 * `n` interleaved rounds over `rigs`, after two discarded warm-up rounds: the JIT needs some
 * thousands of hits and system calls before a run's time settles, and without them whichever
 * variant ran first came out up to 15% slower than an identical one.
 */
export async function rounds(rigs: readonly Rig[], n: number): Promise<Samples[]> {
  for (let w = 0; w < 2; w++) for (const r of rigs) await r.run();
  const out: Samples[] = rigs.map((r) => ({ label: r.label, ms: [], hits: 0 }));
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < rigs.length; j++) {
      const i = (j + k) % rigs.length;
      const { ms, hits } = await rigs[i]!.run();
      out[i]!.ms.push(ms);
      out[i]!.hits = hits;
    }
  }
  return out;
}

/** µs per hit of `v` over `base` (NaN without hits). */
export const perHitUs = (v: Samples, base: Samples): number => (v.hits > 0 ? ((low(v.ms) - low(base.ms)) * 1000) / v.hits : NaN);

/** "4.2x" or "—". */
export const ratio = (a: number, b: number, digits = 1): string => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(digits)}x` : '—');

/** a / b as a number (null when undefined), for the JSON file. */
export const ratioValue = (a: number, b: number): number | null => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? +(a / b).toFixed(3) : null);

export const fixed = (x: number, w: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : '—').padStart(w);

// --- results file ----------------------------------------------------------------------------------

/**
 * Where the results go: `--json PATH` on the command line, else BENCH_JSON, else
 * bench/results/latest.json (git-ignored).
 */
export function resultsPath(): string {
  const i = process.argv.indexOf('--json');
  if (i >= 0 && process.argv[i + 1]) return resolve(process.argv[i + 1]!);
  return process.env.BENCH_JSON ? resolve(process.env.BENCH_JSON) : join(root, 'bench', 'results', 'latest.json');
}

function commit(): string | undefined {
  try {
    return execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/**
 * Record one benchmark's figures under `section` in the results file. A run of `npm run bench`
 * starts the file afresh (`fresh`); a benchmark run alone replaces its own section only.
 */
export function recordResults(section: string, data: unknown, fresh = false): string {
  const path = resultsPath();
  let doc: Record<string, unknown> = {};
  if (!fresh) {
    try {
      doc = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    } catch {
      doc = {};
    }
  }
  doc.generated = new Date().toISOString();
  doc.commit = commit();
  doc.node = process.version;
  // The host's load when this section finished: figures from a busy machine are noisier.
  doc.loadavg = loadavg().map((x) => +x.toFixed(2));
  // What ran: tsc's output in dist/ (bench/dist.mjs), or the sources through tsx.
  doc.code = process.env.UNIPROBE_BENCH_CODE ?? 'sources';
  doc[section] = data;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(doc, null, 2)}\n`);
  return path;
}
