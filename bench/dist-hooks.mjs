/**
 * Module hooks that make the benchmarks run the engine users run: tsc's output in dist/, not the
 * TypeScript sources as tsx transpiles them. tsx compiles with esbuild's keepNames, which wraps
 * every named class and every closure assigned to a name in a `__name(…)` call
 * (Object.defineProperty at each creation): code that makes closures on a hit path, or a class
 * with a static naming block, pays for it under tsx and not in the package (measured: an
 * `instanceof` of such a class cost ~55 ns per kprobe hit). bench/*.ts itself still runs through
 * tsx; every import that resolves into src/ or arch/ is served from dist/src or dist/arch instead,
 * as plain ES modules. `npm run bench` builds a missing or stale dist/ first (scripts/ensure-deps.mjs);
 * bench/dist.mjs registers these hooks only when dist/ is fresh.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = new URL('..', import.meta.url);
const served = ['src/', 'arch/'].map((d) => new URL(d, root).href);

/** The dist/ file for a source URL of src/ or arch/ (…/x.ts → dist/…/x.js), if there is one. */
function distFor(url) {
  const from = served.find((p) => url.startsWith(p));
  if (!from) return undefined;
  const rel = url.slice(root.href.length).replace(/\.ts$/, '.js');
  const target = new URL(`dist/${rel}`, root);
  return existsSync(fileURLToPath(target)) ? target.href : undefined;
}

export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  const dist = distFor(r.url);
  return dist ? { url: dist, format: 'module', shortCircuit: true } : r;
}

export async function load(url, context, next) {
  if (url.startsWith(new URL('dist/', root).href) && url.endsWith('.js')) {
    return { format: 'module', source: readFileSync(fileURLToPath(url), 'utf8'), shortCircuit: true };
  }
  return next(url, context);
}

