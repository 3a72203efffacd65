/**
 * The shapes an address space (src/mm/mm.ts) is driven by: the kernel mappings every mm shares,
 * an mmap request, and the mmu-notifier-style invalidation hooks.
 */
import type { HostMemory } from '../emu/unicorn.js';
import type { Inode } from './inode.js';
import type { VmaFlags } from './vma.js';

export interface KernelMapping {
  addr: bigint;
  mem: HostMemory;
  perms: number;
}

export interface MmapRequest {
  addr: bigint;
  len: bigint;
  prot: number;
  fixed: boolean;
  shared: boolean;
  file?: { inode: Inode; pgoff: number };
  name?: string;
  flags?: Partial<VmaFlags>;
}

/** Why a range is invalidated (mmu_notifier_range's event). */
export type InvalidateReason = 'munmap' | 'mprotect' | 'cow' | 'fork';

export interface MmInvalidateHook {
  rangeStart?(start: bigint, end: bigint, why: InvalidateReason): void;
  rangeEnd?(start: bigint, end: bigint, why: InvalidateReason): void;
  /** exit_mmap: the address space is going away. */
  release?(): void;
}
