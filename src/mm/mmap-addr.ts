/**
 * Where a new mapping goes (Linux's get_unmapped_area and the address checks of do_mmap): pure
 * functions over an address space's VMAs, its layout and the kernel regions every mm maps.
 */
import type { Arch } from '../../arch/types.js';
import { E } from '../kernel/errno.js';
import type { KernelMapping } from './mm-types.js';

/** vm.mmap_min_addr: Linux's default (CONFIG_DEFAULT_MMAP_MIN_ADDR 65536 on x86, powerpc and sparc64). */
export const MMAP_MIN_ADDR = 0x10000n;

/** What the placement looks at. */
export interface AddressSpace {
  readonly arch: Arch;
  readonly pageSize: number;
  readonly vmas: ReadonlyArray<{ start: bigint; end: bigint }>;
  readonly kernel: readonly KernelMapping[];
}

/**
 * Does [start, end) meet an emulator alias of a kernel region (Arch.addressAlias: ppc64 maps the
 * kernel image again at 0 because its real mode drops the top address bits)? Linux has no such
 * alias; here those user addresses cannot be mapped (ENOMEM, as for a range past TASK_SIZE).
 */
function inEngineAlias(s: AddressSpace, start: bigint, end: bigint): boolean {
  for (const k of s.kernel) {
    const a = s.arch.addressAlias?.(k.addr);
    if (a !== undefined && start < a + BigInt(k.mem.size) && a < end) return true;
  }
  return false;
}

/** Top-down search below mmap_base for a hole of `len` bytes (arch_get_unmapped_area_topdown). */
export function unmappedArea(s: AddressSpace, len: bigint): bigint | undefined {
  let top = s.arch.layout.mmapBase;
  const sorted = [...s.vmas].sort((a, b) => (a.start > b.start ? -1 : 1));
  for (const v of sorted) {
    if (v.start >= top) continue;
    if (v.end <= top - len) return top - len;
    top = v.start < top ? v.start : top;
  }
  const low = BigInt(s.pageSize) * 16n;
  return top - len >= low ? top - len : undefined;
}

/** A MAP_FIXED address: 0 when it may be mapped, else the (positive generic) errno. */
export function fixedAddressError(s: AddressSpace, addr: bigint, len: bigint): number {
  if (addr % BigInt(s.pageSize) !== 0n) return E.EINVAL;
  if (addr + len > s.arch.layout.taskSize || addr + len < addr) return E.ENOMEM;
  // mmap_min_addr (security_mmap_addr): nothing is mapped in the first 64 KiB.
  if (addr < MMAP_MIN_ADDR) return E.EPERM;
  if (inEngineAlias(s, addr, addr + len)) return E.ENOMEM;
  return 0;
}

/** Without MAP_FIXED: the page-aligned hint when the range is free, else a hole (undefined: none). */
export function chooseAddress(s: AddressSpace, hint: bigint, len: bigint): bigint | undefined {
  const free = !s.vmas.some((v) => v.start < hint + len && v.end > hint);
  if (hint >= MMAP_MIN_ADDR && hint + len <= s.arch.layout.taskSize && free && !inEngineAlias(s, hint, hint + len)) return hint;
  return unmappedArea(s, len);
}
