/**
 * The verifier's public types: its options and its report. A module of its own so that readers
 * of a report (src/placement/html.ts) depend on these shapes, not on the verifier and what it
 * imports (the placement map) — no import cycle between placement and verify.
 */
import type { Target } from '../../arch/types.js';

export interface VerifyOptions {
  /** 'all' (every function) or function names. */
  probes?: 'all' | readonly string[];
  /** Instructions to leave unprobed: `SYMBOL+0xOFF`, `SYMBOL` (its entry) or an address `0x…`. */
  skip?: readonly string[];
  seed?: number;
  cpus?: number;
  /** The program's arguments (argv[1…]). */
  args?: readonly string[];
  /** Files the guest may open besides its arguments. */
  allowFiles?: string[];
  /**
   * The probed run is killed once its threads executed this many user instructions (default: 4×
   * the unprobed run's + 100,000): a broken fixup that loops ends as a divergence, not a hang.
   */
  maxSteps?: number;
  /**
   * Progress for a display: every 4,096 instructions a run executes (a verify run is one long
   * quantum, so Machine's onQuantum would not do) with the count so far, and every 256 probes
   * registered with that count and the total (registering a program glibc starts takes longest).
   */
  onProgress?: (phase: 'unprobed run' | 'registering probes' | 'probed run' | 'comparing', count: number, total?: number) => void;
}

export interface ProbeResult {
  readonly addr: bigint;
  readonly where: string;
  readonly hits: number;
  readonly executed: number;
}

export interface Refusal {
  readonly addr: bigint;
  readonly where: string;
  readonly errno: number;
  readonly reason: string;
}

/** One comparison and its outcome; `detail` says what differed first, exactly. */
export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly summary: string;
  readonly detail?: string;
}

export interface VerifyReport {
  readonly file: string;
  readonly target: Target;
  readonly seed: number;
  readonly functions: readonly string[];
  readonly probes: readonly ProbeResult[];
  readonly refused: readonly Refusal[];
  /** Instructions of the chosen functions left unprobed: data in text, --skip. */
  readonly skipped: ReadonlyArray<{ addr: bigint; where: string; why: string }>;
  readonly checks: readonly Check[];
  /** The first failing check's detail (undefined when transparent). */
  readonly firstDivergence: string | undefined;
  readonly transparent: boolean;
  /** Text instructions executed by the unprobed run (all threads). */
  readonly executed: number;
  /** Differences Linux has too (a register holding the XOL slot's address), one per occurrence. */
  readonly notes: readonly string[];
}

/** How reports write addresses. */
export const hex = (a: bigint | number): string => `0x${a.toString(16)}`;
