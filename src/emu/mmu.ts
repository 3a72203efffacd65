/**
 * What the engine needs from the TLB-fill callback that makes its faults precise (native/boundary.c,
 * src/emu/boundary.ts implements it): a copy of every mapping the engine makes, strict fills while
 * a run is on, and the refused access that ended a run.
 *
 * Why (issue 15, docs/unicorn.md): Unicorn 2.1.1 reports a store its region forbids without ending
 * the translated block, unless a counted run's per-instruction hook is installed, and that hook
 * triples the cost of all code. A fill refused from the TLB is unwound by QEMU to the faulting
 * instruction, counted run or not. So every run is strict, and a run may leave out the count.
 */
export interface Refusal {
  /** The virtual page of the refused access (Unicorn passes the page, not the byte). */
  page: bigint;
  /** UC_MEM.READ, WRITE or FETCH. */
  type: number;
  /** The page's UC_PROT_* permissions (0: nothing mapped there). */
  perms: number;
  /** A user-mode access to a kernel range (the user/kernel boundary). */
  denied: boolean;
}

export interface EngineMmu {
  /** The engine mapped (or re-protected) [first, last], inclusive, with `perms`. */
  mapped(first: bigint, last: bigint, perms: number): void;
  /** The engine unmapped [first, last]. */
  unmapped(first: bigint, last: bigint): void;
  /** A run starts: fills become strict (stale loose entries are flushed first). */
  beginRun(): void;
  /** The run is over: fills are loose again (the engine's own uc_ctl calls between runs). */
  endRun(): void;
  /** The refusal that ended the last run, if one did (once). */
  takeRefusal(): Refusal | undefined;
  /** Run `fn` with loose fills: Unicorn's own checks apply (imprecisely), nothing is refused. */
  loosely<T>(fn: () => T): T;
}
