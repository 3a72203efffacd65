/**
 * The host TLB (src/mm/host-tlb.ts) must never change what a host read or write of guest memory
 * does: random sequences of reads, writes, mprotect, munmap, mmap, fork and private file mappings
 * are run on real address spaces and on a plain model of what Linux's copy_{to,from}_user over
 * those mappings gives (bytes, EFAULT-style faults, copy-on-write isolation, the page cache left
 * alone by a private mapping). Accesses are small and land near page edges, so most are served
 * by the cache after their first walk, and some straddle two pages (the slow path's).
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { archFor } from '../../arch/index.js';
import { Inode } from '../../src/mm/inode.js';
import { Mm, MmFault } from '../../src/mm/mm.js';
import { PROT } from '../../src/mm/vma.js';
import type { Target } from '../../arch/types.js';
import { supported } from '../helpers.js';

const PAGES = 4;
const BASE = 0x400000n;

interface ModelPage {
  bytes: Uint8Array;
  prot: number;
}
/** One address space as the model sees it: page index → contents and protection (absent: unmapped). */
type Model = Array<ModelPage | undefined>;

type Op =
  | { kind: 'read'; mm: number; at: number; len: number }
  | { kind: 'write'; mm: number; at: number; len: number; value: number }
  | { kind: 'mprotect'; mm: number; page: number; prot: number }
  | { kind: 'remap'; mm: number; page: number }
  | { kind: 'fork' };

function ops(pageSize: number): fc.Arbitrary<Op[]> {
  // Offsets cluster at page edges and the start: where a cache keyed by page goes wrong.
  const at = fc.oneof(
    fc.integer({ min: 0, max: PAGES * pageSize - 1 }),
    fc.tuple(fc.integer({ min: 1, max: PAGES - 1 }), fc.integer({ min: -9, max: 8 })).map(([p, d]) => p * pageSize + d),
  );
  const mm = fc.integer({ min: 0, max: 1 });
  const len = fc.integer({ min: 1, max: 24 });
  const prot = fc.constantFrom(PROT.READ, PROT.READ | PROT.WRITE, PROT.READ | PROT.WRITE | PROT.EXEC);
  const page = fc.integer({ min: 0, max: PAGES - 1 });
  return fc.array(
    fc.oneof(
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('read' as const), mm, at, len }) },
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('write' as const), mm, at, len, value: fc.integer({ min: 1, max: 255 }) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('mprotect' as const), mm, page, prot }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('remap' as const), mm, page }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'fork' as const }) },
    ),
    { minLength: 10, maxLength: 60 },
  );
}

const TARGETS = (['x86_64', 'ppc64'] as const).filter((t) => supported.has(t));
let live: Mm[] = [];
let inodes: Inode[] = [];
afterEach(() => {
  for (const m of live) m.destroy();
  for (const i of inodes) i.release();
  live = [];
  inodes = [];
});

describe.each(TARGETS)('%s: host reads and writes through the host TLB', (target: Target) => {
  const arch = archFor(target)!;
  const ps = arch.layout.pageSize;
  const P = BigInt(ps);

  /** Page 0 is a private mapping of a file (its page cache must never change); 1.. are anonymous. */
  function setup(): { mms: Array<Mm | undefined>; models: Model[]; file: Uint8Array; inode: Inode } {
    const file = Uint8Array.from({ length: ps }, (_, i) => (i * 13 + 5) & 0xff);
    const inode = new Inode('/test/tlb-file', file.slice(), ps);
    inodes.push(inode);
    const mm = new Mm(arch, []);
    live.push(mm);
    const rw = PROT.READ | PROT.WRITE;
    expect(mm.mmap({ addr: BASE, len: P, prot: rw, fixed: true, shared: false, file: { inode, pgoff: 0 } })).toBe(BASE);
    expect(mm.mmap({ addr: BASE + P, len: BigInt(PAGES - 1) * P, prot: rw, fixed: true, shared: false })).toBe(BASE + P);
    const model: Model = [{ bytes: file.slice(), prot: rw }];
    for (let i = 1; i < PAGES; i++) model.push({ bytes: new Uint8Array(ps), prot: rw });
    return { mms: [mm, undefined], models: [model, []], file, inode };
  }

  /** What the model says an access does: the bytes, or a fault. */
  function modelAccess(model: Model, at: number, len: number, write: boolean): ModelPage[] | 'fault' {
    const pages: ModelPage[] = [];
    for (let p = Math.floor(at / ps); p <= Math.floor((at + len - 1) / ps); p++) {
      const mp = p < PAGES ? model[p] : undefined;
      if (!mp || (write && !(mp.prot & PROT.WRITE))) return 'fault';
      pages.push(mp);
    }
    return pages;
  }

  it('gives exactly what the page tables give, through mprotect, munmap, mmap, fork and copy-on-write', () => {
    fc.assert(
      fc.property(ops(ps), (seq) => {
        const { mms, models, file, inode } = setup();
        for (const op of seq) {
          if (op.kind === 'fork') {
            if (mms[1]) continue;
            const child = mms[0]!.fork();
            live.push(child);
            mms[1] = child;
            models[1] = models[0]!.map((p) => p && { bytes: p.bytes.slice(), prot: p.prot });
            continue;
          }
          const mm = mms[op.mm];
          const model = models[op.mm]!;
          if (!mm) continue;
          switch (op.kind) {
            case 'read': {
              const want = modelAccess(model, op.at, op.len, false);
              const addr = BASE + BigInt(op.at);
              if (want === 'fault') {
                expect(() => mm.read(addr, op.len)).toThrow(MmFault);
                break;
              }
              const bytes = new Uint8Array(op.len);
              for (let i = 0; i < op.len; i++) bytes[i] = model[Math.floor((op.at + i) / ps)]!.bytes[(op.at + i) % ps]!;
              expect(mm.read(addr, op.len)).toEqual(bytes);
              break;
            }
            case 'write': {
              const want = modelAccess(model, op.at, op.len, true);
              const data = new Uint8Array(op.len).fill(op.value);
              const addr = BASE + BigInt(op.at);
              if (want === 'fault') expect(() => mm.write(addr, data)).toThrow(MmFault);
              else mm.write(addr, data);
              // As copy_to_user: the bytes before the first page that faults are written.
              for (let i = 0; i < op.len; i++) {
                const mp = model[Math.floor((op.at + i) / ps)];
                if (!mp || !(mp.prot & PROT.WRITE) || Math.floor((op.at + i) / ps) >= PAGES) break;
                mp.bytes[(op.at + i) % ps] = op.value;
              }
              break;
            }
            case 'mprotect':
              if (!model[op.page]) break;
              expect(mm.mprotect(BASE + BigInt(op.page) * P, P, op.prot)).toBe(0);
              model[op.page]!.prot = op.prot;
              break;
            case 'remap':
              // munmap, then a fresh anonymous page: zeros, read-write.
              expect(mm.munmap(BASE + BigInt(op.page) * P, P)).toBe(0);
              model[op.page] = undefined;
              if (op.page > 0) {
                expect(mm.mmap({ addr: BASE + BigInt(op.page) * P, len: P, prot: PROT.READ | PROT.WRITE, fixed: true, shared: false })).toBe(BASE + BigInt(op.page) * P);
                model[op.page] = { bytes: new Uint8Array(ps), prot: PROT.READ | PROT.WRITE };
              }
              break;
          }
        }
        // A private mapping never writes through to the file.
        expect(inode.page(0)!.bytes(ps)).toEqual(file);
        for (const m of mms) if (m) live.splice(live.indexOf(m), 1), m.destroy();
      }),
      { numRuns: 150 },
    );
  });
});
