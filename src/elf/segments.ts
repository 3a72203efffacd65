/**
 * Program headers (Elf32_Phdr / Elf64_Phdr), their validation, and the vaddr <-> file offset
 * mapping that PT_LOAD segments define.
 */
import { PF_R, PF_W, PF_X, PHDR_SIZE, PN_XNUM, PT_INTERP, PT_LOAD, PT_TLS, segmentTypeName } from './constants.js';
import type { ElfHeader } from './header.js';
import { ByteReader, hex } from './reader.js';

export interface ProgramHeader {
  index: number;
  type: number;
  flags: number;
  offset: bigint;
  vaddr: bigint;
  paddr: bigint;
  filesz: bigint;
  memsz: bigint;
  align: bigint;
}

/** Upper bound on program header count; anything bigger is a corrupt header. */
export const MAX_PHDRS = 1 << 16;

function readPhdr(r: ByteReader, off: number, cls: 32 | 64, index: number): ProgramHeader {
  const what = `program header ${index}`;
  if (cls === 64) {
    return {
      index,
      type: r.u32(off, what),
      flags: r.u32(off + 4, what),
      offset: r.u64(off + 8, what),
      vaddr: r.u64(off + 16, what),
      paddr: r.u64(off + 24, what),
      filesz: r.u64(off + 32, what),
      memsz: r.u64(off + 40, what),
      align: r.u64(off + 48, what),
    };
  }
  return {
    index,
    type: r.u32(off, what),
    offset: BigInt(r.u32(off + 4, what)),
    vaddr: BigInt(r.u32(off + 8, what)),
    paddr: BigInt(r.u32(off + 12, what)),
    filesz: BigInt(r.u32(off + 16, what)),
    memsz: BigInt(r.u32(off + 20, what)),
    flags: r.u32(off + 24, what),
    align: BigInt(r.u32(off + 28, what)),
  };
}

export function describeSegment(p: ProgramHeader): string {
  return `program header ${p.index} (${segmentTypeName(p.type)})`;
}

/** "R E", "RW " — readelf's spelling of p_flags. */
export function segmentFlagsString(flags: number): string {
  return `${flags & PF_R ? 'R' : ' '}${flags & PF_W ? 'W' : ' '}${flags & PF_X ? 'E' : ' '}`;
}

/**
 * Reads and validates the program header table. `section0Info` is section 0's sh_info, which holds
 * the real count when e_phnum is PN_XNUM.
 */
export function parseProgramHeaders(r: ByteReader, h: ElfHeader, section0Info: number | undefined): ProgramHeader[] {
  const cls = h.class;
  const count = h.phnum === PN_XNUM && section0Info !== undefined ? section0Info : h.phnum;
  if (count === 0) return [];
  if (count > MAX_PHDRS) {
    r.fail(`absurd program header count ${count} (from section 0's sh_info)`);
  }
  const entsize = PHDR_SIZE[cls];
  if (h.phentsize !== entsize) {
    r.fail(`e_phentsize is ${h.phentsize}, but ELF${cls} program headers are ${entsize} bytes`);
  }
  const tableBytes = BigInt(count) * BigInt(entsize);
  if (!r.contains(h.phoff, tableBytes)) {
    r.fail(
      `program header table (e_phoff ${hex(h.phoff)}, ${count} entries of ${entsize} bytes) extends past the end of the file (${r.length} bytes)`,
    );
  }
  const base = Number(h.phoff);
  const phdrs: ProgramHeader[] = [];
  for (let i = 0; i < count; i++) phdrs.push(readPhdr(r, base + i * entsize, cls, i));
  validateSegments(r, phdrs, cls);
  return phdrs;
}

function isPowerOfTwo(v: bigint): boolean {
  return v > 0n && (v & (v - 1n)) === 0n;
}

function validateSegments(r: ByteReader, phdrs: ProgramHeader[], cls: 32 | 64): void {
  const addrLimit = 1n << BigInt(cls);
  for (const p of phdrs) {
    const what = describeSegment(p);
    if (p.filesz > 0n && !r.contains(p.offset, p.filesz)) {
      r.fail(
        `${what}: file range (offset ${hex(p.offset)}, size ${hex(p.filesz)}) extends past the end of the file (${r.length} bytes)`,
      );
    }
    if (p.type !== PT_LOAD && p.type !== PT_TLS) continue;
    if (p.filesz > p.memsz) {
      r.fail(`${what}: p_filesz ${hex(p.filesz)} is larger than p_memsz ${hex(p.memsz)}`);
    }
    if (p.vaddr + p.memsz > addrLimit) {
      r.fail(`${what}: ${hex(p.vaddr)} + ${hex(p.memsz)} runs past the end of the ${cls}-bit address space`);
    }
    if (p.type !== PT_LOAD || p.align <= 1n) continue;
    if (!isPowerOfTwo(p.align)) {
      r.fail(`${what}: p_align ${hex(p.align)} is not a power of two`);
    }
    if ((p.vaddr - p.offset) % p.align !== 0n) {
      r.fail(
        `${what}: p_vaddr ${hex(p.vaddr)} and p_offset ${hex(p.offset)} are not congruent modulo p_align ${hex(p.align)}`,
      );
    }
  }

  const loads = phdrs.filter((p) => p.type === PT_LOAD && p.memsz > 0n).sort((a, b) => cmp(a.vaddr, b.vaddr));
  for (let i = 1; i < loads.length; i++) {
    const a = loads[i - 1]!;
    const b = loads[i]!;
    if (a.vaddr + a.memsz > b.vaddr) {
      r.fail(
        `PT_LOAD segments ${a.index} and ${b.index} overlap ([${hex(a.vaddr)}, ${hex(a.vaddr + a.memsz)}) and [${hex(b.vaddr)}, ${hex(b.vaddr + b.memsz)}))`,
      );
    }
  }
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The PT_INTERP path, or undefined if there is none; fails on an unterminated string. */
export function readInterp(r: ByteReader, phdrs: readonly ProgramHeader[]): string | undefined {
  const p = phdrs.find((q) => q.type === PT_INTERP);
  if (p === undefined) return undefined;
  const bytes = r.slice(p.offset, p.filesz, describeSegment(p));
  const nul = bytes.indexOf(0);
  if (nul < 0) r.fail(`${describeSegment(p)}: interpreter path is not NUL-terminated`);
  return new TextDecoder().decode(bytes.subarray(0, nul));
}

/** File offset backing `vaddr` (file-backed part of a PT_LOAD only), else undefined. */
export function vaddrToOffset(loads: readonly ProgramHeader[], vaddr: bigint): bigint | undefined {
  for (const p of loads) {
    if (vaddr >= p.vaddr && vaddr - p.vaddr < p.filesz) return p.offset + (vaddr - p.vaddr);
  }
  return undefined;
}

/** Virtual address at which file offset `off` is mapped by a PT_LOAD, else undefined. */
export function offsetToVaddr(loads: readonly ProgramHeader[], off: bigint): bigint | undefined {
  for (const p of loads) {
    if (off >= p.offset && off - p.offset < p.filesz) return p.vaddr + (off - p.offset);
  }
  return undefined;
}

/** The PT_LOAD whose memory image [vaddr, vaddr+memsz) contains `vaddr`. */
export function loadSegmentAt(loads: readonly ProgramHeader[], vaddr: bigint): ProgramHeader | undefined {
  return loads.find((p) => vaddr >= p.vaddr && vaddr - p.vaddr < p.memsz);
}
