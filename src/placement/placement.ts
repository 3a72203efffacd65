/**
 * The placement map: for an address, would a uprobe (user ELF) or a kprobe (guest kernel) be
 * accepted there, and how would it run?
 *
 * The answer is computed by the same steps, in the same order, as registration does them — the
 * generic checks of src/uprobes (offset alignment, copy_insn, is_trap_insn) and src/kprobes
 * (symbol lookup, check_kprobe_address_safe, the instruction-boundary check), then the arch's own
 * analysis (arch_uprobe_analyze_insn / arch_prepare_kprobe) through arch/probes.ts. Nothing is
 * armed and no guest runs. test/placement checks the map against real registrations.
 */
import { isRefusal, type DecodedInsn, type ProbeArch, type StepMode, type UprobeArch } from '../../arch/probes.js';
import type { Arch } from '../../arch/types.js';
import { probeArchFor, uprobeArchFor } from '../../arch/index.js';
// Decoding is synchronous and needs Capstone loaded: this module's users get it at import.
import '../../arch/decoders-ready.js';
import type { ElfFile } from '../elf/index.js';
import { E, errnoName } from '../kernel/errno.js';
import type { Kprobes } from '../kprobes/kprobes.js';
import { canOptimize, checkKprobeAddress, originalText } from '../kprobes/checks.js';
import { countSlotInsns, hitCost, optimizedCost, type HitCost } from './cost.js';

export type ProbeKind = 'uprobe' | 'kprobe';

/** How a probe runs: the trap modes, or (kprobes) jump-optimized once the optimizer ran. */
export type PlacementMode = StepMode | 'optimize';

export interface Accepted {
  readonly ok: true;
  /** 'optimize' when the kprobe can be jump-optimized; else how its trap runs. */
  readonly mode: PlacementMode;
  /** kprobes: how the breakpoint runs before the optimizer ran (and when optimization is off). */
  readonly trapMode?: StepMode;
  /** kprobes: why it cannot be optimized (the arch's can_optimize, a detour out of reach). */
  readonly notOptimized?: { readonly errno: number; readonly reason: string };
  /** Bytes written to the slot (undefined for emulate). */
  readonly slot: Uint8Array | undefined;
  readonly cost: HitCost;
  /** kprobes: the mode when the probe has a post handler (a boost becomes a step). */
  readonly modeWithPostHandler?: StepMode;
}

export interface Refused {
  readonly ok: false;
  /** Positive Linux errno (registration returns its negation). */
  readonly errno: number;
  readonly reason: string;
}

export type Verdict = Accepted | Refused;

/** One address of the map. */
export interface Placement {
  readonly kind: ProbeKind;
  readonly addr: bigint;
  /** uprobes: the file offset registration takes (uprobe_events' PATH:OFFSET). */
  readonly fileOffset?: bigint;
  /** `function+0xoff`, or the address in hex outside any function. */
  readonly where: string;
  /** The instruction's bytes (as decoded here; a few raw bytes when undecodable). */
  readonly bytes: Uint8Array;
  readonly text: string;
  /** Does an instruction start here (decoding from the function's start)? */
  readonly boundary: boolean;
  /** Not a valid instruction (WalkedInsn.data). */
  readonly data?: boolean;
  readonly verdict: Verdict;
  /** Something a user must know although the kernel accepts the probe. */
  readonly warning?: string;
}

/** ENOSPC is missing from the kernel layer's table (no system call returns it yet). */
const EXTRA_ERRNO = new Map<number, string>([[28, 'ENOSPC']]);
const { EINVAL, EIO, ENOTSUPP } = E;
export const errnoLabel = (n: number): string => errnoName.get(n) ?? EXTRA_ERRNO.get(n) ?? `errno ${n}`;

const refuse = (errno: number, reason: string): Refused => ({ ok: false, errno, reason });

/** p_flags bits (elf.h). */
const PF_X = 1;
const PF_W = 2;

/** One instruction of a linear walk. */
export interface WalkedInsn {
  readonly addr: bigint;
  readonly length: number;
  readonly insn: DecodedInsn | undefined;
  /**
   * Not a valid instruction: the decoder refused it, or only had the fixed-width back-ends'
   * fallback listing for it (`.long 0x…`, printed when Capstone knows no such instruction) —
   * data in text, such as the inline jump tables gcc puts after a ppc64 `bctr`.
   */
  readonly data: boolean;
}

/** The fixed-width back-ends' listing of a word that is no instruction (their decode's fallback). */
const FALLBACK_LISTING = /^\.(long|word|byte|short|quad)\b/;

let capstoneReady = false;
/** Set once the disassembler loaded: before that every fixed-width word lists as `.long`. */
export function setListingsReady(ready: boolean): void {
  capstoneReady = ready;
}

export function isData(insn: DecodedInsn | undefined): boolean {
  return insn === undefined || (capstoneReady && FALLBACK_LISTING.test(insn.text));
}

/**
 * Decode [start, end) from `start` on, as the kernel's boundary check (and a disassembler) does.
 * Bytes the decoder refuses advance by `step` (the breakpoint's width: 1 byte on x86, a word on
 * fixed-width targets), so data in text shows up as undecodable units rather than ending the walk.
 */
export function walkInsns(decoder: ProbeArch, read: (a: bigint, n: number) => Uint8Array, start: bigint, end: bigint, step: number): WalkedInsn[] {
  const out: WalkedInsn[] = [];
  let a = start;
  while (a < end) {
    const bytes = read(a, Math.min(decoder.maxInsnLength, Number(end - a)));
    const insn = decoder.decode(a, bytes);
    const length = insn && insn.length > 0 && BigInt(insn.length) <= end - a ? insn.length : Math.min(step, Number(end - a));
    const ok = insn && insn.length === length ? insn : undefined;
    out.push({ addr: a, length, insn: ok, data: isData(ok) });
    a += BigInt(length);
  }
  return out;
}

const hexBytes = (b: Uint8Array): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
export { hexBytes };

/** A function of the ELF the map walks: [start, end) and its name. */
export interface MapFunction {
  readonly name: string;
  readonly start: bigint;
  readonly size: bigint;
}

function functionsOf(elf: ElfFile): MapFunction[] {
  const seen = new Set<bigint>();
  const out: MapFunction[] = [];
  for (const f of elf.functions()) {
    // Aliases (several names, one body) are walked once, under the first name.
    if (f.size === 0n || seen.has(f.codeAddress)) continue;
    seen.add(f.codeAddress);
    out.push({ name: f.name, start: f.codeAddress, size: f.size });
  }
  return out;
}

/** What both placers share: decoding, the function table, the listing of one function. */
abstract class Placer {
  readonly decoder: ProbeArch;
  readonly functions: MapFunction[];

  constructor(
    readonly arch: Arch,
    readonly elf: ElfFile,
  ) {
    this.decoder = probeArchFor(arch);
    this.functions = functionsOf(elf);
  }

  abstract readonly kind: ProbeKind;
  /** The unit a decode failure skips (the breakpoint's width). */
  protected abstract readonly step: number;
  /** The row for `addr`; `walked` = the walk of its function when the caller already has it. */
  abstract placeAt(addr: bigint, walked?: readonly WalkedInsn[]): Placement;

  /** Bytes of the ELF's memory image (zero past the end of its segment). */
  read(a: bigint, n: number): Uint8Array {
    const seg = this.elf.segmentAt(a);
    if (!seg) return new Uint8Array(0);
    const room = seg.vaddr + seg.memsz - a;
    return this.elf.textBytesAt(a, Math.max(0, Math.min(n, Number(room))));
  }

  functionNamed(name: string): MapFunction | undefined {
    const s = this.elf.symbolByName(name);
    if (!s) return undefined;
    return this.functions.find((f) => f.start === s.codeAddress);
  }

  functionAt(addr: bigint): MapFunction | undefined {
    return this.functions.find((f) => addr >= f.start && addr < f.start + f.size);
  }

  where(addr: bigint): string {
    const f = this.functionAt(addr);
    return f ? `${f.name}+0x${(addr - f.start).toString(16)}` : `0x${addr.toString(16)}`;
  }

  /** The instruction starts of `f`, decoded from its start. */
  walk(f: MapFunction): WalkedInsn[] {
    return walkInsns(this.decoder, (a, n) => this.read(a, n), f.start, f.start + f.size, this.step);
  }

  /** One row per instruction of `f`. */
  map(f: MapFunction): Placement[] {
    const walked = this.walk(f);
    return walked.map((w) => this.placeAt(w.addr, walked));
  }

  /** The instruction containing `addr` (for listings of a mid-instruction address). */
  protected describe(addr: bigint, walkedIn?: readonly WalkedInsn[]): { bytes: Uint8Array; text: string; boundary: boolean; container: WalkedInsn | undefined; data: boolean } {
    const f = this.functionAt(addr);
    const walked = walkedIn ?? (f ? this.walk(f) : []);
    const container = walked.find((w) => addr >= w.addr && addr < w.addr + BigInt(w.length));
    const boundary = container?.addr === addr;
    if (boundary && container) {
      return { bytes: this.read(addr, container.length), text: container.insn?.text ?? '(bad)', boundary, container, data: container.data };
    }
    const raw = this.read(addr, this.decoder.maxInsnLength);
    const insn = this.decoder.decode(addr, raw);
    return { bytes: insn ? raw.subarray(0, insn.length) : raw.subarray(0, this.step), text: insn?.text ?? '(bad)', boundary: f === undefined, container, data: isData(insn) };
  }

  protected slotCost(mode: StepMode, slotAddr: bigint, slot: Uint8Array | undefined, trapAt: number | undefined): HitCost {
    if (mode === 'emulate' || !slot) return hitCost(mode, 0);
    const end = mode === 'step' ? (trapAt ?? slot.length) : slot.length;
    return hitCost(mode, countSlotInsns(this.decoder, slotAddr, slot, end, mode === 'step' ? trapAt : undefined));
  }
}

/**
 * uprobes on a user ELF: uprobe_register's argument checks, prepare_uprobe's copy_insn and
 * is_trap_insn, then arch_uprobe_analyze_insn. Like Linux, uprobes do not check instruction
 * boundaries: a probe in the middle of an instruction is accepted (and breaks that instruction) —
 * the map says so in a warning.
 */
export class UprobePlacer extends Placer {
  readonly kind = 'uprobe' as const;
  readonly up: UprobeArch;
  protected readonly step: number;
  /** Where the first free XOL slot would be (slot 0 is the return trampoline). */
  private readonly slotAddr: bigint;

  constructor(arch: Arch, elf: ElfFile) {
    super(arch, elf);
    this.up = uprobeArchFor(arch);
    this.step = this.up.swbp.length;
    this.slotAddr = arch.layout.taskSize - BigInt(arch.layout.pageSize) + BigInt(this.up.xolSlotBytes);
  }

  /** The verdict alone, in registration's order (what the property test compares). */
  verdictAt(addr: bigint): Verdict {
    const off = this.elf.vaddrToOffset(addr);
    if (off === undefined) return refuse(EINVAL, 'not in the file: the address has no file offset (bss or unmapped)');
    if (off % BigInt(this.up.swbp.length) !== 0n) return refuse(EINVAL, `file offset 0x${off.toString(16)} is not a multiple of the breakpoint size (${this.up.swbp.length})`);
    const bytes = this.elf.bytes.subarray(Number(off), Number(off) + this.up.maxInsnBytes);
    if (bytes.length === 0) return refuse(EIO, 'nothing to copy at this file offset (copy_insn)');
    if (this.up.isTrapInsn(bytes)) return refuse(ENOTSUPP, "a trap instruction: the program's own breakpoint cannot be probed (is_trap_insn)");
    const prep = this.up.analyzeUprobe(addr, Uint8Array.from(bytes));
    if (isRefusal(prep)) return refuse(prep.errno, prep.reason);
    const slot = prep.mode === 'step' ? prep.slotBytes(this.slotAddr) : undefined;
    return { ok: true, mode: prep.mode, slot, cost: this.slotCost(prep.mode, this.slotAddr, slot, prep.stepTrapOffset) };
  }

  placeAt(addr: bigint, walked?: readonly WalkedInsn[]): Placement {
    const d = this.describe(addr, walked);
    const verdict = this.verdictAt(addr);
    const seg = this.elf.segmentAt(addr);
    let warning: string | undefined;
    if (!d.boundary && d.container) {
      warning = `mid-instruction: uprobes do not check boundaries, so this is accepted, but the breakpoint corrupts the instruction at ${this.where(d.container.addr)}: the program runs different code there (the probe may even be hit, as part of that other code)`;
    } else if (d.data && verdict.ok) {
      warning = 'not a valid instruction — data in text (an inline jump table?): the kernel accepts the probe, and its breakpoint corrupts the data';
    } else if (seg && verdict.ok && (!(seg.flags & PF_X) || seg.flags & PF_W)) {
      warning = 'not in a read-only executable mapping: registration succeeds but the breakpoint is never installed (valid_vma)';
    }
    return { kind: 'uprobe', addr, fileOffset: this.elf.vaddrToOffset(addr), where: this.where(addr), bytes: d.bytes, text: d.text, boundary: d.boundary, data: d.data, verdict, warning };
  }
}

/**
 * kprobes on the guest kernel: _kprobe_addr (the containing function), check_kprobe_address_safe
 * (kernel text, blacklist), the instruction-boundary check, arch_prepare_kprobe, and the slot
 * check for the first slot of the insn area. The blacklist is the core's own (Kprobes).
 */
export class KprobePlacer extends Placer {
  readonly kind = 'kprobe' as const;
  protected readonly step: number;
  private readonly slotAddr: bigint;

  constructor(private readonly kprobes: Kprobes) {
    super(kprobes.machine.arch, kprobes.machine.kernel.elf);
    this.step = this.decoder.breakpoint.length;
    this.slotAddr = kprobes.machine.kernel.insnAreaBase;
  }

  private originalText(a: bigint, n: number): Uint8Array {
    return originalText(this.kprobes.machine.kernel, a, n);
  }

  verdictAt(addr: bigint): Verdict {
    const trap = this.trapVerdict(addr);
    if (!trap.ok) return trap;
    // The optimizer's arch checks against the first detour buffer (checks.ts, as the optimizer).
    const opt = canOptimize(this.kprobes.machine.kernel, this.decoder, addr, this.kprobes.optimizer.detourAt(0));
    if (isRefusal(opt)) return { ...trap, trapMode: trap.mode as StepMode, notOptimized: { errno: opt.errno, reason: opt.reason } };
    return { ...trap, mode: 'optimize', trapMode: trap.mode as StepMode, cost: optimizedCost(opt.detourInsns) };
  }

  /** How the breakpoint itself would run (registration's checks, then arch_prepare_kprobe). */
  private trapVerdict(addr: bigint): Verdict {
    const k = this.kprobes.machine.kernel;
    // The same checks, in the same order, as register_kprobe (src/kprobes/checks.ts).
    const checked = checkKprobeAddress(k, this.decoder, { addr });
    if (isRefusal(checked)) return refuse(checked.errno, checked.reason);
    const bytes = this.originalText(addr, this.decoder.maxInsnLength);
    const prep = this.decoder.prepareKprobe(addr, bytes, { hasPostHandler: false });
    if (isRefusal(prep)) return refuse(prep.errno, prep.reason);
    let modeWithPostHandler: StepMode = prep.mode;
    if (prep.mode === 'boost') {
      const withPost = this.decoder.prepareKprobe(addr, bytes, { hasPostHandler: true });
      modeWithPostHandler = isRefusal(withPost) ? 'step' : withPost.mode;
    }
    if (prep.mode === 'emulate') return { ok: true, mode: 'emulate', slot: undefined, cost: hitCost('emulate', 0), modeWithPostHandler };
    // powerpc emulates first (try_to_emulate), post handler or not: a hit is one trap; the slot
    // is there only for an emulation that declines (a store that would fault).
    if (prep.tryEmulate) return { ok: true, mode: 'emulate', slot: undefined, cost: hitCost('emulate', 0), modeWithPostHandler: 'emulate' };
    const bad = prep.slotRefusal?.(this.slotAddr);
    if (bad) return refuse(bad.errno, bad.reason);
    const slot = prep.slotBytes(this.slotAddr);
    return { ok: true, mode: prep.mode, slot, cost: this.slotCost(prep.mode, this.slotAddr, slot, prep.stepTrapOffset), modeWithPostHandler };
  }

  placeAt(addr: bigint, walked?: readonly WalkedInsn[]): Placement {
    const d = this.describe(addr, walked);
    const verdict = this.verdictAt(addr);
    const warning = d.data && verdict.ok ? 'not a valid instruction — data in text: the kernel accepts the probe, and its breakpoint corrupts the data' : undefined;
    return { kind: 'kprobe', addr, where: this.where(addr), bytes: d.bytes, text: d.text, boundary: d.boundary, data: d.data, verdict, warning };
  }
}
