/**
 * The trap-time register cache of an Engine (Engine.cacheTrapRegisters).
 *
 * A probe hit reads and writes a handful of registers (the PC, the stack pointer, arguments,
 * whatever the emulated or stepped instruction touches), and every single access is one FFI call
 * into Unicorn. Inside a trap hook the CPU is paused: nothing changes a register except this
 * process through the register API. So the registers of the cached set are read with one
 * `uc_reg_read_batch` the first time one of them is read in a hook, served from that copy
 * afterwards, and the ones written are put back with one `uc_reg_write_batch` when the hook
 * returns (before Unicorn goes on, also when the hook threw).
 *
 * Why this is the same as accessing Unicorn directly (the Engine keeps these rules):
 * - A register outside the set may alias one in it (EAX and RAX, CR0 and CR): any access to one
 *   first writes the collected values back (`flush`), and a write to one also forgets the copy
 *   (`invalidate`), so the next cached read sees what Unicorn now holds.
 * - So do the other calls that read or change CPU state as a whole (context save / restore, raw
 *   byte accesses, batches that are not entirely in the set).
 * - A value written is masked to the register's width: what reading it back from Unicorn gives,
 *   for the registers an arch may put in the set (general registers, PC, LR/CTR, CR; never a
 *   flags word Unicorn normalises on write, nor state that changes how memory is translated).
 * - A write while nothing is cached goes straight through (nothing cached can be stale).
 * - Unicorn applies a batch in order and treats a PC in it as a single PC write does (the run
 *   restarts there, quit_request): writing at the end of the hook instead of in the middle changes
 *   nothing, since the CPU does not run in between.
 */
import { HostMemory } from './unicorn.js';

/**
 * Blocks of host memory for the caches, carved from shared 64 KiB chunks and kept on a free
 * list by size: every address space has an engine and so a cache, and an mmap + munmap per
 * engine (a TLB shootdown on every process exit) cost more than the cache saves a short process.
 */
class BlockPool {
  private static readonly CHUNK = 64 << 10;
  private chunk: HostMemory | undefined;
  private used = 0;
  private readonly free = new Map<number, Array<{ ptr: bigint; bytes: Uint8Array }>>();

  take(size: number): { ptr: bigint; bytes: Uint8Array } {
    const sz = Math.ceil(size / 64) * 64;
    const reuse = this.free.get(sz)?.pop();
    if (reuse) {
      reuse.bytes.fill(0);
      return reuse;
    }
    if (sz > BlockPool.CHUNK) {
      const m = HostMemory.alloc(sz, false);
      return { ptr: m.ptr, bytes: m.bytes };
    }
    if (!this.chunk || this.used + sz > BlockPool.CHUNK) {
      // Never freed: a chunk outlives every engine that took blocks from it.
      this.chunk = HostMemory.alloc(BlockPool.CHUNK, false);
      this.used = 0;
    }
    const at = this.used;
    this.used += sz;
    return { ptr: this.chunk.ptr + BigInt(at), bytes: this.chunk.bytes.subarray(at, at + sz) };
  }

  give(block: { ptr: bigint; bytes: Uint8Array }): void {
    const sz = block.bytes.length;
    let list = this.free.get(sz);
    if (!list) this.free.set(sz, (list = []));
    list.push(block);
  }
}

const pool = new BlockPool();

/** A zeroed block of host memory from the caches' pool (the native trap hooks' structs too). */
export const takeBlock = (size: number): { ptr: bigint; bytes: Uint8Array } => pool.take(size);
export const giveBlock = (block: { ptr: bigint; bytes: Uint8Array }): void => pool.give(block);

/**
 * Where a cache's arrays are, as host addresses (all below 2^47: exact Numbers), for a trap hook
 * in C that reads the set before the JavaScript hook and writes the dirty list back after it
 * (src/emu/trap-hook.ts).
 */
export interface CacheLayout {
  readonly n: number;
  readonly idsAt: number;
  readonly ptrsAt: number;
  readonly dirtyIdsAt: number;
  readonly dirtyPtrsAt: number;
}

/** One register of a cached set: Unicorn id and width in bits. */
export interface CachedRegister {
  readonly id: number;
  readonly bits: 32 | 64;
  /**
   * Writing it does more than set its value (sparc64's PC: Unicorn also sets NPC = PC + 4), so a
   * write of the value it already holds is still written back. Other registers skip such writes.
   */
  readonly writeAlways?: boolean;
}

/**
 * The two raw batch calls (uc_reg_read_batch / uc_reg_write_batch) on the engine's handle, every
 * argument a plain Number: the handle and the host addresses of the id and value-pointer arrays
 * (all below 2^47), so that crossing into C converts no BigInt and pins no typed array. They
 * return Unicorn's error code.
 */
export interface BatchIo {
  readonly handle: number;
  readBatch(uc: number, ids: number, ptrs: number, n: number): number;
  writeBatch(uc: number, ids: number, ptrs: number, n: number): number;
  /** Throws the Unicorn error of a non-zero code. */
  check(op: string, err: number): void;
}

export class TrapRegisterCache {
  readonly regs: readonly CachedRegister[];
  /** Register id → index in the set, or -1. */
  private readonly slotOf: Int16Array;
  private readonly ids: Int32Array;
  private readonly wide: Uint8Array;
  private readonly always: Uint8Array;
  /**
   * Outside the JS heap, one block (Unicorn is given addresses in it): the set's ids, pointers to
   * the value cells, the ids and pointers of the registers to write back, and the value cells
   * (8 bytes each). A narrow register's cell keeps a zero upper half for good: Unicorn stores 4
   * bytes for it and `write` masks to 32 bits.
   */
  private readonly mem: { ptr: bigint; bytes: Uint8Array };
  private readonly idsAt: number;
  private readonly ptrsAt: number;
  private readonly dirtyIdsAt: number;
  private readonly dirtyPtrsAt: number;
  private readonly ptrs: BigUint64Array;
  private readonly vals: BigUint64Array;
  /** The same cells as 32-bit halves (little-endian host): compared and copied without a BigInt. */
  private readonly vals32: Uint32Array;
  private readonly ptrs32: Uint32Array;
  private readonly dirtyPtrs32: Uint32Array;
  /** Where a written value is wrapped to 64 bits (a store into a BigUint64Array wraps it). */
  private readonly scratch64 = new BigUint64Array(1);
  private readonly scratch32 = new Uint32Array(this.scratch64.buffer);
  private readonly dirty: Uint8Array;
  private readonly dirtyIds: Int32Array;
  private nDirty = 0;
  /** Inside a trap hook of the engine. */
  open = false;
  /** The cells hold the registers' current values (read since the hook began or the last invalidate). */
  loaded = false;
  /** Batched reads and writes done (tests, benchmarks). */
  reads = 0;
  writes = 0;

  constructor(
    regs: readonly CachedRegister[],
    private readonly io: BatchIo,
  ) {
    this.regs = regs;
    const n = regs.length;
    let max = 0;
    for (const r of regs) max = Math.max(max, r.id);
    this.slotOf = new Int16Array(max + 1).fill(-1);
    this.wide = new Uint8Array(n);
    this.always = new Uint8Array(n);
    this.dirty = new Uint8Array(n);
    // Layout of the block: ids, pointers, dirty ids, dirty pointers, values (8-byte aligned).
    const w = 8 * Math.ceil(n / 2);
    const sz = w + 8 * n + w + 8 * n + 8 * n;
    this.mem = pool.take(Math.max(64, sz));
    const buf = this.mem.bytes.buffer;
    const base = this.mem.bytes.byteOffset;
    const ptr = Number(this.mem.ptr);
    let at = 0;
    const take = (bytes: number): number => ((at += bytes), at - bytes);
    const idsOff = take(w);
    const ptrsOff = take(8 * n);
    const dIdsOff = take(w);
    const dPtrsOff = take(8 * n);
    const valsOff = take(8 * n);
    this.ids = new Int32Array(buf, base + idsOff, n);
    this.ptrs = new BigUint64Array(buf, base + ptrsOff, n);
    this.dirtyIds = new Int32Array(buf, base + dIdsOff, n);
    this.vals = new BigUint64Array(buf, base + valsOff, n);
    this.vals32 = new Uint32Array(buf, base + valsOff, 2 * n);
    this.ptrs32 = new Uint32Array(buf, base + ptrsOff, 2 * n);
    this.dirtyPtrs32 = new Uint32Array(buf, base + dPtrsOff, 2 * n);
    this.idsAt = ptr + idsOff;
    this.ptrsAt = ptr + ptrsOff;
    this.dirtyIdsAt = ptr + dIdsOff;
    this.dirtyPtrsAt = ptr + dPtrsOff;
    regs.forEach((r, i) => {
      if (this.slotOf[r.id] !== -1) throw new Error(`register ${r.id} twice in a cached set`);
      this.slotOf[r.id] = i;
      this.ids[i] = r.id;
      this.wide[i] = r.bits === 64 ? 1 : 0;
      this.always[i] = r.writeAlways ? 1 : 0;
      this.ptrs[i] = this.mem.ptr + BigInt(valsOff + 8 * i);
    });
  }

  /** Index of `id` in the set, or -1. */
  index(id: number): number {
    return id < this.slotOf.length ? this.slotOf[id]! : -1;
  }

  /** A hook begins: nothing is cached yet (registers are read at the first cached access). */
  begin(): void {
    this.open = true;
    this.loaded = false;
    this.nDirty = 0;
  }

  /** Its arrays, for a native trap hook (see CacheLayout). */
  get layout(): CacheLayout {
    return { n: this.ids.length, idsAt: this.idsAt, ptrsAt: this.ptrsAt, dirtyIdsAt: this.dirtyIdsAt, dirtyPtrsAt: this.dirtyPtrsAt };
  }

  /** A hook begins whose native trampoline already read the set (`loaded`: the read succeeded). */
  beginLoaded(loaded: boolean): void {
    this.open = true;
    this.loaded = loaded;
    this.nDirty = 0;
    if (loaded) this.reads++;
  }

  /**
   * The hook returns to a native trampoline that writes the dirty list back: how many entries it
   * holds (the ids and cells are already in place). The cache closes as `end` closes it.
   */
  handOff(): number {
    const n = this.nDirty;
    this.nDirty = 0;
    for (let k = 0; k < n; k++) this.dirty[this.slotOf[this.dirtyIds[k]!]!] = 0;
    if (n > 0) this.writes++;
    this.open = false;
    this.loaded = false;
    return n;
  }

  /** The hook returns: write back what it changed. */
  end(): void {
    try {
      this.flush();
    } finally {
      this.open = false;
      this.loaded = false;
    }
  }

  read(i: number): bigint {
    if (!this.loaded) this.load();
    return this.vals[i]!;
  }

  /** The low 32 bits of register `i`, as a Number (no BigInt made). */
  readLow(i: number): number {
    if (!this.loaded) this.load();
    return this.vals32[2 * i]!;
  }

  /**
   * Only when loaded (a write with nothing cached goes straight to Unicorn). A write of the value
   * Unicorn already holds is not written back: it would change nothing but cost, for the PC, a
   * restart of Unicorn's CPU loop (a PC write ends the loop so that the new PC takes effect; in a
   * trap hook the CPU resumes at its PC anyway). An emulated one-byte push or nop resumes right
   * after the breakpoint, where the trap left the PC.
   */
  write(i: number, value: bigint): void {
    // Wrapped to the register's width through the scratch cell, compared and stored by halves:
    // no BigInt made (reading a BigUint64Array element makes one).
    this.scratch64[0] = value;
    this.writeHalves(i, this.scratch32[0]!, this.wide[i] ? this.scratch32[1]! : 0);
  }

  /** write() of a value given as 32-bit halves (`lo`, `hi`: unsigned; `hi` 0 for a narrow register). */
  writeHalves(i: number, lo: number, hi: number): void {
    const v32 = this.vals32;
    if (!this.dirty[i] && !this.always[i] && v32[2 * i] === lo && v32[2 * i + 1] === hi) return;
    v32[2 * i] = lo;
    v32[2 * i + 1] = hi;
    if (this.dirty[i]) return;
    this.dirty[i] = 1;
    const k = this.nDirty++;
    this.dirtyIds[k] = this.ids[i]!;
    this.dirtyPtrs32[2 * k] = this.ptrs32[2 * i]!;
    this.dirtyPtrs32[2 * k + 1] = this.ptrs32[2 * i + 1]!;
  }

  // --- what Engine's register accessors do while `open` ---------------------------------------

  /** A read: the cached value, or undefined (after writing the collected ones back) outside the set. */
  tryRead(id: number): bigint | undefined {
    const i = this.index(id);
    if (i >= 0) return this.read(i);
    this.flush();
    return undefined;
  }

  /** readLow() of register `id`, or undefined (after writing the collected ones back) outside the set. */
  tryReadLow(id: number): number | undefined {
    const i = this.index(id);
    if (i >= 0) return this.readLow(i);
    this.flush();
    return undefined;
  }

  /** tryWrite() of a 32-bit value given as a Number (the upper half of a wide register: 0). */
  tryWriteU32(id: number, value: number): boolean {
    const i = this.index(id);
    if (i >= 0 && this.loaded) {
      this.writeHalves(i, value >>> 0, 0);
      return true;
    }
    this.invalidate();
    return false;
  }

  /** dst = src, both in the set (as 32-bit halves, truncated to dst's width): false otherwise. */
  tryCopy(dst: number, src: number): boolean {
    const i = this.index(dst);
    const j = this.index(src);
    if (i < 0 || j < 0) return false;
    if (!this.loaded) this.load();
    const v32 = this.vals32;
    this.writeHalves(i, v32[2 * j]!, this.wide[i] ? v32[2 * j + 1]! : 0);
    return true;
  }

  /** A write: true when cached; otherwise the copy is written back and forgotten (it may alias). */
  tryWrite(id: number, value: bigint): boolean {
    const i = this.index(id);
    if (i >= 0 && this.loaded) {
      this.write(i, value);
      return true;
    }
    this.invalidate();
    return false;
  }

  /** Are all of `ids` in the set? (A loop, not `every`: trap hooks call this at every hit.) */
  private covers(ids: readonly number[]): boolean {
    for (let k = 0; k < ids.length; k++) if (this.index(ids[k]!) < 0) return false;
    return true;
  }

  tryReadBatch(ids: readonly number[]): bigint[] | undefined {
    if (this.covers(ids)) {
      const out = new Array<bigint>(ids.length);
      for (let k = 0; k < ids.length; k++) out[k] = this.read(this.index(ids[k]!));
      return out;
    }
    this.flush();
    return undefined;
  }

  tryWriteBatch(ids: readonly number[], values: readonly bigint[]): boolean {
    if (this.loaded && this.covers(ids)) {
      for (let k = 0; k < ids.length; k++) this.write(this.index(ids[k]!), values[k]!);
      return true;
    }
    this.invalidate();
    return false;
  }

  /** Write the changed registers back; the copy stays valid. */
  flush(): void {
    const n = this.nDirty;
    if (n === 0) return;
    this.nDirty = 0;
    for (let k = 0; k < n; k++) this.dirty[this.slotOf[this.dirtyIds[k]!]!] = 0;
    this.writes++;
    const io = this.io;
    const err = io.writeBatch(io.handle, this.dirtyIdsAt, this.dirtyPtrsAt, n);
    if (err !== 0) io.check('uc_reg_write_batch', err);
  }

  /** Write back, then forget the copy (something may have changed a cached register). */
  invalidate(): void {
    this.flush();
    this.loaded = false;
  }

  private load(): void {
    this.reads++;
    const io = this.io;
    const err = io.readBatch(io.handle, this.idsAt, this.ptrsAt, this.ids.length);
    if (err !== 0) io.check('uc_reg_read_batch', err);
    this.loaded = true;
  }

  free(): void {
    pool.give(this.mem);
  }
}

/** `a` followed by the registers of `b` not already in it (the first width given wins; writeAlways if either says so). */
export function mergeRegisters(a: readonly CachedRegister[], b: readonly CachedRegister[]): CachedRegister[] {
  const out = [...a];
  for (const r of b) {
    const k = out.findIndex((x) => x.id === r.id);
    if (k < 0) out.push(r);
    else if (r.writeAlways && !out[k]!.writeAlways) out[k] = { ...out[k]!, writeAlways: true };
  }
  return out;
}
