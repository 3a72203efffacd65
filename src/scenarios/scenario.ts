/**
 * What every seed scenario is: actors, an interleaving and invariants, run on the engine's own
 * code (Machine, Kprobes, Uprobes, Mm, MmuNotifiers, Mirrors) with that code's policy set to the
 * seed's historical variant — 'old' (the code before the seed's patch) or 'fixed'. A run gives
 * findings; a sweep over scheduler seeds groups them and names the first seed that reproduces
 * each (`uniprobe scenario NAME --seed S` replays it: same seed, same interleaving).
 */
import type { LockdepReport } from '../sync/index.js';

export type Variant = 'old' | 'fixed';

export type FindingKind = 'lockdep' | 'deadlock' | 'use-after-free' | 'false-failure' | 'missed-breakpoint' | 'stray-breakpoint' | 'kasan' | 'thread-problem' | 'lost-invalidation';

export interface Finding {
  readonly kind: FindingKind;
  /** One line; findings with the same kind and title are the same bug. */
  readonly title: string;
  /** The evidence: both stacks (lockdep), the wait-for cycle (deadlock), slot and vCPU (UAF)… */
  readonly detail: string[];
}

export interface RunOptions {
  seed: number;
  variant: Variant;
  cpus?: number;
}

export interface ScenarioRun {
  readonly seed: number;
  readonly variant: Variant;
  readonly findings: Finding[];
  /** What the run did (so a clean run is seen to have exercised the race). */
  readonly stats: Record<string, number>;
}

export interface Scenario {
  readonly name: string;
  /** The seed discussion it reproduces: "001" … "004". */
  readonly seed: string;
  readonly summary: string;
  /** vCPUs when --cpus is not given (and the least the actors need). */
  readonly cpus: number;
  run(o: RunOptions): Promise<ScenarioRun>;
}

/** Findings from lockdep reports: the kernel's text holds both acquisition paths. */
export function lockdepFindings(reports: readonly LockdepReport[]): Finding[] {
  return reports.map((r) => ({ kind: 'lockdep' as const, title: `${r.title}: ${r.locks.slice(0, 2).join(' vs ')}`, detail: r.text.split('\n') }));
}

/** Hung kernel threads: the wait-for cycle as each thread's "blocked on X; holding Y". */
export function deadlockFinding(hung: readonly string[]): Finding[] {
  if (!hung.length) return [];
  return [{ kind: 'deadlock', title: 'every remaining task is blocked (hung tasks)', detail: [...hung] }];
}

export function problemFindings(problems: readonly string[]): Finding[] {
  return problems.map((p) => ({ kind: 'thread-problem' as const, title: p, detail: [p] }));
}

export interface SweepEntry {
  readonly kind: FindingKind;
  readonly title: string;
  /** Seeds that showed it (in run order). */
  readonly seeds: number[];
  /** The first reproducing run's evidence. */
  readonly detail: string[];
}

export interface Sweep {
  readonly scenario: string;
  readonly seedDiscussion: string;
  readonly variant: Variant;
  readonly cpus: number;
  readonly seeds: number[];
  readonly found: SweepEntry[];
  readonly stats: Record<string, number>;
}

/** Run the scenario on each seed and group what was found. */
export async function sweep(
  s: Scenario,
  o: { variant: Variant; seeds: number[]; cpus?: number; onSeed?: (done: number, total: number, found: number) => void },
): Promise<Sweep> {
  const cpus = o.cpus ?? s.cpus;
  const found = new Map<string, SweepEntry>();
  const stats: Record<string, number> = {};
  for (const [i, seed] of o.seeds.entries()) {
    o.onSeed?.(i, o.seeds.length, found.size);
    const r = await s.run({ seed, variant: o.variant, cpus });
    for (const [k, v] of Object.entries(r.stats)) stats[k] = (stats[k] ?? 0) + v;
    for (const f of r.findings) {
      const key = `${f.kind}\u0000${f.title}`;
      const e = found.get(key);
      if (e) {
        if (!e.seeds.includes(seed)) e.seeds.push(seed);
      } else found.set(key, { kind: f.kind, title: f.title, seeds: [seed], detail: f.detail });
    }
  }
  return { scenario: s.name, seedDiscussion: s.seed, variant: o.variant, cpus, seeds: o.seeds, found: [...found.values()], stats };
}

/** The text report: one block per finding, then the totals. */
export function formatSweep(w: Sweep): string[] {
  const span = w.seeds.length === 1 ? `seed ${w.seeds[0]}` : `seeds ${w.seeds[0]}..${w.seeds[w.seeds.length - 1]}`;
  const out = [`scenario ${w.scenario} (seed discussion ${w.seedDiscussion}), variant ${w.variant}, ${w.cpus} vCPUs, ${span}`];
  for (const e of w.found) {
    out.push('', `FOUND ${e.kind}: ${e.title}`, `  on ${e.seeds.length} of ${w.seeds.length} seeds; reproduce with --seed ${e.seeds[0]}`);
    for (const l of e.detail) out.push(`  | ${l}`);
  }
  const stats = Object.entries(w.stats)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  out.push('', w.found.length ? `${w.found.length} problem(s) found` : 'nothing found', `totals: ${stats}`);
  return out;
}
