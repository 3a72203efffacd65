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

/** One register of a cached set: Unicorn id and width in bits. */
export interface CachedRegister {
  readonly id: number;
  readonly bits: 32 | 64;
}

/** The two raw batch calls on the engine's handle (arrays passed by pointer, no copies). */
export interface BatchIo {
  readBatch(ids: Int32Array, ptrs: BigUint64Array, n: number): void;
  writeBatch(ids: Int32Array, ptrs: BigUint64Array, n: number): void;
}

export class TrapRegisterCache {
  readonly regs: readonly CachedRegister[];
  /** Register id → index in the set, or -1. */
  private readonly slotOf: Int16Array;
  private readonly ids: Int32Array;
  private readonly wide: Uint8Array;
  /** One 8-byte cell per register, outside the JS heap (Unicorn is given their addresses). */
  private readonly mem: HostMemory;
  private readonly ptrs: BigUint64Array;
  private readonly vals: BigUint64Array;
  private readonly words: Uint32Array;
  private readonly dirty: Uint8Array;
  private readonly dirtyIds: Int32Array;
  private readonly dirtyPtrs: BigUint64Array;
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
    this.ids = new Int32Array(n);
    this.wide = new Uint8Array(n);
    regs.forEach((r, i) => {
      if (this.slotOf[r.id] !== -1) throw new Error(`register ${r.id} twice in a cached set`);
      this.slotOf[r.id] = i;
      this.ids[i] = r.id;
      this.wide[i] = r.bits === 64 ? 1 : 0;
    });
    this.mem = HostMemory.alloc(Math.max(8, n * 8), false);
    this.ptrs = new BigUint64Array(n);
    for (let i = 0; i < n; i++) this.ptrs[i] = this.mem.ptr + BigInt(i * 8);
    this.vals = new BigUint64Array(this.mem.bytes.buffer, this.mem.bytes.byteOffset, n);
    this.words = new Uint32Array(this.mem.bytes.buffer, this.mem.bytes.byteOffset, n * 2);
    this.dirty = new Uint8Array(n);
    this.dirtyIds = new Int32Array(n);
    this.dirtyPtrs = new BigUint64Array(n);
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

  /** Only when loaded (a write with nothing cached goes straight to Unicorn). */
  write(i: number, value: bigint): void {
    this.vals[i] = this.wide[i] ? BigInt.asUintN(64, value) : BigInt.asUintN(32, value);
    if (this.dirty[i]) return;
    this.dirty[i] = 1;
    const k = this.nDirty++;
    this.dirtyIds[k] = this.ids[i]!;
    this.dirtyPtrs[k] = this.ptrs[i]!;
  }

  /** Write the changed registers back; the copy stays valid. */
  flush(): void {
    const n = this.nDirty;
    if (n === 0) return;
    this.nDirty = 0;
    this.dirty.fill(0);
    this.writes++;
    this.io.writeBatch(this.dirtyIds, this.dirtyPtrs, n);
  }

  /** Write back, then forget the copy (something may have changed a cached register). */
  invalidate(): void {
    this.flush();
    this.loaded = false;
  }

  private load(): void {
    // Narrow registers fill only their low half: clear the cells first.
    this.words.fill(0);
    this.reads++;
    this.io.readBatch(this.ids, this.ptrs, this.ids.length);
    this.loaded = true;
  }

  free(): void {
    this.mem.free();
  }
}

/** `a` followed by the registers of `b` not already in it (the first width given wins). */
export function mergeRegisters(a: readonly CachedRegister[], b: readonly CachedRegister[]): CachedRegister[] {
  const out = [...a];
  for (const r of b) if (!out.some((x) => x.id === r.id)) out.push(r);
  return out;
}
