/**
 * The instruction-level hooks the probe cores (src/kprobes, src/uprobes) call, like Linux's
 * arch_prepare_kprobe / arch_arm_kprobe / resume_execution / arch_uprobe_analyze_insn /
 * arch_prepare_kretprobe.
 *
 * Generic code decides *when* (table lookup, handlers, states, locking); these hooks decide
 * *what the instruction needs*: refuse it, emulate it, or copy it into a slot that ends in a
 * single-step trap (or, boosted, in a jump back), and how to fix the registers afterwards.
 *
 * Everything here runs inside trap hooks of a live emulation run or between runs: no mapping
 * changes, only register and memory accesses through `ProbeCpu`.
 */
import type { Engine } from '../src/emu/unicorn.js';
import type { Arch, GuestMemoryAccess } from './types.js';

/** The CPU a probe hit happens on: registers through `arch`/`engine`, memory through `mem`. */
export interface ProbeCpu {
  readonly engine: Engine;
  readonly mem: GuestMemoryAccess;
  /**
   * Optional: the `pcAfter` the arch trap hook reported with the trap being handled
   * (TrapSink.breakpoint). sparc64 needs it: it is the architectural next PC (Linux's tnpc) —
   * at a hit inside a delay slot the pending branch target, at the step trap behind a copied
   * branch the way that branch went. Other targets ignore it.
   */
  readonly pcAfter?: bigint;
}

/** One decoded instruction (Capstone's view, plus our length). */
export interface DecodedInsn {
  readonly addr: bigint;
  readonly length: number;
  readonly bytes: Uint8Array;
  /** "mnemonic operands", for listings and the placement map. */
  readonly text: string;
}

/**
 * Why an instruction may not be probed: the Linux errno the kernel returns (positive, e.g. 22
 * for EINVAL, 84 for EILSEQ) and the kernel's reason in words.
 */
export interface ProbeRefusal {
  readonly refused: true;
  readonly errno: number;
  readonly reason: string;
}

/**
 * How a probe at this instruction runs when hit:
 * - `emulate`: the handler path performs the instruction's effect itself (x86 jmp/call/ret/jcc/
 *   loop; ppc branches): no slot is executed.
 * - `boost`: the slot holds the copy followed by a jump back to the next instruction: no second
 *   trap (x86 `can_boost`; only when the probe has no post handler).
 * - `step`: the slot holds the copy followed by a single-step trap; `postStep` fixes the state.
 */
export type StepMode = 'emulate' | 'boost' | 'step';

export interface PreparedInsn {
  readonly insn: DecodedInsn;
  readonly mode: StepMode;
  /**
   * Slot contents when mode != 'emulate', for a slot at `slotAddr` (x86 rewrites RIP-relative
   * displacements against it). At most `ProbeArch.slotSize` bytes.
   */
  slotBytes(slotAddr: bigint): Uint8Array;
  /**
   * Can the copy run from a slot at `slotAddr`? Absent or undefined = yes. x86-64: a RIP-relative
   * displacement (or the boost jump) rewritten against the slot must still fit in 32 signed bits,
   * else Linux's copy fails with -EINVAL. Call before `slotBytes`, which throws for such a slot.
   */
  slotRefusal?(slotAddr: bigint): ProbeRefusal | undefined;
  /**
   * Byte offset in the slot of the trailing single-step trap (mode 'step'): the trap reported at
   * slotAddr + stepTrapOffset ends the step. Undefined for 'emulate' and 'boost'.
   */
  readonly stepTrapOffset?: number;
  /** mode 'emulate': apply the instruction's effect, PC included. */
  emulate?(cpu: ProbeCpu): void;
  /**
   * mode 'step': called at the trailing trap, registers as the copy left them. Sets the PC to
   * resume at in the original text and undoes what running at the slot address changed
   * (x86: pushed return address, relative jump targets; sparc: relative branches with NPC).
   * `hitPcAfter` (optional) = the `pcAfter` reported with the probe hit that started this step
   * (Linux's saved orig_tnpc on sparc64; without it sparc64 assumes the probe is not in a delay
   * slot); `cpu.pcAfter` = the step trap's own.
   */
  postStep?(cpu: ProbeCpu, slotAddr: bigint, hitPcAfter?: bigint): void;
}

export const isRefusal = (p: PreparedInsn | ProbeRefusal): p is ProbeRefusal => 'refused' in p;

export interface ProbeArch {
  readonly arch: Arch;
  /** The kprobe breakpoint written over the first bytes of the probed instruction. */
  readonly breakpoint: Uint8Array;
  /** Longest instruction in bytes (x86 15, ppc/sparc 4): how many bytes `prepareKprobe` wants. */
  readonly maxInsnLength: number;
  /** Bytes per instruction slot (kprobe insn slot). */
  readonly slotSize: number;
  /** Decode the instruction starting at bytes[0] (located at addr), or undefined when invalid. */
  decode(addr: bigint, bytes: Uint8Array): DecodedInsn | undefined;
  /**
   * Is `addr` the start of an instruction in the function that starts at `funcStart`? x86 decodes
   * from funcStart (Linux's can_probe); fixed-width targets check alignment. `read` returns
   * original text bytes (not breakpoints).
   */
  isInsnBoundary(read: (addr: bigint, len: number) => Uint8Array, funcStart: bigint, addr: bigint): boolean;
  /**
   * arch_prepare_kprobe: decide how the instruction at `addr` (bytes = its original text, at
   * least maxInsnLength when the text is that long) runs under a kprobe, or refuse it with the
   * kernel's errno and reason. `hasPostHandler` forbids boosting (Linux: the post handler needs
   * the second trap).
   */
  prepareKprobe(addr: bigint, bytes: Uint8Array, opts: { hasPostHandler: boolean }): PreparedInsn | ProbeRefusal;
  /**
   * arch_prepare_kretprobe, at the probed function's entry (before its prologue ran): replace the
   * return address with `trampoline` and give back the PC the function would have returned to.
   */
  hijackReturn(cpu: ProbeCpu, trampoline: bigint): bigint;
  /** The stack pointer value that identifies this frame (kretprobe instance matching). */
  frameSp(cpu: ProbeCpu): bigint;
  /**
   * Optional: text this arch adds to the kprobe blacklist (arch_populate_kprobe_blacklist), as
   * [start, end) symbol pairs of the guest kernel (x86: __entry_text_start/__entry_text_end).
   */
  readonly blacklistRanges?: ReadonlyArray<readonly [start: string, end: string]>;
  /** Optional: functions kretprobes may not target (kretprobe_blacklist; x86: __switch_to). */
  readonly kretprobeBlacklist?: readonly string[];
}
