/**
 * SPARC V9 register windows: the model every host-side user of the windows sees (signal frames,
 * getcontext/setcontext, fork, context switches, the trap handler's slow path).
 *
 * The model is the architectural one with NWINDOWS = 8 and OTHERWIN = 0 (what a Linux user task
 * sees): at most CANSAVE + CANRESTORE = NWINDOWS − 2 = 6 caller windows stay resident, as their 16
 * registers (%l0–%l7, %i0–%i7; a window's %o registers are the next newer window's %i). A `save`
 * with all six in use spills the oldest one to its stack the way Linux's spill handler does; a
 * `restore` with none resident fills the caller's window from its stack the way the fill handler
 * does:
 * - 64-bit frames (odd %sp): 16 doublewords at %sp + 2047 (STACK_BIAS), %l0 first;
 * - 32-bit frames (even %sp): 16 words at %sp, low halves (Linux's spill_32bit/fill_32bit).
 * `flushw` (and `ta 3`, ST_FLUSH_WINDOWS) spills every resident window.
 *
 * Where the resident windows live:
 * - In the CPU, while the guest runs (window-file.ts): QEMU runs `save`/`restore` itself and the
 *   host sees only overflow and underflow, served in the trap hook (`spill`/`fill`).
 * - Here (`held`), while host code works on them: reading `resident` moves the CPU's into this
 *   list first (pull), and `push` puts them back before the guest runs again (the trap handler
 *   does at its end, a register restore at once). Invariant: when the guest runs, `held` is empty,
 *   so the CPU's windows are the only resident ones; the fast paths check it and otherwise leave
 *   the trap to the slow path. A window a `save` opens is clean: every window the CPU has not been
 *   given is zeroed at each push (Linux's clean_window handler zeroes windows another context may
 *   have used; stale data of the same task would be just as legal, zero is deterministic).
 * - Here only, when this Unicorn build's CPU state could not be located: then CANSAVE =
 *   CANRESTORE = 0 stays, every `save`/`restore`/`return`/`flushw` traps, and the host emulates
 *   it with this model (traps.ts), Unicorn's one physical window being only ever the current one.
 */
import { REG } from './isa.js';
import { type CpuWindowFile, type Window, type WindowStack, MAX_RESIDENT, frameOf } from './window-file.js';

export { MAX_RESIDENT, NWINDOWS, type Window } from './window-file.js';

// Register numbers as plain constants: these loops run on every save and restore.
const O0 = REG.O0;
const L0 = REG.L0;
const I0 = REG.I0;
const I6 = REG.I6;

export interface WindowMemory {
  read(addr: bigint, len: number): Uint8Array;
  write(addr: bigint, bytes: Uint8Array): void;
}

export class RegisterWindows {
  /** Caller windows the host holds, oldest first (see the module comment: empty while the guest runs). */
  private held: Window[] = [];
  /** The CPU's own window file, when this Unicorn build's CPU state was located. */
  private file: CpuWindowFile | undefined;
  /** Windows written to memory by spills (statistics, tests). */
  spills = 0;
  fills = 0;

  get cpuFile(): CpuWindowFile | undefined {
    return this.file;
  }

  /** Let the CPU hold the windows from now on (window-file.ts). */
  attach(file: CpuWindowFile): void {
    this.file = file;
  }

  /** Caller windows still in the register file, oldest first (CANRESTORE = length). */
  get resident(): Window[] {
    this.pull();
    return this.held;
  }

  /** Replace every resident window (register restore, exec, a new stack); the CPU gets them at once. */
  set resident(ws: Window[]) {
    this.file?.setCounters(0);
    this.held = ws;
    this.push(true);
  }

  get canRestore(): number {
    return this.resident.length;
  }

  get canSave(): number {
    return MAX_RESIDENT - this.resident.length;
  }

  /** The CPU's resident windows into `held` (after any already there: those are older). */
  private pull(): void {
    const f = this.file;
    if (!f) return;
    const n = f.canRestore;
    if (n === 0) return;
    for (let j = n; j >= 1; j--) this.held.push(f.readCaller(j));
    f.setCounters(0);
  }

  /**
   * Hand the held windows (the newest six) back to the CPU before the guest runs again, zeroing
   * the others (see the module comment); `clean`: also when none is held (a register restore:
   * nothing of the previous task may stay in the file). Without the CPU's file, they stay here.
   */
  push(clean = false): void {
    const f = this.file;
    if (!f || (!clean && this.held.length === 0)) return;
    this.pull();
    const n = Math.min(this.held.length, MAX_RESIDENT);
    f.place(this.held.slice(this.held.length - n));
    this.held.length -= n;
  }

  /**
   * The overflow trap of a `save` (or of a `flushw` with windows resident), in the trap hook:
   * spill the CPU's oldest window and let the CPU run the instruction again. False when the slow
   * path must do it (no CPU file, windows held here, a store that faults or needs the run stopped).
   */
  spill(mem: WindowStack): boolean {
    if (!this.file || this.held.length !== 0) return false;
    if (!this.file.spillOldest(mem)) return false;
    this.spills++;
    return true;
  }

  /** The underflow trap of a `restore`/`return`: fill the caller's window from its stack, or hand back held ones. */
  fill(mem: WindowStack): boolean {
    if (!this.file) return false;
    if (this.held.length !== 0) {
      if (this.file.canRestore !== 0) return false;
      this.push();
      return true;
    }
    if (!this.file.fillCaller(mem)) return false;
    this.fills++;
    return true;
  }

  /**
   * `save`: `r` is the current window as r0..r31 (%g, %o, %l, %i) and is updated in place to the
   * new window; `value` (rs1 + op2, computed in the old window) goes to `rd` of the new one.
   */
  save(r: bigint[], value: bigint, rd: number, mem: WindowMemory): void {
    const held = this.resident;
    while (held.length >= MAX_RESIDENT) this.spillOldest(r, mem);
    held.push(r.slice(L0, L0 + 16));
    for (let k = 0; k < 8; k++) {
      r[I0 + k] = r[O0 + k]!;
      r[L0 + k] = 0n;
      r[O0 + k] = 0n;
    }
    if (rd !== 0) r[rd] = value;
  }

  /** `restore` (and the window half of `return`, with rd = 0): back to the caller's window. */
  restore(r: bigint[], value: bigint, rd: number, mem: WindowMemory): void {
    const caller = this.resident.pop() ?? this.fillFrom(r[I6]!, mem);
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
    const held = this.resident;
    const newer = held[1];
    const sp = newer ? newer[8 + 6]! : r[I6]!;
    const w = held[0]!;
    writeWindow(mem, sp, w);
    held.shift();
    this.spills++;
  }

  private fillFrom(sp: bigint, mem: WindowMemory): Window {
    this.fills++;
    return readWindow(mem, sp);
  }

  /**
   * Flattened copy (count, then 16 words per window, oldest first) for register snapshots. The
   * CPU's windows are read where they are, not pulled: every system call's entry takes this
   * snapshot, and a pull there had to be undone (placed back) before the kernel code ran.
   */
  serialize(): bigint[] {
    const f = this.file;
    const inCpu = f ? f.canRestore : 0;
    const out: bigint[] = [BigInt(this.held.length + inCpu)];
    for (const w of this.held) out.push(...w);
    for (let j = inCpu; j >= 1; j--) out.push(...f!.readCaller(j));
    return out;
  }

  /** Inverse of serialize(), reading from `v` at `at`; returns the index after it. */
  deserialize(v: readonly bigint[], at: number): number {
    const n = Number(v[at]!);
    const ws: Window[] = [];
    let p = at + 1;
    for (let i = 0; i < n; i++, p += 16) ws.push(v.slice(p, p + 16));
    this.resident = ws;
    return p;
  }
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
