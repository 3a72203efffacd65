/**
 * Symbol tables (.symtab and .dynsym: Elf32_Sym / Elf64_Sym) with names from their linked string
 * tables. Target-specific meaning (ppc64 descriptors and local entries) is added by ppc64.ts;
 * here every symbol's codeAddress is its value.
 */
import {
  SHN_LORESERVE,
  SHN_XINDEX,
  SHT_DYNSYM,
  SHT_STRTAB,
  SHT_SYMTAB,
  SHT_SYMTAB_SHNDX,
  SYM_SIZE,
  sectionTypeName,
} from './constants.js';
import { ByteReader, hex, type ElfClass } from './reader.js';
import type { ElfSection } from './sections.js';

export type SymbolTableKind = 'symtab' | 'dynsym';

export interface ElfSymbol {
  /** Index in its symbol table (0, the null symbol, is not listed). */
  index: number;
  table: SymbolTableKind;
  name: string;
  value: bigint;
  size: bigint;
  /** STT_* */
  type: number;
  /** STB_* */
  bind: number;
  /** Raw st_other. */
  other: number;
  /** STV_* (st_other & 3). */
  visibility: number;
  /** Section index, or SHN_UNDEF / SHN_ABS / SHN_COMMON (SHN_XINDEX already resolved). */
  shndx: number;
  /** Where the code starts: st_value, except ppc64 ELFv1 functions (resolved through .opd). */
  codeAddress: bigint;
  /** ppc64 ELFv1: TOC pointer from the function descriptor. */
  toc: bigint | undefined;
  /** ppc64 ELFv2: bytes from the global to the local entry point (st_other bits 5..7); else 0. */
  localEntryOffset: number;
  /** codeAddress + localEntryOffset. */
  localEntry: bigint;
}

function describeTable(s: ElfSection): string {
  return `symbol table '${s.name}' (section ${s.index})`;
}

/** Section indexes from an SHT_SYMTAB_SHNDX section linked to `symtab`, if any. */
function extendedIndexes(sections: readonly ElfSection[], symtab: ElfSection): ElfSection | undefined {
  return sections.find((s) => s.type === SHT_SYMTAB_SHNDX && s.link === symtab.index);
}

function parseTable(r: ByteReader, cls: ElfClass, sections: readonly ElfSection[], tab: ElfSection): ElfSymbol[] {
  const what = describeTable(tab);
  const entsize = SYM_SIZE[cls];
  if (tab.entsize !== BigInt(entsize)) {
    r.fail(`${what}: sh_entsize is ${tab.entsize}, but ELF${cls} symbols are ${entsize} bytes`);
  }
  if (tab.size % BigInt(entsize) !== 0n) {
    r.fail(`${what}: size ${hex(tab.size)} is not a multiple of the symbol size ${entsize}`);
  }
  const strtab = sections[tab.link];
  if (tab.link === 0 || strtab === undefined) {
    r.fail(`${what}: sh_link ${tab.link} does not name a section (the file has ${sections.length})`);
  }
  if (strtab.type !== SHT_STRTAB) {
    r.fail(`${what}: linked section ${tab.link} has type ${sectionTypeName(strtab.type)}, expected STRTAB`);
  }
  const base = r.range(tab.offset, tab.size, what);
  const strStart = r.range(strtab.offset, strtab.size, `string table '${strtab.name}' (section ${strtab.index})`);
  const strSize = Number(strtab.size);
  const count = Number(tab.size) / entsize;
  const kind: SymbolTableKind = tab.type === SHT_DYNSYM ? 'dynsym' : 'symtab';
  let xindex: { start: number; count: number } | undefined;

  const out: ElfSymbol[] = [];
  for (let i = 1; i < count; i++) {
    const off = base + i * entsize;
    const ctx = `symbol ${i} in '${tab.name}'`;
    let nameIndex: number, value: bigint, size: bigint, info: number, other: number, shndx: number;
    if (cls === 64) {
      nameIndex = r.u32(off, ctx);
      info = r.u8(off + 4, ctx);
      other = r.u8(off + 5, ctx);
      shndx = r.u16(off + 6, ctx);
      value = r.u64(off + 8, ctx);
      size = r.u64(off + 16, ctx);
    } else {
      nameIndex = r.u32(off, ctx);
      value = BigInt(r.u32(off + 4, ctx));
      size = BigInt(r.u32(off + 8, ctx));
      info = r.u8(off + 12, ctx);
      other = r.u8(off + 13, ctx);
      shndx = r.u16(off + 14, ctx);
    }
    const name = r.cstring(strStart, strSize, nameIndex, ctx, `'${strtab.name}'`);
    if (shndx === SHN_XINDEX) {
      if (xindex === undefined) {
        const x = extendedIndexes(sections, tab);
        if (x === undefined) {
          r.fail(`symbol ${i} '${name}' in '${tab.name}' uses SHN_XINDEX but there is no SHT_SYMTAB_SHNDX section for it`);
        }
        xindex = { start: r.range(x.offset, x.size, `section [${x.index}] '${x.name}'`), count: Number(x.size) / 4 };
      }
      if (i >= xindex.count) {
        r.fail(`symbol ${i} '${name}' in '${tab.name}': no entry for it in the SHT_SYMTAB_SHNDX section`);
      }
      shndx = r.u32(xindex.start + i * 4, `extended section index of symbol ${i}`);
      if (shndx >= sections.length) {
        r.fail(`symbol ${i} '${name}' in '${tab.name}': section index ${shndx} is out of range (the file has ${sections.length} sections)`);
      }
    } else if (shndx !== 0 && shndx < SHN_LORESERVE && shndx >= sections.length) {
      r.fail(`symbol ${i} '${name}' in '${tab.name}': section index ${shndx} is out of range (the file has ${sections.length} sections)`);
    }
    out.push({
      index: i,
      table: kind,
      name,
      value,
      size,
      type: info & 0xf,
      bind: info >> 4,
      other,
      visibility: other & 3,
      shndx,
      codeAddress: value,
      toc: undefined,
      localEntryOffset: 0,
      localEntry: value,
    });
  }
  return out;
}

/** All symbols of .symtab (first) and .dynsym, in table order. */
export function parseSymbols(r: ByteReader, cls: ElfClass, sections: readonly ElfSection[]): ElfSymbol[] {
  const tables = sections.filter((s) => s.type === SHT_SYMTAB || s.type === SHT_DYNSYM);
  tables.sort((a, b) => (a.type === b.type ? a.index - b.index : a.type === SHT_SYMTAB ? -1 : 1));
  const out: ElfSymbol[] = [];
  for (const t of tables) for (const s of parseTable(r, cls, sections, t)) out.push(s);
  return out;
}
