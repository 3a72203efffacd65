/**
 * Engines for the differential harnesses, reset between runs instead of opened and closed for
 * each (Engine.reset). The harnesses run every instruction of their corpora once natively and
 * once probed, each on an engine of its own: ~11,000 engines in x86-uprobes alone, ~3 ms apiece
 * to open and close (Unicorn setting up its translation tables), most of those files' time; and
 * each sparc64 uc_close loses ~125 KiB (docs/unicorn.md). A reset engine is the fresh one again:
 * test/emu/engine-reset.test.ts holds it to that on every target.
 */
import { openEngine } from '../../arch/engine.js';
import type { Arch } from '../../arch/types.js';
import type { Engine, ResetPoint } from '../../src/emu/unicorn.js';

/** At most this many idle engines per kind: a diff holds two at once (native, probed). */
const IDLE_MAX = 2;
const idle = new Map<string, Engine[]>();
const pooled = new WeakMap<Engine, { key: string; point: ResetPoint }>();

/** A just-opened engine for `arch` (openEngine's options), from the pool when one is idle. */
export function pooledEngine(arch: Arch, opts: { translationBufferBytes?: number } = {}): Engine {
  const key = `${arch.target}/${opts.translationBufferBytes ?? 'default'}`;
  const e = idle.get(key)?.pop();
  if (e) return e;
  const fresh = openEngine(arch, opts);
  // sparc64's first engine in a process has no reset point (its CPU layout is measured by its
  // setup): it is closed after use, the next ones are pooled.
  const point = fresh.resetPoint();
  if (point) pooled.set(fresh, { key, point });
  return fresh;
}

/** Done with `e`: reset into the pool, or closed (no reset point, or the pool is full). */
export function releaseEngine(e: Engine): void {
  const p = pooled.get(e);
  const list = p ? (idle.get(p.key) ?? idle.set(p.key, []).get(p.key)!) : undefined;
  if (!p || !list || !e.resettable || list.length >= IDLE_MAX) return e.close();
  e.reset(p.point);
  list.push(e);
}

/** Close every idle engine (test/setup/engine-pool.ts, after each file). */
export function closeEnginePools(): void {
  for (const list of idle.values()) for (const e of list.splice(0)) e.close();
}
