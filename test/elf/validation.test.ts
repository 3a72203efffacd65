/**
 * Every defect the reader detects, each with its message: the file name, then the defect.
 */
import { describe, expect, it } from 'vitest';
import { UniprobeError } from '../../src/errors.js';
import { EM_386, EM_AARCH64, EM_PPC64, EM_X86_64, PF_R, PF_W, PT_INTERP, PT_LOAD, SHT_PROGBITS, parseElf } from '../../src/elf/index.js';
import {
  buildElf,
  headerFieldOffsets,
  Patcher,
  phdrFieldOffsets,
  ppc64v1Spec,
  SAMPLE_DATA,
  SAMPLE_TEXT,
  sampleSpec,
  shdrFieldOffsets,
  symFieldOffsets,
  type SampleTarget,
} from './builder.js';

function elfError(bytes: Uint8Array, file = 'bad.elf'): UniprobeError {
  try {
    parseElf(bytes, file);
  } catch (e) {
    expect(e).toBeInstanceOf(UniprobeError);
    const u = e as UniprobeError;
    expect(u.code).toBe('ELF');
    expect(u.message.startsWith(`${file}: `)).toBe(true);
    return u;
  }
  throw new Error('parseElf accepted a malformed image');
}

function expectDefect(bytes: Uint8Array, message: string | RegExp): void {
  const e = elfError(bytes);
  if (typeof message === 'string') expect(e.message).toBe(`bad.elf: ${message}`);
  else expect(e.message).toMatch(message);
}

/** Builds a sample and returns it with a patcher and the field offset tables. */
function sample(t: SampleTarget = 'x86_64', spec = sampleSpec(t)) {
  const { bytes, layout } = buildElf(spec);
  const cls = spec.class;
  return {
    bytes,
    layout,
    cls,
    p: new Patcher(bytes, spec.endian === 'little'),
    eh: headerFieldOffsets(cls),
    ph: phdrFieldOffsets(cls),
    sh: shdrFieldOffsets(cls),
    sym: symFieldOffsets(cls),
    phent: cls === 64 ? 56 : 32,
    shent: cls === 64 ? 64 : 40,
    syment: cls === 64 ? 24 : 16,
  };
}

describe('identification', () => {
  it('empty and tiny files are too short', () => {
    expectDefect(new Uint8Array(0), 'too short for an ELF header (0 bytes; the identification alone needs 16)');
    expectDefect(Uint8Array.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), 'too short for an ELF header (7 bytes; the identification alone needs 16)');
  });

  it('a truncated header is too short for its class', () => {
    const { bytes } = sample('x86_64');
    expectDefect(bytes.slice(0, 63), 'too short for an ELF header (63 bytes; an ELF64 header needs 64)');
    const s32 = sample('i386');
    expectDefect(s32.bytes.slice(0, 40), 'too short for an ELF header (40 bytes; an ELF32 header needs 52)');
  });

  it('bad magic', () => {
    expectDefect(new TextEncoder().encode('#!/bin/sh\necho hello world\n'), 'not an ELF file (bad magic: 23 21 2f 62, expected 7f 45 4c 46)');
    expectDefect(Uint8Array.from([0x7f, 0x45, 0x4c, 0x47, 2, 1, 1]), 'not an ELF file (bad magic: 7f 45 4c 47, expected 7f 45 4c 46)');
    // A correct but incomplete magic is simply too short.
    expectDefect(Uint8Array.from([0x7f, 0x45]), 'too short for an ELF header (2 bytes; the identification alone needs 16)');
  });

  it('EI_CLASS, EI_DATA, EI_VERSION, e_version, e_ehsize', () => {
    let s = sample();
    s.bytes[4] = 3;
    expectDefect(s.bytes, 'invalid ELF class 3 in EI_CLASS (expected 1 = ELFCLASS32 or 2 = ELFCLASS64)');
    s = sample();
    s.bytes[5] = 0;
    expectDefect(s.bytes, 'invalid data encoding 0 in EI_DATA (expected 1 = little-endian or 2 = big-endian)');
    s = sample();
    s.bytes[6] = 2;
    expectDefect(s.bytes, 'unsupported ELF version 2 in EI_VERSION (expected 1)');
    s = sample();
    s.p.u32(s.eh.e_version!, 0);
    expectDefect(s.bytes, 'unsupported ELF version 0 in e_version (expected 1)');
    s = sample();
    s.p.u16(s.eh.e_ehsize!, 52);
    expectDefect(s.bytes, 'e_ehsize is 52, but an ELF64 header is 64 bytes');
  });

  it('e_type', () => {
    let s = sample();
    s.p.u16(s.eh.e_type!, 0);
    expectDefect(s.bytes, 'e_type is ET_NONE (no file type)');
    s = sample();
    s.p.u16(s.eh.e_type!, 0x1234);
    expectDefect(s.bytes, 'unknown e_type 0x1234');
  });
});

describe('unsupported targets', () => {
  it('names an unsupported machine', () => {
    const s = sample();
    s.p.u16(s.eh.e_machine!, EM_AARCH64);
    expectDefect(
      s.bytes,
      'ELF for ARM aarch64 (EM_AARCH64=183) is not supported (supported machines: x86-64, Intel 80386, PowerPC, PowerPC64, SPARC V9)',
    );
    s.p.u16(s.eh.e_machine!, 0x4242);
    expectDefect(s.bytes, /ELF for machine 16962 \(unknown e_machine\) is not supported/);
  });

  it('ppc64le is refused', () => {
    // A little-endian ppc64 file: same shape as x86-64.
    const spec = sampleSpec('x86_64', { machine: EM_PPC64 });
    expectDefect(buildElf(spec).bytes, 'ELF for PowerPC64 (EM_PPC64=21) in little-endian byte order (ppc64le) is not supported; only big-endian ppc64 is');
  });

  it('x32 and class/byte-order mismatches are refused', () => {
    expectDefect(
      buildElf(sampleSpec('i386', { machine: EM_X86_64 })).bytes,
      '32-bit ELF for x86-64 (EM_X86_64=62) (the x32 ABI) is not supported; x86-64 files must be ELFCLASS64',
    );
    expectDefect(
      buildElf(sampleSpec('x86_64', { machine: EM_386 })).bytes,
      '64-bit little-endian (ELFCLASS64, ELFDATA2LSB) ELF for Intel 80386 (EM_386=3) is not supported; target i386 needs 32-bit little-endian (ELFCLASS32, ELFDATA2LSB)',
    );
    expectDefect(
      buildElf(sampleSpec('ppc32', { endian: 'little' })).bytes,
      /ELF for PowerPC \(EM_PPC=20\) is not supported; target ppc32 needs 32-bit big-endian/,
    );
  });
});

describe('header tables', () => {
  it('e_phentsize and e_shentsize must match the class', () => {
    let s = sample('i386');
    s.p.u16(s.eh.e_phentsize!, 56);
    expectDefect(s.bytes, 'e_phentsize is 56, but ELF32 program headers are 32 bytes');
    s = sample('x86_64');
    s.p.u16(s.eh.e_shentsize!, 40);
    expectDefect(s.bytes, 'e_shentsize is 40, but ELF64 section headers are 64 bytes');
  });

  it('program header table out of bounds', () => {
    const s = sample('x86_64');
    s.p.u64(s.eh.e_phoff!, BigInt(s.bytes.length - 100));
    expectDefect(
      s.bytes,
      `program header table (e_phoff ${'0x' + (s.bytes.length - 100).toString(16)}, 4 entries of 56 bytes) extends past the end of the file (${s.bytes.length} bytes)`,
    );
    s.p.u64(s.eh.e_phoff!, 0xffffffffffffff00n);
    expectDefect(s.bytes, /program header table \(e_phoff 0xffffffffffffff00, 4 entries of 56 bytes\) extends past the end of the file/);
  });

  it('section header table out of bounds', () => {
    const s = sample('ppc32');
    s.p.u32(s.eh.e_shoff!, s.bytes.length - 40);
    expectDefect(s.bytes, new RegExp(`section header table \\(e_shoff 0x${(s.bytes.length - 40).toString(16)}, 6 entries of 40 bytes\\) extends past the end of the file`));
    s.p.u32(s.eh.e_shoff!, s.bytes.length + 8);
    expectDefect(s.bytes, `section header table (e_shoff 0x${(s.bytes.length + 8).toString(16)}) starts past the end of the file (${s.bytes.length} bytes)`);
  });

  it('truncation inside the section header table', () => {
    const s = sample('sparc64');
    expectDefect(s.bytes.slice(0, s.bytes.length - 1), /section header table .* extends past the end of the file/);
  });

  it('e_shnum without e_shoff, and e_shstrndx without sections', () => {
    let s = sample('x86_64', sampleSpec('x86_64', { sections: false }));
    s.p.u16(s.eh.e_shnum!, 3);
    expectDefect(s.bytes, 'e_shnum is 3 but e_shoff is 0 (no section header table)');
    s = sample('x86_64', sampleSpec('x86_64', { sections: false }));
    s.p.u16(s.eh.e_shstrndx!, 1);
    expectDefect(s.bytes, 'e_shstrndx 1 is out of range: the file has no section headers');
  });

  it('e_shstrndx out of range or not a string table', () => {
    let s = sample('x86_64');
    s.p.u16(s.eh.e_shstrndx!, 6);
    expectDefect(s.bytes, 'e_shstrndx 6 is out of range (the file has 6 sections)');
    s = sample('x86_64');
    s.p.u16(s.eh.e_shstrndx!, 1);
    expectDefect(s.bytes, 'section name string table (section 1) has type PROGBITS, expected STRTAB');
  });

  it('absurd counts', () => {
    const s = sample('x86_64');
    s.p.u16(s.eh.e_shnum!, 0);
    s.p.u64(s.layout.shoff + s.sh.size, 1n << 40n);
    expectDefect(s.bytes, 'absurd section count 1099511627776 (from section 0\'s sh_size)');
    s.p.u64(s.layout.shoff + s.sh.size, 0n);
    expectDefect(s.bytes, /e_shnum is 0 and section 0 gives no count/);
    s.p.u64(s.layout.shoff + s.sh.size, 60000n);
    expectDefect(s.bytes, /section header table \(e_shoff 0x[0-9a-f]+, 60000 entries of 64 bytes\) extends past the end of the file/);
    const t = sample('x86_64');
    t.p.u16(t.eh.e_phnum!, 0xffff);
    t.p.u32(t.layout.shoff + t.sh.info, 0x7fffffff);
    expectDefect(t.bytes, "absurd program header count 2147483647 (from section 0's sh_info)");
    t.p.u32(t.layout.shoff + t.sh.info, 65000);
    expectDefect(t.bytes, /program header table \(e_phoff 0x40, 65000 entries of 56 bytes\) extends past the end/);
  });
});

describe('segments', () => {
  it('segment file range out of bounds', () => {
    const s = sample('x86_64');
    s.p.u64(s.layout.phoff + s.phent + s.ph.filesz, 0x100000n).u64(s.layout.phoff + s.phent + s.ph.memsz, 0x100000n);
    expectDefect(s.bytes, /^bad\.elf: program header 1 \(LOAD\): file range \(offset 0x[0-9a-f]+, size 0x100000\) extends past the end of the file \(\d+ bytes\)$/);
  });

  it('p_filesz larger than p_memsz', () => {
    const s = sample('i386');
    s.p.u32(s.layout.phoff + s.ph.memsz, 0x80);
    expectDefect(s.bytes, 'program header 0 (LOAD): p_filesz 0x100 is larger than p_memsz 0x80');
    const t = sample('i386');
    t.p.u32(t.layout.phoff + 2 * t.phent + t.ph.memsz, 2);
    expectDefect(t.bytes, 'program header 2 (TLS): p_filesz 0x4 is larger than p_memsz 0x2');
  });

  it('overlapping PT_LOAD segments', () => {
    const spec = sampleSpec('x86_64');
    spec.segments[1] = { flags: PF_R | PF_W, vaddr: SAMPLE_TEXT + 0x1080n, data: new Uint8Array(16), memsz: 0x100n, section: '.data' };
    spec.segments[0]!.memsz = 0x1100n;
    expectDefect(buildElf(spec).bytes, 'PT_LOAD segments 0 and 1 overlap ([0x410000, 0x411100) and [0x411080, 0x411180))');
  });

  it('a segment running off the address space', () => {
    const spec = sampleSpec('ppc32');
    spec.segments[1] = { flags: PF_R | PF_W, vaddr: 0xfffff000n, data: new Uint8Array(16), memsz: 0x2000n, section: '.data' };
    expectDefect(buildElf(spec).bytes, 'program header 1 (LOAD): 0xfffff000 + 0x2000 runs past the end of the 32-bit address space');
  });

  it('p_align must be a power of two, and p_vaddr congruent to p_offset', () => {
    let s = sample('x86_64');
    s.p.u64(s.layout.phoff + s.ph.align, 0x1800n);
    expectDefect(s.bytes, 'program header 0 (LOAD): p_align 0x1800 is not a power of two');
    s = sample('x86_64');
    s.p.u64(s.layout.phoff + s.ph.vaddr, SAMPLE_TEXT + 4n);
    expectDefect(s.bytes, /program header 0 \(LOAD\): p_vaddr 0x410004 and p_offset 0x[0-9a-f]+ are not congruent modulo p_align 0x1000/);
  });

  it('unterminated PT_INTERP', () => {
    const spec = sampleSpec('x86_64');
    spec.segments.push({ type: PT_INTERP, flags: PF_R, vaddr: 0n, data: new TextEncoder().encode('/lib/ld.so') });
    expectDefect(buildElf(spec).bytes, 'program header 4 (INTERP): interpreter path is not NUL-terminated');
  });

  it('e_entry must be in the file-backed part of an executable PT_LOAD', () => {
    expectDefect(buildElf(sampleSpec('x86_64', { entry: SAMPLE_DATA })).bytes, 'e_entry 0x420000 is not inside the file-backed part of an executable PT_LOAD segment');
    expectDefect(buildElf(sampleSpec('x86_64', { entry: SAMPLE_TEXT + 0x100n })).bytes, /e_entry 0x410100 is not inside/);
    expectDefect(buildElf(sampleSpec('sparc64', { entry: 0n })).bytes, /e_entry 0x0 is not inside/);
    const spec = sampleSpec('i386');
    spec.segments = spec.segments.filter((s) => (s.type ?? PT_LOAD) !== PT_LOAD);
    spec.symbols = [];
    expectDefect(buildElf(spec).bytes, 'no PT_LOAD segment: nothing to load');
  });
});

describe('sections and symbols', () => {
  it('a section whose contents lie past the end of the file', () => {
    const s = sample('x86_64');
    s.p.u64(s.layout.shoff + 2 * s.shent + s.sh.size, 0x10000000n);
    expectDefect(s.bytes, /^bad\.elf: section \[2\] '\.data' \(offset 0x[0-9a-f]+, size 0x10000000\) extends past the end of the file \(\d+ bytes\)$/);
  });

  it('section name offset outside .shstrtab, and an unterminated name', () => {
    const s = sample('ppc32');
    s.p.u32(s.layout.shoff + 1 * s.shent + s.sh.name, 0x999);
    expectDefect(s.bytes, /section 1: name offset 0x999 is outside string table \.shstrtab \(\d+ bytes\)/);
    const t = sample('ppc32');
    // Overwrite the NUL that ends the last name (".shstrtab") in the section-name table.
    const shstrSize = t.p.getU32(t.layout.shoff + 5 * t.shent + t.sh.size);
    t.bytes[t.layout.shstrtabOffset + shstrSize - 1] = 0x41;
    expectDefect(t.bytes, /section 5: unterminated name at offset 0x[0-9a-f]+ in string table \.shstrtab/);
  });

  it('symbol name offset outside .strtab, and an unterminated symbol name', () => {
    const s = sample('sparc64');
    s.p.u32(s.layout.symtabOffset + 2 * s.syment + s.sym.name, 0x12345);
    expectDefect(s.bytes, /symbol 2 in '\.symtab': name offset 0x12345 is outside string table '\.strtab' \(\d+ bytes\)/);
    const t = sample('sparc64');
    const strSize = t.p.getWord(t.layout.shoff + 4 * t.shent + t.sh.size, 64);
    t.bytes[t.layout.strtabOffset + Number(strSize) - 1] = 0x41; // last name ("var") loses its NUL
    expectDefect(t.bytes, /symbol 4 in '\.symtab': unterminated name at offset 0x[0-9a-f]+ in string table '\.strtab'/);
  });

  it('symbol table sh_entsize and size', () => {
    let s = sample('x86_64');
    s.p.u64(s.layout.shoff + 3 * s.shent + s.sh.entsize, 16n);
    expectDefect(s.bytes, "symbol table '.symtab' (section 3): sh_entsize is 16, but ELF64 symbols are 24 bytes");
    s = sample('i386');
    s.p.u32(s.layout.shoff + 3 * s.shent + s.sh.size, 16 * 5 + 3);
    expectDefect(s.bytes, "symbol table '.symtab' (section 3): size 0x53 is not a multiple of the symbol size 16");
  });

  it('symbol table sh_link must name a string table', () => {
    let s = sample('x86_64');
    s.p.u32(s.layout.shoff + 3 * s.shent + s.sh.link, 77);
    expectDefect(s.bytes, "symbol table '.symtab' (section 3): sh_link 77 does not name a section (the file has 6)");
    s = sample('x86_64');
    s.p.u32(s.layout.shoff + 3 * s.shent + s.sh.link, 1);
    expectDefect(s.bytes, "symbol table '.symtab' (section 3): linked section 1 has type PROGBITS, expected STRTAB");
  });

  it('symbol section index out of range', () => {
    const s = sample('ppc64');
    s.p.u16(s.layout.symtabOffset + 3 * s.syment + s.sym.shndx, 40);
    expectDefect(s.bytes, "symbol 3 'main' in '.symtab': section index 40 is out of range (the file has 6 sections)");
    s.p.u16(s.layout.symtabOffset + 3 * s.syment + s.sym.shndx, 0xffff);
    expectDefect(s.bytes, "symbol 3 'main' in '.symtab' uses SHN_XINDEX but there is no SHT_SYMTAB_SHNDX section for it");
  });

  it('string table type is checked for .strtab too', () => {
    const s = sample('x86_64');
    s.p.u32(s.layout.shoff + 4 * s.shent + s.sh.type, SHT_PROGBITS);
    expectDefect(s.bytes, "symbol table '.symtab' (section 3): linked section 4 has type PROGBITS, expected STRTAB");
  });
});

describe('ppc64 specifics', () => {
  it('invalid ABI version in e_flags', () => {
    expectDefect(buildElf(sampleSpec('ppc64', { flags: 3 })).bytes, 'e_flags 0x3 has invalid ppc64 ABI version 3 (expected 1 = ELFv1 or 2 = ELFv2)');
  });

  it('ELFv1 entry must point at a descriptor in a file-backed PT_LOAD', () => {
    expectDefect(
      buildElf(ppc64v1Spec({ entry: 0x20000000n })).bytes,
      'e_entry 0x20000000 should point at an ELFv1 function descriptor, but no file-backed PT_LOAD holds 16 bytes there',
    );
  });

  it('ELFv1 entry descriptor must lead to executable code', () => {
    const spec = ppc64v1Spec();
    const { bytes, layout } = buildElf(spec);
    // _start's descriptor (third) code word -> the .opd segment itself.
    new Patcher(bytes, false).u64(layout.segmentOffsets[1]! + 0x30, 0x10020000n);
    expectDefect(
      bytes,
      'entry code address 0x10020000 (from the ELFv1 descriptor at e_entry 0x10020030) is not inside the file-backed part of an executable PT_LOAD segment',
    );
  });

  it('ELFv1 function descriptor running off the end of .opd', () => {
    const spec = ppc64v1Spec();
    spec.symbols!.push({ name: 'tail', value: 0x10020040n, size: 8n, type: 2, bind: 1, section: '.opd' });
    expectDefect(buildElf(spec).bytes, "function 'tail': descriptor at 0x10020040 runs past the end of '.opd' ([0x10020000, 0x10020048))");
  });

  it('ELFv2 reserved local entry encoding', () => {
    const spec = sampleSpec('ppc64');
    spec.symbols![1]!.other = 7 << 5;
    expectDefect(buildElf(spec).bytes, "symbol 2 'f2' in '.symtab': reserved ELFv2 local entry encoding 7 in st_other 0xe0");
  });
});

describe('truncation at every boundary of a valid file', () => {
  for (const t of ['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as const) {
    it(`${t}: every prefix shorter than the file fails cleanly`, () => {
      const { bytes } = buildElf(sampleSpec(t));
      for (let n = 0; n < bytes.length; n++) {
        const e = elfError(bytes.slice(0, n), `cut-${n}`);
        expect(e.message.length).toBeGreaterThan(`cut-${n}: `.length);
      }
    });
  }

  it('data segments keep their own message', () => {
    const spec = sampleSpec('x86_64');
    const { bytes, layout } = buildElf({ ...spec, sections: false });
    const cut = layout.segmentOffsets[1]! + 8;
    expectDefect(bytes.slice(0, cut), /program header 1 \(LOAD\): file range \(offset 0x[0-9a-f]+, size 0x10\) extends past the end of the file/);
    expect(SAMPLE_DATA).toBe(0x420000n);
  });
});
