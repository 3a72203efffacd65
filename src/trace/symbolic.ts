/**
 * Uprobes by symbol: `PATH:SYMBOL[+OFFS][%return]`, the way perf probe (`-x BIN fib`) and
 * bpftrace (`uprobe:BIN:fib`) take them.
 *
 * The kernel's uprobe_events takes only `PATH:OFFSET` (a file offset); perf probe resolves a
 * symbol to that offset before it writes the line. This module is that tool layer: it rewrites a
 * symbolic uprobe definition into the kernel's numeric form, which the faithful parser
 * (parse.ts) then checks exactly as the kernel would. Resolution follows perf probe:
 * - the function's code address: through the `.opd` descriptor on ppc64 ELFv1, and the local
 *   entry point on ppc64 ELFv2 (where direct calls land, past the TOC set-up);
 * - plus OFFS bytes, then the file offset of the PT_LOAD segment that maps that address.
 * An unnamed event gets a name from the symbol (`p_<file>_<symbol>[_<offs>]`, in group
 * `uprobes`), where the kernel would have used the hex offset.
 */
import { basename } from 'node:path';
import { archFor } from '../../arch/index.js';
import type { ElfFile } from '../elf/index.js';
import { STT_FUNC, STT_GNU_IFUNC } from '../elf/constants.js';
import { splitCommand, tokenPosition } from './command.js';
import { errnoOf, type ProbeError } from './errors.js';

export interface SymbolicUprobe {
  /** The definition in the kernel's numeric form. */
  line: string;
  /** What was resolved (undefined: the line was not a symbolic uprobe and is unchanged). */
  resolved?: { path: string; symbol: string; offset: bigint; vaddr: bigint; fileOffset: bigint };
}

const IDENT = /^[A-Za-z_.$][A-Za-z0-9_.$@]*$/;

/**
 * Rewrite `line` if it is a symbolic uprobe; otherwise return it unchanged (the kernel parser
 * decides what it is). `loadElf` reads the file named in the definition (undefined when it cannot:
 * the numeric line then fails the kernel's own FILE_NOT_FOUND check).
 */
export function resolveSymbolicUprobe(line: string, loadElf: (path: string) => ElfFile | undefined): SymbolicUprobe | ProbeError {
  const { tokens, command } = splitCommand(line);
  const head = tokens[0];
  const place = tokens[1];
  if (head === undefined || place === undefined || !/^[pr]/.test(head)) return { line };
  if (!place.includes('/')) return { line };
  const colon = place.lastIndexOf(':');
  if (colon < 0) return { line };
  const spec = place.slice(colon + 1);
  if (spec === '' || /^[0-9]/.test(spec)) return { line };
  const path = place.slice(0, colon);
  const m = /^([^+%]+)(?:\+(0x[0-9a-fA-F]+|[0-9]+))?(%return)?$/.exec(spec);
  const at = (offset: number): number => tokenPosition(tokens, 1, offset);
  const fail = (message: string, offset: number): ProbeError => ({
    code: 'BAD_PROBE_ADDR',
    message,
    position: at(offset),
    command,
    errno: errnoOf('BAD_PROBE_ADDR'),
    logged: false,
    subsystem: 'trace_uprobe',
  });
  if (!m || !IDENT.test(m[1]!)) return fail(`Invalid symbol in PATH:SYMBOL[+OFFS]`, colon + 1);
  const symbol = m[1]!;
  const offset = m[2] === undefined ? 0n : BigInt(m[2]);
  const elf = loadElf(path);
  if (!elf) return { line }; // the kernel parser reports the missing or unreadable file
  const site = functionProbeSite(elf, path, symbol, offset);
  if ('error' in site) return fail(site.error, colon + 1);
  const { vaddr, fileOffset } = site;
  let newHead = head;
  if (!head.includes(':')) {
    // p, r or rN (maxactive, ignored by uprobes): name the event after the symbol.
    const file = basename(path).replace(/[^A-Za-z0-9_]/g, '_');
    const name = `${head[0]}_${file}_${symbol.replace(/[^A-Za-z0-9_]/g, '_')}${offset ? `_${offset}` : ''}`;
    newHead = `${head}:${name}`;
  }
  const numeric = `${path}:0x${fileOffset.toString(16)}${m[3] ?? ''}`;
  return { line: [newHead, numeric, ...tokens.slice(2)].join(' '), resolved: { path, symbol, offset, vaddr, fileOffset } };
}

/**
 * Where a uprobe on `symbol`+`offset` of a program goes: the address (ppc64 ELFv1 through the
 * descriptor, ELFv2 at the local entry, as perf probe places it) and its file offset; or why not.
 * Shared by the `-e` front end and `uniprobe regress`.
 */
export function functionProbeSite(elf: ElfFile, path: string, symbol: string, offset = 0n): { vaddr: bigint; fileOffset: bigint } | { error: string } {
  // Several local functions may share a name (one per source file), as perf probe finds too.
  const funcs = elf.symbolsByName(symbol).filter((s) => (s.type === STT_FUNC || s.type === STT_GNU_IFUNC) && s.shndx !== 0);
  if (funcs.length === 0) return { error: `'${symbol}' ${elf.symbolByName(symbol) ? 'is not a function' : 'is not a symbol'} of ${path}` };
  const sym = funcs[0]!;
  if (funcs.some((f) => f.codeAddress !== sym.codeAddress)) return { error: `'${symbol}' names ${funcs.length} functions in ${path}; use PATH:OFFSET` };
  // The arch's probe entry (ppc64 ELFv2: the local entry, as perf probe places it).
  const arch = elf.target ? archFor(elf.target) : undefined;
  const entry = arch ? arch.functionEntry(sym).probe : sym.codeAddress;
  if (sym.size > 0n && entry - sym.codeAddress + offset >= sym.size) return { error: `${symbol}+${offset} is beyond the end of '${symbol}' (${sym.size} bytes)` };
  const vaddr = entry + offset;
  const fileOffset = elf.vaddrToOffset(vaddr);
  if (fileOffset === undefined) return { error: `${symbol} (0x${vaddr.toString(16)}) is not backed by the file` };
  return { vaddr, fileOffset };
}

/** Is this a ProbeError (rather than a rewritten line)? */
export function isProbeError(r: SymbolicUprobe | ProbeError): r is ProbeError {
  return 'code' in r;
}
