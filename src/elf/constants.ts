/**
 * ELF constants (System V gABI, plus the processor supplements the engine's targets need).
 * Values only: no logic lives here apart from the name tables used in messages and dumps.
 */

// ---- e_ident -------------------------------------------------------------------------------
export const EI_NIDENT = 16;
export const EI_CLASS = 4;
export const EI_DATA = 5;
export const EI_VERSION = 6;
export const EI_OSABI = 7;
export const EI_ABIVERSION = 8;

export const ELFMAG = [0x7f, 0x45, 0x4c, 0x46] as const; // "\x7fELF"

export const ELFCLASS32 = 1;
export const ELFCLASS64 = 2;
export const ELFDATA2LSB = 1;
export const ELFDATA2MSB = 2;
export const EV_CURRENT = 1;

// ---- sizes per class -------------------------------------------------------------------------
export const EHDR_SIZE = { 32: 52, 64: 64 } as const;
export const PHDR_SIZE = { 32: 32, 64: 56 } as const;
export const SHDR_SIZE = { 32: 40, 64: 64 } as const;
export const SYM_SIZE = { 32: 16, 64: 24 } as const;

// ---- e_type ----------------------------------------------------------------------------------
export const ET_NONE = 0;
export const ET_REL = 1;
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const ET_CORE = 4;
export const ET_LOOS = 0xfe00;
export const ET_HIPROC = 0xffff;

export const ET_NAMES: Readonly<Record<number, string>> = {
  [ET_NONE]: 'ET_NONE',
  [ET_REL]: 'ET_REL',
  [ET_EXEC]: 'ET_EXEC',
  [ET_DYN]: 'ET_DYN',
  [ET_CORE]: 'ET_CORE',
};

// ---- e_machine -------------------------------------------------------------------------------
export const EM_NONE = 0;
export const EM_SPARC = 2;
export const EM_386 = 3;
export const EM_68K = 4;
export const EM_MIPS = 8;
export const EM_PARISC = 15;
export const EM_SPARC32PLUS = 18;
export const EM_PPC = 20;
export const EM_PPC64 = 21;
export const EM_S390 = 22;
export const EM_ARM = 40;
export const EM_SH = 42;
export const EM_SPARCV9 = 43;
export const EM_IA_64 = 50;
export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;
export const EM_RISCV = 243;
export const EM_BPF = 247;
export const EM_LOONGARCH = 258;

/** Human names (as binutils spells them) and the EM_ macro name, for messages. */
export const EM_NAMES: Readonly<Record<number, { name: string; macro: string }>> = {
  [EM_NONE]: { name: 'no machine', macro: 'EM_NONE' },
  [EM_SPARC]: { name: 'SPARC (32-bit)', macro: 'EM_SPARC' },
  [EM_386]: { name: 'Intel 80386', macro: 'EM_386' },
  [EM_68K]: { name: 'Motorola 68000', macro: 'EM_68K' },
  [EM_MIPS]: { name: 'MIPS', macro: 'EM_MIPS' },
  [EM_PARISC]: { name: 'HPPA', macro: 'EM_PARISC' },
  [EM_SPARC32PLUS]: { name: 'SPARC v8+', macro: 'EM_SPARC32PLUS' },
  [EM_PPC]: { name: 'PowerPC', macro: 'EM_PPC' },
  [EM_PPC64]: { name: 'PowerPC64', macro: 'EM_PPC64' },
  [EM_S390]: { name: 'IBM S/390', macro: 'EM_S390' },
  [EM_ARM]: { name: 'ARM', macro: 'EM_ARM' },
  [EM_SH]: { name: 'Renesas SuperH', macro: 'EM_SH' },
  [EM_SPARCV9]: { name: 'SPARC V9', macro: 'EM_SPARCV9' },
  [EM_IA_64]: { name: 'Intel IA-64', macro: 'EM_IA_64' },
  [EM_X86_64]: { name: 'x86-64', macro: 'EM_X86_64' },
  [EM_AARCH64]: { name: 'ARM aarch64', macro: 'EM_AARCH64' },
  [EM_RISCV]: { name: 'RISC-V', macro: 'EM_RISCV' },
  [EM_BPF]: { name: 'Linux BPF', macro: 'EM_BPF' },
  [EM_LOONGARCH]: { name: 'LoongArch', macro: 'EM_LOONGARCH' },
};

/** "ARM aarch64 (EM_AARCH64=183)" or "machine 4660 (unknown e_machine)". */
export function describeMachine(machine: number): string {
  const n = EM_NAMES[machine];
  return n === undefined ? `machine ${machine} (unknown e_machine)` : `${n.name} (${n.macro}=${machine})`;
}

export function machineName(machine: number): string {
  return EM_NAMES[machine]?.name ?? `unknown machine ${machine}`;
}

// ---- e_flags (ppc64) -------------------------------------------------------------------------
/** ppc64 ABI version in e_flags: 1 = ELFv1 (function descriptors), 2 = ELFv2. */
export const EF_PPC64_ABI = 3;

// ---- special section indexes ---------------------------------------------------------------
export const SHN_UNDEF = 0;
export const SHN_LORESERVE = 0xff00;
export const SHN_ABS = 0xfff1;
export const SHN_COMMON = 0xfff2;
export const SHN_XINDEX = 0xffff;
/** e_phnum value meaning "the real count is in section 0's sh_info". */
export const PN_XNUM = 0xffff;

// ---- p_type ----------------------------------------------------------------------------------
export const PT_NULL = 0;
export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const PT_NOTE = 4;
export const PT_SHLIB = 5;
export const PT_PHDR = 6;
export const PT_TLS = 7;
export const PT_GNU_EH_FRAME = 0x6474e550;
export const PT_GNU_STACK = 0x6474e551;
export const PT_GNU_RELRO = 0x6474e552;
export const PT_GNU_PROPERTY = 0x6474e553;

export const PT_NAMES: Readonly<Record<number, string>> = {
  [PT_NULL]: 'NULL',
  [PT_LOAD]: 'LOAD',
  [PT_DYNAMIC]: 'DYNAMIC',
  [PT_INTERP]: 'INTERP',
  [PT_NOTE]: 'NOTE',
  [PT_SHLIB]: 'SHLIB',
  [PT_PHDR]: 'PHDR',
  [PT_TLS]: 'TLS',
  [PT_GNU_EH_FRAME]: 'GNU_EH_FRAME',
  [PT_GNU_STACK]: 'GNU_STACK',
  [PT_GNU_RELRO]: 'GNU_RELRO',
  [PT_GNU_PROPERTY]: 'GNU_PROPERTY',
};

export function segmentTypeName(type: number): string {
  return PT_NAMES[type] ?? `0x${type.toString(16)}`;
}

// ---- p_flags ---------------------------------------------------------------------------------
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

// ---- sh_type ---------------------------------------------------------------------------------
export const SHT_NULL = 0;
export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_RELA = 4;
export const SHT_HASH = 5;
export const SHT_DYNAMIC = 6;
export const SHT_NOTE = 7;
export const SHT_NOBITS = 8;
export const SHT_REL = 9;
export const SHT_SHLIB = 10;
export const SHT_DYNSYM = 11;
export const SHT_INIT_ARRAY = 14;
export const SHT_FINI_ARRAY = 15;
export const SHT_PREINIT_ARRAY = 16;
export const SHT_GROUP = 17;
export const SHT_SYMTAB_SHNDX = 18;
export const SHT_GNU_HASH = 0x6ffffff6;
export const SHT_GNU_VERDEF = 0x6ffffffd;
export const SHT_GNU_VERNEED = 0x6ffffffe;
export const SHT_GNU_VERSYM = 0x6fffffff;

export const SHT_NAMES: Readonly<Record<number, string>> = {
  [SHT_NULL]: 'NULL',
  [SHT_PROGBITS]: 'PROGBITS',
  [SHT_SYMTAB]: 'SYMTAB',
  [SHT_STRTAB]: 'STRTAB',
  [SHT_RELA]: 'RELA',
  [SHT_HASH]: 'HASH',
  [SHT_DYNAMIC]: 'DYNAMIC',
  [SHT_NOTE]: 'NOTE',
  [SHT_NOBITS]: 'NOBITS',
  [SHT_REL]: 'REL',
  [SHT_SHLIB]: 'SHLIB',
  [SHT_DYNSYM]: 'DYNSYM',
  [SHT_INIT_ARRAY]: 'INIT_ARRAY',
  [SHT_FINI_ARRAY]: 'FINI_ARRAY',
  [SHT_PREINIT_ARRAY]: 'PREINIT_ARRAY',
  [SHT_GROUP]: 'GROUP',
  [SHT_SYMTAB_SHNDX]: 'SYMTAB SECTION INDICES',
  [SHT_GNU_HASH]: 'GNU_HASH',
  [SHT_GNU_VERDEF]: 'VERDEF',
  [SHT_GNU_VERNEED]: 'VERNEED',
  [SHT_GNU_VERSYM]: 'VERSYM',
};

export function sectionTypeName(type: number): string {
  return SHT_NAMES[type] ?? `0x${type.toString(16)}`;
}

// ---- sh_flags --------------------------------------------------------------------------------
export const SHF_WRITE = 0x1;
export const SHF_ALLOC = 0x2;
export const SHF_EXECINSTR = 0x4;
export const SHF_MERGE = 0x10;
export const SHF_STRINGS = 0x20;
export const SHF_TLS = 0x400;

// ---- symbols ---------------------------------------------------------------------------------
export const STB_LOCAL = 0;
export const STB_GLOBAL = 1;
export const STB_WEAK = 2;
export const STB_GNU_UNIQUE = 10;

export const STB_NAMES: Readonly<Record<number, string>> = {
  [STB_LOCAL]: 'LOCAL',
  [STB_GLOBAL]: 'GLOBAL',
  [STB_WEAK]: 'WEAK',
  [STB_GNU_UNIQUE]: 'UNIQUE',
};

export const STT_NOTYPE = 0;
export const STT_OBJECT = 1;
export const STT_FUNC = 2;
export const STT_SECTION = 3;
export const STT_FILE = 4;
export const STT_COMMON = 5;
export const STT_TLS = 6;
export const STT_GNU_IFUNC = 10;
/** SPARC: register declaration symbols (%g2, %g3, … usage). */
export const STT_SPARC_REGISTER = 13;

export const STT_NAMES: Readonly<Record<number, string>> = {
  [STT_NOTYPE]: 'NOTYPE',
  [STT_OBJECT]: 'OBJECT',
  [STT_FUNC]: 'FUNC',
  [STT_SECTION]: 'SECTION',
  [STT_FILE]: 'FILE',
  [STT_COMMON]: 'COMMON',
  [STT_TLS]: 'TLS',
  [STT_GNU_IFUNC]: 'IFUNC',
  [STT_SPARC_REGISTER]: 'REGISTER',
};

export const STV_DEFAULT = 0;
export const STV_INTERNAL = 1;
export const STV_HIDDEN = 2;
export const STV_PROTECTED = 3;
export const STV_NAMES = ['DEFAULT', 'INTERNAL', 'HIDDEN', 'PROTECTED'] as const;

/** ppc64 ELFv2: st_other bits 5..7 encode the distance from global to local entry point. */
export const STO_PPC64_LOCAL_BIT = 5;
export const STO_PPC64_LOCAL_MASK = 0xe0;

/** ppc64 ELFv1 function descriptor: entry address, TOC pointer, environment pointer. */
export const PPC64_OPD_ENTRY_SIZE = 24;
