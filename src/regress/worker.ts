/**
 * A regression worker thread (pool.ts). It runs the (case, target) pairs the pool sends, one at a
 * time, each on a Machine of its own, and posts back the normalised trace or why it could not run.
 * It never reads or writes goldens: judging stays on the main thread, in the suite's order, so a
 * run with workers reports (and --update writes) exactly what a run without them does.
 */
import { parentPort } from 'node:worker_threads';
import { runCase } from './regress.js';
import type { Job, JobResult } from './pool.js';

const port = parentPort;
if (!port) throw new Error('uniprobe: src/regress/worker is a worker thread entry, not a program');
port.on('message', async (job: Job) => {
  let result: JobResult;
  try {
    result = { id: job.id, lines: await runCase(job.c, job.target, { dir: job.dir, seed: job.seed, maxInsns: job.maxInsns }) };
  } catch (e) {
    result = { id: job.id, error: (e as Error)?.message ?? String(e) };
  }
  port.postMessage(result);
});
