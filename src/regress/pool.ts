/**
 * `regress --jobs N`: (case, target) runs spread over N worker threads (node:worker_threads).
 *
 * Each worker loads its own copy of the engine (Unicorn handles, koffi callbacks and the guest
 * kernel image are per thread) and runs one pair at a time on a fresh Machine, as the main thread
 * would; a run shares nothing with another, so its trace does not depend on the thread it ran on.
 * Workers take a new pair when they finish one (long cases do not hold up a fixed share), and
 * results are filed by the pair's index, so the caller sees them in the suite's order. The first
 * run of a target in a thread costs a few hundred milliseconds more than the next ones (its kernel
 * image, decoder and JIT warm up), so a worker prefers a target it has run, then one no worker has
 * run yet: each target warms up in as few threads as the work allows.
 *
 * The worker entry is resolved next to this module: dist's worker.js in the compiled package; from
 * the TypeScript sources (vitest, tsx) a small JavaScript bootstrap registers tsx first.
 */
import { Worker } from 'node:worker_threads';
import type { Target } from '../../arch/types.js';
import type { RegressCase } from './regress.js';

export interface Job {
  /** Index in the caller's list: the result goes back to that slot. */
  readonly id: number;
  readonly dir: string;
  readonly c: RegressCase;
  readonly target: Target;
  readonly seed?: number;
  readonly maxInsns?: number;
}

export type JobResult = { readonly id: number; readonly lines: string[] } | { readonly id: number; readonly error: string };

function startWorker(): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) return new Worker(new URL('./worker-tsx.mjs', here), { workerData: { entry: new URL('./worker.ts', here).href } });
  return new Worker(new URL('./worker.js', here));
}

/**
 * Run `jobs` on up to `threads` workers; resolves, once every worker has exited, with one result
 * per job in job order. A worker that dies (a native crash, a failed start) fails the pair it was
 * running with the reason, and a new worker takes over the pairs left. `start` makes a worker
 * (tests give one that dies).
 */
export function runJobs(jobs: readonly Job[], threads: number, onStart?: (job: Job, done: number) => void, start: () => Worker = startWorker): Promise<JobResult[]> {
  const results: JobResult[] = new Array(jobs.length);
  const pending = [...jobs];
  const warm = new Set<Target>();
  let done = 0;
  let live = 0;
  const take = (mine: ReadonlySet<Target>): Job | undefined => {
    let k = pending.findIndex((j) => mine.has(j.target));
    if (k < 0) k = pending.findIndex((j) => !warm.has(j.target));
    if (k < 0) k = 0;
    const job = pending.splice(k, 1)[0];
    if (job) warm.add(job.target);
    return job;
  };
  return new Promise((resolve) => {
    if (jobs.length === 0) return resolve(results);
    const launch = (): void => {
      const w = start();
      live++;
      const mine = new Set<Target>();
      let current: Job | undefined;
      let failure: string | undefined;
      const feed = (): void => {
        current = take(mine);
        if (!current) return void w.terminate();
        mine.add(current.target);
        onStart?.(current, done);
        w.postMessage(current);
      };
      w.on('message', (r: JobResult) => {
        results[r.id] = r;
        done++;
        feed();
      });
      w.on('error', (e: unknown) => (failure = (e as Error)?.message ?? String(e)));
      w.on('exit', (code) => {
        live--;
        if (current) {
          results[current.id] = { id: current.id, error: `worker thread stopped: ${failure ?? `exit code ${code}`}` };
          done++;
          current = undefined;
          if (pending.length > 0) launch();
        }
        if (live === 0) resolve(results);
      });
      feed();
    };
    for (let i = 0; i < Math.min(threads, jobs.length); i++) launch();
  });
}
