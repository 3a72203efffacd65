/**
 * The address space (Mm) on its own: page cache sharing, copy-on-write for private file mappings
 * and across fork(), shared mappings, munmap/mprotect/mmap argument errors, top-down placement,
 * brk, and that destroy() gives every host allocation back. Then the same COW rules seen from a
 * running guest: a guest store to a private file page (run the way the run loop runs it:
 * engine.start, mm.settle(), restart), and the fork fixtures, after which the binary's page cache
 * must still equal the file on disk.
 *
 * Expected values come from Linux's rules (mm/memory.c do_wp_page: a private page is copied on the
 * first write unless the writer is its only user, wp_page_reuse; mm/mmap.c and mm/mprotect.c for
 * the errors), not from the implementation.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { archFor } from '../../arch/index.js';
import { Engine, HostMemory, UC_ERR } from '../../src/emu/unicorn.js';
import { Inode } from '../../src/mm/inode.js';
import { Mm, MmFault } from '../../src/mm/mm.js';
import { PROT } from '../../src/mm/vma.js';
import { Machine } from '../../src/kernel/machine.js';
import { manifest, repoRoot, supported } from '../helpers.js';

const arch = archFor('x86_64')!;
const PS = arch.layout.pageSize; // 4096 on x86-64
const P = BigInt(PS);
const RW = PROT.READ | PROT.WRITE;
const EINVAL = 22; // include/uapi/asm-generic/errno-base.h
const ENOMEM = 12;

/** File contents whose every byte says where it is: byte i = (i * 7 + 3) & 0xff. */
function fileBytes(pages: number): Uint8Array {
  return Uint8Array.from({ length: pages * PS }, (_, i) => (i * 7 + 3) & 0xff);
}

// Everything a test creates is destroyed by afterEach, so a failing assertion does not leak into
// the next test's allocation counts.
let mms: Mm[] = [];
let inodes: Inode[] = [];
const newMm = (): Mm => {
  const mm = new Mm(arch, []);
  mms.push(mm);
  return mm;
};
const newInode = (bytes: Uint8Array): Inode => {
  const ino = new Inode('/test/file', bytes, PS);
  inodes.push(ino);
  return ino;
};
const forkOf = (mm: Mm): Mm => {
  const c = mm.fork();
  mms.push(c);
  return c;
};
beforeEach(() => {
  mms = [];
  inodes = [];
});
afterEach(() => {
  for (const m of mms) m.destroy();
  for (const i of inodes) i.release();
});

const text = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));

describe('private file mappings share the page cache until written', () => {
  it('maps the page-cache frames themselves, then copies only the page that is written', () => {
    const bytes = fileBytes(2);
    const ino = newInode(bytes);
    const mm = newMm();
    const a = 0x400000n;
    expect(mm.mmap({ addr: a, len: 2n * P, prot: RW, fixed: true, shared: false, file: { inode: ino, pgoff: 0 } })).toBe(a);
    expect(mm.frameAt(a)).toBe(ino.page(0));
    expect(mm.frameAt(a + P)).toBe(ino.page(1));
    expect(ino.page(0)!.mapcount).toBe(1);
    expect(mm.read(a + 10n, 4)).toEqual(bytes.slice(10, 14));
    // The engine sees the same bytes (the frame is mapped by pointer).
    expect(mm.engine.memRead(a + P + 5n, 3)).toEqual(bytes.slice(PS + 5, PS + 8));

    mm.write(a + 10n, Uint8Array.of(1, 2, 3, 4));

    const copy = mm.frameAt(a)!;
    expect(copy).not.toBe(ino.page(0));
    expect(copy.isPageCache).toBe(false);
    expect(mm.frameAt(a + P)).toBe(ino.page(1)); // the other page was not touched: still shared
    expect(ino.page(0)!.mapcount).toBe(0); // the PTE moved to the copy
    expect(mm.privatePageCount()).toBe(1);
    // The copy is the old page with the write on top; the file is unchanged.
    const expected = bytes.slice(0, PS);
    expected.set([1, 2, 3, 4], 10);
    expect(mm.read(a, PS)).toEqual(expected);
    expect(mm.engine.memRead(a, PS)).toEqual(expected);
    expect(ino.read(0, 2 * PS)).toEqual(bytes);
  });

  it('a second address space mapping the same file still sees the original bytes', () => {
    const bytes = fileBytes(1);
    const ino = newInode(bytes);
    const mm1 = newMm();
    const mm2 = newMm();
    const a = 0x400000n;
    mm1.mmap({ addr: a, len: P, prot: RW, fixed: true, shared: false, file: { inode: ino, pgoff: 0 } });
    mm2.mmap({ addr: a, len: P, prot: RW, fixed: true, shared: false, file: { inode: ino, pgoff: 0 } });
    expect(ino.page(0)!.mapcount).toBe(2);
    expect(mm1.frameAt(a)).toBe(mm2.frameAt(a));

    mm1.write(a, text('private'));

    expect(mm1.read(a, 7)).toEqual(text('private'));
    expect(mm2.read(a, 7)).toEqual(bytes.slice(0, 7));
    expect(mm2.engine.memRead(a, 7)).toEqual(bytes.slice(0, 7));
    expect(mm2.frameAt(a)).toBe(ino.page(0));
    expect(ino.page(0)!.mapcount).toBe(1);
    expect(ino.read(0, PS)).toEqual(bytes);
  });

  it('a read-only private mapping refuses a plain write; a forced one (FOLL_FORCE) writes a copy', () => {
    const bytes = fileBytes(1);
    const ino = newInode(bytes);
    const mm = newMm();
    const a = 0x400000n;
    mm.mmap({ addr: a, len: P, prot: PROT.READ | PROT.EXEC, fixed: true, shared: false, file: { inode: ino, pgoff: 0 } });
    expect(() => mm.write(a, Uint8Array.of(0xcc))).toThrow(MmFault);
    expect(mm.frameAt(a)).toBe(ino.page(0));
    // What ptrace and uprobes do: write through the protection, into a private copy.
    mm.write(a, Uint8Array.of(0xcc), true);
    expect(mm.read(a, 2)).toEqual(Uint8Array.of(0xcc, bytes[1]!));
    expect(mm.frameAt(a)!.isPageCache).toBe(false);
    expect(ino.read(0, 1)).toEqual(Uint8Array.of(bytes[0]!));
  });

  it('a file page mapped at a page offset (pgoff) shows that part of the file', () => {
    const bytes = fileBytes(3);
    const ino = newInode(bytes);
    const mm = newMm();
    const a = 0x500000n;
    mm.mmap({ addr: a, len: P, prot: PROT.READ, fixed: true, shared: false, file: { inode: ino, pgoff: 2 } });
    expect(mm.frameAt(a)).toBe(ino.page(2));
    expect(mm.read(a, 16)).toEqual(bytes.slice(2 * PS, 2 * PS + 16));
  });
});

describe('fork shares private pages copy-on-write', () => {
  it('also a page read-only at fork: made writable later by mprotect in one mm, a write stays there (is_cow_mapping)', () => {
    // Found by test/mm/host-tlb.test.ts: the read-only page was shared plainly, so the child's
    // mprotect(PROT_WRITE) mapped the parent's frame writable and its write showed in the parent.
    const parent = newMm();
    const a = 0x10000000n;
    expect(parent.mmap({ addr: a, len: P, prot: RW, fixed: true, shared: false })).toBe(a);
    parent.write(a, text('parent'));
    expect(parent.mprotect(a, P, PROT.READ)).toBe(0);
    const child = forkOf(parent);
    expect(child.frameAt(a)).toBe(parent.frameAt(a));
    expect(child.mprotect(a, P, RW)).toBe(0);
    child.write(a, text('child!'));
    expect(child.read(a, 6)).toEqual(text('child!'));
    expect(parent.read(a, 6)).toEqual(text('parent'));
    expect(parent.engine.memRead(a, 6)).toEqual(text('parent'));
    expect(child.frameAt(a)).not.toBe(parent.frameAt(a));
  });

  it('same frame in both until one writes; each write stays in its own address space', () => {
    const parent = newMm();
    const a = 0x10000000n;
    expect(parent.mmap({ addr: a, len: 2n * P, prot: RW, fixed: true, shared: false })).toBe(a);
    parent.write(a, text('parent'));
    parent.write(a + P, text('second'));
    const orig0 = parent.frameAt(a)!;
    const orig1 = parent.frameAt(a + P)!;

    const child = forkOf(parent);
    expect(child.frameAt(a)).toBe(orig0);
    expect(child.frameAt(a + P)).toBe(orig1);
    expect(orig0.mapcount).toBe(2);
    expect(child.read(a, 6)).toEqual(text('parent'));
    expect(child.engine.memRead(a, 6)).toEqual(text('parent'));

    // Page 0: the child writes first. It gets a copy; the parent keeps the original.
    child.write(a, text('child!'));
    expect(parent.read(a, 6)).toEqual(text('parent'));
    expect(parent.engine.memRead(a, 6)).toEqual(text('parent'));
    expect(child.read(a, 6)).toEqual(text('child!'));
    expect(child.frameAt(a)).not.toBe(orig0);
    expect(parent.frameAt(a)).toBe(orig0);
    expect(orig0.mapcount).toBe(1);
    // The parent is now the page's only user: its write reuses the page (wp_page_reuse), no copy.
    parent.write(a, text('PARENT'));
    expect(parent.frameAt(a)).toBe(orig0);
    expect(child.read(a, 6)).toEqual(text('child!'));
    expect(parent.read(a, 6)).toEqual(text('PARENT'));

    // Page 1: the other way round. The parent's write is not seen by the child.
    parent.write(a + P, text('SECOND'));
    expect(child.read(a + P, 6)).toEqual(text('second'));
    expect(child.engine.memRead(a + P, 6)).toEqual(text('second'));
    expect(parent.frameAt(a + P)).not.toBe(orig1);
    expect(child.frameAt(a + P)).toBe(orig1);
    child.write(a + P, text('2nd!!!'));
    expect(child.frameAt(a + P)).toBe(orig1); // sole user again: reused
    expect(parent.read(a + P, 6)).toEqual(text('SECOND'));

    // After both wrote, every page has one frame per address space.
    for (const x of [a, a + P]) {
      expect(parent.frameAt(x)).not.toBe(child.frameAt(x));
      expect(parent.frameAt(x)!.mapcount).toBe(1);
      expect(child.frameAt(x)!.mapcount).toBe(1);
    }
  });

  it('private file pages stay shared with the page cache in both, and a child write copies', () => {
    const bytes = fileBytes(1);
    const ino = newInode(bytes);
    const parent = newMm();
    const a = 0x600000n;
    parent.mmap({ addr: a, len: P, prot: RW, fixed: true, shared: false, file: { inode: ino, pgoff: 0 } });
    const child = forkOf(parent);
    expect(child.frameAt(a)).toBe(ino.page(0));
    expect(parent.frameAt(a)).toBe(ino.page(0));
    expect(ino.page(0)!.mapcount).toBe(2);
    child.write(a, Uint8Array.of(0xee));
    expect(parent.read(a, 1)).toEqual(Uint8Array.of(bytes[0]!));
    expect(parent.frameAt(a)).toBe(ino.page(0));
    // Page-cache pages are never reused for a private write, even by their last mapper.
    parent.write(a, Uint8Array.of(0xdd));
    expect(parent.frameAt(a)!.isPageCache).toBe(false);
    expect(ino.read(0, PS)).toEqual(bytes);
  });

  it('shared mappings are not copied: a write by either side is seen by the other', () => {
    const parent = newMm();
    const a = 0x20000000n;
    parent.mmap({ addr: a, len: P, prot: RW, fixed: true, shared: true });
    const child = forkOf(parent);
    const frame = parent.frameAt(a)!;
    expect(child.frameAt(a)).toBe(frame);
    child.write(a, text('from child'));
    expect(parent.read(a, 10)).toEqual(text('from child'));
    expect(parent.engine.memRead(a, 10)).toEqual(text('from child'));
    parent.write(a, text('from paren'));
    expect(child.read(a, 10)).toEqual(text('from paren'));
    expect(parent.frameAt(a)).toBe(frame);
    expect(child.frameAt(a)).toBe(frame);
    expect(frame.mapcount).toBe(2);
  });

  it('a shared file mapping writes through to the page cache (MAP_SHARED)', () => {
    const bytes = fileBytes(1);
    const ino = newInode(bytes);
    const mm = newMm();
    const other = newMm();
    const a = 0x700000n;
    mm.mmap({ addr: a, len: P, prot: RW, fixed: true, shared: true, file: { inode: ino, pgoff: 0 } });
    other.mmap({ addr: a, len: P, prot: PROT.READ, fixed: true, shared: false, file: { inode: ino, pgoff: 0 } });
    mm.write(a + 1n, Uint8Array.of(0x55));
    expect(mm.frameAt(a)).toBe(ino.page(0));
    expect(ino.read(1, 1)).toEqual(Uint8Array.of(0x55));
    expect(other.read(a + 1n, 1)).toEqual(Uint8Array.of(0x55)); // not yet copied: sees the file
  });
});

describe('mmap, munmap and mprotect arguments (Linux errors)', () => {
  it('munmap: unaligned start or zero length is -EINVAL; an unmapped range is fine', () => {
    const mm = newMm();
    const a = 0x10000000n;
    mm.mmap({ addr: a, len: P, prot: RW, fixed: true, shared: false });
    // mm/mmap.c do_vmi_munmap: offset_in_page(start) || len == 0 -> -EINVAL.
    expect(mm.munmap(a + 1n, P)).toBe(-EINVAL);
    expect(mm.munmap(a, 0n)).toBe(-EINVAL);
    expect(mm.isMapped(a)).toBe(true);
    // Unmapping nothing is not an error.
    expect(mm.munmap(0x30000000n, P)).toBe(0);
    // The length is rounded up to whole pages.
    expect(mm.munmap(a, 1n)).toBe(0);
    expect(mm.isMapped(a)).toBe(false);
    expect(mm.frameAt(a)).toBeUndefined();
    expect(() => mm.read(a, 1)).toThrow(MmFault);
    expect(mm.engine.tryMemRead(a, 1)).toBeUndefined();
  });

  it('munmap in the middle splits the mapping and keeps both ends', () => {
    const mm = newMm();
    const a = 0x10000000n;
    mm.mmap({ addr: a, len: 3n * P, prot: RW, fixed: true, shared: false });
    mm.write(a, text('low'));
    mm.write(a + 2n * P, text('high'));
    expect(mm.munmap(a + P, P)).toBe(0);
    expect(mm.vmas.map((v) => [v.start, v.end])).toEqual([
      [a, a + P],
      [a + 2n * P, a + 3n * P],
    ]);
    expect(mm.isMapped(a + P)).toBe(false);
    expect(mm.engine.tryMemRead(a + P, 1)).toBeUndefined();
    expect(mm.read(a, 3)).toEqual(text('low'));
    expect(mm.engine.memRead(a + 2n * P, 4)).toEqual(text('high'));
  });

  it('mprotect: unaligned start is -EINVAL, a range with unmapped pages is -ENOMEM', () => {
    const mm = newMm();
    const a = 0x10000000n;
    mm.mmap({ addr: a, len: P, prot: RW, fixed: true, shared: false });
    // mm/mprotect.c do_mprotect_pkey: start & ~PAGE_MASK -> -EINVAL; no VMA at start, or a
    // hole before end -> -ENOMEM.
    expect(mm.mprotect(a + 8n, P, PROT.READ)).toBe(-EINVAL);
    expect(mm.mprotect(0x30000000n, P, PROT.READ)).toBe(-ENOMEM);
    expect(mm.mprotect(a, 2n * P, PROT.READ)).toBe(-ENOMEM);
    expect(mm.mprotect(a, 0n, PROT.READ)).toBe(0); // len 0: nothing to do
  });

  it('mprotect of part of a mapping splits it; the read-only part refuses writes', () => {
    const mm = newMm();
    const a = 0x10000000n;
    mm.mmap({ addr: a, len: 2n * P, prot: RW, fixed: true, shared: false });
    mm.write(a, text('keep'));
    expect(mm.mprotect(a, P, PROT.READ)).toBe(0);
    expect(mm.vmas.map((v) => [v.start, v.end, v.prot])).toEqual([
      [a, a + P, PROT.READ],
      [a + P, a + 2n * P, RW],
    ]);
    expect(() => mm.write(a, Uint8Array.of(1))).toThrow(MmFault);
    mm.write(a + P, Uint8Array.of(1));
    expect(mm.read(a, 4)).toEqual(text('keep'));
    expect(mm.engine.memRead(a, 4)).toEqual(text('keep'));
  });

  it('mmap: zero length or an unaligned MAP_FIXED address is -EINVAL; beyond TASK_SIZE is -ENOMEM', () => {
    const mm = newMm();
    expect(mm.mmap({ addr: 0n, len: 0n, prot: RW, fixed: false, shared: false })).toBe(-BigInt(EINVAL));
    expect(mm.mmap({ addr: 0x10000010n, len: P, prot: RW, fixed: true, shared: false })).toBe(-BigInt(EINVAL));
    expect(mm.mmap({ addr: arch.layout.taskSize, len: P, prot: RW, fixed: true, shared: false })).toBe(-BigInt(ENOMEM));
    expect(mm.vmas).toHaveLength(0);
  });

  it('MAP_FIXED over an existing mapping replaces it (the old pages are gone)', () => {
    const mm = newMm();
    const a = 0x10000000n;
    mm.mmap({ addr: a, len: 2n * P, prot: RW, fixed: true, shared: false });
    mm.write(a + P, text('old'));
    expect(mm.mmap({ addr: a + P, len: P, prot: RW, fixed: true, shared: false })).toBe(a + P);
    expect(mm.read(a + P, 3)).toEqual(new Uint8Array(3)); // fresh anonymous memory is zero
    expect(mm.vmas).toHaveLength(2);
  });
});

describe('get_unmapped_area places mappings top-down below mmap_base', () => {
  const base = arch.layout.mmapBase;

  it('stacks mappings downwards from mmap_base and reuses the highest hole that fits', () => {
    const mm = newMm();
    expect(mm.getUnmappedArea(P)).toBe(base - P);
    const a = mm.mmap({ addr: 0n, len: P, prot: RW, fixed: false, shared: false });
    const b = mm.mmap({ addr: 0n, len: P, prot: RW, fixed: false, shared: false });
    const c = mm.mmap({ addr: 0n, len: P, prot: RW, fixed: false, shared: false });
    expect([a, b, c]).toEqual([base - P, base - 2n * P, base - 3n * P]);
    // A length that is not a page multiple takes whole pages.
    const d = mm.mmap({ addr: 0n, len: 100n, prot: RW, fixed: false, shared: false });
    expect(d).toBe(base - 4n * P);
    // Free b: a one-page request goes into its hole (the highest gap that fits), a two-page one
    // below everything.
    expect(mm.munmap(b, P)).toBe(0);
    expect(mm.getUnmappedArea(P)).toBe(base - 2n * P);
    expect(mm.getUnmappedArea(2n * P)).toBe(base - 6n * P);
  });

  it('honours a free, page-aligned hint and ignores one that overlaps a mapping', () => {
    const mm = newMm();
    const hint = 0x20000000n;
    expect(mm.mmap({ addr: hint, len: P, prot: RW, fixed: false, shared: false })).toBe(hint);
    expect(mm.mmap({ addr: hint, len: P, prot: RW, fixed: false, shared: false })).toBe(base - P);
  });
});

describe('brk', () => {
  it('grows and shrinks the heap; below its start it returns the old break', () => {
    const mm = newMm();
    const start = 0x800000n;
    mm.brkStart = start;
    mm.brk = start;
    // mm/mmap.c brk(): the new break is returned exactly, pages are whole.
    expect(mm.setBrk(start + 100n)).toBe(start + 100n);
    expect(mm.isMapped(start)).toBe(true);
    expect(mm.isMapped(start + P)).toBe(false);
    expect(mm.setBrk(start + 3n * P)).toBe(start + 3n * P);
    expect(mm.isMapped(start + 2n * P)).toBe(true);
    expect(mm.isMapped(start + 3n * P)).toBe(false);
    mm.write(start, text('heap'));
    mm.write(start + 2n * P, text('top'));
    // brk < mm->start_brk: refused, the current break comes back.
    expect(mm.setBrk(start - P)).toBe(start + 3n * P);
    expect(mm.setBrk(0n)).toBe(start + 3n * P);
    // Shrink: the pages above the new break go away, the first stays with its contents.
    expect(mm.setBrk(start + 16n)).toBe(start + 16n);
    expect(mm.isMapped(start + P)).toBe(false);
    expect(mm.read(start, 4)).toEqual(text('heap'));
    // Grow again: the returning pages are new zero pages, not the old contents.
    expect(mm.setBrk(start + 3n * P)).toBe(start + 3n * P);
    expect(mm.read(start + 2n * P, 3)).toEqual(new Uint8Array(3));
  });

  it('refuses to grow into another mapping', () => {
    const mm = newMm();
    const start = 0x800000n;
    mm.brkStart = start;
    mm.brk = start;
    mm.mmap({ addr: start + 2n * P, len: P, prot: RW, fixed: true, shared: false });
    expect(mm.setBrk(start + P)).toBe(start + P);
    expect(mm.setBrk(start + 3n * P)).toBe(start + P);
    expect(mm.isMapped(start + P)).toBe(false);
  });
});

describe('destroy() gives back every host allocation', () => {
  it('anonymous blocks are freed when their last page goes, engines when their mm goes', () => {
    const host0 = HostMemory.live;
    const eng0 = Engine.live;
    const mm = new Mm(arch, []);
    expect(Engine.live).toBe(eng0 + 1);
    const a = 0x10000000n;
    mm.mmap({ addr: a, len: 2n * P, prot: RW, fixed: true, shared: false });
    expect(HostMemory.live).toBe(host0 + 1); // one block for both pages
    expect(mm.munmap(a, P)).toBe(0);
    expect(HostMemory.live).toBe(host0 + 1); // page 1 still uses the block
    expect(mm.munmap(a + P, P)).toBe(0);
    expect(HostMemory.live).toBe(host0);
    mm.destroy();
    expect(Engine.live).toBe(eng0);
    mm.destroy(); // twice is harmless
    expect(Engine.live).toBe(eng0);
  });

  it('after file maps, anonymous maps, fork and COW copies, destroying both mms frees all but the page cache', () => {
    const host0 = HostMemory.live;
    const eng0 = Engine.live;
    const ino = new Inode('/test/file', fileBytes(2), PS);
    const parent = new Mm(arch, []);
    parent.mmap({ addr: 0x400000n, len: 2n * P, prot: RW, fixed: true, shared: false, file: { inode: ino, pgoff: 0 } });
    parent.mmap({ addr: 0x10000000n, len: 4n * P, prot: RW, fixed: true, shared: false });
    parent.mmap({ addr: 0x20000000n, len: P, prot: RW, fixed: true, shared: true });
    parent.write(0x400000n, Uint8Array.of(1)); // COW copy of a file page
    parent.write(0x10000000n, Uint8Array.of(2));
    const child = parent.fork();
    child.write(0x10000000n, Uint8Array.of(3)); // COW copy of an anonymous page
    child.write(0x400000n + P, Uint8Array.of(4)); // COW copy of the other file page
    parent.write(0x10000000n + P, Uint8Array.of(5));
    expect(Engine.live).toBe(eng0 + 2);
    expect(HostMemory.live).toBeGreaterThan(host0 + 1);

    child.destroy();
    // The parent still reads its pages (blocks shared with the child were not freed under it).
    expect(parent.read(0x10000000n, 1)).toEqual(Uint8Array.of(2));
    expect(parent.read(0x10000000n + P, 1)).toEqual(Uint8Array.of(5));
    expect(parent.engine.memRead(0x10000000n, 1)).toEqual(Uint8Array.of(2));
    parent.destroy();
    expect(Engine.live).toBe(eng0);
    expect(HostMemory.live).toBe(host0 + 1); // the inode's page cache
    ino.release();
    expect(HostMemory.live).toBe(host0);
  });
});

describe('a running guest writes to a private file page', () => {
  it('the store ends the run, settle() copies the page, the restarted store lands in the copy', () => {
    // Page 0 of the "file" is code, page 1 data. The code is
    //   c6 05 <disp32> 42     movb $0x42, disp32(%rip)
    // with disp32 = (0x401000 + 0x10) - (0x400000 + 7) = 0x1009: a store to the data page.
    const bytes = new Uint8Array(2 * PS);
    bytes.set([0xc6, 0x05, 0x09, 0x10, 0x00, 0x00, 0x42], 0);
    bytes.fill(0x11, PS, 2 * PS);
    const ino = newInode(bytes);
    const mm = newMm();
    const code = 0x400000n;
    const data = 0x401000n;
    mm.mmap({ addr: code, len: P, prot: PROT.READ | PROT.EXEC, fixed: true, shared: false, file: { inode: ino, pgoff: 0 } });
    mm.mmap({ addr: data, len: P, prot: RW, fixed: true, shared: false, file: { inode: ino, pgoff: 1 } });
    const end = code + 7n;

    // First run: the page is the page cache's, mapped read-only for COW: the store cannot land.
    const first = mm.engine.start(code, end);
    expect(first.err).toBe(UC_ERR.WRITE_PROT);
    expect(mm.unsettled).toBe(true);
    expect(arch.getPc(mm.engine)).toBe(code); // stopped on the faulting instruction
    expect(ino.read(PS + 0x10, 1)).toEqual(Uint8Array.of(0x11));
    expect(mm.frameAt(data)).toBe(ino.page(1));

    // Between runs, as the run loop does: settle() makes the copy and says "restart".
    expect(mm.settle()).toBe(true);
    expect(mm.unsettled).toBe(false);
    expect(mm.frameAt(data)).not.toBe(ino.page(1));
    const second = mm.engine.start(arch.getPc(mm.engine), end);
    expect(second.err).toBe(UC_ERR.OK);
    expect(arch.getPc(mm.engine)).toBe(end);

    expect(mm.read(data + 0x10n, 1)).toEqual(Uint8Array.of(0x42));
    expect(mm.read(data + 0x11n, 1)).toEqual(Uint8Array.of(0x11)); // the rest was copied
    expect(ino.read(PS + 0x10, 1)).toEqual(Uint8Array.of(0x11)); // the file did not change
    expect(mm.frameAt(code)).toBe(ino.page(0)); // the code page was never written
    // Once copied, the page is writable: a second run stores without a fault.
    mm.write(data + 0x10n, Uint8Array.of(0));
    expect(mm.engine.start(code, end).err).toBe(UC_ERR.OK);
    expect(mm.read(data + 0x10n, 1)).toEqual(Uint8Array.of(0x42));
    expect(mm.settle()).toBe(false);
  });
});

describe('the fork fixtures leave the binary\'s page cache as it is on disk', () => {
  for (const target of ['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as const) {
    for (const name of ['fork', 'fork-nolibc']) {
      const entry = manifest.find((e) => e.target === target && e.name === name);
      it.skipIf(!supported.has(target) || !entry)(`${target}/${name}`, () => {
        const path = join(repoRoot, 'fixtures', entry!.path);
        const out: Buffer[] = [];
        const reports: string[] = [];
        const m = new Machine({ target, stdout: (b) => out.push(Buffer.from(b)), report: (l) => reports.push(l) });
        try {
          m.spawn(path, [path]);
          const r = m.run();
          expect(reports).toEqual([]);
          expect(Buffer.concat(out).toString('utf8')).toBe(entry!.stdout);
          expect(r.status).toBe(entry!.exit);
          // Both processes wrote their .data/.bss and stack (private file pages among them):
          // every write went to a copy, the page cache still holds the file's bytes.
          const disk = new Uint8Array(readFileSync(path));
          const ino = m.inodeFor(realpathSync(path));
          expect(ino.size).toBe(disk.length);
          expect(Buffer.compare(Buffer.from(ino.read(0, ino.size)), Buffer.from(disk))).toBe(0);
        } finally {
          m.close();
        }
      });
    }
  }
});
