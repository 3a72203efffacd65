/**
 * Register transfers between the engine and Unicorn outside the trap register cache: single
 * registers and batches, through one block of host memory per engine whose addresses cross into C
 * as plain Numbers (below 2^47).
 *
 * Why not JavaScript arrays: koffi copies a typed array in and out of every call that takes one
 * (the value buffer of uc_reg_read, the id and pointer arrays of a batch). With host addresses a
 * call converts no BigInt and copies nothing: uc_reg_read 0.085 → 0.04 µs, uc_reg_write
 * 0.075 → 0.04 µs (measured on x86-64). A system call makes a dozen such accesses (its number and
 * arguments, the saved user registers, the result), a probe hit those outside its cached set.
 */
import { check, load } from './ffi.js';
import { giveBlock, takeBlock } from './regcache.js';

/** Each value gets a 16-byte cell: some registers (x87, segment descriptors) are written wider. */
const CELL = 16;

export class RegisterIo {
  private block: { ptr: bigint; bytes: Uint8Array };
  private cap = 0;
  private ids!: Int32Array;
  private vals!: BigUint64Array;
  /** The same cells as 32-bit words: zeroed without a BigInt conversion per cell. */
  private vals32!: Uint32Array;
  private idsAt = 0;
  private ptrsAt = 0;
  private valsAt = 0;

  constructor() {
    this.block = this.grow(64);
  }

  private grow(cap: number): { ptr: bigint; bytes: Uint8Array } {
    const block = takeBlock(cap * (4 + 8 + CELL));
    const buf = block.bytes.buffer;
    const base = block.bytes.byteOffset;
    const ptrsOff = cap * 4;
    const valsOff = ptrsOff + cap * 8;
    this.ids = new Int32Array(buf, base, cap);
    const ptrs = new BigUint64Array(buf, base + ptrsOff, cap);
    this.vals = new BigUint64Array(buf, base + valsOff, cap * 2);
    this.vals32 = new Uint32Array(buf, base + valsOff, cap * 4);
    for (let i = 0; i < cap; i++) ptrs[i] = block.ptr + BigInt(valsOff + i * CELL);
    const at = Number(block.ptr);
    this.idsAt = at;
    this.ptrsAt = at + ptrsOff;
    this.valsAt = at + valsOff;
    this.cap = cap;
    return block;
  }

  private ensure(n: number): void {
    if (n <= this.cap) return;
    const old = this.block;
    this.block = this.grow(Math.max(n, 2 * this.cap));
    giveBlock(old);
  }

  read(uc: number, reg: number): bigint {
    const v = this.vals;
    this.vals32.fill(0, 0, 4);
    const err = load().uc_reg_read_n(uc, reg, this.valsAt);
    if (err !== 0) check('uc_reg_read', err);
    return v[0]!;
  }

  write(uc: number, reg: number, value: bigint): void {
    this.vals32.fill(0, 0, 4);
    this.vals[0] = value; // wrapped modulo 2^64 by the store
    const err = load().uc_reg_write_n(uc, reg, this.valsAt);
    if (err !== 0) check('uc_reg_write', err);
  }

  /**
   * `regs` into the id array, each value cell set to `values[i]` (0 when absent). A BigUint64Array
   * store already wraps a value modulo 2^64 (ToBigUint64), so negative values need no asUintN;
   * the zeroing goes through the 32-bit view (a system call stages two batches of ~20-40).
   */
  private stage(regs: readonly number[], values?: readonly bigint[]): void {
    const n = regs.length;
    this.ensure(n);
    const ids = this.ids;
    for (let i = 0; i < n; i++) ids[i] = regs[i]!;
    this.vals32.fill(0, 0, 4 * n);
    if (!values) return;
    const vals = this.vals;
    for (let i = 0; i < n; i++) vals[i * 2] = values[i]!;
  }

  readBatch(uc: number, regs: readonly number[]): bigint[] {
    const n = regs.length;
    this.stage(regs);
    const vals = this.vals;
    const err = load().uc_reg_read_batch_n(uc, this.idsAt, this.ptrsAt, n);
    if (err !== 0) check('uc_reg_read_batch', err);
    const out = new Array<bigint>(n);
    for (let i = 0; i < n; i++) out[i] = vals[i * 2]!;
    return out;
  }

  writeBatch(uc: number, regs: readonly number[], values: readonly bigint[]): void {
    const n = regs.length;
    this.stage(regs, values);
    const err = load().uc_reg_write_batch_n(uc, this.idsAt, this.ptrsAt, n);
    if (err !== 0) check('uc_reg_write_batch', err);
  }

  free(): void {
    giveBlock(this.block);
    this.cap = 0;
  }
}
