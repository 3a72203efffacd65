/**
 * ppc64: ELFv1 function descriptors (.opd) and ELFv2 local entry points, on built images.
 * (Real binaries: real.test.ts, values from readelf and `objdump -s -j .opd`.)
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { PF_R, PF_X, STB_GLOBAL, STT_FUNC, STT_GNU_IFUNC, STT_OBJECT, parseElf, readElfFileSync } from '../../src/elf/index.js';
import { buildElf, Patcher, ppc64v1Spec, SAMPLE_TEXT, sampleSpec, V1_OPD, V1_TEXT, V1_TOC } from './builder.js';

describe('ELFv1 descriptors', () => {
  const { bytes } = buildElf(ppc64v1Spec());
  const elf = parseElf(bytes, 'v1');

  it('resolves every function symbol and e_entry through .opd', () => {
    expect(elf.ppc64Abi).toBe('elfv1');
    expect(elf.entry).toBe(V1_OPD + 0x30n);
    expect(elf.entryCode).toBe(V1_TEXT + 0x30n);
    expect(elf.entryToc).toBe(V1_TOC);
    const rows = elf.symbols.map((s) => [s.name, s.value, s.codeAddress, s.toc, s.localEntry]);
    expect(rows).toEqual([
      ['foo', V1_OPD, V1_TEXT, V1_TOC, V1_TEXT],
      ['bar', V1_OPD + 0x18n, V1_TEXT + 0x10n, V1_TOC, V1_TEXT + 0x10n],
      ['_start', V1_OPD + 0x30n, V1_TEXT + 0x30n, V1_TOC, V1_TEXT + 0x30n],
    ]);
  });

  it('symbolAt and functions() work on code addresses, not descriptors', () => {
    expect(elf.functions().map((s) => s.name)).toEqual(['foo', 'bar', '_start']);
    const at = elf.symbolAt(V1_TEXT + 0x14n)!;
    expect(at.symbol.name).toBe('bar');
    expect(at.offset).toBe(4n);
    expect(elf.symbolAt(V1_OPD + 0x18n)).toBeUndefined();
  });

  it('functions() is sorted by code address even when descriptors are in another order', () => {
    const spec = ppc64v1Spec();
    const { bytes: b, layout } = buildElf(spec);
    // Swap foo's and bar's code addresses: descriptor order no longer matches code order.
    new Patcher(b, false).u64(layout.segmentOffsets[1]!, V1_TEXT + 0x10n).u64(layout.segmentOffsets[1]! + 0x18, V1_TEXT);
    const e = parseElf(b, 'v1-swapped');
    expect(e.functions().map((s) => s.name)).toEqual(['bar', 'foo', '_start']);
    expect(e.symbolAt(V1_TEXT + 4n)?.symbol.name).toBe('bar');
  });

  it('non-function symbols and undefined functions keep their value', () => {
    const spec = ppc64v1Spec();
    spec.symbols!.push({ name: 'data_in_opd', value: V1_OPD, size: 8n, type: STT_OBJECT, bind: STB_GLOBAL, section: '.opd' });
    spec.symbols!.push({ name: 'undef', value: 0n, type: STT_FUNC, bind: STB_GLOBAL, section: 0 });
    spec.symbols!.push({ name: 'ifn', value: V1_OPD + 0x18n, size: 4n, type: STT_GNU_IFUNC, bind: STB_GLOBAL, section: '.opd' });
    const e = parseElf(buildElf(spec).bytes, 'v1-mixed');
    expect(e.symbolByName('data_in_opd')?.codeAddress).toBe(V1_OPD);
    expect(e.symbolByName('data_in_opd')?.toc).toBeUndefined();
    expect(e.symbolByName('undef')?.codeAddress).toBe(0n);
    expect(e.symbolByName('ifn')?.codeAddress).toBe(V1_TEXT + 0x10n);
  });

  it('e_flags 0 with an .opd section means ELFv1', () => {
    const e = parseElf(buildElf(ppc64v1Spec({ flags: 0 })).bytes, 'v1-noflags');
    expect(e.ppc64Abi).toBe('elfv1');
    expect(e.entryCode).toBe(V1_TEXT + 0x30n);
  });

  it('e_flags 0 without sections: a descriptor entry (in data) means ELFv1, a code entry ELFv2', () => {
    const v1 = parseElf(buildElf(ppc64v1Spec({ flags: 0, sections: false })).bytes, 'v1-bare');
    expect(v1.ppc64Abi).toBe('elfv1');
    expect(v1.entryCode).toBe(V1_TEXT + 0x30n);
    expect(v1.entryToc).toBe(V1_TOC);
    const v2 = parseElf(buildElf(sampleSpec('ppc64', { flags: 0, sections: false })).bytes, 'v2-bare');
    expect(v2.ppc64Abi).toBe('elfv2');
    expect(v2.entryCode).toBe(v2.entry);
  });
});

describe('ELFv2 local entry points', () => {
  // st_other bits 5..7 = v: offset 0 for v = 0, 1; (1 << v) bytes for v = 2..6 (ELFv2 ABI 3.4.1).
  const cases: Array<[v: number, bytes: number]> = [
    [0, 0],
    [1, 0],
    [2, 4],
    [3, 8],
    [4, 16],
    [5, 32],
    [6, 64],
  ];
  for (const [v, off] of cases) {
    it(`st_other local entry field ${v} -> ${off} bytes`, () => {
      const spec = sampleSpec('ppc64');
      spec.symbols![2]!.other = (v << 5) | 2; // also a visibility bit, which must not interfere
      const e = parseElf(buildElf(spec).bytes, 'v2');
      const main = e.symbolByName('main')!;
      expect(main.localEntryOffset).toBe(off);
      expect(main.localEntry).toBe(SAMPLE_TEXT + 0x60n + BigInt(off));
      expect(main.visibility).toBe(2);
      expect(main.codeAddress).toBe(SAMPLE_TEXT + 0x60n);
    });
  }

  it('other targets ignore st_other bits 5..7', () => {
    const spec = sampleSpec('sparc64');
    spec.symbols![2]!.other = 3 << 5;
    const e = parseElf(buildElf(spec).bytes, 'sparc');
    expect(e.symbolByName('main')?.localEntryOffset).toBe(0);
  });
});

const here = dirname(fileURLToPath(import.meta.url));
const glibcV1 = join(here, '..', '..', 'fixtures', 'ppc64', 'fib');

describe('glibc-linked ELFv1 fixture', () => {
  it.skipIf(!existsSync(glibcV1))('main and _start resolve into executable text with the TOC', () => {
    const e = readElfFileSync(glibcV1);
    if (e.ppc64Abi !== 'elfv1') return; // the fixture builder may switch ABIs; covered elsewhere then
    for (const name of ['main', '_start']) {
      const s = e.symbolByName(name)!;
      expect(s.codeAddress).not.toBe(s.value);
      expect(e.segmentAt(s.codeAddress)!.flags & PF_X).toBe(PF_X);
      expect(e.segmentAt(s.value)!.flags & PF_X).toBe(0);
      expect(e.segmentAt(s.value)!.flags & PF_R).toBe(PF_R);
      expect(s.toc).toBeDefined();
      expect(e.symbolAt(s.codeAddress + 4n)?.symbol.name).toBe(name);
    }
    expect(e.entryCode).toBe(e.symbolByName('_start')!.codeAddress);
    expect(e.entryToc).toBe(e.symbolByName('_start')!.toc);
  });
});
