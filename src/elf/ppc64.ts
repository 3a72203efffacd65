/**
 * ppc64 specifics of symbols and entry points.
 *
 * ELFv1 (e_flags & 3 == 1): a function symbol's value is the address of a function descriptor in
 * .opd: three doublewords {code address, TOC pointer, environment}. e_entry also points at a
 * descriptor. The code address is what a probe on the function patches.
 *
 * ELFv2 (e_flags & 3 == 2): symbols point at code (the global entry point). st_other bits 5..7
 * give the distance to the local entry point, which skips the TOC setup:
 *   v = 0 or 1: no separate local entry (offset 0);  v = 2..6: offset (1 << v) bytes
 *   (i.e. ((1 << v) >> 2) instructions);  v = 7: reserved.
 *
 * e_flags & 3 == 0 predates the flag: treated as ELFv1 when there is an .opd section, or, in a file
 * without sections, when e_entry is not inside executable text (so it can only be a descriptor);
 * otherwise as ELFv2.
 */
import { EF_PPC64_ABI, PF_X, STO_PPC64_LOCAL_BIT, STT_FUNC, STT_GNU_IFUNC } from './constants.js';
import { ByteReader, hex } from './reader.js';
import { loadSegmentAt, type ProgramHeader } from './segments.js';
import { hasFileBytes, type ElfSection } from './sections.js';
import type { ElfSymbol } from './symbols.js';

export type Ppc64Abi = 'elfv1' | 'elfv2';

/** The part of a descriptor the engine uses: code address and TOC (16 of its 24 bytes). */
const DESCRIPTOR_BYTES = 16;

export function ppc64Abi(
  r: ByteReader,
  flags: number,
  sections: readonly ElfSection[],
  entry: bigint,
  loads: readonly ProgramHeader[],
): Ppc64Abi {
  const v = flags & EF_PPC64_ABI;
  if (v === 1) return 'elfv1';
  if (v === 2) return 'elfv2';
  if (v === 3) r.fail(`e_flags ${hex(flags)} has invalid ppc64 ABI version 3 (expected 1 = ELFv1 or 2 = ELFv2)`);
  if (sections.some((s) => s.name === '.opd')) return 'elfv1';
  if (sections.length === 0 && loads.length > 0) {
    const seg = loadSegmentAt(loads, entry);
    if (seg === undefined || (seg.flags & PF_X) === 0) return 'elfv1';
  }
  return 'elfv2';
}

/** ELFv2 local entry offset in bytes from st_other (see the module comment). */
export function localEntryOffset(r: ByteReader, sym: ElfSymbol): number {
  const v = sym.other >> STO_PPC64_LOCAL_BIT;
  if (v === 7) {
    r.fail(`symbol ${sym.index} '${sym.name}' in '.${sym.table}': reserved ELFv2 local entry encoding 7 in st_other ${hex(sym.other)}`);
  }
  return ((1 << v) >> 2) << 2;
}

/** ELFv2: fills localEntryOffset / localEntry on every symbol. */
export function applyLocalEntries(r: ByteReader, symbols: ElfSymbol[]): void {
  for (const s of symbols) {
    s.localEntryOffset = localEntryOffset(r, s);
    s.localEntry = s.codeAddress + BigInt(s.localEntryOffset);
  }
}

/**
 * ELFv1: function symbols whose value lies in .opd get codeAddress / toc from their descriptor.
 * Fails if a descriptor runs past the end of .opd.
 */
export function resolveOpd(r: ByteReader, sections: readonly ElfSection[], symbols: ElfSymbol[]): void {
  const opd = sections.find((s) => s.name === '.opd');
  if (opd === undefined) return;
  const isFunc = (s: ElfSymbol): boolean => s.type === STT_FUNC || s.type === STT_GNU_IFUNC;
  for (const s of symbols) {
    if (!isFunc(s) || s.shndx === 0 || s.value < opd.addr || s.value - opd.addr >= opd.size) continue;
    const rel = s.value - opd.addr;
    if (!hasFileBytes(opd)) {
      r.fail(`function '${s.name}' points into '.opd', which has no contents in the file`);
    }
    if (rel + BigInt(DESCRIPTOR_BYTES) > opd.size) {
      r.fail(
        `function '${s.name}': descriptor at ${hex(s.value)} runs past the end of '.opd' ([${hex(opd.addr)}, ${hex(opd.addr + opd.size)}))`,
      );
    }
    const off = r.range(opd.offset + rel, DESCRIPTOR_BYTES, `descriptor of '${s.name}' in '.opd'`);
    s.codeAddress = r.u64(off, `descriptor of '${s.name}'`);
    s.toc = r.u64(off + 8, `descriptor of '${s.name}'`);
    s.localEntry = s.codeAddress;
  }
}

/** ELFv1: the descriptor e_entry points at, read through the PT_LOAD segments. */
export function entryDescriptor(
  r: ByteReader,
  entry: bigint,
  loads: readonly ProgramHeader[],
): { code: bigint; toc: bigint } {
  const seg = loadSegmentAt(loads, entry);
  if (seg === undefined || entry - seg.vaddr + BigInt(DESCRIPTOR_BYTES) > seg.filesz) {
    r.fail(
      `e_entry ${hex(entry)} should point at an ELFv1 function descriptor, but no file-backed PT_LOAD holds ${DESCRIPTOR_BYTES} bytes there`,
    );
  }
  const first = seg.offset + (entry - seg.vaddr);
  const off = r.range(first, DESCRIPTOR_BYTES, 'entry point descriptor');
  return { code: r.u64(off, 'entry point descriptor'), toc: r.u64(off + 8, 'entry point descriptor') };
}
