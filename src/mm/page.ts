/**
 * Physical pages: slices of host memory that guest pages map by pointer.
 *
 * A `HostBlock` is one host allocation (a file's page cache, an anonymous VMA's backing, one
 * private COW copy). A `PageFrame` is one page of a block with a reference count of the page-table
 * entries (in any mm) that point at it — Linux's page mapcount. An anonymous block is freed when
 * its last frame loses its last mapping; page-cache blocks belong to their inode.
 */
import { HostMemory } from '../emu/unicorn.js';

export class HostBlock {
  readonly mem: HostMemory;
  /** Frames of this block that are still mapped somewhere (anonymous blocks only). */
  liveFrames = 0;
  readonly owner: 'cache' | 'anon';

  constructor(size: number, owner: 'cache' | 'anon') {
    this.mem = HostMemory.alloc(size);
    this.owner = owner;
  }
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
      if (--this.block.liveFrames === 0) this.block.mem.free();
    }
  }
}

/** Allocate a block of `pages` anonymous zero pages and return its frames. */
export function allocAnonFrames(pages: number, pageSize: number): PageFrame[] {
  const block = new HostBlock(pages * pageSize, 'anon');
  return Array.from({ length: pages }, (_, i) => new PageFrame(block, i * pageSize));
}
