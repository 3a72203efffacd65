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

/** The kernel mapping that holds all of [addr, addr + len), and the offset in it. */
export function kernelMappingAt(kernel: readonly KernelMapping[], addr: bigint, len: number): { k: KernelMapping; off: number } | undefined {
  for (const k of kernel) {
    if (addr < k.addr) continue; // BigInt sums allocate: a user address costs no arithmetic here
    const off = Number(addr - k.addr); // inexact only past 2^53, far beyond any mapping's size
    if (off + len <= k.mem.size) return { k, off };
  }
  return undefined;
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
