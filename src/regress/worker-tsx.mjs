// The regression worker's entry when the runner itself runs from the TypeScript sources (vitest,
// tsx, bin/uniprobe.mjs with a stale dist/): a new thread starts without the parent's loader, so
// tsx is registered here before worker.ts is imported. The compiled package starts dist's
// worker.js directly and never loads this file. Plain JavaScript: nothing can compile it yet.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
