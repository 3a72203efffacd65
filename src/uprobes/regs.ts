/**
 * pt_regs for uprobe handlers: as kprobes' ProbeRegs, but the registers are user mode's, so the
 * n-th argument is read with the user ABI (i386: cdecl on the stack, not the kernel's regparm).
 * Linux has no `$argN` for uprobes; uniprobe offers it and says so in the README.
 */
import { ProbeRegs } from '../regs/probe-regs.js';

export class UprobeRegs extends ProbeRegs {
  override arg(n: number): bigint {
    return this.arch.readCallArg(this.engine, this.mem, n);
  }
}
