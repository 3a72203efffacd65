/**
 * SPARC V9 register windows, run by the host.
 *
 * Unicorn 2.1.1's sparc64 CPU is never reset: it stays at CWP 0 with CANSAVE = CANRESTORE = 0 and
 * none of the window registers is reachable through the API, so every `save` raises a spill trap,
 * every `restore`/`return` a fill trap and `flushw` a spill trap (reference/unicorn-2.0.1.md, re-checked on 2.1.1 in docs/unicorn.md).
 * The host therefore keeps the register file itself and Unicorn's one physical window is only
 * ever the *current* window: its %o/%l/%i registers are read and rewritten around each trap.
 *
 * The model is the architectural one with NWINDOWS = 8 and OTHERWIN = 0 (what a Linux user task
 * sees): at most CANSAVE + CANRESTORE = NWINDOWS − 2 = 6 caller windows stay resident. Resident
 * windows live here, oldest first, as their 16 registers (%l0–%l7, %i0–%i7; a window's %o
 * registers are the next newer window's %i). A `save` with all six in use spills the oldest one to
 * its stack the way Linux's spill handler does; a `restore` with none resident fills the caller's
 * window from its stack the way the fill handler does:
 * - 64-bit frames (odd %sp): 16 doublewords at %sp + 2047 (STACK_BIAS), %l0 first;
 * - 32-bit frames (even %sp): 16 words at %sp, low halves (Linux's spill_32bit/fill_32bit).
 * `flushw` (and `ta 3`, ST_FLUSH_WINDOWS) spills every resident window. A window a `save` opens is
 * clean: %l and %o zero (Linux's clean_window handler zeroes them for a window another context may
 * have used; stale data of the same task would be just as legal, zero is deterministic).
 */
import { REG, STACK_BIAS } from './isa.js';

// Register numbers as plain constants: these loops run on every save and restore.
const O0 = REG.O0;
const L0 = REG.L0;
const I0 = REG.I0;
const I6 = REG.I6;
const BIAS = STACK_BIAS;

export const NWINDOWS = 8;
/** CANSAVE + CANRESTORE with OTHERWIN = 0. */
export const MAX_RESIDENT = NWINDOWS - 2;

export interface WindowMemory {
  read(addr: bigint, len: number): Uint8Array;
  write(addr: bigint, bytes: Uint8Array): void;
}

/** 16 registers: %l0–%l7 then %i0–%i7. */
export type Window = bigint[];

export class RegisterWindows {
  /** Caller windows still in the register file, oldest first (CANRESTORE = length). */
  resident: Window[] = [];
  /** Windows written to memory by spills (statistics, tests). */
  spills = 0;
  fills = 0;

  get canRestore(): number {
    return this.resident.length;
  }

  get canSave(): number {
    return MAX_RESIDENT - this.resident.length;
  }

  /**
   * `save`: `r` is the current window as r0..r31 (%g, %o, %l, %i) and is updated in place to the
   * new window; `value` (rs1 + op2, computed in the old window) goes to `rd` of the new one.
   */
  save(r: bigint[], value: bigint, rd: number, mem: WindowMemory): void {
    if (this.resident.length >= MAX_RESIDENT) this.spillOldest(r, mem);
    this.resident.push(r.slice(L0, L0 + 16));
    for (let k = 0; k < 8; k++) {
      r[I0 + k] = r[O0 + k]!;
      r[L0 + k] = 0n;
      r[O0 + k] = 0n;
    }
    if (rd !== 0) r[rd] = value;
  }

  /** `restore` (and the window half of `return`, with rd = 0): back to the caller's window. */
  restore(r: bigint[], value: bigint, rd: number, mem: WindowMemory): void {
    const caller = this.resident.pop() ?? this.fill(r[I6]!, mem);
    for (let k = 0; k < 8; k++) r[O0 + k] = r[I0 + k]!;
    for (let k = 0; k < 16; k++) r[L0 + k] = caller[k]!;
    if (rd !== 0) r[rd] = value;
  }

  /** `flushw`: every resident window to its stack, oldest first. */
  flush(r: bigint[], mem: WindowMemory): void {
    while (this.resident.length > 0) this.spillOldest(r, mem);
  }

  private spillOldest(r: bigint[], mem: WindowMemory): void {
    // The oldest window's %sp (%o6) is the %i6 (%fp) of the next newer window.
    const newer = this.resident[1];
    const sp = newer ? newer[8 + 6]! : r[I6]!;
    const w = this.resident[0]!;
    writeWindow(mem, sp, w);
    this.resident.shift();
    this.spills++;
  }

  private fill(sp: bigint, mem: WindowMemory): Window {
    this.fills++;
    return readWindow(mem, sp);
  }

  /** Flattened copy (count, then 16 words per window) for register snapshots. */
  serialize(): bigint[] {
    const out: bigint[] = [BigInt(this.resident.length)];
    for (const w of this.resident) out.push(...w);
    return out;
  }

  /** Inverse of serialize(), reading from `v` at `at`; returns the index after it. */
  deserialize(v: readonly bigint[], at: number): number {
    const n = Number(v[at]!);
    this.resident = [];
    let p = at + 1;
    for (let i = 0; i < n; i++, p += 16) this.resident.push(v.slice(p, p + 16));
    return p;
  }
}

/** Where a window's save area is and its word size: 64-bit frames have an odd (biased) %sp. */
function frameOf(sp: bigint): { addr: bigint; wide: boolean } {
  const wide = (sp & 1n) === 1n;
  return { addr: BigInt.asUintN(64, wide ? sp + BIAS : sp & 0xffffffffn), wide };
}

export function writeWindow(mem: WindowMemory, sp: bigint, w: Window): void {
  const { addr, wide } = frameOf(sp);
  const b = new Uint8Array(wide ? 128 : 64);
  const v = new DataView(b.buffer);
  for (let k = 0; k < 16; k++) {
    if (wide) v.setBigUint64(k * 8, BigInt.asUintN(64, w[k]!));
    else v.setUint32(k * 4, Number(BigInt.asUintN(32, w[k]!)));
  }
  mem.write(addr, b);
}

export function readWindow(mem: WindowMemory, sp: bigint): Window {
  const { addr, wide } = frameOf(sp);
  const b = mem.read(addr, wide ? 128 : 64);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const w: Window = new Array(16);
  for (let k = 0; k < 16; k++) w[k] = wide ? v.getBigUint64(k * 8) : BigInt(v.getUint32(k * 4));
  return w;
}
