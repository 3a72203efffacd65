/**
 * ELF fuzzing with fast-check (fixed seeds): corrupted bytes, random header / program header /
 * section header / symbol fields, truncation at every structural boundary, and random garbage.
 *
 * Property: parseElf returns an ElfFile or throws UniprobeError with code 'ELF' and a message that
 * starts with the file name: never any other exception, never a long-running parse. When it
 * succeeds, the address helpers stay inside the buffer for every segment, section and symbol.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { UniprobeError } from '../../src/errors.js';
import { SHT_DYNSYM, SHT_NOBITS, SHT_NULL, SHT_SYMTAB, parseElf, type ElfFile } from '../../src/elf/index.js';
import {
  buildElf,
  headerFieldOffsets,
  Patcher,
  phdrFieldOffsets,
  ppc64v1Spec,
  sampleSpec,
  shdrFieldOffsets,
  symFieldOffsets,
} from './builder.js';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = join(here, '..', '..');

// ---- corpus ------------------------------------------------------------------------------------

interface Base {
  name: string;
  bytes: Uint8Array;
  elf: ElfFile;
  /** [start, end) ranges worth corrupting: headers, tables, string tables, .opd. */
  regions: Array<[number, number]>;
  /** File offsets where a truncation crosses a structure. */
  boundaries: number[];
}

function structure(name: string, bytes: Uint8Array): Base {
  const elf = parseElf(bytes, name);
  const h = elf.header;
  const regions: Array<[number, number]> = [[0, h.class === 64 ? 64 : 52]];
  const b = new Set<number>([0, 4, 16, h.class === 64 ? 64 : 52]);
  const add = (start: bigint | number, len: bigint | number) => {
    const s = Number(start);
    const e = s + Number(len);
    if (e > s && e <= bytes.length) regions.push([s, e]);
    b.add(s);
    b.add(e);
  };
  add(h.phoff, elf.phdrs.length * h.phentsize);
  for (let i = 0; i < elf.phdrs.length; i++) b.add(Number(h.phoff) + i * h.phentsize);
  for (const p of elf.phdrs) if (p.filesz > 0n) add(p.offset, p.filesz);
  if (elf.sections.length > 0) {
    add(h.shoff, elf.sections.length * h.shentsize);
    for (let i = 0; i < elf.sections.length; i++) b.add(Number(h.shoff) + i * h.shentsize);
  }
  for (const s of elf.sections) {
    if (s.type === SHT_NOBITS || s.size === 0n) continue;
    b.add(Number(s.offset));
    b.add(Number(s.offset + s.size));
    if (s.type === SHT_SYMTAB || s.type === SHT_DYNSYM || s.name === '.strtab' || s.name === '.shstrtab' || s.name === '.opd') {
      add(s.offset, s.size);
    }
  }
  const boundaries = [...b].flatMap((x) => [x - 1, x, x + 1]).filter((x) => x >= 0 && x < bytes.length);
  return { name, bytes, elf, regions, boundaries: [...new Set(boundaries)].sort((x, y) => x - y) };
}

function loadCorpus(): Base[] {
  const out: Base[] = [];
  for (const t of ['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as const) {
    out.push(structure(`built-${t}`, buildElf(sampleSpec(t)).bytes));
  }
  out.push(structure('built-x86_64-nosections', buildElf(sampleSpec('x86_64', { sections: false })).bytes));
  out.push(structure('built-ppc64-elfv1', buildElf(ppc64v1Spec()).bytes));
  for (const f of ['prog-x86_64', 'prog-i386', 'prog-ppc32', 'prog-ppc64-elfv1', 'prog-ppc64-elfv2', 'prog-sparc64']) {
    out.push(structure(f, new Uint8Array(readFileSync(join(here, 'data', f)))));
  }
  // The shared fixtures, when they exist: one freestanding program per target, and two
  // glibc-linked ones (large symbol tables; ppc64's is ELFv1).
  const manifest = join(ROOT, 'fixtures', 'manifest.json');
  if (existsSync(manifest)) {
    const entries = JSON.parse(readFileSync(manifest, 'utf8')) as Array<{ target: string; name: string; path: string }>;
    const pick = new Set<string>();
    for (const e of entries) {
      const key = e.name.endsWith('-nolibc') ? `${e.target}-nolibc` : `${e.target}-glibc`;
      if (pick.has(key)) continue;
      if (key.endsWith('-glibc') && e.target !== 'x86_64' && e.target !== 'ppc64') continue;
      const p = join(ROOT, 'fixtures', e.path);
      if (!existsSync(p)) continue;
      try {
        out.push(structure(`fixtures/${e.path}`, new Uint8Array(readFileSync(p))));
        pick.add(key);
      } catch {
        // A fixture being rebuilt right now is not this test's business.
      }
    }
  }
  return out;
}

const corpus = loadCorpus();

// ---- the property ------------------------------------------------------------------------------

const stats = { ok: 0, elfError: 0, slowest: 0 };

/** Parses and, on success, exercises every helper; any non-ELF exception fails the test. */
function check(bytes: Uint8Array, file: string, anyMachine: boolean): void {
  let elf: ElfFile;
  const t0 = performance.now();
  try {
    elf = parseElf(bytes, file, { anyMachine });
  } catch (e) {
    if (!(e instanceof UniprobeError)) throw e;
    if (e.code !== 'ELF') throw new Error(`unexpected code ${e.code}: ${e.message}`);
    if (!e.message.startsWith(`${file}: `) || e.message.length <= file.length + 2) {
      throw new Error(`message does not name the file and a defect: ${e.message}`);
    }
    stats.elfError++;
    return;
  } finally {
    const dt = performance.now() - t0;
    stats.slowest = Math.max(stats.slowest, dt);
    if (dt > 2000) throw new Error(`parse took ${dt.toFixed(0)} ms`);
  }
  stats.ok++;
  exercise(elf, bytes.length);
}

function inFile(off: bigint | undefined, len: number): void {
  if (off !== undefined && (off < 0n || off >= BigInt(len))) throw new Error(`offset ${off} outside file of ${len}`);
}

function exercise(elf: ElfFile, len: number): void {
  for (const p of elf.loadSegments()) {
    if (p.filesz > 0n) {
      const first = elf.vaddrToOffset(p.vaddr);
      const last = elf.vaddrToOffset(p.vaddr + p.filesz - 1n);
      if (first === undefined || last === undefined) throw new Error('file-backed segment start not mapped');
      inFile(first, len);
      inFile(last, len);
      inFile(elf.vaddrToOffset(p.vaddr + p.filesz / 2n), len);
      const v = elf.offsetToVaddr(p.offset);
      if (v === undefined) throw new Error('segment file offset not mapped back');
    }
    if (p.memsz > 0n) {
      const n = p.memsz < 64n ? Number(p.memsz) : 64;
      const head = elf.textBytesAt(p.vaddr, n);
      if (head.length !== n) throw new Error('short read');
      const tail = elf.textBytesAt(p.vaddr + p.memsz - BigInt(n), n);
      if (tail.length !== n) throw new Error('short read at tail');
      if (p.filesz > 0n) {
        const off = Number(elf.vaddrToOffset(p.vaddr)!);
        const k = Math.min(n, Number(p.filesz < 64n ? p.filesz : 64n));
        for (let i = 0; i < k; i++) if (head[i] !== elf.bytes[off + i]) throw new Error('textBytesAt disagrees with the file');
      }
    }
    elf.vaddrToOffset(p.vaddr + p.memsz); // just past: undefined or another segment, never a throw
  }
  for (const off of [0n, BigInt(len - 1), BigInt(len), BigInt(len) * 2n]) elf.offsetToVaddr(off);
  for (const s of elf.sections) {
    if (s.type !== SHT_NOBITS && s.type !== SHT_NULL && s.size > 0n && s.offset + s.size > BigInt(len)) {
      throw new Error('section outside file');
    }
  }
  let n = 0;
  for (const s of elf.symbols) {
    if (n++ > 200) break;
    elf.symbolAt(s.codeAddress);
    elf.symbolAt(s.localEntry);
    elf.symbolByName(s.name);
    inFile(elf.vaddrToOffset(s.value), len);
    inFile(elf.vaddrToOffset(s.codeAddress), len);
  }
  elf.functions();
  elf.symbolAt(elf.entryCode);
  inFile(elf.vaddrToOffset(elf.entryCode), len);
}

// ---- arbitraries --------------------------------------------------------------------------------

const baseIdx = fc.nat({ max: corpus.length - 1 });

/** Values around the original (off-by-small), edge constants, and random words. */
function valueArb(width: 8 | 16 | 32 | 64): fc.Arbitrary<(orig: bigint, fileLen: number) => bigint> {
  const mask = (1n << BigInt(width)) - 1n;
  return fc.oneof(
    fc.integer({ min: -64, max: 64 }).map((d) => (orig: bigint) => (orig + BigInt(d)) & mask),
    fc.constantFrom(0n, 1n, 2n, 3n, 7n, 0x7fn, 0x80n, 0xffn, 0xffffn, 0xff00n, 0xfff1n, 0x7fffffffn, 0xffffffffn, 1n << 63n, mask).map(
      (c) => () => c & mask,
    ),
    fc.integer({ min: -8, max: 8 }).map((d) => (_o: bigint, len: number) => (BigInt(len) + BigInt(d)) & mask),
    fc.bigInt({ min: 0n, max: mask }).map((r) => () => r),
  );
}

type Width = 8 | 16 | 32 | 64;

function writeField(p: Patcher, off: number, width: Width, f: (orig: bigint, len: number) => bigint): void {
  const len = p.bytes.length;
  if (off < 0 || off + width / 8 > len) return;
  switch (width) {
    case 8:
      p.u8(off, Number(f(BigInt(p.view.getUint8(off)), len)));
      break;
    case 16:
      p.u16(off, Number(f(BigInt(p.getU16(off)), len)));
      break;
    case 32:
      p.u32(off, Number(f(BigInt(p.getU32(off)), len)));
      break;
    case 64:
      p.u64(off, f(p.view.getBigUint64(off, p.little), len));
      break;
  }
}

const fieldEdit = fc.record({
  index: fc.nat(),
  field: fc.nat(),
  w8: valueArb(8),
  w16: valueArb(16),
  w32: valueArb(32),
  w64: valueArb(64),
});
type FieldEdit = typeof fieldEdit extends fc.Arbitrary<infer T> ? T : never;

function pickValue(e: FieldEdit, w: Width): (orig: bigint, len: number) => bigint {
  return w === 8 ? e.w8 : w === 16 ? e.w16 : w === 32 ? e.w32 : e.w64;
}

function patcherFor(base: Base): { bytes: Uint8Array; p: Patcher; cls: 32 | 64 } {
  const bytes = base.bytes.slice();
  return { bytes, p: new Patcher(bytes, base.elf.endianness === 'little'), cls: base.elf.class };
}

// ---- tests --------------------------------------------------------------------------------------

// Fixed seed for CI; ELF_FUZZ_SEED / ELF_FUZZ_SCALE let a developer fuzz longer with other seeds.
const SEED = process.env.ELF_FUZZ_SEED ? Number(process.env.ELF_FUZZ_SEED) : 0x5eed_e1f;
const SCALE = process.env.ELF_FUZZ_SCALE ? Number(process.env.ELF_FUZZ_SCALE) : 1;
const runs = (n: number): number => Math.max(1, Math.round(n * SCALE));

describe('ELF fuzzing', () => {
  afterAll(() => {
    // Visible in verbose runs; also guards against a fuzzer that only ever hits the first check.
    if (process.env.ELF_FUZZ_STATS) console.info(`ELF fuzz: ${stats.ok} parsed, ${stats.elfError} rejected, slowest ${stats.slowest.toFixed(1)} ms`);
    expect(stats.ok).toBeGreaterThan(100);
    expect(stats.elfError).toBeGreaterThan(100);
  });

  it('corpus parses cleanly', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(13);
    for (const b of corpus) check(b.bytes, b.name, false);
  });

  it('random byte corruption in structural regions and anywhere (2500 cases)', () => {
    fc.assert(
      fc.property(
        baseIdx,
        fc.array(fc.record({ region: fc.nat(), pos: fc.nat(), value: fc.nat({ max: 255 }), anywhere: fc.boolean() }), { minLength: 1, maxLength: 12 }),
        fc.boolean(),
        (bi, edits, anyMachine) => {
          const base = corpus[bi]!;
          const bytes = base.bytes.slice();
          for (const e of edits) {
            if (e.anywhere) {
              bytes[e.pos % bytes.length] = e.value;
            } else {
              const [s, end] = base.regions[e.region % base.regions.length]!;
              bytes[s + (e.pos % (end - s))] = e.value;
            }
          }
          check(bytes, `${base.name}~corrupt`, anyMachine);
        },
      ),
      { seed: SEED, numRuns: runs(2500) },
    );
  });

  it('random ELF header fields (1000 cases)', () => {
    fc.assert(
      fc.property(baseIdx, fc.array(fieldEdit, { minLength: 1, maxLength: 3 }), fc.boolean(), (bi, edits, anyMachine) => {
        const base = corpus[bi]!;
        const { bytes, p, cls } = patcherFor(base);
        const f = headerFieldOffsets(cls);
        const fields: Array<[string, Width]> = [
          ['e_type', 16],
          ['e_machine', 16],
          ['e_version', 32],
          ['e_entry', cls],
          ['e_phoff', cls],
          ['e_shoff', cls],
          ['e_flags', 32],
          ['e_ehsize', 16],
          ['e_phentsize', 16],
          ['e_phnum', 16],
          ['e_shentsize', 16],
          ['e_shnum', 16],
          ['e_shstrndx', 16],
        ];
        for (const e of edits) {
          const [name, w] = fields[e.field % fields.length]!;
          writeField(p, f[name]!, w, pickValue(e, w));
        }
        // Sometimes the identification bytes too.
        if (edits[0]!.index % 7 === 0) bytes[4 + (edits[0]!.index % 3)] = edits[0]!.field & 0xff;
        check(bytes, `${base.name}~ehdr`, anyMachine);
      }),
      { seed: SEED + 1, numRuns: runs(1000) },
    );
  });

  it('random program header fields (800 cases)', () => {
    fc.assert(
      fc.property(baseIdx, fc.array(fieldEdit, { minLength: 1, maxLength: 3 }), (bi, edits) => {
        const base = corpus[bi]!;
        const { bytes, p, cls } = patcherFor(base);
        const n = base.elf.phdrs.length;
        if (n === 0) return;
        const o = phdrFieldOffsets(cls);
        const fields = Object.entries(o) as Array<[string, number]>;
        for (const e of edits) {
          const [name, off] = fields[e.field % fields.length]!;
          const w: Width = name === 'type' || name === 'flags' ? 32 : cls;
          writeField(p, Number(base.elf.header.phoff) + (e.index % n) * base.elf.header.phentsize + off, w, pickValue(e, w));
        }
        check(bytes, `${base.name}~phdr`, false);
      }),
      { seed: SEED + 2, numRuns: runs(800) },
    );
  });

  it('random section header fields (800 cases)', () => {
    fc.assert(
      fc.property(baseIdx, fc.array(fieldEdit, { minLength: 1, maxLength: 3 }), (bi, edits) => {
        const base = corpus[bi]!;
        const { bytes, p, cls } = patcherFor(base);
        const n = base.elf.sections.length;
        if (n === 0) return;
        const o = shdrFieldOffsets(cls);
        const fields = Object.entries(o) as Array<[string, number]>;
        for (const e of edits) {
          const [name, off] = fields[e.field % fields.length]!;
          const w: Width = ['name', 'type', 'link', 'info'].includes(name) ? 32 : cls;
          writeField(p, Number(base.elf.header.shoff) + (e.index % n) * base.elf.header.shentsize + off, w, pickValue(e, w));
        }
        check(bytes, `${base.name}~shdr`, false);
      }),
      { seed: SEED + 3, numRuns: runs(800) },
    );
  });

  it('random symbol fields (600 cases)', () => {
    const withSyms = corpus.filter((b) => b.elf.symbols.length > 0);
    fc.assert(
      fc.property(fc.nat({ max: withSyms.length - 1 }), fc.array(fieldEdit, { minLength: 1, maxLength: 4 }), (bi, edits) => {
        const base = withSyms[bi]!;
        const { bytes, p, cls } = patcherFor(base);
        const tab = base.elf.sections.find((s) => s.type === SHT_SYMTAB || s.type === SHT_DYNSYM)!;
        const ent = cls === 64 ? 24 : 16;
        const count = Number(tab.size) / ent;
        const o = symFieldOffsets(cls);
        const fields = Object.entries(o) as Array<[string, number]>;
        for (const e of edits) {
          const [name, off] = fields[e.field % fields.length]!;
          const w: Width = name === 'info' || name === 'other' ? 8 : name === 'shndx' ? 16 : name === 'name' ? 32 : cls;
          writeField(p, Number(tab.offset) + (e.index % count) * ent + off, w, pickValue(e, w));
        }
        check(bytes, `${base.name}~sym`, false);
      }),
      { seed: SEED + 4, numRuns: runs(600) },
    );
  });

  it('random garbage behind a valid identification (400 cases)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1, 2),
        fc.constantFrom(1, 2),
        fc.uint8Array({ minLength: 0, maxLength: 600 }),
        fc.constantFrom(3, 20, 21, 43, 62),
        (cls, data, tail, machine) => {
          const bytes = new Uint8Array(16 + tail.length);
          bytes.set([0x7f, 0x45, 0x4c, 0x46, cls, data, 1], 0);
          bytes.set(tail, 16);
          // Keep e_machine / e_version plausible half the time so parsing gets further.
          if (tail.length > 8 && (tail[0]! & 1) === 0) {
            const p = new Patcher(bytes, data === 1);
            p.u16(18, machine).u32(20, 1);
            if (bytes.length >= (cls === 2 ? 64 : 52)) p.u16(cls === 2 ? 52 : 40, cls === 2 ? 64 : 52);
          }
          check(bytes, 'garbage', (tail[1] ?? 0) % 2 === 0);
        },
      ),
      { seed: SEED + 5, numRuns: runs(400) },
    );
  });

  it('truncation at every structural boundary of every corpus file', () => {
    let cases = 0;
    for (const b of corpus) {
      for (const n of b.boundaries) {
        check(b.bytes.subarray(0, n), `${b.name}[0:${n}]`, false);
        cases++;
      }
    }
    expect(cases).toBeGreaterThan(500);
  });
});
