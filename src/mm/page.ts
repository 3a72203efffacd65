/**
 * Physical pages: slices of host memory that guest pages map by pointer.
 *
 * A `HostBlock` is one host allocation (a file's page cache, an anonymous VMA's backing, one
 * private COW copy). A `PageFrame` is one page of a block with a reference count of the page-table
 * entries (in any mm) that point at it — Linux's page mapcount. An anonymous block is freed when
 * its last frame loses its last mapping; page-cache blocks belong to their inode.
 */
import { HostMemory } from '../emu/unicorn.js';
import { type MemCharge, UNCHARGED_BLOCK_MAX } from './charge.js';

export class HostBlock {
  readonly mem: HostMemory;
  /** Frames of this block that are still mapped somewhere (anonymous blocks only). */
  liveFrames = 0;
  readonly owner: 'cache' | 'anon';
  /** Where the block's size was charged (released with the host memory). */
  private readonly charge: MemCharge | undefined;

  /** `charge` must already hold `size` bytes for this block (see allocAnonFrames). */
  constructor(size: number, owner: 'cache' | 'anon', charge?: MemCharge) {
    this.mem = HostMemory.alloc(size);
    this.owner = owner;
    this.charge = charge;
  }

  free(): void {
    if (this.mem.isFreed) return;
    this.mem.free();
    this.charge?.uncharge(this.mem.size);
  }
}

/**
 * Charge `bytes` for a new block, or refuse: false when over the machine's limit (or, with no
 * charge, over UNCHARGED_BLOCK_MAX). `force` charges anyway (copies the user asked for, such as
 * uprobes' breakpoint pages: bounded by the probes, not by the guest).
 */
export function chargeBlock(charge: MemCharge | undefined, bytes: number, force = false): boolean {
  if (!(bytes > 0)) return false;
  if (!charge) return force || bytes <= UNCHARGED_BLOCK_MAX;
  return charge.tryCharge(bytes, force);
}

export class PageFrame {
  readonly block: HostBlock;
  readonly offset: number;
  /** Number of page-table entries mapping this frame (across every mm). */
  mapcount = 0;

  constructor(block: HostBlock, offset: number) {
    this.block = block;
    this.offset = offset;
  }

  /** Is this a page-cache page (never written through a private mapping)? */
  get isPageCache(): boolean {
    return this.block.owner === 'cache';
  }

  bytes(pageSize: number): Uint8Array {
    return this.block.mem.bytes.subarray(this.offset, this.offset + pageSize);
  }

  get(): void {
    if (this.mapcount++ === 0 && this.block.owner === 'anon') this.block.liveFrames++;
  }

  put(): void {
    if (--this.mapcount === 0 && this.block.owner === 'anon') {
      if (--this.block.liveFrames === 0) this.block.free();
    }
  }
}

/**
 * Allocate a block of `pages` anonymous zero pages and return its frames, or undefined when the
 * charge refuses them (the caller turns that into ENOMEM or an OOM kill).
 */
export function allocAnonFrames(pages: number, pageSize: number, charge?: MemCharge, force = false): PageFrame[] | undefined {
  const bytes = pages * pageSize;
  if (!chargeBlock(charge, bytes, force)) return undefined;
  let block: HostBlock;
  try {
    block = new HostBlock(bytes, 'anon', charge);
  } catch (e) {
    charge?.uncharge(bytes);
    throw e;
  }
  return Array.from({ length: pages }, (_, i) => new PageFrame(block, i * pageSize));
}
