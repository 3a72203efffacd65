/**
 * Real binaries: test/elf/data (built by build.sh from prog.c, committed) with values checked by
 * hand against readelf/objdump, plus every ELF under fixtures/ listed in fixtures/manifest.json.
 * Each is also compared field by field against readelf when readelf is installed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  EM_386,
  EM_PPC,
  EM_PPC64,
  EM_SPARCV9,
  EM_X86_64,
  PF_R,
  PF_W,
  PF_X,
  PT_GNU_RELRO,
  PT_GNU_STACK,
  PT_LOAD,
  PT_TLS,
  STB_GLOBAL,
  STB_LOCAL,
  STT_FUNC,
  STT_SPARC_REGISTER,
  STT_TLS,
  parseElf,
  readElfFileSync,
  type ElfFile,
} from '../../src/elf/index.js';
import { normalizeElf, normalizeReadelf } from './compare.js';
import { readelfFor, runReadelf } from './readelf.js';

const here = dirname(fileURLToPath(import.meta.url));
const DATA = join(here, 'data');
const ROOT = join(here, '..', '..');

interface Fn {
  name: string;
  value: bigint;
  code: bigint;
  size: bigint;
  bind: number;
  /** first code bytes (objdump) */
  bytes?: number[];
  localEntry?: number;
}

interface Expected {
  file: string;
  target: ElfFile['target'];
  machine: number;
  cls: 32 | 64;
  endian: 'little' | 'big';
  entry: bigint;
  entryCode: bigint;
  flags: number;
  loads: Array<[offset: bigint, vaddr: bigint, filesz: bigint, memsz: bigint, flags: number]>;
  sections: number;
  symbols: number;
  fns: Fn[];
}

const RX = PF_R | PF_X;
const RW = PF_R | PF_W;

const EXPECTED: Expected[] = [
  {
    file: 'prog-x86_64',
    target: 'x86_64',
    machine: EM_X86_64,
    cls: 64,
    endian: 'little',
    entry: 0x40105bn,
    entryCode: 0x40105bn,
    flags: 0,
    loads: [
      [0n, 0x400000n, 0x190n, 0x190n, PF_R],
      [0x1000n, 0x401000n, 0x80n, 0x80n, RX],
      [0x1ffcn, 0x402ffcn, 0x8n, 0x64n, RW],
    ],
    sections: 9,
    symbols: 11,
    fns: [
      { name: 'helper', value: 0x401000n, code: 0x401000n, size: 28n, bind: STB_LOCAL },
      { name: 'add', value: 0x40101cn, code: 0x40101cn, size: 4n, bind: STB_GLOBAL },
      { name: 'fib', value: 0x401020n, code: 0x401020n, size: 59n, bind: STB_GLOBAL, bytes: [0x41, 0x54, 0x55, 0x53] },
      { name: '_start', value: 0x40105bn, code: 0x40105bn, size: 37n, bind: STB_GLOBAL },
    ],
  },
  {
    file: 'prog-i386',
    target: 'i386',
    machine: EM_386,
    cls: 32,
    endian: 'little',
    entry: 0x804905fn,
    entryCode: 0x804905fn,
    flags: 0,
    loads: [
      [0n, 0x8048000n, 0xf4n, 0xf4n, PF_R],
      [0x1000n, 0x8049000n, 0x83n, 0x83n, RX],
      [0x1ffcn, 0x804affcn, 0x8n, 0x64n, RW],
    ],
    sections: 9,
    symbols: 11,
    fns: [
      { name: 'helper', value: 0x8049000n, code: 0x8049000n, size: 26n, bind: STB_LOCAL },
      { name: 'add', value: 0x804901an, code: 0x804901an, size: 9n, bind: STB_GLOBAL },
      { name: 'fib', value: 0x8049023n, code: 0x8049023n, size: 60n, bind: STB_GLOBAL, bytes: [0x57, 0x56] },
      { name: '_start', value: 0x804905fn, code: 0x804905fn, size: 36n, bind: STB_GLOBAL },
    ],
  },
  {
    file: 'prog-ppc32',
    target: 'ppc32',
    machine: EM_PPC,
    cls: 32,
    endian: 'big',
    entry: 0x10000164n,
    entryCode: 0x10000164n,
    flags: 0,
    loads: [
      [0n, 0x10000000n, 0x1a0n, 0x1a0n, RX],
      [0xfffcn, 0x1001fffcn, 0x8n, 0x48n, RW],
    ],
    sections: 9,
    symbols: 18,
    fns: [
      { name: 'helper', value: 0x100000d4n, code: 0x100000d4n, size: 40n, bind: STB_LOCAL },
      { name: 'add', value: 0x100000fcn, code: 0x100000fcn, size: 8n, bind: STB_GLOBAL },
      { name: 'fib', value: 0x10000104n, code: 0x10000104n, size: 96n, bind: STB_GLOBAL, bytes: [0x94, 0x21, 0xff, 0xf0] },
      { name: '_start', value: 0x10000164n, code: 0x10000164n, size: 60n, bind: STB_GLOBAL },
    ],
  },
  {
    // ELFv1: symbols and e_entry point at .opd descriptors; codes from `objdump -s -j .opd`.
    file: 'prog-ppc64-elfv1',
    target: 'ppc64',
    machine: EM_PPC64,
    cls: 64,
    endian: 'big',
    entry: 0x1001ffe8n,
    entryCode: 0x100001e4n,
    flags: 1,
    loads: [
      [0n, 0x10000000n, 0x230n, 0x230n, RX],
      [0xff9cn, 0x1001ff9cn, 0x68n, 0xacn, RW],
    ],
    sections: 11,
    symbols: 18,
    fns: [
      { name: 'helper', value: 0x1001ffa0n, code: 0x10000120n, size: 56n, bind: STB_LOCAL, bytes: [0x60, 0, 0, 0] },
      { name: 'add', value: 0x1001ffb8n, code: 0x10000158n, size: 24n, bind: STB_GLOBAL, bytes: [0x7c, 0x63, 0x22, 0x14] },
      { name: 'fib', value: 0x1001ffd0n, code: 0x10000170n, size: 116n, bind: STB_GLOBAL, bytes: [0xfb, 0xc1, 0xff, 0xf0] },
      { name: '_start', value: 0x1001ffe8n, code: 0x100001e4n, size: 76n, bind: STB_GLOBAL, bytes: [0x7c, 0x08, 0x02, 0xa6] },
    ],
  },
  {
    // ELFv2: readelf shows [<localentry>: 8] on helper, fib, _start; add has none.
    file: 'prog-ppc64-elfv2',
    target: 'ppc64',
    machine: EM_PPC64,
    cls: 64,
    endian: 'big',
    entry: 0x1000022cn,
    entryCode: 0x1000022cn,
    flags: 2,
    loads: [
      [0n, 0x10000000n, 0x280n, 0x280n, RX],
      [0xfffcn, 0x1001fffcn, 0x8n, 0x4cn, RW],
    ],
    sections: 10,
    symbols: 19,
    fns: [
      { name: 'helper', value: 0x10000158n, code: 0x10000158n, size: 64n, bind: STB_LOCAL, localEntry: 8 },
      { name: 'add', value: 0x10000198n, code: 0x10000198n, size: 24n, bind: STB_GLOBAL, localEntry: 0 },
      { name: 'fib', value: 0x100001b0n, code: 0x100001b0n, size: 124n, bind: STB_GLOBAL, localEntry: 8, bytes: [0x3c, 0x40, 0x10, 0x02] },
      { name: '_start', value: 0x1000022cn, code: 0x1000022cn, size: 84n, bind: STB_GLOBAL, localEntry: 8, bytes: [0x3c, 0x40, 0x10, 0x02, 0x38, 0x42, 0x7f, 0x00, 0x7c, 0x08, 0x02, 0xa6] },
    ],
  },
  {
    file: 'prog-sparc64',
    target: 'sparc64',
    machine: EM_SPARCV9,
    cls: 64,
    endian: 'big',
    entry: 0x1001dcn,
    entryCode: 0x1001dcn,
    flags: 2,
    loads: [
      [0n, 0x100000n, 0x214n, 0x214n, RX],
      [0x1ffcn, 0x103ffcn, 0x8n, 0x4cn, RW],
    ],
    sections: 9,
    symbols: 18,
    fns: [
      { name: 'helper', value: 0x100158n, code: 0x100158n, size: 48n, bind: STB_LOCAL },
      { name: 'add', value: 0x100188n, code: 0x100188n, size: 12n, bind: STB_GLOBAL },
      { name: 'fib', value: 0x100194n, code: 0x100194n, size: 72n, bind: STB_GLOBAL, bytes: [0x9d, 0xe3, 0xbf, 0x50] },
      { name: '_start', value: 0x1001dcn, code: 0x1001dcn, size: 56n, bind: STB_GLOBAL },
    ],
  },
];

describe('real binaries in test/elf/data (values verified with readelf/objdump)', () => {
  for (const x of EXPECTED) {
    describe(x.file, () => {
      const elf = readElfFileSync(join(DATA, x.file));

      it('header', () => {
        expect(elf.target).toBe(x.target);
        expect(elf.machine).toBe(x.machine);
        expect(elf.class).toBe(x.cls);
        expect(elf.endianness).toBe(x.endian);
        expect(elf.entry).toBe(x.entry);
        expect(elf.entryCode).toBe(x.entryCode);
        expect(elf.flags).toBe(x.flags);
        expect(elf.interp).toBeUndefined();
      });

      it('segments', () => {
        expect(elf.loadSegments().map((p) => [p.offset, p.vaddr, p.filesz, p.memsz, p.flags])).toEqual(x.loads);
        expect(elf.tls).toMatchObject({ type: PT_TLS, filesz: 4n, memsz: 4n, align: 4n });
        expect(elf.phdrs.some((p) => p.type === PT_GNU_RELRO)).toBe(true);
        if (x.file !== 'prog-ppc64-elfv1') expect(elf.gnuStack?.type).toBe(PT_GNU_STACK);
        for (const p of elf.loadSegments()) {
          expect(elf.vaddrToOffset(p.vaddr)).toBe(p.offset);
          expect(elf.offsetToVaddr(p.offset + p.filesz - 1n)).toBe(p.vaddr + p.filesz - 1n);
        }
        expect(elf.phdrs.filter((p) => p.type === PT_LOAD).length).toBe(x.loads.length);
      });

      it('sections and symbols', () => {
        expect(elf.sections.length).toBe(x.sections);
        expect(elf.symbols.length).toBe(x.symbols);
        expect(elf.sectionByName('.text')?.addr).toBe(x.fns[0]!.code);
        const tls = elf.symbolByName('tls_value')!;
        expect(tls.type).toBe(STT_TLS);
        expect(tls.size).toBe(4n);
        expect(elf.symbolByName('counter')?.size).toBe(4n);
        expect(elf.symbolByName('scratch')?.size).toBe(64n);
      });

      it('functions, code addresses and bytes', () => {
        expect(elf.functions().map((s) => s.name)).toEqual(x.fns.map((f) => f.name));
        for (const f of x.fns) {
          const s = elf.symbolByName(f.name)!;
          expect({ name: s.name, value: s.value, code: s.codeAddress, size: s.size, bind: s.bind, type: s.type }).toEqual({
            name: f.name,
            value: f.value,
            code: f.code,
            size: f.size,
            bind: f.bind,
            type: STT_FUNC,
          });
          expect(s.localEntryOffset).toBe(f.localEntry ?? 0);
          expect(s.localEntry).toBe(f.code + BigInt(f.localEntry ?? 0));
          if (f.bytes) expect(Array.from(elf.textBytesAt(f.code, f.bytes.length))).toEqual(f.bytes);
          expect(elf.symbolAt(f.code)).toEqual({ symbol: s, offset: 0n, size: f.size });
          expect(elf.symbolAt(f.code + f.size - 1n)?.symbol.name).toBe(f.name);
        }
        expect(elf.symbolAt(elf.entryCode)?.symbol.name).toBe('_start');
      });
    });
  }

  it('ppc64 ELFv1: TOC from the descriptors', () => {
    const elf = readElfFileSync(join(DATA, 'prog-ppc64-elfv1'));
    expect(elf.ppc64Abi).toBe('elfv1');
    expect(elf.entryToc).toBe(0x10027f00n);
    for (const n of ['helper', 'add', 'fib', '_start']) expect(elf.symbolByName(n)?.toc).toBe(0x10027f00n);
    // The descriptor lives in a writable data segment, the code in the text segment.
    expect(elf.segmentAt(elf.entry)?.flags).toBe(RW);
    expect(elf.segmentAt(elf.entryCode)?.flags).toBe(RX);
  });

  it('ppc64 ELFv2: .TOC. and local entries', () => {
    const elf = readElfFileSync(join(DATA, 'prog-ppc64-elfv2'));
    expect(elf.ppc64Abi).toBe('elfv2');
    expect(elf.entryToc).toBeUndefined();
    expect(elf.symbolByName('.TOC.')?.value).toBe(0x10027f00n);
    expect(elf.symbolByName('fib')?.localEntry).toBe(0x100001b8n);
    expect(elf.symbolByName('fib')?.other).toBe(0x60);
  });

  it('sparc64: register declaration symbols', () => {
    const elf = readElfFileSync(join(DATA, 'prog-sparc64'));
    const regs = elf.symbols.filter((s) => s.type === STT_SPARC_REGISTER);
    expect(regs.map((s) => s.value)).toEqual([2n, 3n]);
  });

  it('a stripped binary: sections but no symbol table', () => {
    const elf = readElfFileSync(join(DATA, 'prog-x86_64-stripped'));
    expect(elf.sections.map((s) => s.name)).toEqual(['', '.text', '.tdata', '.data', '.bss', '.comment', '.shstrtab']);
    expect(elf.symbols).toEqual([]);
    expect(elf.functions()).toEqual([]);
    expect(elf.entry).toBe(0x40105bn);
    expect(Array.from(elf.textBytesAt(0x401020n, 4))).toEqual([0x41, 0x54, 0x55, 0x53]);
  });

  it('the same binary with its section header table removed still parses', () => {
    const bytes = new Uint8Array(readFileSync(join(DATA, 'prog-x86_64')));
    const v = new DataView(bytes.buffer);
    const shoff = Number(v.getBigUint64(0x28, true));
    v.setBigUint64(0x28, 0n, true); // e_shoff
    v.setUint16(0x3c, 0, true); // e_shnum
    v.setUint16(0x3e, 0, true); // e_shstrndx
    const elf = parseElf(bytes.slice(0, shoff), 'nosht');
    expect(elf.sections).toEqual([]);
    expect(elf.symbols).toEqual([]);
    expect(elf.loadSegments().length).toBe(3);
    expect(elf.entryCode).toBe(0x40105bn);
  });
});

// ---- readelf comparison --------------------------------------------------------------------------

interface ManifestEntry {
  target: string;
  name: string;
  path: string;
}

function fixtureFiles(): Array<{ target: string; path: string }> {
  const manifest = join(ROOT, 'fixtures', 'manifest.json');
  if (!existsSync(manifest)) return [];
  const entries = JSON.parse(readFileSync(manifest, 'utf8')) as ManifestEntry[];
  const out = entries.map((e) => ({ target: e.target, path: join(ROOT, 'fixtures', e.path) }));
  for (const t of ['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64']) {
    const k = join(ROOT, 'fixtures', 'kernel', t, 'vmlinux');
    if (existsSync(k)) out.push({ target: t, path: k });
  }
  return out.filter((f) => existsSync(f.path));
}

const ownFiles = EXPECTED.map((x) => ({ target: x.target!, path: join(DATA, x.file) })).concat([
  { target: 'x86_64', path: join(DATA, 'prog-x86_64-stripped') },
]);

describe('field-by-field comparison with readelf', () => {
  const anyReadelf = readelfFor('x86_64') !== undefined;
  it.skipIf(anyReadelf)('readelf is not installed: comparison skipped', () => {});

  for (const f of ownFiles) {
    const tool = readelfFor(f.target);
    it.skipIf(tool === undefined)(`test/elf/data/${f.path.split('/').pop()}`, () => {
      const elf = readElfFileSync(f.path);
      const mine = normalizeElf(elf);
      expect(normalizeReadelf(runReadelf(tool!, f.path), mine)).toEqual(mine);
    });
  }

  const fixtures = fixtureFiles();
  it.skipIf(fixtures.length > 0)('fixtures/manifest.json not present: fixture comparison skipped', () => {});
  for (const f of fixtures) {
    const tool = readelfFor(f.target);
    const rel = f.path.slice(ROOT.length + 1);
    it.skipIf(tool === undefined)(rel, () => {
      const elf = readElfFileSync(f.path);
      expect(elf.target).toBe(f.target);
      const mine = normalizeElf(elf);
      expect(normalizeReadelf(runReadelf(tool!, f.path), mine)).toEqual(mine);
      // Entry code lies in executable text, and the entry symbol (if any) contains it.
      const seg = elf.segmentAt(elf.entryCode)!;
      expect(seg.flags & PF_X).toBe(PF_X);
      for (const fn of elf.functions()) {
        if (elf.segmentAt(fn.codeAddress) === undefined) continue;
        expect(elf.symbolAt(fn.codeAddress)?.symbol.codeAddress).toBe(fn.codeAddress);
      }
    });
  }
});
