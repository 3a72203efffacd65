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
import type { CachedRegister } from '../src/emu/regcache.js';
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
   * mode 'step', optional: emulate first, step only when that fails (powerpc's kprobe_handler →
   * try_to_emulate → emulate_step). Carries the instruction out, PC included, and returns true;
   * or changes nothing and returns false, and the core steps the copy in the slot. The core keeps
   * Linux's memory of the outcome (Ainsn.emulated, p->ainsn.boostable there).
   */
  tryEmulate?(cpu: ProbeCpu): boolean;
  /**
   * mode 'step': called at the trailing trap, registers as the copy left them. Sets the PC to
   * resume at in the original text and undoes what running at the slot address changed
   * (x86: pushed return address, relative jump targets; sparc: relative branches with NPC).
   * `hitPcAfter` (optional) = the `pcAfter` reported with the probe hit that started this step
   * (Linux's saved orig_tnpc on sparc64; without it sparc64 assumes the probe is not in a delay
   * slot); `cpu.pcAfter` = the step trap's own.
   */
  postStep?(cpu: ProbeCpu, slotAddr: bigint, hitPcAfter?: bigint): void;
  /**
   * Set when postStep does nothing but put the PC here (x86's resume_singlestep of an instruction
   * that falls through, every ppc step): a probe with no post handler may have its step finished
   * by the engine's native trap hook (ProbeArch.nativeStepTrap). Absent: postStep runs.
   */
  readonly plainStepResume?: bigint;
}

/** `size` bytes of `insn` repeated: a poison fill that traps at every instruction boundary. */
export function poisonFill(insn: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i + insn.length <= size; i += insn.length) out.set(insn, i);
  return out;
}

export const isRefusal = <T extends object>(p: T | ProbeRefusal): p is ProbeRefusal => 'refused' in p;

/**
 * The registers a probe hit reads and writes here (PC, stack pointer, the general registers a
 * handler, an emulation or a fix-up uses), with their widths. The cores give them to every
 * engine's trap-time register cache (Engine.cacheTrapRegisters): one batched read and one batched
 * write per trap instead of one FFI call per access. Rules (src/emu/regcache.ts): no two aliasing
 * registers in one set; widths as Unicorn stores them; no flags word Unicorn normalises on write
 * (x86 EFLAGS, ppc XER) and nothing that changes how memory is translated (MSR, CR0/CR3, PSTATE).
 * A register outside the set still works, at the cost of its own FFI call.
 */
export type HitRegisters = readonly CachedRegister[];

/** The per-CPU kprobe state a hit finds (kprobe_ctlblk.kprobe_status, KPROBE_HIT_*). */
export type KprobeHitState = 'active' | 'ss' | 'ssdone' | 'reenter';

/**
 * What a kprobe hit does while another hit is in progress on the same CPU: 'reenter' (count a
 * miss and single-step the instruction without handlers), 'unrecoverable' (a BUG in Linux: the
 * hit path fails loudly), or 'not-ours' (the trap is left to the kernel's own trap handling, as
 * for a breakpoint no probe owns).
 */
export type KprobeReentry = 'reenter' | 'unrecoverable' | 'not-ours';

export interface ProbeArch {
  readonly arch: Arch;
  /**
   * The reentry rule of this arch's kprobe_handler: `state` is the interrupted hit's, `opcode` the
   * original bytes under the new hit's breakpoint. x86 (reenter_kprobe) reenters from every state
   * but a reentry; powerpc reenters from every state unless single-stepping a trap instruction;
   * sparc64 reenters from every state but single-stepping.
   */
  reentry(state: KprobeHitState, opcode: Uint8Array): KprobeReentry;
  /** The kprobe breakpoint written over the first bytes of the probed instruction. */
  readonly breakpoint: Uint8Array;
  /** Longest instruction in bytes (x86 15, ppc/sparc 4): how many bytes `prepareKprobe` wants. */
  readonly maxInsnLength: number;
  /** Bytes per instruction slot (kprobe insn slot). */
  readonly slotSize: number;
  /**
   * What a freed slot is filled with (`slotSize` bytes): executing it from any instruction
   * boundary traps, so a CPU that still runs a slot after its free crashes visibly instead of
   * running whatever the next owner put there (Linux does not poison; uniprobe does, to make a
   * premature free observable).
   */
  readonly slotPoison: Uint8Array;
  /** What a hit reads and writes (see HitRegisters). */
  readonly hitRegisters: HitRegisters;
  /** Where the engine's native trap hook may finish plain steps (PreparedInsn.plainStepResume); absent: never. */
  readonly nativeStepTrap?: NativeStepTrapSpec;
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
   * At the kretprobe trampoline (the function has returned): the frameSp the instance recorded at
   * entry, as seen from here (x86: `ret` popped the hijacked word, so one word below the stack
   * pointer; elsewhere the stack pointer is back where it was).
   */
  returnedFrameSp(cpu: ProbeCpu): bigint;
  /**
   * arch_rethook_fixup_return and the like: leave no trampoline address behind once the real
   * return address `real` is known (x86: the word at `frame`; ppc: LR; sparc64: nothing).
   */
  fixupKretprobeReturn(cpu: ProbeCpu, frame: bigint, real: bigint): void;
  /**
   * Optional: text this arch adds to the kprobe blacklist (arch_populate_kprobe_blacklist), as
   * [start, end) symbol pairs of the guest kernel (x86: __entry_text_start/__entry_text_end).
   */
  readonly blacklistRanges?: ReadonlyArray<readonly [start: string, end: string]>;
  /** Optional: functions kretprobes may not target (kretprobe_blacklist; x86: __switch_to). */
  readonly kretprobeBlacklist?: readonly string[];
  /** Jump optimization (optprobes): every target answers, those without it with a refusal. */
  readonly optimize: OptProbeArch;
}

// --- uprobes (arch_uprobe_analyze_insn, pre_xol/post_xol, uretprobe hijack) --------------------

/**
 * How a uprobe at one user instruction runs, decided once when the uprobe is first installed
 * (prepare_uprobe → arch_uprobe_analyze_insn). Unlike kprobes there is no boosting, and the
 * step happens in the task's own context from a slot of the per-mm XOL page.
 * - `emulate`: arch_uprobe_skip_sstep succeeds (x86 branches, NOPs and `push reg`, plus what this
 *   engine cannot step because it would leave the slot: ret, loop/jcxz, call/jmp through a
 *   register; ppc every branch and addpcis; sparc64 `nop`): `emulate` performs the effect, PC
 *   included, and may write memory (x86 pushes) through `cpu.mem`. It returns false when that
 *   access faulted (x86) — then the core steps the instruction instead (preXol … postXol), and
 *   the copy raises the same fault from the slot, so the task gets the right signal.
 * - `step`: copy to the slot (`slotBytes`, ending in the arch's step trap at `stepTrapOffset`),
 *   `preXol` before the task runs it, `postXol` at the step trap, `abortXol` if anything else
 *   (a fault in the copy, a fatal signal) ends the step.
 *
 * Every arch runs the step as copy + trailing trap inside the same emulation run (Linux uses TF /
 * MSR_SE on x86 / ppc; the engine has no single-step, see reference/unicorn-2.0.1.md). So a copy
 * must never leave its slot: whatever would is emulated or rewritten by the back-end.
 * `slotBytes` does not depend on `slotAddr` on any arch (x86-64 RIP-relative operands go through
 * a scratch register, not a re-based displacement), but takes it for symmetry with kprobes.
 *
 * sparc64 needs the trap's architectural next PC: the core must pass the hit's `pcAfter` in the
 * ProbeCpu given to `emulate` and `preXol`, and the step trap's in the one given to `postXol`.
 */
export interface PreparedUprobe {
  readonly insn: DecodedInsn;
  readonly mode: 'emulate' | 'step';
  /**
   * `vaddr`: where this mm maps the probed instruction. A uprobe is one (inode, offset), analysed
   * once, and mms may map the file at different addresses, so nothing here may depend on the
   * address analyzeUprobe was given (like preXol/postXol/abortXol, which take it too). Absent =
   * that address.
   */
  emulate?(cpu: ProbeCpu, vaddr?: bigint): boolean;
  /** Slot contents (copy + trailing step trap); at most UprobeArch.xolSlotBytes bytes. */
  slotBytes(slotAddr: bigint): Uint8Array;
  /** Offset in the slot of the trailing step trap: the trap there ends the step. */
  readonly stepTrapOffset: number;
  /**
   * arch_uprobe_pre_xol: called at the hit with the PC already set back to `vaddr` (Linux's
   * handle_swbp does that before the handlers run); sets the PC to the slot (and, e.g., x86-64
   * RIP-relative: loads the scratch register). Returns what postXol/abortXol need (sparc64: the
   * saved tnpc; x86: the scratch register's old value, a rep count put aside).
   */
  preXol(cpu: ProbeCpu, slotAddr: bigint, vaddr: bigint): unknown;
  /**
   * arch_uprobe_post_xol at the step trap: PC back into the original text, fixups applied. It may
   * leave the PC at `vaddr` itself: the task then traps on the breakpoint again and the probe
   * fires again. That is Linux's -ERESTART (x86: the fallback of a call whose push faulted) and
   * what a TF single-step of a `rep` string instruction does after each iteration but the last.
   */
  postXol(cpu: ProbeCpu, slotAddr: bigint, vaddr: bigint, state: unknown): void;
  /** arch_uprobe_abort_xol: the step faulted or was interrupted; PC = vaddr, state undone. */
  abortXol(cpu: ProbeCpu, slotAddr: bigint, vaddr: bigint, state: unknown): void;
  /**
   * Set when postXol does nothing but put the PC at vaddr + this many bytes, whatever the hit
   * (no register fixed up, nothing kept from preXol): such a step may be finished by the engine's
   * native trap hook without calling postXol (UprobeArch.nativeStepTrap). Absent: postXol runs.
   */
  readonly plainStepNext?: number;
}

/**
 * How the step trap behind a slot copy reaches the engine's UC_HOOK_INTR hook: its interrupt
 * number, the PC register (Unicorn's id) and how far past the trap instruction the PC reads there.
 */
export interface NativeStepTrapSpec {
  readonly intno: number;
  readonly pcReg: number;
  readonly pcAfterTrap: number;
  /**
   * The breakpoint hit's `pcAfter` is the probed instruction's architectural next PC (sparc64's
   * NPC), which a plain step continues from: only a hit whose pcAfter is the plain resume address
   * (the instruction runs in sequence) may be finished natively. A probe in a delay slot goes on
   * at the pending branch target instead, which the fix-up in JavaScript takes from the hit.
   */
  readonly hitPcAfterIsNext?: boolean;
}

/**
 * Where a uretprobe instance is checked for liveness (arch_uretprobe_is_alive's enum rp_check):
 * `call` when a new instance is pushed (RP_CHECK_CALL), `chain-call` when the new instance is
 * chained to the previous one because the return address already was the trampoline
 * (RP_CHECK_CHAIN_CALL, a tail call), `ret` at the trampoline for the next instance (RP_CHECK_RET).
 */
export type UretprobeCheck = 'call' | 'chain-call' | 'ret';

export interface UprobeArch {
  /** UPROBE_SWBP_INSN (x86 int3, ppc `trap`, sparc64 `ta 0x73`), written over the first bytes. */
  readonly swbp: Uint8Array;
  /** How many original bytes copy_insn reads (MAX_UINSN_BYTES). */
  readonly maxInsnBytes: number;
  /** UPROBE_XOL_SLOT_BYTES as this engine lays slots out (see each back-end for deviations). */
  readonly xolSlotBytes: number;
  /** What a freed XOL slot is filled with (`xolSlotBytes` bytes, traps from any boundary). */
  readonly xolPoison: Uint8Array;
  /** What a hit reads and writes (see HitRegisters). */
  readonly hitRegisters: HitRegisters;
  /**
   * is_trap_insn: the bytes start with any trap the arch knows (ppc: every tw/twi/td/tdi; x86:
   * int3; sparc64: only the swbp word itself, Linux's default is_swbp_insn). prepare_uprobe
   * refuses such an original (-ENOTSUPP); a trap with no uprobe behind it that is still a trap
   * is the program's own (SIGTRAP).
   */
  isTrapInsn(bytes: Uint8Array): boolean;
  /** arch_uprobe_analyze_insn: decide the execution mode, or refuse with Linux's errno/reason. */
  analyzeUprobe(vaddr: bigint, bytes: Uint8Array): PreparedUprobe | ProbeRefusal;
  /**
   * arch_uretprobe_hijack_return_addr at the probed function's entry (user ABI): replace the
   * return address with `trampoline`, give back the original. When the return address already is
   * the trampoline, it is given back unchanged (the core chains the new instance). Returns
   * undefined when the return address cannot be read or written (Linux: -1 → no instance; x86's
   * partial write → SIGSEGV cannot happen here: a word is written whole or not at all).
   */
  hijackUserReturn(cpu: ProbeCpu, trampoline: bigint): bigint | undefined;
  /** arch_uretprobe_is_alive: is the instance recorded with stack pointer `riStack` still live? */
  uretprobeIsAlive(cpu: ProbeCpu, riStack: bigint, ctx: UretprobeCheck): boolean;
  /** The stack pointer recorded in a return instance (return_instance.stack). */
  userSp(cpu: ProbeCpu): bigint;
  /**
   * Where the engine's native trap hook may finish plain steps (PreparedUprobe.plainStepNext)
   * itself; absent: every step trap goes through the JavaScript trap path.
   */
  readonly nativeStepTrap?: NativeStepTrapSpec;
}

// --- optprobes (arch_prepare_optimized_kprobe, arch_optimize_kprobes) ---------------------------

/** The function a probe lies in (can_optimize needs its bounds: x86 decodes the whole of it). */
export interface OptFunction {
  readonly start: bigint;
  readonly end: bigint;
}

/**
 * A probe that can be jump-optimized, as the arch prepared it (arch_prepare_optimized_kprobe).
 * The core lays the detour out as an entry — where the jump lands; the host runs the handlers
 * there (a code hook on the entry: the emulator's crossing, no trap, no step) — followed by the
 * body the entry jumps to: the relocated original instructions and a jump back.
 */
export interface OptimizedInsn {
  /** Bytes of original text the jump replaces (x86: the copied instructions, >= 5; ppc64: 4). */
  readonly size: number;
  /** Bytes of the body (copied instructions + jump back), for allocation. */
  readonly bodySize: number;
  /** The jump written at the probe address to `entry` (may be shorter than `size`). */
  jumpBytes(entry: bigint): Uint8Array;
  /** The entry's own instruction, a jump to `body` (run after the handlers). */
  entryBytes(entry: bigint, body: bigint): Uint8Array;
  /** The body at `body`: the relocated copy and the jump back. */
  bodyBytes(body: bigint): Uint8Array;
  /**
   * Can the detour live at `entry`/`body`? (x86: rel32 both ways and RIP-relative operands;
   * ppc64: the branch range both ways, ±32 MiB.) Linux's -ERANGE.
   */
  placementRefusal(entry: bigint, body: bigint): ProbeRefusal | undefined;
  /**
   * Instead of a copied body, the host emulates the instruction after the handlers and leaves the
   * PC where it went (ppc64's emulate_step in the detour, for branches whose copy would compute
   * the wrong link address). Absent = run the body.
   */
  emulate?(cpu: ProbeCpu): void;
  /** Guest instructions the body runs per hit (the entry's jump included), for the cost model. */
  readonly detourInsns: number;
}

export interface OptProbeArch {
  /**
   * can_optimize + arch_prepare_optimized_kprobe's checks for the probe at `addr` inside `fn`:
   * the arch's reason (Linux's errno and words) when it cannot be optimized. `read` gives
   * original text (never breakpoints or jumps: Linux's __recover_optprobed_insn).
   */
  prepareOptimized(read: (addr: bigint, len: number) => Uint8Array, fn: OptFunction, addr: bigint): OptimizedInsn | ProbeRefusal;
  /** Bytes per detour entry (the entry jump), and the entry's breakpoint filler when unused. */
  readonly entrySize: number;
}

/** The hook of a target that has no optprobes (ppc32, sparc64): every probe stays a trap. */
export function optprobesNotSupported(why: string): OptProbeArch {
  return {
    entrySize: 8,
    // EOPNOTSUPP: the kernel has no arch_prepare_optimized_kprobe at all (no CONFIG_OPTPROBES).
    prepareOptimized: () => ({ refused: true, errno: 95, reason: `optprobes not supported: ${why}` }),
  };
}
