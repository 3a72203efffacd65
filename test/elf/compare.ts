/**
 * Test helper: renders an ElfFile and a parsed readelf listing in the same normalized line format,
 * so one `toEqual` compares every header, segment, section and symbol field with a readable diff.
 */
import {
  PT_NAMES,
  SHF_ALLOC,
  SHF_EXECINSTR,
  SHF_WRITE,
  SHN_ABS,
  SHN_COMMON,
  SHN_UNDEF,
  SHT_NAMES,
  STB_NAMES,
  STT_NAMES,
  STT_SECTION,
  STV_NAMES,
  segmentFlagsString,
  type ElfFile,
} from '../../src/elf/index.js';
import type { ReadelfOutput } from './readelf.js';

const h = (v: bigint): string => v.toString(16);

export interface Normalized {
  header: string;
  phdrs: string[];
  sections: string[];
  symbols: string[];
}

function ndxName(n: number): string {
  if (n === SHN_UNDEF) return 'UND';
  if (n === SHN_ABS) return 'ABS';
  if (n === SHN_COMMON) return 'COM';
  return String(n);
}

export function normalizeElf(elf: ElfFile): Normalized {
  return {
    header: `entry=${h(elf.entry)} flags=${elf.flags} phnum=${elf.phdrs.length} shnum=${elf.sections.length}`,
    phdrs: elf.phdrs.map(
      (p) =>
        `${PT_NAMES[p.type] ?? '?'} off=${h(p.offset)} va=${h(p.vaddr)} pa=${h(p.paddr)} fs=${h(p.filesz)} ms=${h(p.memsz)} fl=${segmentFlagsString(p.flags)} al=${h(p.align)}`,
    ),
    sections: elf.sections.map((s) => {
      const f = Number(s.flags & BigInt(SHF_WRITE | SHF_ALLOC | SHF_EXECINSTR));
      const flags = `${f & SHF_WRITE ? 'W' : ''}${f & SHF_ALLOC ? 'A' : ''}${f & SHF_EXECINSTR ? 'X' : ''}`;
      const type = SHT_NAMES[s.type] ?? '?';
      return `[${s.index}] ${s.name}|${type} addr=${h(s.addr)} off=${h(s.offset)} size=${h(s.size)} es=${h(s.entsize)} fl=${flags} lk=${s.link} inf=${s.info} al=${s.addralign}`;
    }),
    symbols: elf.symbols.map((s) => {
      const le = s.localEntryOffset !== 0 ? ` le=${s.localEntryOffset}` : '';
      // readelf shows the section's name for STT_SECTION symbols (whose own name is empty).
      const name = s.type === STT_SECTION ? '' : s.name;
      return `${s.table}:${s.index} ${h(s.value)} ${s.size} ${STT_NAMES[s.type] ?? '?'} ${STB_NAMES[s.bind] ?? '?'} ${STV_NAMES[s.visibility]} ${ndxName(s.shndx)} ${name}${le}`;
    }),
  };
}

/**
 * The same rendering from readelf's text. Where our tables have no name for a type ('?'), the
 * readelf name is replaced by '?' too, so unknown processor-specific values do not cause noise.
 */
export function normalizeReadelf(re: ReadelfOutput, mine: Normalized): Normalized {
  return {
    header: `entry=${h(re.entry)} flags=${re.flags} phnum=${re.phnum} shnum=${re.shnum}`,
    phdrs: re.phdrs.map((p, i) => {
      const type = mine.phdrs[i]?.startsWith('? ') ? '?' : p.type;
      return `${type} off=${h(p.offset)} va=${h(p.vaddr)} pa=${h(p.paddr)} fs=${h(p.filesz)} ms=${h(p.memsz)} fl=${p.flags} al=${h(p.align)}`;
    }),
    sections: re.sections.map((s, i) => {
      const flags = `${s.flags.includes('W') ? 'W' : ''}${s.flags.includes('A') ? 'A' : ''}${s.flags.includes('X') ? 'X' : ''}`;
      // nameAndType is "name TYPE"; split it using our rendering's name (names have no spaces here).
      const ours = mine.sections[i] ?? '';
      const ourName = ours.slice(ours.indexOf('] ') + 2, ours.indexOf('|'));
      const ourType = ours.slice(ours.indexOf('|') + 1, ours.indexOf(' addr='));
      let name = s.nameAndType;
      let type = '';
      if (s.nameAndType.startsWith(ourName)) {
        name = ourName;
        type = s.nameAndType.slice(ourName.length).trim();
      }
      if (ourType === '?') type = '?';
      return `[${s.index}] ${name}|${type} addr=${h(s.addr)} off=${h(s.offset)} size=${h(s.size)} es=${h(s.entsize)} fl=${flags} lk=${s.link} inf=${s.info} al=${s.align}`;
    }),
    symbols: re.symbols
      .filter((s) => s.index !== 0)
      .map((s) => {
        const table = s.table === '.dynsym' ? 'dynsym' : 'symtab';
        const m = s.extra?.match(/<localentry>: (\d+)/);
        const le = m && Number(m[1]) !== 0 ? ` le=${m[1]}` : '';
        const name = s.type === 'SECTION' ? '' : s.name;
        return `${table}:${s.index} ${h(s.value)} ${s.size} ${s.type} ${s.bind} ${s.vis} ${s.ndx} ${name}${le}`;
      }),
  };
}
