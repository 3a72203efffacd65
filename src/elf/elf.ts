/**
 * parseElf: the whole ELF reader in one call, returning an immutable ElfFile with typed headers,
 * sections, symbols and address helpers. Every malformed input fails with
 * UniprobeError('ELF', `${file}: <defect>`); nothing reads outside the buffer.
 */
import {
  EM_PPC64,
  ET_DYN,
  ET_EXEC,
  PF_X,
  PT_GNU_STACK,
  PT_LOAD,
  PT_TLS,
  SHN_UNDEF,
  STB_GLOBAL,
  STB_WEAK,
  STT_FUNC,
  machineName,
} from './constants.js';
import { parseHeader, type ElfHeader } from './header.js';
import { applyLocalEntries, entryDescriptor, ppc64Abi, resolveOpd, type Ppc64Abi } from './ppc64.js';
import { elfError, hex, type ByteReader, type ElfClass, type Endianness } from './reader.js';
import { parseSections, type ElfSection } from './sections.js';
import {
  loadSegmentAt,
  offsetToVaddr,
  parseProgramHeaders,
  readInterp,
  vaddrToOffset,
  type ProgramHeader,
} from './segments.js';
import { parseSymbols, type ElfSymbol } from './symbols.js';
import { targetOf, type Target } from './target.js';

export interface ParseOptions {
  /**
   * Accept any e_machine / class / byte order (target is then undefined when unsupported).
   * Default false: only the engine's targets parse; others fail with a "not supported" message.
   */
  anyMachine?: boolean;
}

/** A function symbol containing an address, and where in it the address lies (kallsyms style). */
export interface SymbolLocation {
  symbol: ElfSymbol;
  /** addr - symbol.codeAddress */
  offset: bigint;
  /** symbol.size */
  size: bigint;
}

/** Largest range textBytesAt will copy in one call. */
export const MAX_TEXT_READ = 1 << 30;

export interface ElfParts {
  file: string;
  bytes: Uint8Array;
  header: ElfHeader;
  target: Target | undefined;
  phdrs: ProgramHeader[];
  sections: ElfSection[];
  symbols: ElfSymbol[];
  interp: string | undefined;
  entryCode: bigint;
  entryToc: bigint | undefined;
  ppc64Abi: Ppc64Abi | undefined;
}

function cmpBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function bindRank(s: ElfSymbol): number {
  const defined = s.shndx !== SHN_UNDEF ? 0 : 8;
  const table = s.table === 'symtab' ? 0 : 4;
  const bind = s.bind === STB_GLOBAL ? 0 : s.bind === STB_WEAK ? 1 : 2;
  return defined + table + bind;
}

export class ElfFile {
  readonly file: string;
  /** The file image. Shared, not copied: callers must not modify it. */
  readonly bytes: Uint8Array;
  readonly header: ElfHeader;
  readonly class: ElfClass;
  readonly endianness: Endianness;
  /** e_machine */
  readonly machine: number;
  readonly machineName: string;
  /** The engine target, or undefined (only possible with `anyMachine`). */
  readonly target: Target | undefined;
  /** e_type (ET_EXEC, ET_DYN, ET_REL, …) */
  readonly type: number;
  readonly entry: bigint;
  /** Where execution starts: e_entry, or for ppc64 ELFv1 the code address of its descriptor. */
  readonly entryCode: bigint;
  /** ppc64 ELFv1: TOC pointer from the entry descriptor. */
  readonly entryToc: bigint | undefined;
  /** e_flags */
  readonly flags: number;
  /** ppc64 only: which ABI the file follows. */
  readonly ppc64Abi: Ppc64Abi | undefined;
  readonly phdrs: readonly ProgramHeader[];
  readonly sections: readonly ElfSection[];
  /** .symtab symbols first, then .dynsym; the null symbol is omitted. Empty when stripped. */
  readonly symbols: readonly ElfSymbol[];
  /** PT_INTERP path, if the file asks for a dynamic loader. */
  readonly interp: string | undefined;
  readonly tls: ProgramHeader | undefined;
  readonly gnuStack: ProgramHeader | undefined;

  private readonly loads: readonly ProgramHeader[];
  private readonly byName: Map<string, ElfSymbol>;
  private readonly funcs: readonly ElfSymbol[];
  private readonly maxFuncSize: bigint;

  /** Use parseElf. */
  constructor(p: ElfParts) {
    this.file = p.file;
    this.bytes = p.bytes;
    this.header = p.header;
    this.class = p.header.class;
    this.endianness = p.header.endianness;
    this.machine = p.header.machine;
    this.machineName = machineName(p.header.machine);
    this.target = p.target;
    this.type = p.header.type;
    this.entry = p.header.entry;
    this.entryCode = p.entryCode;
    this.entryToc = p.entryToc;
    this.flags = p.header.flags;
    this.ppc64Abi = p.ppc64Abi;
    this.phdrs = Object.freeze(p.phdrs);
    this.sections = Object.freeze(p.sections);
    this.symbols = Object.freeze(p.symbols);
    this.interp = p.interp;
    this.tls = p.phdrs.find((q) => q.type === PT_TLS);
    this.gnuStack = p.phdrs.find((q) => q.type === PT_GNU_STACK);
    this.loads = Object.freeze(p.phdrs.filter((q) => q.type === PT_LOAD));

    const byName = new Map<string, ElfSymbol>();
    for (const s of p.symbols) {
      if (s.name === '') continue;
      const cur = byName.get(s.name);
      if (cur === undefined || bindRank(s) < bindRank(cur)) byName.set(s.name, s);
    }
    this.byName = byName;

    // Defined, sized functions; one entry per (name, code address), .symtab preferred.
    const seen = new Set<string>();
    const funcs: ElfSymbol[] = [];
    for (const s of p.symbols) {
      if (s.type !== STT_FUNC || s.size === 0n || s.shndx === SHN_UNDEF) continue;
      const key = `${s.name}@${s.codeAddress}`;
      if (seen.has(key)) continue;
      seen.add(key);
      funcs.push(s);
    }
    funcs.sort((a, b) => cmpBig(a.codeAddress, b.codeAddress) || bindRank(a) - bindRank(b) || (a.name < b.name ? -1 : 1));
    this.funcs = Object.freeze(funcs);
    this.maxFuncSize = funcs.reduce((m, s) => (s.size > m ? s.size : m), 0n);
  }

  /** PT_LOAD program headers, in file order. */
  loadSegments(): readonly ProgramHeader[] {
    return this.loads;
  }

  /** The PT_LOAD whose memory image contains `vaddr` (file-backed part or zero-filled tail). */
  segmentAt(vaddr: bigint): ProgramHeader | undefined {
    return loadSegmentAt(this.loads, vaddr);
  }

  /** File offset backing `vaddr`, or undefined when no PT_LOAD maps file bytes there. */
  vaddrToOffset(vaddr: bigint): bigint | undefined {
    return vaddrToOffset(this.loads, vaddr);
  }

  /** Address where a PT_LOAD maps file offset `off`, or undefined. */
  offsetToVaddr(off: bigint): bigint | undefined {
    return offsetToVaddr(this.loads, off);
  }

  sectionByName(name: string): ElfSection | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** The section containing `addr` among allocated sections with an address. */
  sectionAt(addr: bigint): ElfSection | undefined {
    return this.sections.find((s) => s.addr !== 0n && addr >= s.addr && addr - s.addr < s.size);
  }

  /** The best symbol of that name: defined over undefined, .symtab over .dynsym, global > weak > local. */
  symbolByName(name: string): ElfSymbol | undefined {
    return this.byName.get(name);
  }

  /** Every symbol with that name (locals from several files can share one). */
  symbolsByName(name: string): ElfSymbol[] {
    return this.symbols.filter((s) => s.name === name);
  }

  /** Defined STT_FUNC symbols with a size, sorted by code address. */
  functions(): readonly ElfSymbol[] {
    return this.funcs;
  }

  /**
   * The function containing `addr` (codeAddress <= addr < codeAddress + size) and the offset into
   * it, like the kernel's kallsyms_lookup_size_offset. With nested or overlapping symbols, the one
   * starting closest below `addr` wins.
   */
  symbolAt(addr: bigint): SymbolLocation | undefined {
    const f = this.funcs;
    let lo = 0;
    let hi = f.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (f[mid]!.codeAddress <= addr) lo = mid + 1;
      else hi = mid;
    }
    // f[lo-1] is the last function starting at or below addr; walk back over candidates.
    let best: ElfSymbol | undefined;
    for (let i = lo - 1; i >= 0; i--) {
      const s = f[i]!;
      if (best !== undefined && s.codeAddress < best.codeAddress) break;
      if (addr - s.codeAddress >= this.maxFuncSize) break;
      if (addr - s.codeAddress < s.size && (best === undefined || bindRank(s) < bindRank(best))) best = s;
    }
    return best === undefined ? undefined : { symbol: best, offset: addr - best.codeAddress, size: best.size };
  }

  /**
   * The memory image of [vaddr, vaddr+len) as the loader would build it: file bytes, then zeros in
   * the part of the segment beyond p_filesz. The range must lie inside one PT_LOAD. Returns a copy.
   */
  textBytesAt(vaddr: bigint, len: number): Uint8Array {
    if (!Number.isSafeInteger(len) || len < 0 || len > MAX_TEXT_READ) {
      throw elfError(this.file, `cannot read ${len} bytes at ${hex(vaddr)}: bad length`);
    }
    if (len === 0) return new Uint8Array(0);
    const seg = loadSegmentAt(this.loads, vaddr);
    const n = BigInt(len);
    if (seg === undefined || vaddr - seg.vaddr + n > seg.memsz) {
      throw elfError(this.file, `no PT_LOAD segment covers [${hex(vaddr)}, ${hex(vaddr + n)})`);
    }
    const out = new Uint8Array(len);
    const rel = vaddr - seg.vaddr;
    if (rel < seg.filesz) {
      const avail = seg.filesz - rel;
      const count = Number(avail < n ? avail : n);
      const start = Number(seg.offset + rel);
      // Segment file ranges were checked against the buffer at parse time.
      out.set(this.bytes.subarray(start, start + count), 0);
    }
    return out;
  }
}

/** Executables, and shared objects that name an entry point, must have one that can run. */
function needsEntry(h: ElfHeader): boolean {
  return h.type === ET_EXEC || (h.type === ET_DYN && h.entry !== 0n);
}

function checkEntry(r: ByteReader, h: ElfHeader, entryCode: bigint, loads: readonly ProgramHeader[], v1: boolean): void {
  if (!needsEntry(h)) return;
  const seg = loadSegmentAt(loads, entryCode);
  if (seg !== undefined && (seg.flags & PF_X) !== 0 && entryCode - seg.vaddr < seg.filesz) return;
  const what = v1
    ? `entry code address ${hex(entryCode)} (from the ELFv1 descriptor at e_entry ${hex(h.entry)})`
    : `e_entry ${hex(h.entry)}`;
  r.fail(`${what} is not inside the file-backed part of an executable PT_LOAD segment`);
}

/** Parses and validates an ELF image. `file` names it in error messages. */
export function parseElf(bytes: Uint8Array, file: string, options: ParseOptions = {}): ElfFile {
  const { header: h, reader: r } = parseHeader(bytes, file);
  let target: Target | undefined;
  if (options.anyMachine) {
    try {
      target = targetOf({ file, machine: h.machine, class: h.class, endianness: h.endianness });
    } catch {
      target = undefined;
    }
  } else {
    target = targetOf({ file, machine: h.machine, class: h.class, endianness: h.endianness });
  }

  const { sections, section0Info } = parseSections(r, h);
  const phdrs = parseProgramHeaders(r, h, section0Info);
  const loads = phdrs.filter((p) => p.type === PT_LOAD);
  const interp = readInterp(r, phdrs);
  const symbols = parseSymbols(r, h.class, sections);

  if (needsEntry(h) && loads.length === 0) r.fail('no PT_LOAD segment: nothing to load');

  let entryCode = h.entry;
  let entryToc: bigint | undefined;
  let abi: Ppc64Abi | undefined;
  if (h.machine === EM_PPC64 && h.class === 64) {
    abi = ppc64Abi(r, h.flags, sections, h.entry, loads);
    if (abi === 'elfv1') {
      resolveOpd(r, sections, symbols);
      if (needsEntry(h)) {
        const d = entryDescriptor(r, h.entry, loads);
        entryCode = d.code;
        entryToc = d.toc;
      }
    } else {
      applyLocalEntries(r, symbols);
    }
  }
  checkEntry(r, h, entryCode, loads, abi === 'elfv1');

  return new ElfFile({
    file,
    bytes,
    header: h,
    target,
    phdrs,
    sections,
    symbols,
    interp,
    entryCode,
    entryToc,
    ppc64Abi: abi,
  });
}
