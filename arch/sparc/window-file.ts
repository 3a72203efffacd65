/**
 * sparc64: the CPU's own register windows, reached in QEMU's CPUSPARCState (cpu-state.ts finds it).
 *
 * Why: Unicorn never resets its sparc64 CPU, so CANSAVE = CANRESTORE = 0 and every `save` raised a
 * spill trap, every `restore`/`return` a fill trap, each serviced by the host (~3 µs): a
 * call-heavy program ran 20× slower than on x86-64. Linux keeps NWINDOWS − 2 = 6 caller windows
 * in the register file and traps only when they overflow or run out (spill_*_normal,
 * fill_*_normal). With the counters set as Linux leaves them (CANSAVE + CANRESTORE = 6,
 * OTHERWIN = 0, CLEANWIN = NWINDOWS − 1 so no clean_window trap), QEMU runs `save` and `restore`
 * itself and the host only sees the real overflow and underflow traps, which it serves here the
 * way Linux's handlers do: spill the oldest resident window to its stack, or fill the caller's
 * window from its stack, then let the CPU run the trapped instruction again (`retry`), with its
 * own PC and NPC untouched — so a `restore` in a delay slot needs no reconstruction.
 *
 * QEMU's layout (target/sparc/cpu.h, win_helper.c), checked at locate():
 * - `cwp` (u32) right after `fpr[32]` at 408; `regbase[MAX_NWINDOWS * 16 + 8]` at 440 (after
 *   tbr, psrpil, pil_in, interrupt_index); `regwptr` (at 64) = regbase + cwp × 16 registers.
 * - QEMU's cwp counts the other way from the architecture's CWP: `save` moves to cwp − 1, so a
 *   window's caller is at cwp + 1. Window w is regbase[16w .. 16w + 24): %o, %l, then %i, which
 *   are its caller's %o at regbase[16(w + 1)]. For the last window the ins wrap to regbase[0..8),
 *   copied to the 8 spare registers regbase[128..136) while cwp = NWINDOWS − 1 (cpu_set_cwp): the
 *   live copy is there then, at regbase[0..8) otherwise.
 * - cansave, canrestore, otherwin, wstate, cleanwin: u32s at pstate + 12 … + 28.
 * Each register is a host-endian (little-endian) u64; the guest's stack is big-endian.
 */
import koffi from 'koffi';
import { REG, STACK_BIAS } from './isa.js';

export const NWINDOWS = 8;
/** CANSAVE + CANRESTORE with OTHERWIN = 0. */
export const MAX_RESIDENT = NWINDOWS - 2;

const OFF_REGWPTR = 64;
const OFF_PC = 72;
const OFF_NPC = 80;
const OFF_CWP = 408;
const OFF_REGBASE = 440;
/** Logical registers of the file: 16 per window; the 8 spare ones are the wrap copy. */
const FILE_REGS = NWINDOWS * 16;
const CANSAVE = 12;
const CANRESTORE = 16;
const OTHERWIN = 20;
const WSTATE = 24;
const CLEANWIN = 28;
const PSTATE_PRIV = 0x4;

/** 16 registers: %l0–%l7 then %i0–%i7. */
export type Window = bigint[];

/** Where a window's save area is and its word size: 64-bit frames have an odd (biased) %sp. */
export function frameOf(sp: bigint): { addr: bigint; wide: boolean } {
  const wide = (sp & 1n) === 1n;
  return { addr: BigInt.asUintN(64, wide ? sp + STACK_BIAS : sp & 0xffffffffn), wide };
}

/** The memory a spill or fill may use without the host stopping the run (see spillOldest). */
export interface WindowStack {
  /** Fill `into` from `addr`; false, `into` unspecified, when reading would fault. */
  readNow(addr: bigint, into: Uint8Array): boolean;
  /** Write `bytes` at `addr` if that needs no copy-on-write copy and cannot fault; false otherwise, nothing written. */
  writeNow(addr: bigint, bytes: Uint8Array): boolean;
}

export class CpuWindowFile {
  private readonly v: DataView;
  private readonly b: Uint8Array;
  private readonly ctr: DataView;
  /** One save area's bytes, reused by every spill and fill (a fresh 128-byte array costs ~3 µs). */
  private readonly frame = new Uint8Array(128);
  private readonly frame32 = this.frame.subarray(0, 64);
  private readonly pstate: DataView;

  private constructor(
    env: bigint,
    pstateOff: number,
  ) {
    const bytes = koffi.view(env as never, OFF_REGBASE + (FILE_REGS + 8) * 8) as ArrayBuffer;
    this.v = new DataView(bytes);
    this.b = new Uint8Array(bytes);
    this.ctr = new DataView(koffi.view((env + BigInt(pstateOff + CANSAVE)) as never, CLEANWIN - CANSAVE + 4) as ArrayBuffer);
    this.pstate = new DataView(koffi.view((env + BigInt(pstateOff)) as never, 4) as ArrayBuffer);
  }

  /**
   * The file of the CPUSPARCState at `env` (pstate at `pstateOff`, nwindows already checked), or
   * why its layout is not the one this module knows. Sets the counters as Linux leaves a fresh
   * task: no caller window resident, six free.
   */
  static open(env: bigint, pstateOff: number, read: (off: number, n: number) => Buffer): CpuWindowFile | string {
    const head = read(0, OFF_REGBASE);
    const cwp = head.readUInt32LE(OFF_CWP);
    if (cwp >= NWINDOWS) return `its cwp (${cwp}) is not a window number`;
    if (head.readBigUInt64LE(OFF_REGWPTR) !== env + BigInt(OFF_REGBASE + cwp * 16 * 8)) return 'its regwptr does not point into regbase';
    const c = read(pstateOff + 4, 32);
    // tl, maxtl, then the five window counters: Unicorn never resets the CPU, so tl and the
    // counters are 0 and maxtl is the CPU model's (a small number).
    const maxtl = c.readUInt32LE(4);
    if (c.readUInt32LE(0) !== 0 || maxtl === 0 || maxtl > 8) return 'its trap-level fields are not where Unicorn 2.1.1 keeps them';
    for (let k = 8; k < 28; k += 4) if (c.readUInt32LE(k) !== 0) return 'its window counters are not where Unicorn 2.1.1 keeps them';
    const f = new CpuWindowFile(env, pstateOff);
    f.ctr.setUint32(OTHERWIN - CANSAVE, 0, true);
    f.ctr.setUint32(WSTATE - CANSAVE, 0, true);
    f.ctr.setUint32(CLEANWIN - CANSAVE, NWINDOWS - 1, true);
    f.setCounters(0);
    return f;
  }

  get cwp(): number {
    return this.v.getUint32(OFF_CWP, true);
  }
  get canRestore(): number {
    return this.ctr.getUint32(CANRESTORE - CANSAVE, true);
  }
  /** PSTATE.PRIV clear: the trap came from user code, whose spills and fills are user accesses. */
  get userMode(): boolean {
    return (this.pstate.getUint32(0, true) & PSTATE_PRIV) === 0;
  }
  /** The PC of the trapped instruction (QEMU restored it, and NPC, before the hook). */
  get pc(): bigint {
    return this.v.getBigUint64(OFF_PC, true);
  }
  /**
   * Its next PC, exact inside a trap hook: a `ta` stores PC and NPC before raising, a helper's
   * exception restores both from the instruction's own data. (Not between runs: Unicorn's PC
   * write sets NPC = PC + 4.)
   */
  get npc(): bigint {
    return this.v.getBigUint64(OFF_NPC, true);
  }

  /** CANRESTORE = n caller windows resident, CANSAVE = the rest. */
  setCounters(n: number): void {
    this.ctr.setUint32(0, MAX_RESIDENT - n, true);
    this.ctr.setUint32(CANRESTORE - CANSAVE, n, true);
  }

  /** Byte offset (in the env) of logical register `l` of the file, for the current cwp. */
  private at(l: number, cwp: number): number {
    const r = l % FILE_REGS;
    return OFF_REGBASE + 8 * (cwp === NWINDOWS - 1 && r < 8 ? r + FILE_REGS : r);
  }

  /** Caller window `j` (1 = the current window's caller) as %l0–%l7, %i0–%i7. */
  readCaller(j: number): Window {
    const cwp = this.cwp;
    const w = (cwp + j) % NWINDOWS;
    const out: Window = new Array(16);
    for (let k = 0; k < 8; k++) out[k] = this.v.getBigUint64(this.at(16 * w + 8 + k, cwp), true);
    for (let k = 0; k < 8; k++) out[8 + k] = this.v.getBigUint64(this.at(16 * (w + 1) + k, cwp), true);
    return out;
  }

  /**
   * %o0–%l7 (r8–r23) of the window the CPU just left by `restore`/`return` (cwp − 1): still in the
   * file until a `save` reuses it. What a `return` computed its target from, for a run that stops
   * in its delay slot (traps.ts pendingNpc).
   */
  calleeReg(n: number): bigint {
    const cwp = this.cwp;
    return this.v.getBigUint64(this.at(16 * ((cwp + NWINDOWS - 1) % NWINDOWS) + n - REG.O0, cwp), true);
  }

  /** Zero the file's physical registers [r0, r1) (regbase indices). */
  private zeroRegs(r0: number, r1: number): void {
    if (r1 > r0) this.b.fill(0, OFF_REGBASE + 8 * r0, OFF_REGBASE + 8 * r1);
  }

  /** Make `windows` (oldest first, at most six) the resident callers; zero every other window. */
  place(windows: readonly Window[]): void {
    const cwp = this.cwp;
    const n = windows.length;
    // Registers of the current window (%o, %l and %i: 24 from 16 cwp) stay; every other one
    // becomes a caller's or zero, as Linux's clean_window handler would leave it.
    // Every system call's return does this, so the 104 registers go as (at most) two byte ranges
    // of the file: logical 16·cwp + 24 … 16·cwp + 127, wrapping at FILE_REGS; what wraps below 8
    // lives past the file for the last window (see `at`). setBigUint64 below wraps a value
    // modulo 2^64 by itself.
    const start = (16 * cwp + 24) % FILE_REGS;
    const end = start + FILE_REGS - 24;
    this.zeroRegs(start, Math.min(end, FILE_REGS));
    if (end > FILE_REGS) {
      const wrapped = end - FILE_REGS;
      if (cwp === NWINDOWS - 1) {
        this.zeroRegs(FILE_REGS, FILE_REGS + Math.min(wrapped, 8));
        this.zeroRegs(8, wrapped);
      } else this.zeroRegs(0, wrapped);
    }
    const v = this.v;
    for (let j = 1; j <= n; j++) {
      const win = windows[n - j]!;
      const w = (cwp + j) % NWINDOWS;
      for (let k = 0; k < 8; k++) v.setBigUint64(this.at(16 * w + 8 + k, cwp), win[k]!, true);
      for (let k = 0; k < 8; k++) v.setBigUint64(this.at(16 * (w + 1) + k, cwp), win[8 + k]!, true);
    }
    this.setCounters(n);
  }

  /**
   * spill_*_normal: the oldest resident window to the save area at its %sp (its %o6: the %i6 of
   * the window after it), then `saved`. False, with nothing changed, when there is none or the
   * store would fault or need the run to stop (the host then takes the slow path).
   */
  spillOldest(mem: WindowStack): boolean {
    const n = this.canRestore;
    if (n === 0) return false;
    const cwp = this.cwp;
    const w = (cwp + n) % NWINDOWS;
    const sp = this.v.getBigUint64(this.at(16 * w + REG.O6 - REG.O0, cwp), true);
    const wide = (sp & 1n) === 1n;
    const bytes = wide ? this.frame : this.frame32;
    for (let k = 0; k < 16; k++) {
      const src = this.at(k < 8 ? 16 * w + 8 + k : 16 * (w + 1) + k - 8, cwp);
      // Host little-endian to guest big-endian; a 32-bit frame keeps the low word.
      if (wide) for (let i = 0; i < 8; i++) bytes[8 * k + i] = this.b[src + 7 - i]!;
      else for (let i = 0; i < 4; i++) bytes[4 * k + i] = this.b[src + 3 - i]!;
    }
    if (!mem.writeNow(frameOf(sp).addr, bytes)) return false;
    this.setCounters(n - 1);
    return true;
  }

  /**
   * fill_*_normal: the caller's window from the save area at the current %fp, then `restored`.
   * False, with nothing changed, when a caller is still resident or the load would fault.
   */
  fillCaller(mem: WindowStack): boolean {
    if (this.canRestore !== 0) return false;
    const cwp = this.cwp;
    const fp = this.v.getBigUint64(this.at(16 * cwp + REG.I6 - REG.O0, cwp), true);
    const { addr, wide } = frameOf(fp);
    const bytes = wide ? this.frame : this.frame32;
    if (!mem.readNow(addr, bytes)) return false;
    const w = (cwp + 1) % NWINDOWS;
    for (let k = 0; k < 16; k++) {
      const dst = this.at(k < 8 ? 16 * w + 8 + k : 16 * (w + 1) + k - 8, cwp);
      if (wide) for (let i = 0; i < 8; i++) this.b[dst + i] = bytes[8 * k + 7 - i]!;
      else {
        for (let i = 0; i < 4; i++) this.b[dst + i] = bytes[4 * k + 3 - i]!;
        for (let i = 4; i < 8; i++) this.b[dst + i] = 0;
      }
    }
    this.setCounters(1);
    return true;
  }
}
