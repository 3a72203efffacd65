/**
 * Section headers (Elf32_Shdr / Elf64_Shdr) and their names. Sections are optional: a file with
 * no section header table (e_shoff = 0, e_shnum = 0) has an empty list.
 * Extended numbering (e_shnum = 0, e_shstrndx = SHN_XINDEX, e_phnum = PN_XNUM with the real values
 * in section 0) is understood.
 */
import { SHDR_SIZE, SHN_XINDEX, SHT_NOBITS, SHT_NULL, SHT_STRTAB, sectionTypeName } from './constants.js';
import type { ElfHeader } from './header.js';
import { ByteReader, hex } from './reader.js';

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  flags: bigint;
  addr: bigint;
  offset: bigint;
  size: bigint;
  link: number;
  info: number;
  addralign: bigint;
  entsize: bigint;
}

export interface SectionTable {
  sections: ElfSection[];
  /** Resolved section-name string table index (0 = sections have no names). */
  shstrndx: number;
  /** sh_info of section 0 (holds the program header count when e_phnum is PN_XNUM). */
  section0Info: number | undefined;
}

/** Upper bound on section count; anything bigger is a corrupt header, not a real file. */
export const MAX_SECTIONS = 1 << 20;

function readShdr(r: ByteReader, off: number, cls: 32 | 64, index: number): ElfSection {
  const what = `section header ${index}`;
  if (cls === 64) {
    return {
      index,
      name: '',
      type: r.u32(off + 4, what),
      flags: r.u64(off + 8, what),
      addr: r.u64(off + 16, what),
      offset: r.u64(off + 24, what),
      size: r.u64(off + 32, what),
      link: r.u32(off + 40, what),
      info: r.u32(off + 44, what),
      addralign: r.u64(off + 48, what),
      entsize: r.u64(off + 56, what),
    };
  }
  return {
    index,
    name: '',
    type: r.u32(off + 4, what),
    flags: BigInt(r.u32(off + 8, what)),
    addr: BigInt(r.u32(off + 12, what)),
    offset: BigInt(r.u32(off + 16, what)),
    size: BigInt(r.u32(off + 20, what)),
    link: r.u32(off + 24, what),
    info: r.u32(off + 28, what),
    addralign: BigInt(r.u32(off + 32, what)),
    entsize: BigInt(r.u32(off + 36, what)),
  };
}

/** True if the section occupies bytes of the file (not SHT_NULL, SHT_NOBITS or empty). */
export function hasFileBytes(s: ElfSection): boolean {
  return s.type !== SHT_NOBITS && s.type !== SHT_NULL && s.size > 0n;
}

export function parseSections(r: ByteReader, h: ElfHeader): SectionTable {
  const cls = h.class;
  if (h.shoff === 0n) {
    if (h.shnum !== 0) {
      r.fail(`e_shnum is ${h.shnum} but e_shoff is 0 (no section header table)`);
    }
    if (h.shstrndx !== 0) {
      r.fail(`e_shstrndx ${h.shstrndx} is out of range: the file has no section headers`);
    }
    return { sections: [], shstrndx: 0, section0Info: undefined };
  }
  const entsize = SHDR_SIZE[cls];
  if (h.shentsize !== entsize) {
    r.fail(`e_shentsize is ${h.shentsize}, but ELF${cls} section headers are ${entsize} bytes`);
  }
  if (!r.contains(h.shoff, entsize)) {
    r.fail(`section header table (e_shoff ${hex(h.shoff)}) starts past the end of the file (${r.length} bytes)`);
  }
  const base = Number(h.shoff);
  const sec0 = readShdr(r, base, cls, 0);

  let count = h.shnum;
  if (count === 0) {
    // Extended numbering: the real count is section 0's sh_size.
    if (sec0.size === 0n) {
      r.fail(`e_shnum is 0 and section 0 gives no count, but e_shoff is ${hex(h.shoff)}`);
    }
    if (sec0.size > BigInt(MAX_SECTIONS)) {
      r.fail(`absurd section count ${sec0.size} (from section 0's sh_size)`);
    }
    count = Number(sec0.size);
  }
  const tableBytes = BigInt(count) * BigInt(entsize);
  if (!r.contains(h.shoff, tableBytes)) {
    r.fail(
      `section header table (e_shoff ${hex(h.shoff)}, ${count} entries of ${entsize} bytes) extends past the end of the file (${r.length} bytes)`,
    );
  }

  if (sec0.type !== SHT_NULL) {
    r.fail(`section 0 has type ${sectionTypeName(sec0.type)}; the first section header must be SHT_NULL`);
  }

  const sections: ElfSection[] = [sec0];
  for (let i = 1; i < count; i++) sections.push(readShdr(r, base + i * entsize, cls, i));

  const shstrndx = h.shstrndx === SHN_XINDEX ? sec0.link : h.shstrndx;
  if (shstrndx >= count) {
    r.fail(
      `e_shstrndx ${shstrndx}${h.shstrndx === SHN_XINDEX ? ' (from section 0)' : ''} is out of range (the file has ${count} sections)`,
    );
  }

  if (shstrndx !== 0) {
    const strtab = sections[shstrndx]!;
    if (strtab.type !== SHT_STRTAB) {
      r.fail(
        `section name string table (section ${shstrndx}) has type ${sectionTypeName(strtab.type)}, expected STRTAB`,
      );
    }
    const start = r.range(strtab.offset, strtab.size, `section name string table (section ${shstrndx})`);
    const size = Number(strtab.size);
    for (const s of sections) {
      const nameIndex = r.u32(base + s.index * entsize, `section header ${s.index}`);
      s.name = r.cstring(start, size, nameIndex, `section ${s.index}`, '.shstrtab');
    }
  }

  for (const s of sections) {
    if (!hasFileBytes(s)) continue;
    if (!r.contains(s.offset, s.size)) {
      r.fail(
        `section [${s.index}] '${s.name}' (offset ${hex(s.offset)}, size ${hex(s.size)}) extends past the end of the file (${r.length} bytes)`,
      );
    }
  }
  return { sections, shstrndx, section0Info: sec0.info };
}
