/**
 * The ELF file header (Elf32_Ehdr / Elf64_Ehdr): identification and header-level validation.
 * Machine support is decided separately (target.ts); table bounds in segments.ts / sections.ts.
 */
import {
  EHDR_SIZE,
  EI_CLASS,
  EI_DATA,
  EI_NIDENT,
  EI_ABIVERSION,
  EI_OSABI,
  EI_VERSION,
  ELFCLASS32,
  ELFCLASS64,
  ELFDATA2LSB,
  ELFDATA2MSB,
  ELFMAG,
  ET_CORE,
  ET_LOOS,
  ET_NAMES,
  ET_NONE,
  EV_CURRENT,
} from './constants.js';
import { ByteReader, elfError, hex, type ElfClass, type Endianness } from './reader.js';

export interface ElfHeader {
  class: ElfClass;
  endianness: Endianness;
  osabi: number;
  abiVersion: number;
  /** e_type: ET_REL, ET_EXEC, ET_DYN, ET_CORE or an OS/processor-specific value. */
  type: number;
  machine: number;
  version: number;
  entry: bigint;
  phoff: bigint;
  shoff: bigint;
  flags: number;
  ehsize: number;
  phentsize: number;
  /** Raw e_phnum (PN_XNUM means the count is in section 0). */
  phnum: number;
  shentsize: number;
  /** Raw e_shnum (0 with a section table means the count is in section 0). */
  shnum: number;
  /** Raw e_shstrndx (SHN_XINDEX means the index is in section 0). */
  shstrndx: number;
}

function byteList(bytes: Uint8Array, n: number): string {
  return Array.from(bytes.subarray(0, n), (b) => b.toString(16).padStart(2, '0')).join(' ');
}

export function parseHeader(bytes: Uint8Array, file: string): { header: ElfHeader; reader: ByteReader } {
  const len = bytes.length;
  const magicLen = Math.min(len, ELFMAG.length);
  for (let i = 0; i < magicLen; i++) {
    if (bytes[i] !== ELFMAG[i]) {
      throw elfError(file, `not an ELF file (bad magic: ${byteList(bytes, ELFMAG.length)}, expected 7f 45 4c 46)`);
    }
  }
  if (len < EI_NIDENT) {
    throw elfError(file, `too short for an ELF header (${len} bytes; the identification alone needs ${EI_NIDENT})`);
  }
  const clsByte = bytes[EI_CLASS] ?? 0;
  if (clsByte !== ELFCLASS32 && clsByte !== ELFCLASS64) {
    throw elfError(file, `invalid ELF class ${clsByte} in EI_CLASS (expected 1 = ELFCLASS32 or 2 = ELFCLASS64)`);
  }
  const cls: ElfClass = clsByte === ELFCLASS64 ? 64 : 32;
  const dataByte = bytes[EI_DATA] ?? 0;
  if (dataByte !== ELFDATA2LSB && dataByte !== ELFDATA2MSB) {
    throw elfError(
      file,
      `invalid data encoding ${dataByte} in EI_DATA (expected 1 = little-endian or 2 = big-endian)`,
    );
  }
  const endianness: Endianness = dataByte === ELFDATA2LSB ? 'little' : 'big';
  const identVersion = bytes[EI_VERSION] ?? 0;
  if (identVersion !== EV_CURRENT) {
    throw elfError(file, `unsupported ELF version ${identVersion} in EI_VERSION (expected 1)`);
  }
  const ehsize = EHDR_SIZE[cls];
  if (len < ehsize) {
    throw elfError(file, `too short for an ELF header (${len} bytes; an ELF${cls} header needs ${ehsize})`);
  }

  const r = new ByteReader(bytes, file, endianness);
  const w = cls === 64 ? 8 : 4;
  // Offsets of the fields after e_version: e_entry, e_phoff, e_shoff are class-sized words.
  const oEntry = 24;
  const oPhoff = oEntry + w;
  const oShoff = oPhoff + w;
  const oFlags = oShoff + w;
  const header: ElfHeader = {
    class: cls,
    endianness,
    osabi: bytes[EI_OSABI] ?? 0,
    abiVersion: bytes[EI_ABIVERSION] ?? 0,
    type: r.u16(16, 'e_type'),
    machine: r.u16(18, 'e_machine'),
    version: r.u32(20, 'e_version'),
    entry: r.word(oEntry, cls, 'e_entry'),
    phoff: r.word(oPhoff, cls, 'e_phoff'),
    shoff: r.word(oShoff, cls, 'e_shoff'),
    flags: r.u32(oFlags, 'e_flags'),
    ehsize: r.u16(oFlags + 4, 'e_ehsize'),
    phentsize: r.u16(oFlags + 6, 'e_phentsize'),
    phnum: r.u16(oFlags + 8, 'e_phnum'),
    shentsize: r.u16(oFlags + 10, 'e_shentsize'),
    shnum: r.u16(oFlags + 12, 'e_shnum'),
    shstrndx: r.u16(oFlags + 14, 'e_shstrndx'),
  };

  if (header.version !== EV_CURRENT) {
    throw elfError(file, `unsupported ELF version ${header.version} in e_version (expected 1)`);
  }
  if (header.ehsize !== ehsize) {
    throw elfError(file, `e_ehsize is ${header.ehsize}, but an ELF${cls} header is ${ehsize} bytes`);
  }
  if (header.type === ET_NONE) {
    throw elfError(file, 'e_type is ET_NONE (no file type)');
  }
  if (header.type > ET_CORE && header.type < ET_LOOS) {
    throw elfError(file, `unknown e_type ${hex(header.type)}`);
  }
  return { header, reader: r };
}

export function fileTypeName(type: number): string {
  return ET_NAMES[type] ?? `ET_${hex(type)}`;
}
