/**
 * `tsx --import ./bench/dist.mjs bench/…` (npm run bench): the engine is served from dist/
 * (bench/dist-hooks.mjs says why). With dist/ missing or stale, or BENCH_SOURCES=1, the sources
 * run through tsx, and one line says so (the figures then include tsx's keepNames wrappers).
 */
import { register } from 'node:module';
import { fileURLToPath } from 'node:url';
import { distState } from '../scripts/dist-state.mjs';

const state = distState(fileURLToPath(new URL('..', import.meta.url)));
if (process.env.BENCH_SOURCES === '1') process.stderr.write('bench: BENCH_SOURCES=1: measuring the sources through tsx\n');
else if (state !== 'fresh') process.stderr.write(`bench: dist/ is ${state} (npm run build): measuring the sources through tsx\n`);
else {
  register('./dist-hooks.mjs', import.meta.url);
  process.env.UNIPROBE_BENCH_CODE = 'dist'; // recorded in the results file (bench/harness.ts)
}
