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
import { Boundary, type BoundaryConfig } from '../emu/boundary.js';
import type { Engine } from '../emu/unicorn.js';
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

/**
 * The boundary for a new address space's engine (before it translates anything), with the CPU's
 * own user mode switched along where the arch has one. Only with the virtual TLB: in user mode
 * the CPU's MMU would translate differently (ppc64's hypervisor real mode is what folds kernel
 * addresses onto their aliases).
 */
export function attachUserBoundary(arch: Arch, engine: Engine, kernel: KernelMapping[]): Boundary | undefined {
  const b = Boundary.attach(engine, userBoundary(arch, kernel));
  const setCpuMode = arch.setCpuMode?.bind(arch);
  if (b && setCpuMode) b.onSwitch = (user) => setCpuMode(engine, user);
  return b;
}

/** The engine's private areas (the i386 GDT, sparc64's stubs) are the CPU's own machinery. */
export function allowPrivateAreas(b: Boundary, arch: Arch, kernel: KernelMapping[], privates: Array<[bigint, bigint]>): void {
  if (privates.length > 0) b.setDenied(excludeRanges(userBoundary(arch, kernel).denied, privates));
}
