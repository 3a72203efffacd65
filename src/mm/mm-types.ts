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

/**
 * kernelMappingAt's answer. One object, overwritten by every call: the callers (Mm's host
 * accesses) use it at once, and each system call and kprobe hit makes several such accesses.
 */
const found: { k: KernelMapping; off: number } = { k: undefined!, off: 0 };

/** The kernel mapping that holds all of [addr, addr + len), and the offset in it (valid until the next call). */
export function kernelMappingAt(kernel: readonly KernelMapping[], addr: bigint, len: number): { k: KernelMapping; off: number } | undefined {
  // The mapping of the last answer first: a system call or a kprobe hit makes its accesses in
  // runs on one mapping (the kernel stack, a frame), and every mapping tried costs a BigInt sum.
  const last = found.k;
  if (last !== undefined && addr >= last.addr && kernel.includes(last)) {
    const off = Number(addr - last.addr);
    if (off + len <= last.mem.size) {
      found.off = off;
      return found;
    }
  }
  for (let i = 0; i < kernel.length; i++) {
    const k = kernel[i]!;
    if (addr < k.addr) continue; // BigInt sums allocate: a user address costs no arithmetic here
    const off = Number(addr - k.addr); // inexact only past 2^53, far beyond any mapping's size
    if (off + len <= k.mem.size) {
      found.k = k;
      found.off = off;
      return found;
    }
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
