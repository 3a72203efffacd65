/**
 * Both runs side by side: the context every checker reads and writes (the two records, the plan,
 * the placement map, which probes registered; the checks and notes found so far). Each aspect
 * has its own checker: check-sequence.ts (instruction sequences, registers at hits and system
 * calls), check-exits.ts (exit statuses, output, fault reports), check-memory.ts (writable
 * memory at exit), check-hits.ts (hits == executions); verify.ts runs them in report order.
 *
 * Differences Linux has too are notes, not divergences: a value that is the address of the slot
 * copy (+ d) where the unprobed run has the stepped instruction's own address (+ d). An
 * instruction that records its own address (x86-64 `syscall` puts the next PC in %rcx; a system
 * call made from the slot is entered at the slot) does so at the slot, and Linux's out-of-line
 * step leaves that value as it is; a program may then copy it to memory.
 */
import type { UprobePlacer } from '../placement/placement.js';
import type { RunRecord, ThreadTrace } from './record.js';
import type { RunPlan } from './runs.js';
import { hex, type Check } from './types.js';

export class Comparison {
  readonly checks: Check[] = [];
  /** Executions per address in the unprobed run (boundary repeats removed), hits in the probed run. */
  readonly executed = new Map<number, number>();
  readonly hits = new Map<number, number>();
  /** Bytes per XOL slot. */
  private readonly slot: bigint;

  constructor(
    readonly base: RunRecord,
    readonly probed: RunRecord,
    readonly plan: RunPlan,
    readonly placer: UprobePlacer,
    readonly registered: Set<number>,
    readonly notes: string[],
  ) {
    this.slot = BigInt(plan.xolSlotBytes);
  }

  where(a: number): string {
    return `${this.placer.where(BigInt(a))} (${hex(a)})`;
  }

  mode(a: number): string {
    if (!this.registered.has(a)) return 'not probed';
    const v = this.placer.verdictAt(BigInt(a));
    return v.ok ? v.mode : 'refused';
  }

  /** Is `got` the slot copy's address + d where `want` is `stepped` + d (stepped = a probe)? */
  slotAddress(pid: number, want: bigint, got: bigint, stepped: bigint | undefined): boolean {
    for (const area of this.probed.xolAreas.get(pid) ?? []) {
      if (got < area || got >= area + BigInt(this.plan.pageSize)) continue;
      const d = got - (area + ((got - area) / this.slot) * this.slot);
      if (stepped !== undefined) {
        if (want - stepped === d) return true;
      } else if (this.registered.has(Number(want - d))) return true;
    }
    return false;
  }

  /**
   * Why a thread of the probed run ended early: its fault report, and whether the PC was in an
   * XOL area — a child forked by a system call that was being stepped out of line resumes in
   * its parent's slot, and fork does not copy the XOL area (VM_DONTCOPY; Linux re-creates it in
   * the child only for pending return probes), so the child faults there.
   */
  fate(tid: number): string {
    const line = this.probed.reports.find((l) => l.includes(`[${tid}]:`));
    if (!line) return '';
    const pc = /pc (0x[0-9a-f]+)/.exec(line)?.[1];
    const inXol = pc !== undefined && [...this.probed.xolAreas.values()].some((set) => [...set].some((a) => BigInt(pc) >= a && BigInt(pc) < a + BigInt(this.plan.pageSize)));
    const why = inXol ? ' — the PC is in an XOL slot: a fork made from a slot leaves the child there, and fork does not copy the XOL area' : '';
    return ` (${line.replace(/^uniprobe: /, '')}${why})`;
  }

  /** The address after the instruction at `addr` (where execution falls through to). */
  fallThrough(addr: number): number {
    const insn = this.placer.decoder.decode(BigInt(addr), this.placer.read(BigInt(addr), this.placer.decoder.maxInsnLength));
    return addr + (insn?.length ?? this.placer.up.swbp.length);
  }

  /** An unused out-of-text copy of the instruction at `addr` executed before step i of `t`. */
  foreignCopy(t: ThreadTrace, i: number, addr: number): { bytes: Uint8Array; row: number; used: boolean } | undefined {
    const list = t.foreign.get(i);
    if (!list) return undefined;
    const w = this.placer.walk(this.placer.functionAt(BigInt(addr)) ?? { name: '', start: BigInt(addr), size: 1n }).find((x) => x.addr === BigInt(addr));
    if (!w) return undefined;
    const orig = this.placer.read(BigInt(addr), w.length);
    return list.find((c) => !c.used && c.bytes.length === orig.length && c.bytes.every((x, k) => x === orig[k]));
  }

  parentPid(pid: number): number {
    return this.probed.parents.get(pid) ?? pid;
  }

  pidOf(tid: number): number {
    return this.probed.threadPids.get(tid) ?? tid;
  }
}

/** The first index where `a` and `b` differ (a length difference counts), or -1. */
export function firstByteDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
