/**
 * A small software TLB for the host's own accesses to guest memory (Mm.readInto / Mm.write).
 *
 * Probe hits and system calls touch guest memory a word at a time: an emulated `push`, a uretprobe
 * reading and rewriting a return address, a `write(2)` buffer. Each went through the page-table
 * walk of Mm: BigInt page numbers, a Map keyed by BigInt, the VMA binary search, the COW checks.
 * That walk measured 0.25 µs per 8-byte write, a fifth of an emulated uprobe hit. This cache
 * remembers, for the last few pages walked, where their bytes live on the host and whether a
 * plain (non-FOLL_FORCE) write may go straight there.
 *
 * Invariant (kept by Mm): every change to a present page — unmap, protection change, COW break or
 * set, page replaced — first takes the page out of the engine (Mm.unmapPages), and that flushes
 * this cache; so does exit_mmap. The kernel's fixed mappings (image, kernel stacks, slot area)
 * never change while the machine lives, so their pages may be entered too. A page is entered only
 * by the slow walk, and only as writable when its VMA (or kernel mapping) allows writes, the entry
 * is not copy-on-write and the page is not executable (a write to text must drop the engine's
 * translations, which the slow path does). A stale "not writable" entry is harmless: the write
 * takes the slow path.
 */
import { PROT } from './vma.js';
import type { KernelMapping } from './mm-types.js';

/** Entries, direct-mapped by page number. Enough for a stack page, a data page and a buffer. */
const ENTRIES = 8;
/** Addresses up to here convert to a Number exactly; above (x86-64's kernel half) stay slow. */
const SAFE_LIMIT = 1n << 53n;

/**
 * Copy `n` bytes from `src` at `from` to `dst` at `to`. Words go by loop: a `subarray` view is an
 * object made per access, and the host's accesses of guest memory are mostly words.
 */
export function copyBytes(dst: Uint8Array, to: number, src: Uint8Array, from: number, n: number): void {
  if (n > 16) dst.set(src.subarray(from, from + n), to);
  else for (let j = 0; j < n; j++) dst[to + j] = src[from + j]!;
}

/** May a plain host write go straight to this page: its VMA allows writes, it is not COW, not text. */
export function plainlyWritable(prot: number | undefined, cow: boolean): boolean {
  return prot !== undefined && (prot & PROT.WRITE) !== 0 && (prot & PROT.EXEC) === 0 && !cow;
}

export class HostTlb {
  private readonly vpn = new Float64Array(ENTRIES).fill(-1);
  private readonly bytes: Array<Uint8Array | undefined> = new Array<Uint8Array | undefined>(ENTRIES).fill(undefined);
  private readonly base = new Float64Array(ENTRIES);
  private readonly writable = new Uint8Array(ENTRIES);

  /** TASK_SIZE as a Number (inexact past 2^53, where no cached address lies). */
  private readonly userTop: number;

  constructor(
    private readonly pageSize: number,
    taskSize: bigint,
  ) {
    this.userTop = Number(taskSize);
  }

  /**
   * `addr` as a Number for this cache, or -1: past 2^53, or inside asUser (`userCopying`) failing
   * access_ok — the slow path then throws the fault.
   */
  address(addr: bigint, len: number, userCopying: boolean): number {
    if (addr >= SAFE_LIMIT) return -1;
    const a = Number(addr);
    return userCopying && a + len > this.userTop ? -1 : a;
  }

  /** Forget every page (Mm: before any present page changes). */
  flush(): void {
    this.vpn.fill(-1);
    this.bytes.fill(undefined);
  }

  /** Record the page holding `addr` (from `address`): its bytes start at `base` in `bytes`. */
  enter(addr: number, bytes: Uint8Array, base: number, writable: boolean): void {
    const vpn = Math.floor(addr / this.pageSize);
    const i = vpn % ENTRIES;
    this.vpn[i] = vpn;
    this.bytes[i] = bytes;
    this.base[i] = base;
    this.writable[i] = writable ? 1 : 0;
  }

  /**
   * Mm's slow path found `addr` (from `address`; -1: not cacheable) `off` bytes into the kernel
   * mapping `k`: copy into `out` and remember the page. A kprobe hit reads the trapping word and
   * an emulated store writes the kernel stack at every hit (ppc32, i386; x86-64's and ppc64's
   * kernel halves lie past this cache's Numbers).
   */
  readKernel(addr: number, out: Uint8Array, k: KernelMapping, off: number): Uint8Array {
    copyBytes(out, 0, k.mem.bytes, off, out.length);
    if (addr >= 0) this.enterKernel(addr, k, off);
    return out;
  }

  /** The same for a store of `data` (`addr` -1 for a FOLL_FORCE write: not remembered). */
  writeKernel(addr: number, data: Uint8Array, k: KernelMapping, off: number): void {
    copyBytes(k.mem.bytes, off, data, 0, data.length);
    if (addr >= 0) this.enterKernel(addr, k, off);
  }

  /** Record the page of kernel mapping `k` holding `addr`. Text is entered read-only, as the user pages are. */
  private enterKernel(addr: number, k: KernelMapping, off: number): void {
    const base = off - (addr % this.pageSize); // the page's first byte in the mapping's host block
    if (base < 0 || base + this.pageSize > k.mem.size) return;
    // KernelMapping.perms are Unicorn's UC_PROT bits, numbered as PROT_READ/WRITE/EXEC are.
    this.enter(addr, k.mem.bytes, base, plainlyWritable(k.perms, false));
  }

  /** The entry of the last `find`. */
  private hit = 0;

  /**
   * Where [addr, addr + len) lies on the host when one cached page holds it (and, for `write`,
   * may be written plainly): its index in `bytes[this.hit]`, else -1.
   */
  private find(addr: number, len: number, write: boolean): number {
    const ps = this.pageSize;
    const vpn = Math.floor(addr / ps);
    const i = vpn % ENTRIES;
    const off = addr - vpn * ps;
    if (this.vpn[i] !== vpn || off + len > ps || (write && this.writable[i] === 0)) return -1;
    this.hit = i;
    return this.base[i]! + off;
  }

  /** Copy `out.length` bytes at `addr` into `out`; false (nothing copied) unless one cached page holds them. */
  read(addr: number, out: Uint8Array): boolean {
    const len = out.length;
    const at = this.find(addr, len, false);
    if (at < 0) return false;
    copyBytes(out, 0, this.bytes[this.hit]!, at, len);
    return true;
  }

  /** Store `data` at `addr`; false (nothing stored) unless one cached page holds it and is plainly writable. */
  write(addr: number, data: Uint8Array): boolean {
    const len = data.length;
    const at = this.find(addr, len, true);
    if (at < 0) return false;
    copyBytes(this.bytes[this.hit]!, at, data, 0, len);
    return true;
  }
}
