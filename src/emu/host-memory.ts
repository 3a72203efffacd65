/**
 * Host memory that guest pages live in: allocated outside the JS heap with mmap so its address
 * never moves (Unicorn keeps the pointer), shared by pointer between engines (page cache, kernel
 * image), and freed explicitly.
 */
import koffi from 'koffi';
import { UniprobeError } from '../errors.js';
import { big, load } from './ffi.js';

export class HostMemory {
  readonly ptr: bigint;
  readonly size: number;
  /** Zero-copy view of the memory. */
  readonly bytes: Uint8Array;
  private freed = false;
  /** Whether this allocation is counted in `live` (engine-internal scratch is not). */
  private readonly counted: boolean;

  private constructor(ptr: bigint, size: number, counted: boolean) {
    this.ptr = ptr;
    this.size = size;
    this.counted = counted;
    this.bytes = new Uint8Array(koffi.view(ptr as never, size) as ArrayBuffer);
  }

  /**
   * Zero-filled, page-aligned host memory of `size` bytes. `counted = false` keeps it out of
   * `live` (an engine's own scratch), at allocation and at free alike.
   */
  static alloc(size: number, counted = true): HostMemory {
    const l = load();
    if (!(size > 0)) throw new UniprobeError('INTERNAL', `HostMemory.alloc: bad size ${size}`);
    // A view over more than this aborts node inside koffi/V8 (measured: 8 GiB ends the process
    // with a napi FATAL ERROR), so no size past it ever reaches mmap. Guest-driven sizes are
    // refused long before, by the machine's memory limit (src/mm/charge.ts).
    if (size > HostMemory.MAX) throw new UniprobeError('MM', `host allocation of ${size} bytes refused (more than ${HostMemory.MAX})`);
    const PROT_RW = 3;
    const MAP_PRIVATE_ANON = 0x22;
    const p = l.mmap(null, size, PROT_RW, MAP_PRIVATE_ANON, -1, 0);
    if (p === 0xffffffffffffffffn || p === 0n) throw new UniprobeError('MM', `host mmap of ${size} bytes failed`);
    if (counted) HostMemory.live++;
    return new HostMemory(big(p), size, counted);
  }

  /** Count of live allocations: tests use it to prove nothing leaks. */
  static live = 0;

  /** The largest single allocation (4 GiB − 4 KiB, page aligned below V8's 4 GiB view limit). */
  static readonly MAX = 2 ** 32 - 4096;

  get isFreed(): boolean {
    return this.freed;
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    if (this.counted) HostMemory.live--;
    load().munmap(this.ptr, this.size);
  }
}

