import { describe, expect, it } from 'vitest';
import {
  EM_AARCH64,
  ET_DYN,
  ET_EXEC,
  ET_REL,
  PF_R,
  PF_W,
  PF_X,
  PT_GNU_STACK,
  PT_INTERP,
  PT_LOAD,
  PT_TLS,
  SHN_ABS,
  SHN_XINDEX,
  SHT_SYMTAB_SHNDX,
  STB_GLOBAL,
  STB_LOCAL,
  STB_WEAK,
  STT_FUNC,
  STT_NOTYPE,
  STT_OBJECT,
  parseElf,
  targetOf,
  segmentFlagsString,
} from '../../src/elf/index.js';
import {
  buildElf,
  headerFieldOffsets,
  Patcher,
  pattern,
  SAMPLE_DATA,
  SAMPLE_TEXT,
  sampleSpec,
  shdrFieldOffsets,
  type SampleTarget,
} from './builder.js';

const TARGETS: SampleTarget[] = ['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'];

describe('parseElf on built images, every class and byte order', () => {
  for (const t of TARGETS) {
    describe(t, () => {
      const { bytes, layout } = buildElf(sampleSpec(t));
      const elf = parseElf(bytes, `sample-${t}`);

      it('identification', () => {
        const spec = sampleSpec(t);
        expect(elf.file).toBe(`sample-${t}`);
        expect(elf.class).toBe(spec.class);
        expect(elf.endianness).toBe(spec.endian);
        expect(elf.machine).toBe(spec.machine);
        expect(elf.target).toBe(t);
        expect(targetOf(elf)).toBe(t);
        expect(elf.type).toBe(ET_EXEC);
        expect(elf.entry).toBe(SAMPLE_TEXT + 0x60n);
        expect(elf.entryCode).toBe(SAMPLE_TEXT + 0x60n);
        expect(elf.flags).toBe(spec.flags ?? 0);
        expect(elf.ppc64Abi).toBe(t === 'ppc64' ? 'elfv2' : undefined);
      });

      it('program headers', () => {
        expect(elf.phdrs.map((p) => p.type)).toEqual([PT_LOAD, PT_LOAD, PT_TLS, PT_GNU_STACK]);
        const [text, data] = elf.loadSegments();
        expect(text).toMatchObject({
          index: 0,
          flags: PF_R | PF_X,
          offset: BigInt(layout.segmentOffsets[0]!),
          vaddr: SAMPLE_TEXT,
          paddr: SAMPLE_TEXT,
          filesz: 0x100n,
          memsz: 0x100n,
          align: 0x1000n,
        });
        expect(data).toMatchObject({ flags: PF_R | PF_W, vaddr: SAMPLE_DATA, filesz: 0x10n, memsz: 0x100n });
        expect(segmentFlagsString(text!.flags)).toBe('R E');
        expect(segmentFlagsString(data!.flags)).toBe('RW ');
        expect(elf.tls).toMatchObject({ type: PT_TLS, filesz: 4n, memsz: 8n, align: 4n });
        expect(elf.gnuStack).toMatchObject({ type: PT_GNU_STACK, flags: PF_R | PF_W });
        expect(elf.interp).toBeUndefined();
      });

      it('sections', () => {
        expect(elf.sections.map((s) => s.name)).toEqual(['', '.text', '.data', '.symtab', '.strtab', '.shstrtab']);
        const text = elf.sectionByName('.text')!;
        expect(text.addr).toBe(SAMPLE_TEXT);
        expect(text.offset).toBe(BigInt(layout.segmentOffsets[0]!));
        expect(text.size).toBe(0x100n);
        expect(elf.sectionAt(SAMPLE_TEXT + 0x10n)?.name).toBe('.text');
        expect(elf.sectionByName('.symtab')!.entsize).toBe(t === 'i386' || t === 'ppc32' ? 16n : 24n);
      });

      it('symbols', () => {
        expect(elf.symbols.map((s) => s.name)).toEqual(['f1', 'f2', 'main', 'var']);
        const f2 = elf.symbolByName('f2')!;
        expect(f2).toMatchObject({
          table: 'symtab',
          value: SAMPLE_TEXT + 0x20n,
          size: 0x40n,
          type: STT_FUNC,
          bind: STB_GLOBAL,
          shndx: 1,
          codeAddress: SAMPLE_TEXT + 0x20n,
          localEntryOffset: 0,
          localEntry: SAMPLE_TEXT + 0x20n,
          toc: undefined,
        });
        expect(elf.symbolByName('f1')!.bind).toBe(STB_LOCAL);
        expect(elf.symbolByName('var')!.type).toBe(STT_OBJECT);
        expect(elf.symbolByName('nope')).toBeUndefined();
        expect(elf.functions().map((s) => s.name)).toEqual(['f1', 'f2', 'main']);
      });

      it('symbolAt finds the containing function and the offset', () => {
        expect(elf.symbolAt(SAMPLE_TEXT)).toMatchObject({ offset: 0n, size: 0x20n });
        expect(elf.symbolAt(SAMPLE_TEXT)!.symbol.name).toBe('f1');
        expect(elf.symbolAt(SAMPLE_TEXT + 0x1fn)!.symbol.name).toBe('f1');
        const at = elf.symbolAt(SAMPLE_TEXT + 0x2an)!;
        expect(at.symbol.name).toBe('f2');
        expect(at.offset).toBe(0xan);
        expect(elf.symbolAt(SAMPLE_TEXT + 0x8fn)!.symbol.name).toBe('main');
        expect(elf.symbolAt(SAMPLE_TEXT + 0x90n)).toBeUndefined();
        expect(elf.symbolAt(SAMPLE_TEXT - 1n)).toBeUndefined();
        expect(elf.symbolAt(0n)).toBeUndefined();
      });

      it('vaddr <-> file offset', () => {
        const textOff = BigInt(layout.segmentOffsets[0]!);
        const dataOff = BigInt(layout.segmentOffsets[1]!);
        expect(elf.vaddrToOffset(SAMPLE_TEXT)).toBe(textOff);
        expect(elf.vaddrToOffset(SAMPLE_TEXT + 0xffn)).toBe(textOff + 0xffn);
        expect(elf.vaddrToOffset(SAMPLE_TEXT + 0x100n)).toBeUndefined();
        expect(elf.vaddrToOffset(SAMPLE_DATA + 0xfn)).toBe(dataOff + 0xfn);
        expect(elf.vaddrToOffset(SAMPLE_DATA + 0x10n)).toBeUndefined(); // bss: no file bytes
        expect(elf.offsetToVaddr(textOff + 0x42n)).toBe(SAMPLE_TEXT + 0x42n);
        expect(elf.offsetToVaddr(dataOff)).toBe(SAMPLE_DATA);
        expect(elf.offsetToVaddr(0n)).toBeUndefined(); // the ELF header is not in a PT_LOAD here
        expect(elf.segmentAt(SAMPLE_DATA + 0xffn)?.index).toBe(1);
        expect(elf.segmentAt(SAMPLE_DATA + 0x100n)).toBeUndefined();
      });

      it('textBytesAt: file bytes, then zeros up to p_memsz', () => {
        expect(Array.from(elf.textBytesAt(SAMPLE_TEXT + 0x20n, 8))).toEqual(Array.from(pattern(0x100).subarray(0x20, 0x28)));
        const d = elf.textBytesAt(SAMPLE_DATA + 0xcn, 8);
        expect(Array.from(d)).toEqual([...Array.from(pattern(0x10, 2).subarray(0xc)), 0, 0, 0, 0]);
        expect(Array.from(elf.textBytesAt(SAMPLE_DATA + 0x80n, 4))).toEqual([0, 0, 0, 0]);
        expect(elf.textBytesAt(SAMPLE_TEXT, 0).length).toBe(0);
        expect(() => elf.textBytesAt(SAMPLE_TEXT + 0xf0n, 0x20)).toThrow(/no PT_LOAD segment covers \[0x4100f0, 0x410110\)/);
        expect(() => elf.textBytesAt(0x1000n, 1)).toThrow(/no PT_LOAD segment covers/);
        expect(() => elf.textBytesAt(SAMPLE_TEXT, -1)).toThrow(/bad length/);
        // A copy: changing it does not change the image.
        const copy = elf.textBytesAt(SAMPLE_TEXT, 1);
        copy[0] = copy[0]! ^ 0xff;
        expect(elf.textBytesAt(SAMPLE_TEXT, 1)[0]).toBe(pattern(1)[0]);
      });
    });
  }
});

describe('optional and unusual structure', () => {
  it('a file without section headers parses, with no symbols', () => {
    const { bytes } = buildElf(sampleSpec('x86_64', { sections: false }));
    const elf = parseElf(bytes, 'nosections');
    expect(elf.sections).toEqual([]);
    expect(elf.symbols).toEqual([]);
    expect(elf.functions()).toEqual([]);
    expect(elf.symbolAt(SAMPLE_TEXT)).toBeUndefined();
    expect(elf.loadSegments().length).toBe(2);
    expect(elf.header.shoff).toBe(0n);
  });

  it('PT_INTERP is read (the loader refuses it later)', () => {
    const spec = sampleSpec('x86_64');
    spec.segments.unshift({ type: PT_INTERP, flags: PF_R, vaddr: 0x400000n, data: new TextEncoder().encode('/lib64/ld-linux-x86-64.so.2\0') });
    const elf = parseElf(buildElf(spec).bytes, 'dyn');
    expect(elf.interp).toBe('/lib64/ld-linux-x86-64.so.2');
  });

  it('section names are optional (e_shstrndx = 0)', () => {
    const { bytes } = buildElf(sampleSpec('i386'));
    const f = headerFieldOffsets(32);
    new Patcher(bytes, true).u16(f.e_shstrndx!, 0);
    const elf = parseElf(bytes, 'nonames');
    expect(elf.sections.every((s) => s.name === '')).toBe(true);
    expect(elf.symbolByName('main')?.value).toBe(SAMPLE_TEXT + 0x60n);
  });

  it('extended section numbering: e_shnum = 0 and e_shstrndx = SHN_XINDEX with the values in section 0', () => {
    const { bytes, layout } = buildElf(sampleSpec('sparc64'));
    const p = new Patcher(bytes, false);
    const f = headerFieldOffsets(64);
    const sh = shdrFieldOffsets(64);
    const count = p.getU16(f.e_shnum!);
    const strndx = p.getU16(f.e_shstrndx!);
    p.u16(f.e_shnum!, 0).u16(f.e_shstrndx!, 0xffff);
    p.u64(layout.shoff + sh.size, BigInt(count)).u32(layout.shoff + sh.link, strndx);
    const elf = parseElf(bytes, 'xnum');
    expect(elf.sections.length).toBe(count);
    expect(elf.sections.map((s) => s.name)).toContain('.shstrtab');
    expect(elf.symbolByName('main')?.size).toBe(0x30n);
  });

  it('SHN_XINDEX symbols take their section index from SHT_SYMTAB_SHNDX', () => {
    const { bytes, layout } = buildElf(sampleSpec('x86_64'));
    const p = new Patcher(bytes, true);
    const sh = shdrFieldOffsets(64);
    const data = layout.shoff + 2 * 64; // section [2] becomes the index table for .symtab
    p.u32(data + sh.type, SHT_SYMTAB_SHNDX).u32(data + sh.link, 3);
    p.u32(layout.segmentOffsets[1]! + 4, 1); // entry for symbol 1 (f1): section 1
    p.u16(layout.symtabOffset + 24 + 6, SHN_XINDEX); // f1's st_shndx
    const elf = parseElf(bytes, 'xindex');
    expect(elf.symbolByName('f1')?.shndx).toBe(1);
    // Symbol 4 (var) has no entry in the 16-byte table (entries for symbols 0..3).
    p.u16(layout.symtabOffset + 4 * 24 + 6, SHN_XINDEX);
    expect(() => parseElf(bytes, 'xindex')).toThrow("xindex: symbol 4 'var' in '.symtab': no entry for it in the SHT_SYMTAB_SHNDX section");
  });

  it('section 0 must be SHT_NULL', () => {
    const { bytes, layout } = buildElf(sampleSpec('ppc32'));
    new Patcher(bytes, false).u32(layout.shoff + 4, 1);
    expect(() => parseElf(bytes, 'sec0')).toThrow('sec0: section 0 has type PROGBITS; the first section header must be SHT_NULL');
  });

  it('ET_REL objects need no segments and no entry', () => {
    const spec = sampleSpec('x86_64', { type: ET_REL, entry: 0n, segments: [] });
    spec.symbols = [{ name: 'x', value: 0n, size: 4n, type: STT_OBJECT, bind: STB_GLOBAL, section: SHN_ABS }];
    const elf = parseElf(buildElf(spec).bytes, 'obj.o');
    expect(elf.type).toBe(ET_REL);
    expect(elf.phdrs).toEqual([]);
    expect(elf.symbolByName('x')?.shndx).toBe(SHN_ABS);
  });

  it('ET_DYN with entry 0 (a shared object) needs no entry point', () => {
    const elf = parseElf(buildElf(sampleSpec('x86_64', { type: ET_DYN, entry: 0n })).bytes, 'lib.so');
    expect(elf.type).toBe(ET_DYN);
    expect(elf.entry).toBe(0n);
  });

  it('symbolByName prefers defined, global over weak over local', () => {
    const spec = sampleSpec('x86_64');
    spec.symbols = [
      { name: 'dup', value: SAMPLE_TEXT, size: 0x10n, type: STT_FUNC, bind: STB_LOCAL, section: '.text' },
      { name: 'dup', value: SAMPLE_TEXT + 0x10n, size: 0x10n, type: STT_FUNC, bind: STB_WEAK, section: '.text' },
      { name: 'dup', value: SAMPLE_TEXT + 0x20n, size: 0x10n, type: STT_FUNC, bind: STB_GLOBAL, section: '.text' },
      { name: 'ext', value: 0n, type: STT_NOTYPE, bind: STB_GLOBAL, section: 0 },
      { name: 'ext', value: SAMPLE_TEXT + 0x40n, type: STT_FUNC, bind: STB_LOCAL, size: 4n, section: '.text' },
    ];
    const elf = parseElf(buildElf(spec).bytes, 'dups');
    expect(elf.symbolByName('dup')!.value).toBe(SAMPLE_TEXT + 0x20n);
    expect(elf.symbolByName('ext')!.value).toBe(SAMPLE_TEXT + 0x40n);
    expect(elf.symbolsByName('dup').length).toBe(3);
  });

  it('symbolAt with aliases and nested symbols picks the innermost, then the global', () => {
    const spec = sampleSpec('x86_64');
    spec.symbols = [
      { name: 'outer', value: SAMPLE_TEXT, size: 0x80n, type: STT_FUNC, bind: STB_GLOBAL, section: '.text' },
      { name: 'inner_local', value: SAMPLE_TEXT + 0x40n, size: 0x10n, type: STT_FUNC, bind: STB_LOCAL, section: '.text' },
      { name: 'inner', value: SAMPLE_TEXT + 0x40n, size: 0x10n, type: STT_FUNC, bind: STB_GLOBAL, section: '.text' },
    ];
    const elf = parseElf(buildElf(spec).bytes, 'nested');
    expect(elf.symbolAt(SAMPLE_TEXT + 0x44n)).toMatchObject({ offset: 4n, size: 0x10n });
    expect(elf.symbolAt(SAMPLE_TEXT + 0x44n)!.symbol.name).toBe('inner');
    expect(elf.symbolAt(SAMPLE_TEXT + 0x50n)!.symbol.name).toBe('outer');
    expect(elf.symbolAt(SAMPLE_TEXT + 0x50n)!.offset).toBe(0x50n);
    expect(elf.symbolAt(SAMPLE_TEXT + 0x3fn)!.symbol.name).toBe('outer');
  });

  it('anyMachine parses unsupported machines and leaves target undefined', () => {
    const { bytes } = buildElf(sampleSpec('x86_64', { machine: EM_AARCH64 }));
    const elf = parseElf(bytes, 'arm64', { anyMachine: true });
    expect(elf.target).toBeUndefined();
    expect(elf.machineName).toBe('ARM aarch64');
    expect(() => targetOf(elf)).toThrow('arm64: ELF for ARM aarch64 (EM_AARCH64=183) is not supported');
  });

  it('segments with no file bytes and a data PT_LOAD reached only through memsz', () => {
    const spec = sampleSpec('ppc32');
    spec.segments.push({ flags: PF_R | PF_W, vaddr: 0x500000n, memsz: 0x2000n });
    const elf = parseElf(buildElf(spec).bytes, 'bss-only');
    expect(elf.loadSegments().length).toBe(3);
    expect(elf.vaddrToOffset(0x500000n)).toBeUndefined();
    expect(Array.from(elf.textBytesAt(0x501ffen, 2))).toEqual([0, 0]);
  });
});
