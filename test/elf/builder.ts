/**
 * Test helper: assembles small ELF images in memory (any class / byte order), with program headers,
 * optional section headers, .symtab/.strtab/.shstrtab. Returns the image and where things went, so
 * tests can corrupt precise fields.
 */
import {
  EHDR_SIZE,
  EM_386,
  EM_PPC,
  EM_PPC64,
  EM_SPARCV9,
  EM_X86_64,
  PF_R,
  PT_GNU_STACK,
  PT_TLS,
  STB_GLOBAL,
  STB_LOCAL,
  STT_FUNC,
  STT_OBJECT,
  ET_EXEC,
  PF_W,
  PF_X,
  PHDR_SIZE,
  PT_LOAD,
  SHDR_SIZE,
  SHF_ALLOC,
  SHF_EXECINSTR,
  SHF_WRITE,
  SHT_PROGBITS,
  SHT_STRTAB,
  SHT_SYMTAB,
  SYM_SIZE,
} from '../../src/elf/constants.js';

export interface SegmentSpec {
  type?: number; // default PT_LOAD
  flags: number;
  vaddr: bigint;
  data?: Uint8Array;
  memsz?: bigint; // default data.length
  align?: bigint; // default 0x1000 for PT_LOAD, 1 otherwise
  /** Emit a PROGBITS section with this name covering the segment's file bytes. */
  section?: string;
}

export interface SymbolSpec {
  name: string;
  value: bigint;
  size?: bigint;
  type: number;
  bind: number;
  other?: number;
  /** Section by name (from SegmentSpec.section), or a raw index (0 = UND, 0xfff1 = ABS). */
  section?: string | number;
}

export interface ElfSpec {
  class: 32 | 64;
  endian: 'little' | 'big';
  machine: number;
  type?: number; // default ET_EXEC
  flags?: number;
  entry: bigint;
  segments: SegmentSpec[];
  symbols?: SymbolSpec[];
  /** Emit section headers (default true). Without them there are no symbols either. */
  sections?: boolean;
}

export interface ElfLayout {
  phoff: number;
  shoff: number; // 0 without sections
  segmentOffsets: number[];
  symtabOffset: number;
  strtabOffset: number;
  shstrtabOffset: number;
  /** Section index by name. */
  sectionIndex: Map<string, number>;
}

class Writer {
  bytes: Uint8Array;
  view: DataView;
  constructor(
    size: number,
    readonly little: boolean,
  ) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }
  u8(off: number, v: number): void {
    this.view.setUint8(off, v);
  }
  u16(off: number, v: number): void {
    this.view.setUint16(off, v, this.little);
  }
  u32(off: number, v: number): void {
    this.view.setUint32(off, v, this.little);
  }
  u64(off: number, v: bigint): void {
    this.view.setBigUint64(off, v, this.little);
  }
  word(off: number, cls: 32 | 64, v: bigint): void {
    if (cls === 64) this.u64(off, v);
    else this.u32(off, Number(v));
  }
}

class StrTab {
  private parts: number[] = [0];
  private index = new Map<string, number>([['', 0]]);
  add(s: string): number {
    const known = this.index.get(s);
    if (known !== undefined) return known;
    const at = this.parts.length;
    for (const b of new TextEncoder().encode(s)) this.parts.push(b);
    this.parts.push(0);
    this.index.set(s, at);
    return at;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

const alignUp = (v: number, a: number): number => Math.ceil(v / a) * a;

/** Writes a class/endian-sized field layout helper for tests that patch headers. */
export function headerFieldOffsets(cls: 32 | 64): Record<string, number> {
  const w = cls === 64 ? 8 : 4;
  const flags = 24 + 3 * w;
  return {
    e_type: 16,
    e_machine: 18,
    e_version: 20,
    e_entry: 24,
    e_phoff: 24 + w,
    e_shoff: 24 + 2 * w,
    e_flags: flags,
    e_ehsize: flags + 4,
    e_phentsize: flags + 6,
    e_phnum: flags + 8,
    e_shentsize: flags + 10,
    e_shnum: flags + 12,
    e_shstrndx: flags + 14,
  };
}

export function buildElf(spec: ElfSpec): { bytes: Uint8Array; layout: ElfLayout } {
  const cls = spec.class;
  const little = spec.endian === 'little';
  const withSections = spec.sections ?? true;
  const ehsize = EHDR_SIZE[cls];
  const phentsize = PHDR_SIZE[cls];
  const shentsize = SHDR_SIZE[cls];
  const symsize = SYM_SIZE[cls];

  // ---- layout ----
  const phoff = ehsize;
  let cur = phoff + spec.segments.length * phentsize;
  const segOffsets: number[] = [];
  for (const s of spec.segments) {
    const type = s.type ?? PT_LOAD;
    const align = Number(s.align ?? (type === PT_LOAD ? 0x1000n : 1n));
    const len = s.data?.length ?? 0;
    if (len === 0 && type !== PT_LOAD) {
      segOffsets.push(0);
      continue;
    }
    let off = alignUp(cur, 8);
    if (align > 1) {
      const want = Number(s.vaddr % BigInt(align));
      off = Math.floor(off / align) * align + want;
      if (off < cur) off += align;
    }
    segOffsets.push(off);
    cur = off + len;
  }

  const shstr = new StrTab();
  const str = new StrTab();
  const sectionIndex = new Map<string, number>();
  interface Sec {
    name: number;
    type: number;
    flags: bigint;
    addr: bigint;
    offset: number;
    size: number;
    link: number;
    info: number;
    align: number;
    entsize: number;
  }
  const secs: Sec[] = [{ name: 0, type: 0, flags: 0n, addr: 0n, offset: 0, size: 0, link: 0, info: 0, align: 0, entsize: 0 }];
  spec.segments.forEach((s, i) => {
    if (s.section === undefined) return;
    sectionIndex.set(s.section, secs.length);
    secs.push({
      name: shstr.add(s.section),
      type: SHT_PROGBITS,
      flags: BigInt(SHF_ALLOC | (s.flags & PF_X ? SHF_EXECINSTR : 0) | (s.flags & PF_W ? SHF_WRITE : 0)),
      addr: s.vaddr,
      offset: segOffsets[i]!,
      size: s.data?.length ?? 0,
      link: 0,
      info: 0,
      align: 4,
      entsize: 0,
    });
  });

  const syms = withSections ? (spec.symbols ?? []) : [];
  const symtabIdx = secs.length;
  const strtabIdx = symtabIdx + 1;
  const shstrtabIdx = syms.length > 0 ? symtabIdx + 2 : symtabIdx;
  // Symbols: locals must come first (sh_info = first global).
  const ordered = [...syms].sort((a, b) => (a.bind === 0 ? 0 : 1) - (b.bind === 0 ? 0 : 1));
  const nameIdx = ordered.map((s) => str.add(s.name));
  const symtabOffset = syms.length > 0 ? alignUp(cur, 8) : 0;
  if (syms.length > 0) cur = symtabOffset + (ordered.length + 1) * symsize;
  const strBytes = str.bytes();
  const strtabOffset = syms.length > 0 ? cur : 0;
  if (syms.length > 0) cur += strBytes.length;
  if (syms.length > 0) {
    sectionIndex.set('.symtab', symtabIdx);
    sectionIndex.set('.strtab', strtabIdx);
    const firstGlobal = ordered.findIndex((s) => s.bind !== 0);
    secs.push({
      name: shstr.add('.symtab'),
      type: SHT_SYMTAB,
      flags: 0n,
      addr: 0n,
      offset: symtabOffset,
      size: (ordered.length + 1) * symsize,
      link: strtabIdx,
      info: firstGlobal < 0 ? ordered.length + 1 : firstGlobal + 1,
      align: 8,
      entsize: symsize,
    });
    secs.push({
      name: shstr.add('.strtab'),
      type: SHT_STRTAB,
      flags: 0n,
      addr: 0n,
      offset: strtabOffset,
      size: strBytes.length,
      link: 0,
      info: 0,
      align: 1,
      entsize: 0,
    });
  }
  sectionIndex.set('.shstrtab', shstrtabIdx);
  const shstrName = shstr.add('.shstrtab');
  const shstrBytes = shstr.bytes();
  const shstrtabOffset = withSections ? cur : 0;
  if (withSections) {
    secs.push({
      name: shstrName,
      type: SHT_STRTAB,
      flags: 0n,
      addr: 0n,
      offset: shstrtabOffset,
      size: shstrBytes.length,
      link: 0,
      info: 0,
      align: 1,
      entsize: 0,
    });
    cur += shstrBytes.length;
  }
  const shoff = withSections ? alignUp(cur, 8) : 0;
  const total = withSections ? shoff + secs.length * shentsize : cur;

  // ---- write ----
  const w = new Writer(total, little);
  w.bytes.set([0x7f, 0x45, 0x4c, 0x46, cls === 64 ? 2 : 1, little ? 1 : 2, 1], 0);
  const f = headerFieldOffsets(cls);
  w.u16(f.e_type!, spec.type ?? ET_EXEC);
  w.u16(f.e_machine!, spec.machine);
  w.u32(f.e_version!, 1);
  w.word(f.e_entry!, cls, spec.entry);
  w.word(f.e_phoff!, cls, spec.segments.length > 0 ? BigInt(phoff) : 0n);
  w.word(f.e_shoff!, cls, BigInt(shoff));
  w.u32(f.e_flags!, spec.flags ?? 0);
  w.u16(f.e_ehsize!, ehsize);
  w.u16(f.e_phentsize!, phentsize);
  w.u16(f.e_phnum!, spec.segments.length);
  w.u16(f.e_shentsize!, shentsize);
  w.u16(f.e_shnum!, withSections ? secs.length : 0);
  w.u16(f.e_shstrndx!, withSections ? shstrtabIdx : 0);

  spec.segments.forEach((s, i) => {
    const o = phoff + i * phentsize;
    const type = s.type ?? PT_LOAD;
    const len = BigInt(s.data?.length ?? 0);
    const memsz = s.memsz ?? len;
    const align = s.align ?? (type === PT_LOAD ? 0x1000n : 1n);
    const off = BigInt(segOffsets[i]!);
    if (cls === 64) {
      w.u32(o, type);
      w.u32(o + 4, s.flags);
      w.u64(o + 8, off);
      w.u64(o + 16, s.vaddr);
      w.u64(o + 24, s.vaddr);
      w.u64(o + 32, len);
      w.u64(o + 40, memsz);
      w.u64(o + 48, align);
    } else {
      w.u32(o, type);
      w.u32(o + 4, Number(off));
      w.u32(o + 8, Number(s.vaddr));
      w.u32(o + 12, Number(s.vaddr));
      w.u32(o + 16, Number(len));
      w.u32(o + 20, Number(memsz));
      w.u32(o + 24, s.flags);
      w.u32(o + 28, Number(align));
    }
    if (s.data) w.bytes.set(s.data, segOffsets[i]!);
  });

  if (syms.length > 0) {
    ordered.forEach((s, i) => {
      const o = symtabOffset + (i + 1) * symsize;
      const shndx =
        typeof s.section === 'number'
          ? s.section
          : s.section === undefined
            ? 0
            : (sectionIndex.get(s.section) ?? (() => { throw new Error(`no section ${s.section}`); })());
      const info = (s.bind << 4) | (s.type & 0xf);
      w.u32(o, nameIdx[i]!);
      if (cls === 64) {
        w.u8(o + 4, info);
        w.u8(o + 5, s.other ?? 0);
        w.u16(o + 6, shndx);
        w.u64(o + 8, s.value);
        w.u64(o + 16, s.size ?? 0n);
      } else {
        w.u32(o + 4, Number(s.value));
        w.u32(o + 8, Number(s.size ?? 0n));
        w.u8(o + 12, info);
        w.u8(o + 13, s.other ?? 0);
        w.u16(o + 14, shndx);
      }
    });
    w.bytes.set(strBytes, strtabOffset);
  }
  if (withSections) {
    w.bytes.set(shstrBytes, shstrtabOffset);
    secs.forEach((s, i) => {
      const o = shoff + i * shentsize;
      w.u32(o, s.name);
      w.u32(o + 4, s.type);
      if (cls === 64) {
        w.u64(o + 8, s.flags);
        w.u64(o + 16, s.addr);
        w.u64(o + 24, BigInt(s.offset));
        w.u64(o + 32, BigInt(s.size));
        w.u32(o + 40, s.link);
        w.u32(o + 44, s.info);
        w.u64(o + 48, BigInt(s.align));
        w.u64(o + 56, BigInt(s.entsize));
      } else {
        w.u32(o + 8, Number(s.flags));
        w.u32(o + 12, Number(s.addr));
        w.u32(o + 16, s.offset);
        w.u32(o + 20, s.size);
        w.u32(o + 24, s.link);
        w.u32(o + 28, s.info);
        w.u32(o + 32, s.align);
        w.u32(o + 36, s.entsize);
      }
    });
  }

  return {
    bytes: w.bytes,
    layout: {
      phoff,
      shoff,
      segmentOffsets: segOffsets,
      symtabOffset,
      strtabOffset,
      shstrtabOffset,
      sectionIndex,
    },
  };
}

/** Big/little-endian field patcher over an existing image (tests corrupt headers with it). */
export class Patcher {
  readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly little: boolean,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u8(off: number, v: number): this {
    this.view.setUint8(off, v);
    return this;
  }
  u16(off: number, v: number): this {
    this.view.setUint16(off, v, this.little);
    return this;
  }
  u32(off: number, v: number): this {
    this.view.setUint32(off, v, this.little);
    return this;
  }
  u64(off: number, v: bigint): this {
    this.view.setBigUint64(off, v, this.little);
    return this;
  }
  word(off: number, cls: 32 | 64, v: bigint): this {
    return cls === 64 ? this.u64(off, v) : this.u32(off, Number(v));
  }
  getWord(off: number, cls: 32 | 64): bigint {
    return cls === 64 ? this.view.getBigUint64(off, this.little) : BigInt(this.view.getUint32(off, this.little));
  }
  getU16(off: number): number {
    return this.view.getUint16(off, this.little);
  }
  getU32(off: number): number {
    return this.view.getUint32(off, this.little);
  }
}

/** Program header field offsets within one entry. */
export function phdrFieldOffsets(cls: 32 | 64): Record<'type' | 'flags' | 'offset' | 'vaddr' | 'paddr' | 'filesz' | 'memsz' | 'align', number> {
  return cls === 64
    ? { type: 0, flags: 4, offset: 8, vaddr: 16, paddr: 24, filesz: 32, memsz: 40, align: 48 }
    : { type: 0, offset: 4, vaddr: 8, paddr: 12, filesz: 16, memsz: 20, flags: 24, align: 28 };
}

/** Section header field offsets within one entry. */
export function shdrFieldOffsets(cls: 32 | 64): Record<'name' | 'type' | 'flags' | 'addr' | 'offset' | 'size' | 'link' | 'info' | 'addralign' | 'entsize', number> {
  return cls === 64
    ? { name: 0, type: 4, flags: 8, addr: 16, offset: 24, size: 32, link: 40, info: 44, addralign: 48, entsize: 56 }
    : { name: 0, type: 4, flags: 8, addr: 12, offset: 16, size: 20, link: 24, info: 28, addralign: 32, entsize: 36 };
}

/** Symbol field offsets within one entry. */
export function symFieldOffsets(cls: 32 | 64): Record<'name' | 'value' | 'size' | 'info' | 'other' | 'shndx', number> {
  return cls === 64
    ? { name: 0, info: 4, other: 5, shndx: 6, value: 8, size: 16 }
    : { name: 0, value: 4, size: 8, info: 12, other: 13, shndx: 14 };
}

// ---- ready-made samples -----------------------------------------------------------------------

export type SampleTarget = 'x86_64' | 'i386' | 'ppc32' | 'ppc64' | 'sparc64';

export const SAMPLE_IDENT: Record<SampleTarget, { class: 32 | 64; endian: 'little' | 'big'; machine: number; flags: number }> = {
  x86_64: { class: 64, endian: 'little', machine: EM_X86_64, flags: 0 },
  i386: { class: 32, endian: 'little', machine: EM_386, flags: 0 },
  ppc32: { class: 32, endian: 'big', machine: EM_PPC, flags: 0 },
  ppc64: { class: 64, endian: 'big', machine: EM_PPC64, flags: 2 },
  sparc64: { class: 64, endian: 'big', machine: EM_SPARCV9, flags: 0 },
};

/** Filler "code": distinct bytes so reads can be checked. */
export function pattern(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + seed * 13 + 1) & 0xff;
  return out;
}

export const SAMPLE_TEXT = 0x10000n + 0x400000n; // 0x410000
export const SAMPLE_DATA = 0x420000n;

/**
 * A small executable: text (R E, 0x100 bytes, functions f1 @+0x00 size 0x20, f2 @+0x20 size 0x40,
 * main @+0x60 size 0x30), data (RW, 0x10 file bytes, 0x100 in memory), TLS, GNU_STACK, symbols.
 */
export function sampleSpec(t: SampleTarget, overrides: Partial<ElfSpec> = {}): ElfSpec {
  const id = SAMPLE_IDENT[t];
  return {
    class: id.class,
    endian: id.endian,
    machine: id.machine,
    flags: id.flags,
    entry: SAMPLE_TEXT + 0x60n,
    segments: [
      { flags: PF_R | PF_X, vaddr: SAMPLE_TEXT, data: pattern(0x100), section: '.text' },
      { flags: PF_R | PF_W, vaddr: SAMPLE_DATA, data: pattern(0x10, 2), memsz: 0x100n, section: '.data' },
      { type: PT_TLS, flags: PF_R, vaddr: SAMPLE_DATA, data: pattern(4, 3), memsz: 8n, align: 4n },
      { type: PT_GNU_STACK, flags: PF_R | PF_W, vaddr: 0n, align: 16n },
    ],
    symbols: [
      { name: 'f1', value: SAMPLE_TEXT, size: 0x20n, type: STT_FUNC, bind: STB_LOCAL, section: '.text' },
      { name: 'f2', value: SAMPLE_TEXT + 0x20n, size: 0x40n, type: STT_FUNC, bind: STB_GLOBAL, section: '.text' },
      { name: 'main', value: SAMPLE_TEXT + 0x60n, size: 0x30n, type: STT_FUNC, bind: STB_GLOBAL, section: '.text' },
      { name: 'var', value: SAMPLE_DATA, size: 4n, type: STT_OBJECT, bind: STB_GLOBAL, section: '.data' },
    ],
    ...overrides,
  };
}

function be64(values: bigint[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const v = new DataView(out.buffer);
  values.forEach((x, i) => v.setBigUint64(i * 8, x, false));
  return out;
}

export const V1_TEXT = 0x10000000n;
export const V1_OPD = 0x10020000n;
export const V1_TOC = 0x10028000n;

/**
 * ppc64 ELFv1 executable: code in .text, three descriptors in .opd (a writable segment):
 *   .opd+0x00 -> foo  (code .text+0x00, size 0x10)
 *   .opd+0x18 -> bar  (code .text+0x10, size 0x20)
 *   .opd+0x30 -> _start (code .text+0x30, size 0x10); e_entry = .opd+0x30
 */
export function ppc64v1Spec(overrides: Partial<ElfSpec> = {}): ElfSpec {
  const opd = be64([
    V1_TEXT, V1_TOC, 0n,
    V1_TEXT + 0x10n, V1_TOC, 0n,
    V1_TEXT + 0x30n, V1_TOC, 0n,
  ]);
  return {
    class: 64,
    endian: 'big',
    machine: EM_PPC64,
    flags: 1,
    entry: V1_OPD + 0x30n,
    segments: [
      { flags: PF_R | PF_X, vaddr: V1_TEXT, data: pattern(0x40), section: '.text' },
      { flags: PF_R | PF_W, vaddr: V1_OPD, data: opd, section: '.opd' },
    ],
    symbols: [
      { name: 'foo', value: V1_OPD, size: 0x10n, type: STT_FUNC, bind: STB_LOCAL, section: '.opd' },
      { name: 'bar', value: V1_OPD + 0x18n, size: 0x20n, type: STT_FUNC, bind: STB_GLOBAL, section: '.opd' },
      { name: '_start', value: V1_OPD + 0x30n, size: 0x10n, type: STT_FUNC, bind: STB_GLOBAL, section: '.opd' },
    ],
    ...overrides,
  };
}
