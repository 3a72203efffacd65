/**
 * Where an address space's user/kernel boundary lies (src/emu/boundary.ts enforces it): what
 * user mode may not touch, and the physical translation the virtual TLB uses.
 *
 * Linux: everything at and above TASK_SIZE is kernel space (supervisor pages, or not canonical);
 * a user access there is SIGSEGV. Here that range also holds the kernel regions' aliases on
 * x86-64 and sparc64 (Unicorn truncates high address bits: the engine maps kernel regions again
 * at the truncated address). On ppc64 the kernel image's alias lies at 0, below every user
 * mapping, so it is denied too: a NULL access there faults as on Linux.
 */
import type { Arch } from '../../arch/types.js';
import type { BoundaryConfig } from '../emu/boundary.js';
import type { KernelMapping } from './mm-types.js';

export function userBoundary(arch: Arch, kernel: KernelMapping[]): BoundaryConfig {
  const all = arch.wordSize === 8 ? (1n << 64n) - 1n : (1n << 32n) - 1n;
  // addressAlias keeps the low bits the CPU keeps: the alias of all-ones is the mask.
  const physMask = arch.addressAlias?.(all) ?? all;
  const ps = BigInt(arch.layout.pageSize);
  const denied: Array<[bigint, bigint]> = [[arch.layout.taskSize, all]];
  for (const k of kernel) {
    const a = arch.addressAlias?.(k.addr);
    if (a !== undefined && a < arch.layout.taskSize) denied.push([a, a + BigInt(k.mem.size) - 1n]);
  }
  // The last page of the physical space: above every mapping and every alias the engine makes.
  return { physMask, hole: physMask & ~(ps - 1n), pageSize: arch.layout.pageSize, denied };
}

/** `ranges` less `holes` (all inclusive [first, last]). */
export function excludeRanges(ranges: Array<[bigint, bigint]>, holes: Array<[bigint, bigint]>): Array<[bigint, bigint]> {
  let out = ranges;
  for (const [hf, hl] of holes) {
    const next: Array<[bigint, bigint]> = [];
    for (const [f, l] of out) {
      if (hl < f || hf > l) {
        next.push([f, l]);
        continue;
      }
      if (hf > f) next.push([f, hf - 1n]);
      if (hl < l) next.push([hl + 1n, l]);
    }
    out = next;
  }
  return out;
}
