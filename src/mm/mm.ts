/**
 * An address space (Linux's mm_struct) and the Unicorn engine that executes in it.
 *
 * Invariants:
 * - A page-table entry exists for a page ⇔ that page is mapped in `engine`. Every change goes
 *   through mapPages/unmapPages so the two never disagree (Unicorn refuses to unmap a hole).
 * - A PTE marked `cow` is mapped without write permission; the first write (by the guest, through
 *   the WRITE_PROT hook, or by the host through `write`) gives this mm its own copy of the page
 *   unless it is an anonymous page nobody else maps any more. Page-cache pages are always copied.
 * - Kernel mappings (the guest kernel image, the kernel stack arena) are the same host memory in
 *   every mm, mapped once at construction, never copied.
 * - Changing guest text from the host flushes this engine's translations for the range (the
 *   emulator's flush_icache_range); callers must not do it while the engine is running
 *   (see DESIGN: patching happens between quanta).
 * - The engine's mappings never change while it runs: a region unmapped from inside a hook
 *   crashes the host (a store helper still uses the region it looked up before calling the hook:
 *   docs/unicorn.md). So a guest write to a COW page ends the run (`pendingCow`), a host write
 *   that needs a copy while the engine runs is queued (`deferredWrites`), and `settle()` does both
 *   once the run has returned: the guest is stopped on the faulting insn or after the syscall.
 */
import { openEngine } from '../../arch/engine.js';
import { Engine, UC_HOOK, UC_PROT } from '../emu/unicorn.js';
import { UniprobeError } from '../errors.js';
import type { Arch, GuestMemoryAccess } from '../../arch/types.js';
import { PageFrame, allocAnonFrames } from './page.js';
import type { MemCharge } from './charge.js';
import { COLLAPSE_AT, MAX_ENGINE_REGIONS, RegionMap } from './regions.js';
import { GuestWords } from './words.js';
import { copyBytes, HostTlb, plainlyWritable } from './host-tlb.js';
import { MmFault, MmOom } from './fault.js';
import { PROT, Vma } from './vma.js';
import type { RmapLock } from './rmap-lock.js';
import type { Boundary } from '../emu/boundary.js';
import { allowPrivateAreas, attachUserBoundary } from './user-boundary.js';
import { E } from '../kernel/errno.js';
import { kernelMappingAt, type InvalidateReason, type KernelMapping, type MmInvalidateHook, type MmapRequest } from './mm-types.js';
import { chooseAddress, fixedAddressError, unmappedArea } from './mmap-addr.js';

export type { InvalidateReason, KernelMapping, MmInvalidateHook, MmapRequest } from './mm-types.js';
export { MmFault, MmOom } from './fault.js';

/** A mapped user page: its frame, and whether a write must copy it first. */
interface Pte { frame: PageFrame; cow: boolean }

// The kernel layer's generic errno numbers (src/kernel/errno.ts), as mm's calls return them.
const { ENOMEM, EINVAL, EFAULT, EACCES } = E;

let nextMmId = 1;

export class Mm extends GuestWords implements GuestMemoryAccess {
  readonly id = nextMmId++;
  readonly arch: Arch;
  readonly engine: Engine;
  readonly pageSize: number;
  private readonly pageShift: bigint;
  readonly vmas: Vma[] = [];
  private readonly ptes = new Map<bigint, Pte>();
  /** Where the host's last word accesses landed (host-tlb.ts); flushed by unmapPages. */
  private readonly tlb: HostTlb;
  readonly kernel: KernelMapping[];
  brkStart = 0n;
  brk = 0n;
  /** mm_users: tasks sharing this mm. */
  users = 1;
  /** Where host memory for this mm's pages is charged (the machine's limit); fork passes it on. */
  charge: MemCharge | undefined;
  /** A guest store's copy-on-write copy was refused (settle): the machine OOM-kills the process. */
  oom = false;
  /** Why the last copy was refused (the OOM report names it). */
  oomReason = '';
  /** The engine's regions (user pages and the few fixed ones), kept under MAX_ENGINE_REGIONS. */
  readonly regions = new RegionMap();
  /** A guest write to a COW page that ended the run; resolved by settle(). */
  private pendingCow: bigint | undefined;
  /** Host writes waiting for a COW copy that could not be made while the engine ran. */
  private readonly deferredWrites: Array<{ addr: bigint; bytes: Uint8Array; force: boolean }> = [];
  /** mmu notifiers: told before and after a range's pages are unmapped, reprotected or COW-replaced (breakpoints too), and at exit. */
  readonly invalidateHooks: MmInvalidateHook[] = [];
  /**
   * Called after mmap() inserted a VMA and mapped its pages (Linux's uprobe_mmap from
   * mmap_region), with mmap_lock held for write by the caller. Not called for fork's copies.
   */
  readonly mapHooks: Array<(vma: Vma) => void> = [];
  /** The user/kernel boundary (src/emu/boundary.ts); undefined without the C helper. */
  readonly boundary: Boundary | undefined;
  /** i_mmap_rwsem around every rmap change (rmap-lock.ts); undefined outside a machine. */
  rmapLock: RmapLock | undefined;

  constructor(arch: Arch, kernel: KernelMapping[]) {
    super();
    this.arch = arch;
    this.pageSize = arch.layout.pageSize;
    this.tlb = new HostTlb(this.pageSize, arch.layout.taskSize);
    this.pageShift = BigInt(Math.log2(this.pageSize));
    this.kernel = kernel;
    this.engine = openEngine(arch);
    try {
      // Before anything is translated: the boundary switches the engine to the virtual TLB.
      this.boundary = attachUserBoundary(arch, this.engine, kernel);
      for (const k of kernel) {
        this.engine.memMapPtr(k.addr, k.mem.size, k.perms, k.mem);
        this.regions.add(k.addr, k.addr + BigInt(k.mem.size));
      }
      const privates: Array<[bigint, bigint]> = [];
      arch.setupEngine(this.engine, {
        mapPrivate: (addr, size, exec) => {
          this.engine.memMap(addr, size, exec ? UC_PROT.ALL : UC_PROT.READ | UC_PROT.WRITE);
          this.regions.add(addr, addr + BigInt(size));
          privates.push([addr, addr + BigInt(size) - 1n]);
        },
      });
      if (this.boundary) allowPrivateAreas(this.boundary, arch, kernel, privates);
      this.engine.hookMemInvalid((_type, addr) => (this.notePendingCow(addr), false), UC_HOOK.MEM_WRITE_PROT);
      this.engine.onWriteRefusal = (page) => this.notePendingCow(page);
    } catch (e) {
      this.engine.close();
      throw e;
    }
  }

  // --- lookup --------------------------------------------------------------------------------

  findVma(addr: bigint): Vma | undefined {
    // vmas is sorted by start; binary search the last vma with start <= addr.
    let lo = 0;
    let hi = this.vmas.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = this.vmas[mid]!;
      if (addr < v.start) hi = mid - 1;
      else if (addr >= v.end) lo = mid + 1;
      else return v;
    }
    return undefined;
  }

  pageAlignDown(a: bigint): bigint {
    return (a >> this.pageShift) << this.pageShift;
  }

  pageAlignUp(a: bigint): bigint {
    return this.pageAlignDown(a + BigInt(this.pageSize - 1));
  }

  private vpn(addr: bigint): bigint {
    return addr >> this.pageShift;
  }

  private pagePerms(vma: Vma, pte: Pte): number {
    let p = vma.prot & (UC_PROT.READ | UC_PROT.WRITE | UC_PROT.EXEC);
    if (pte.cow) p &= ~UC_PROT.WRITE;
    return p;
  }

  // --- engine mapping (keeps the PTE ⇔ engine invariant) ----------------------------------------

  /** Map present PTEs of [start, end) into the engine, in runs of contiguous host memory. */
  private mapPages(start: bigint, end: bigint): void {
    const ps = BigInt(this.pageSize);
    let runStart = -1n;
    let runFrame: PageFrame | undefined;
    let runPerms = 0;
    let runPages = 0;
    const flush = (): void => {
      if (runFrame && runPages > 0) {
        this.engine.memMapPtr(runStart, runPages * this.pageSize, runPerms, runFrame.block.mem, runFrame.offset);
        this.regions.add(runStart, runStart + BigInt(runPages * this.pageSize));
      }
      runFrame = undefined;
      runPages = 0;
    };
    for (let a = start; a < end; a += ps) {
      const pte = this.ptes.get(this.vpn(a));
      if (!pte) {
        flush();
        continue;
      }
      const vma = this.findVma(a)!;
      const perms = this.pagePerms(vma, pte);
      const contiguous =
        runFrame !== undefined &&
        pte.frame.block === runFrame.block &&
        pte.frame.offset === runFrame.offset + runPages * this.pageSize &&
        perms === runPerms;
      if (!contiguous) {
        flush();
        runStart = a;
        runFrame = pte.frame;
        runPerms = perms;
      }
      runPages++;
    }
    flush();
  }

  /** Unmap whatever pages of [start, end) are mapped in the engine (PTEs stay as they are). */
  private unmapPages(start: bigint, end: bigint): void {
    this.tlb.flush(); // host-tlb.ts: every change to a present page comes through here
    const ps = BigInt(this.pageSize);
    let runStart = -1n;
    for (let a = start; a <= end; a += ps) {
      const present = a < end && this.ptes.has(this.vpn(a));
      if (present && runStart < 0n) runStart = a;
      if (!present && runStart >= 0n) {
        this.engine.memUnmap(runStart, Number(a - runStart));
        this.regions.remove(runStart, a);
        runStart = -1n;
      }
    }
  }

  private flushText(start: bigint, end: bigint): void {
    this.engine.flushTranslations(start, end);
  }

  // --- VMAs ------------------------------------------------------------------------------------

  private insertVma(v: Vma): void {
    let i = 0;
    while (i < this.vmas.length && this.vmas[i]!.start < v.start) i++;
    this.vmas.splice(i, 0, v);
    const f = v.file;
    if (f && this.rmapLock) this.rmapLock.link(f, 'vma_link', () => f.mappings.add(v));
    else f?.mappings.add(v);
  }

  private removeVma(v: Vma): void {
    const i = this.vmas.indexOf(v);
    if (i >= 0) this.vmas.splice(i, 1);
    const f = v.file;
    if (f && this.rmapLock) this.rmapLock.unlink(f, 'unlink_file_vma', () => f.mappings.delete(v));
    else f?.mappings.delete(v);
  }

  /** Split a VMA at `addr` (page aligned, strictly inside); returns the upper half. */
  private splitVma(v: Vma, addr: bigint): Vma {
    const pages = Number((addr - v.start) >> this.pageShift);
    const upper = new Vma(this, addr, v.end, v.prot, { ...v.flags }, v.file, v.pgoff + pages, v.name);
    v.end = addr;
    this.insertVma(upper);
    return upper;
  }

  /** VMAs overlapping [start, end), split so that each lies inside the range. */
  private vmasIn(start: bigint, end: bigint): Vma[] {
    for (const v of [...this.vmas]) {
      if (v.start < start && v.end > start) this.splitVma(v, start);
    }
    for (const v of [...this.vmas]) {
      if (v.start < end && v.end > end) this.splitVma(v, end);
    }
    return this.vmas.filter((v) => v.start >= start && v.end <= end);
  }

  /** Top-down search for a free range of `len` bytes below mmap_base (get_unmapped_area). */
  getUnmappedArea = (len: bigint): bigint | undefined => unmappedArea(this, len);

  /** Mapping changes are only legal while the engine is stopped (see the class comment). */
  private assertQuiescent(op: string): void {
    if (this.engine.isRunning) throw new UniprobeError('INTERNAL', `Mm.${op} while the engine runs: defer it to the end of the run`);
  }

  /** mmap: returns the address or a negative errno (as a bigint). */
  mmap(req: MmapRequest): bigint {
    this.assertQuiescent('mmap');
    const ps = BigInt(this.pageSize);
    if (req.len <= 0n) return -BigInt(EINVAL);
    const len = this.pageAlignUp(req.len);
    // Larger than the address space: ENOMEM before any arithmetic on page counts.
    if (len > this.arch.layout.taskSize || len < req.len) return -BigInt(ENOMEM);
    const pages = Number(len / ps);
    // The emulator's region budget (regions.ts), refused as Linux refuses past max_map_count.
    if (!this.regions.hasRoom(4)) return -BigInt(ENOMEM);
    // Anonymous memory (and file pages past EOF) comes from one zeroed host block, charged to the
    // machine's memory limit before the host allocation: over the limit, ENOMEM and nothing changed.
    const filePages = req.file ? Math.max(0, Math.min(pages, req.file.inode.pageCount - req.file.pgoff)) : 0;
    const anon = pages > filePages ? allocAnonFrames(pages - filePages, this.pageSize, this.charge) : [];
    if (!anon) return -BigInt(ENOMEM);
    const giveBack = (): void => void (anon.length > 0 && anon[0]!.block.free());
    let addr: bigint;
    if (req.fixed) {
      const e = fixedAddressError(this, req.addr, len);
      if (e) return giveBack(), -BigInt(e);
      addr = req.addr;
      this.munmap(addr, len);
    } else {
      const found = chooseAddress(this, this.pageAlignDown(req.addr), len);
      if (found === undefined) return giveBack(), -BigInt(ENOMEM);
      addr = found;
    }
    const vma = new Vma(this, addr, addr + len, req.prot, { shared: req.shared, ...req.flags }, req.file?.inode, req.file?.pgoff ?? 0, req.name ?? req.file?.inode.path ?? '');
    this.insertVma(vma);
    for (let i = 0; i < pages; i++) {
      const frame = i < filePages ? req.file!.inode.page(req.file!.pgoff + i)! : anon[i - filePages]!;
      frame.get();
      // A private file page is shared with the page cache until written.
      const cow = i < filePages && !req.shared;
      this.ptes.set(this.vpn(addr) + BigInt(i), { frame, cow });
    }
    this.mapPages(addr, addr + len);
    for (const h of this.mapHooks) h(vma);
    return addr;
  }

  private overlaps(start: bigint, end: bigint): boolean {
    return this.vmas.some((v) => v.start < end && v.end > start);
  }

  munmap(start: bigint, len: bigint): number {
    this.assertQuiescent('munmap');
    const ps = BigInt(this.pageSize);
    if (start % ps !== 0n || len <= 0n) return -EINVAL;
    const end = this.pageAlignUp(start + len);
    // A hole in the middle of a region splits it in two (Linux: ENOMEM past max_map_count).
    if (!this.regions.hasRoom(1)) return -ENOMEM;
    const victims = this.vmasIn(start, end);
    if (victims.length === 0) return 0;
    this.invalidateStart(start, end, 'munmap');
    // Page by page over the VMAs only: the range itself may span the whole address space.
    for (const v of victims) this.unmapPages(v.start, v.end);
    for (const v of victims) {
      for (let a = v.start; a < v.end; a += ps) {
        const k = this.vpn(a);
        const pte = this.ptes.get(k);
        if (pte) {
          pte.frame.put();
          this.ptes.delete(k);
        }
      }
      this.removeVma(v);
    }
    this.invalidateEnd(start, end, 'munmap');
    return 0;
  }

  mprotect(start: bigint, len: bigint, prot: number): number {
    this.assertQuiescent('mprotect');
    const ps = BigInt(this.pageSize);
    if (start % ps !== 0n) return -EINVAL;
    if (len === 0n) return 0;
    const end = this.pageAlignUp(start + len);
    // Linux requires the whole range to be mapped.
    for (let a = start; a < end; a += ps) if (!this.findVma(a)) return -ENOMEM;
    // Remapping coalesces runs, so only the two edges can add regions.
    if (!this.regions.hasRoom(2)) return -ENOMEM;
    // mprotect_fixup: PROT_WRITE needs VM_MAYWRITE on every VMA of the range.
    if (prot & PROT.WRITE && this.vmasIn(start, end).some((v) => v.flags.mayWrite === false)) return -EACCES;
    this.invalidateStart(start, end, 'mprotect');
    for (const v of this.vmasIn(start, end)) v.prot = prot;
    this.unmapPages(start, end);
    this.mapPages(start, end);
    this.invalidateEnd(start, end, 'mprotect');
    return 0;
  }

  /** brk(): grows or shrinks the heap VMA; returns the new (or unchanged) break. */
  setBrk(newBrk: bigint): bigint {
    if (newBrk < this.brkStart) return this.brk;
    const oldEnd = this.pageAlignUp(this.brk);
    const newEnd = this.pageAlignUp(newBrk);
    if (newEnd > oldEnd) {
      if (this.overlaps(oldEnd, newEnd)) return this.brk;
      const r = this.mmap({ addr: oldEnd, len: newEnd - oldEnd, prot: PROT.READ | PROT.WRITE, fixed: true, shared: false, name: '[heap]' });
      if (r < 0n) return this.brk;
    } else if (newEnd < oldEnd) {
      this.munmap(newEnd, oldEnd - newEnd);
    }
    this.brk = newBrk;
    return this.brk;
  }

  // --- copy-on-write ----------------------------------------------------------------------------

  /** Give this mm a private, writable copy of the page at `vpn` (or reuse a sole anonymous page). */
  private breakCow(vpnKey: bigint, pte: Pte, vma: Vma, force = false): void {
    const a = vpnKey << this.pageShift;
    const needsCopy = pte.frame.isPageCache || pte.frame.mapcount > 1;
    // Charged before anything changes; a FOLL_FORCE write (ptrace, uprobes' breakpoints: asked
    // for by the user, not the guest) is charged but never refused.
    // The page's own region plus the two pieces of the region it is cut from. Past a few hundred
    // regions (each change costs time linear in their number) an anonymous VMA is collapsed into
    // one region instead, which also makes this page private.
    if (this.regions.count >= COLLAPSE_AT && this.collapse(vma)) return;
    if (!this.regions.hasRoom(2)) throw new MmOom(a, `copy-on-write copy past the emulator's ${MAX_ENGINE_REGIONS} memory regions`);
    const fresh = needsCopy ? allocAnonFrames(1, this.pageSize, this.charge, force) : undefined;
    if (needsCopy && !fresh) throw new MmOom(a, 'copy-on-write copy over the guest memory limit');
    this.invalidateStart(a, a + BigInt(this.pageSize), 'cow');
    this.unmapPages(a, a + BigInt(this.pageSize));
    if (fresh) {
      const [copy] = fresh;
      copy!.bytes(this.pageSize).set(pte.frame.bytes(this.pageSize));
      copy!.get();
      pte.frame.put();
      pte.frame = copy!;
    }
    pte.cow = false;
    this.mapPages(a, a + BigInt(this.pageSize));
    if (vma.prot & PROT.EXEC) this.flushText(a, a + BigInt(this.pageSize));
    this.invalidateEnd(a, a + BigInt(this.pageSize), 'cow');
  }

  /**
   * Give a private anonymous data VMA one fresh host block holding a copy of every page, so its
   * pages are one engine region again (copy-on-write copies are one region each). Like
   * khugepaged, invisible to the guest; shared pages are copied, charged to the memory limit.
   * False when it does not apply or the copy does not fit.
   */
  private collapse(vma: Vma): boolean {
    if (vma.file || vma.flags.shared || !(vma.prot & PROT.WRITE) || vma.prot & PROT.EXEC) return false;
    const pages = Number((vma.end - vma.start) >> this.pageShift);
    const fresh = allocAnonFrames(pages, this.pageSize, this.charge);
    if (!fresh) return false;
    this.invalidateStart(vma.start, vma.end, 'cow');
    this.unmapPages(vma.start, vma.end);
    for (let i = 0; i < pages; i++) {
      const pte = this.ptes.get(this.vpn(vma.start) + BigInt(i));
      if (!pte) continue;
      const f = fresh[i]!;
      f.get();
      f.bytes(this.pageSize).set(pte.frame.bytes(this.pageSize));
      pte.frame.put();
      pte.frame = f;
      pte.cow = false;
    }
    if (fresh[0]!.block.liveFrames === 0) fresh[0]!.block.free();
    this.mapPages(vma.start, vma.end);
    this.invalidateEnd(vma.start, vma.end, 'cow');
    return true;
  }

  private invalidateStart(start: bigint, end: bigint, why: InvalidateReason): void {
    for (const h of this.invalidateHooks) h.rangeStart?.(start, end, why);
  }

  private invalidateEnd(start: bigint, end: bigint, why: InvalidateReason): void {
    for (const h of this.invalidateHooks) h.rangeEnd?.(start, end, why);
  }

  /**
   * A guest store faulted at `addr` (MMU refusal, UC_HOOK_MEM_WRITE_PROT): true for a COW page.
   * The run ends, settle() makes the copy, the run loop restarts the faulting instruction.
   */
  private notePendingCow(addr: bigint): boolean {
    const pte = this.ptes.get(this.vpn(addr));
    const vma = this.findVma(addr);
    if (!pte || !vma || !pte.cow || !(vma.prot & PROT.WRITE)) return false;
    this.pendingCow = addr;
    return true;
  }

  /** A copy refused over the memory limit (MmOom) marks this mm for the OOM killer; anything else is thrown on. */
  private noteOom(e: unknown): void {
    if (!(e instanceof MmOom)) throw e;
    this.oom = true;
    this.oomReason = e.message;
  }

  /** Work queued while the engine ran: true when there was some (the run must go on). */
  get unsettled(): boolean {
    return this.pendingCow !== undefined || this.deferredWrites.length > 0;
  }

  /**
   * Finish what could not be done during the run. Returns true if a guest COW fault was resolved
   * (the faulting instruction must be restarted, it is not a real fault).
   */
  settle(): boolean {
    if (this.engine.isRunning) throw new UniprobeError('INTERNAL', 'Mm.settle while the engine runs');
    let cow = false;
    if (this.pendingCow !== undefined) {
      const a = this.pendingCow;
      this.pendingCow = undefined;
      const k = this.vpn(a);
      const pte = this.ptes.get(k);
      const vma = this.findVma(a);
      if (pte && vma && pte.cow) {
        try {
          this.breakCow(k, pte, vma);
          cow = true;
        } catch (e) {
          this.noteOom(e); // the store cannot complete: the machine OOM-kills the process
        }
      }
    }
    const writes = this.deferredWrites.splice(0);
    for (const w of writes) {
      try {
        this.write(w.addr, w.bytes, w.force);
      } catch (e) {
        this.noteOom(e);
      }
    }
    return cow;
  }

  // --- host access to guest memory --------------------------------------------------------------

  read(addr: bigint, len: number): Uint8Array {
    return this.readInto(addr, new Uint8Array(len));
  }

  /** read() into `out` (its length is the count): hot paths reuse a buffer, as a typed array over 64 bytes costs 1–3 µs to allocate. */
  readInto(addr: bigint, out: Uint8Array): Uint8Array {
    const len = out.length;
    const an = this.tlb.address(addr, len, this.userCopying);
    if (an >= 0 && this.tlb.read(an, out)) return out;
    this.checkUserCopy(addr, len);
    const kern = kernelMappingAt(this.kernel, addr, len);
    if (kern) return this.tlb.readKernel(an, out, kern.k, kern.off);
    let done = 0;
    while (done < len) {
      const a = done === 0 ? addr : addr + BigInt(done);
      const pte = this.ptes.get(this.vpn(a));
      if (!pte) throw new MmFault(a, 'read of unmapped memory');
      const off = Number(BigInt.asUintN(Number(this.pageShift), a));
      const n = Math.min(len - done, this.pageSize - off);
      const src = pte.frame.block.mem.bytes;
      copyBytes(out, done, src, pte.frame.offset + off, n);
      if (an >= 0 && n === len) this.tlb.enter(an, src, pte.frame.offset, plainlyWritable(this.findVma(a)?.prot, pte.cow));
      done += n;
    }
    return out;
  }

  /** write() at a Number address (GuestMemoryAccess.writeAt): the host TLB, else write()'s own path. */
  writeAt(addr: number, bytes: Uint8Array): void {
    if (!this.userCopying && this.tlb.write(addr, bytes)) return;
    this.write(BigInt(addr), bytes);
  }

  /**
   * Write guest memory from the host. `force` = FOLL_FORCE (write even to read-only private
   * mappings, as ptrace and uprobes do); without it a non-writable page faults.
   */
  write(addr: bigint, bytes: Uint8Array, force = false): void {
    const an = this.tlb.address(addr, bytes.length, this.userCopying);
    if (an >= 0 && !force && this.tlb.write(an, bytes)) return;
    this.checkUserCopy(addr, bytes.length);
    const kern = kernelMappingAt(this.kernel, addr, bytes.length);
    if (kern) return this.tlb.writeKernel(force ? -1 : an, bytes, kern.k, kern.off);
    let done = 0;
    let execStart = -1n;
    let execEnd = -1n;
    while (done < bytes.length) {
      const a = addr + BigInt(done);
      const k = this.vpn(a);
      const pte = this.ptes.get(k);
      const vma = this.findVma(a);
      if (!pte || !vma) throw new MmFault(a, 'write to unmapped memory');
      if (!force && !(vma.prot & PROT.WRITE)) throw new MmFault(a, 'write to read-only memory');
      const needsCopy = (pte.cow || (force && pte.frame.isPageCache)) && !(force && !(vma.prot & PROT.WRITE) && !pte.frame.isPageCache && pte.frame.mapcount === 1);
      if (needsCopy && this.engine.isRunning) {
        // Finish the whole write after the run (see the class comment); order is kept. The rest
        // must fault now if it would fault then: the system call is still there to see EFAULT.
        for (let b = a, ps = BigInt(this.pageSize); b < addr + BigInt(bytes.length); b = (b / ps + 1n) * ps) {
          const v = this.findVma(b);
          if (!this.ptes.has(this.vpn(b)) || !v) throw new MmFault(b, 'write to unmapped memory');
          if (!force && !(v.prot & PROT.WRITE)) throw new MmFault(b, 'write to read-only memory');
        }
        this.deferredWrites.push({ addr: a, bytes: bytes.slice(done), force });
        break;
      }
      if (pte.cow || (force && pte.frame.isPageCache)) {
        if (force && !(vma.prot & PROT.WRITE) && !pte.frame.isPageCache && pte.frame.mapcount === 1) {
          pte.cow = false; // already private: write in place, the page stays mapped read-only
        } else this.breakCow(k, pte, vma, force);
      }
      const off = Number(a & BigInt(this.pageSize - 1));
      const n = Math.min(bytes.length - done, this.pageSize - off);
      pte.frame.block.mem.bytes.set(n === bytes.length ? bytes : bytes.subarray(done, done + n), pte.frame.offset + off); // no view per write: probe hits write words
      if (an >= 0 && n === bytes.length) this.tlb.enter(an, pte.frame.block.mem.bytes, pte.frame.offset, plainlyWritable(vma.prot, pte.cow));
      if (vma.prot & PROT.EXEC) {
        if (execStart < 0n) execStart = a;
        execEnd = a + BigInt(n);
      }
      done += n;
    }
    if (execStart >= 0n) this.flushText(execStart, execEnd);
  }

  /** Is `addr` in one of the kernel's regions (text, stacks, insn slots) every mm maps? */
  isKernelAddress(addr: bigint): boolean {
    return kernelMappingAt(this.kernel, addr, 1) !== undefined;
  }

  /** Is [addr, addr+len) readable by the guest? */
  isMapped(addr: bigint, len = 1): boolean {
    for (let a = this.pageAlignDown(addr); a < addr + BigInt(len); a += BigInt(this.pageSize)) {
      if (!this.ptes.has(this.vpn(a)) && !kernelMappingAt(this.kernel, a, 1)) return false;
    }
    return true;
  }

  // --- fork ---------------------------------------------------------------------------------------

  /**
   * dup_mmap: a new mm with the same VMAs; private pages are shared copy-on-write (write
   * protected in both mms), shared pages simply shared. VMAs marked dontCopy are skipped.
   */
  fork(): Mm {
    this.assertQuiescent('fork');
    const child = new Mm(this.arch, this.kernel);
    child.charge = this.charge;
    child.rmapLock = this.rmapLock;
    try {
      child.brkStart = this.brkStart;
      child.brk = this.brk;
      const ps = BigInt(this.pageSize);
      for (const v of this.vmas) {
        if (v.flags.dontCopy) continue;
        const cv = new Vma(child, v.start, v.end, v.prot, { ...v.flags }, v.file, v.pgoff, v.name);
        child.insertVma(cv);
        let changed = false;
        for (let a = v.start; a < v.end; a += ps) {
          const k = this.vpn(a);
          const pte = this.ptes.get(k);
          if (!pte) continue;
          pte.frame.get();
          // is_cow_mapping: a private page is shared copy-on-write whatever the VMA allows now
          // (a later mprotect(PROT_WRITE) in either mm must not make the shared frame writable).
          const cow = !v.flags.shared;
          if (cow && !pte.cow) {
            pte.cow = true;
            if (v.prot & PROT.WRITE) changed = true; // otherwise the engine's mapping stays read-only as it is
          }
          child.ptes.set(k, { frame: pte.frame, cow });
        }
        if (changed) {
          this.invalidateStart(v.start, v.end, 'fork');
          this.unmapPages(v.start, v.end);
          this.mapPages(v.start, v.end);
          this.invalidateEnd(v.start, v.end, 'fork');
        }
        child.mapPages(cv.start, cv.end);
      }
      return child;
    } catch (e) {
      child.destroy();
      throw e;
    }
  }

  /** exit_mmap: drop every page and close the engine. */
  destroy(): void {
    if (this.engine.closed) return;
    for (const h of this.invalidateHooks) h.release?.();
    for (const pte of this.ptes.values()) pte.frame.put();
    this.ptes.clear();
    this.tlb.flush();
    for (const v of [...this.vmas]) this.removeVma(v);
    this.engine.close();
    this.boundary?.free();
  }

  get destroyed(): boolean {
    return this.engine.closed;
  }

  /**
   * Give a private copy of a file page back to the page cache when it matches it again (uprobes'
   * unregister: uprobe_write_opcode maps the file page again instead of keeping an identical anon
   * copy). Only between runs. True when the page cache page is mapped again.
   */
  revertToPageCache(addr: bigint): boolean {
    this.assertQuiescent('revertToPageCache');
    const vma = this.findVma(addr);
    if (!vma?.file || vma.flags.shared) return false;
    const k = this.vpn(addr);
    const pte = this.ptes.get(k);
    if (!pte || pte.frame.isPageCache) return false;
    const a = k << this.pageShift;
    const pgoff = vma.pgoff + Number((a - vma.start) >> this.pageShift);
    const page = vma.file.page(pgoff);
    if (!page) return false;
    const mine = pte.frame.bytes(this.pageSize);
    const file = page.bytes(this.pageSize);
    for (let i = 0; i < this.pageSize; i++) if (mine[i] !== file[i]) return false;
    const end = a + BigInt(this.pageSize);
    this.invalidateStart(a, end, 'cow');
    this.unmapPages(a, end);
    page.get();
    pte.frame.put();
    pte.frame = page;
    pte.cow = true;
    this.mapPages(a, end);
    if (vma.prot & PROT.EXEC) this.flushText(a, end);
    this.invalidateEnd(a, end, 'cow');
    return true;
  }

  /** Pages this mm has privately (its own copies): for tests and listings. */
  privatePageCount(): number {
    return [...this.ptes.values()].filter((p) => !p.frame.isPageCache && !p.cow).length;
  }

  /** The frame mapped at `addr` (tests check sharing and COW with it). */
  frameAt(addr: bigint): PageFrame | undefined {
    return this.ptes.get(this.vpn(addr))?.frame;
  }
}
