/**
 * The traps sparc64 Linux services for a user program without it noticing, serviced here through
 * QEMU's CPU state (cpu-state.ts) since Unicorn exposes none of it:
 * - fp_disabled (0x20): Linux's do_fpdis turns FPRS.FEF on and the instruction runs again, now
 *   on the CPU's own FPU (QEMU's softfloat: the same arithmetic qemu-user's recordings used).
 * - fast_data_access_MMU_miss (0x68): loads with an explicit user ASI (ASI_PNF in glibc's string
 *   functions) go through the UltraSPARC TLB even with the MMU off; Linux's miss handler loads a
 *   TTE from the TSB and retries, here an identity TTE is loaded.
 * When the state could not be located, both stay faults (SIGILL with FPU_DISABLED_REASON, …).
 */
import type { Engine } from '../../src/emu/unicorn.js';
import { FPRS_FEF, FRESH_FP_STATE, SparcCpuState } from './cpu-state.js';
import type { CpuWindowFile } from './window-file.js';

export class CpuTraps {
  /** QEMU's CPU state reached by address, or why it could not be. */
  private state: SparcCpuState | string = 'not located yet';
  /** The last data-TLB miss serviced: a miss the new entry does not cure is not retried forever. */
  private lastMiss: { pc: bigint; va: bigint } | undefined;

  constructor(private readonly engine: Engine) {}

  /** Find the state; `probe` runs the guest's `wr %asi ; wr %fprs` stub (cpu-state.ts). */
  locate(probe: () => void): void {
    this.state = SparcCpuState.locate(this.engine, probe);
  }

  /** The CPU's register-window file, or why it cannot be used (window-file.ts). */
  windowFile(): CpuWindowFile | string {
    return typeof this.state === 'string' ? this.state : this.state.windowFile();
  }

  /** PSTATE and FPRS as the host sees them, for a report of an FPU trap it did not expect. */
  get stateText(): string {
    const st = this.state;
    return typeof st === 'string' ? st : `pstate 0x${st.pstate.toString(16)}, fprs 0x${st.fprs.toString(16)}`;
  }

  /** Why the FPU cannot be reached, or undefined when it can. */
  get unreachable(): string | undefined {
    return typeof this.state === 'string' ? this.state : undefined;
  }

  /** FPRS.FEF: has the program used the FPU since its exec (or its last context restore)? */
  get enabled(): boolean {
    return typeof this.state !== 'string' && (this.state.fprs & FPRS_FEF) !== 0n;
  }

  /** fp_disabled at `pc`: true when serviced (FEF turned on, the CPU re-runs the instruction). */
  fpDisabled(pc: bigint): boolean {
    const st = this.state;
    if (typeof st === 'string') return false;
    const fprs = st.fprs;
    // FEF already on: not the lazy-enable trap (cannot happen with PEF set); stays a fault.
    if ((fprs & FPRS_FEF) !== 0n) return false;
    st.fprs = fprs | FPRS_FEF;
    // The trapped instruction and the rest of its block did not run; the CPU re-runs it next.
    this.engine.retry(pc);
    return true;
  }

  /** A data-TLB miss at `pc`: true when an entry was loaded and the instruction should run again. */
  dataMiss(pc: bigint): boolean {
    const st = this.state;
    if (typeof st === 'string') return false;
    const va = st.missAddress;
    if (this.lastMiss?.pc === pc && this.lastMiss.va === va) return false;
    this.lastMiss = { pc, va };
    st.mapIdentity(va);
    this.engine.retry(pc);
    return true;
  }

  /** Where QEMU keeps PC and NPC (cpu-state.ts), or undefined when the state was not found. */
  pcCells(): { pc: bigint; npc: bigint } | undefined {
    return typeof this.state === 'string' ? undefined : this.state.pcCells;
  }

  /** Arch.setCpuMode (cpu-state.ts): true when QEMU's MMU index now follows the mode. */
  setCpuMode(user: boolean): boolean {
    if (typeof this.state === 'string') return false;
    this.state.setCpuMode(user);
    return true;
  }

  /** The task's FP state for a register snapshot (cpu-state.ts saveFp; zeros when unreachable). */
  save(): readonly bigint[] {
    return typeof this.state === 'string' ? FRESH_FP_STATE : this.state.saveFp();
  }

  restore(v: readonly bigint[]): void {
    if (typeof this.state !== 'string') this.state.restoreFp(v);
  }
}
