/**
 * `uniprobe explain`: the placement map of a function (or of every function) as a document that
 * the text table, the JSON output and the HTML report are rendered from.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { TARGETS, type Target } from '../../arch/types.js';
import { archFor } from '../../arch/index.js';
// The fixed-width back-ends print mnemonics only once Capstone (WebAssembly, loaded
// asynchronously) is ready; their decision logic never depends on it (arch/ppc/kprobes/disasm.ts).
// The loader is shared by every Capstone-backed back-end, so this is no per-target switch.
import { loadProbeDisassemblers } from '../../arch/index.js';
import { readElfFileSync, type ElfFile } from '../elf/index.js';
import { Machine } from '../kernel/machine.js';
import { Kprobes } from '../kprobes/kprobes.js';
import { UniprobeError } from '../errors.js';
import { COST_MODEL } from './cost.js';
import { errnoLabel, hexBytes, KprobePlacer, setListingsReady, UprobePlacer, type MapFunction, type Placement, type ProbeKind } from './placement.js';

export interface ExplainedFunction {
  readonly name: string;
  readonly start: bigint;
  readonly size: bigint;
  readonly rows: readonly Placement[];
}

export interface ExplainDoc {
  readonly target: Target;
  /** The ELF the map is for: the user program, or the guest kernel image (--kernel). */
  readonly file: string;
  readonly kind: ProbeKind;
  readonly functions: readonly ExplainedFunction[];
}

export interface ExplainOptions {
  /** Map the guest kernel of the ELF's target (kprobes) instead of the ELF itself (uprobes). */
  kernel?: boolean;
  /** Function names; none = every function. */
  symbols?: readonly string[];
  /** Called before each function is mapped (a progress display): index, count, name. */
  onProgress?: (done: number, total: number, name: string) => void;
}

let listingsReady: Promise<void> | undefined;
/** Mnemonics for every target (idempotent). A Capstone that fails to load leaves `.long` words. */
export function ensureListings(): Promise<void> {
  listingsReady ??= loadProbeDisassemblers().then(
    () => setListingsReady(true),
    () => setListingsReady(false),
  );
  return listingsReady;
}

function targetOf(elf: ElfFile): Target {
  const t = elf.target;
  if (!t || !archFor(t)) throw new UniprobeError('ELF', `${elf.file}: not an ELF for a supported target (${elf.machineName})`);
  return t;
}

function pick(fns: readonly MapFunction[], symbols: readonly string[] | undefined, byName: (n: string) => MapFunction | undefined, file: string): MapFunction[] {
  if (!symbols || symbols.length === 0) return [...fns];
  return symbols.map((s) => {
    const f = byName(s);
    if (!f) throw new UniprobeError('ELF', `${file}: no function named ${s}`);
    return f;
  });
}

/** Build the map. Reads the ELF (and, with `kernel`, the target's guest kernel image). */
export async function explain(elfPath: string, opts: ExplainOptions = {}): Promise<ExplainDoc> {
  await ensureListings();
  const elf = readElfFileSync(elfPath);
  const target = targetOf(elf);
  const arch = archFor(target)!;
  if (!opts.kernel) {
    const p = new UprobePlacer(arch, elf);
    const fns = pick(p.functions, opts.symbols, (n) => p.functionNamed(n), elfPath);
    return { target, file: elfPath, kind: 'uprobe', functions: fns.map((f, i) => (opts.onProgress?.(i, fns.length, f.name), { ...f, rows: p.map(f) })) };
  }
  const m = new Machine({ target });
  try {
    const p = new KprobePlacer(new Kprobes(m));
    // Shown relative to the working directory when it lies below it (shorter, and the same on
    // every machine that runs from a checkout).
    const rel = relative(process.cwd(), m.kernel.elf.file);
    const file = rel.startsWith('..') || isAbsolute(rel) ? m.kernel.elf.file : rel;
    const fns = pick(p.functions, opts.symbols, (n) => p.functionNamed(n), file);
    return { target, file, kind: 'kprobe', functions: fns.map((f, i) => (opts.onProgress?.(i, fns.length, f.name), { ...f, rows: p.map(f) })) };
  } finally {
    m.close();
  }
}

const hex = (a: bigint): string => `0x${a.toString(16)}`;

/**
 * The same program for every target, found by convention: a path with a directory named after
 * the ELF's target (fixtures/x86_64/fib) has siblings where that directory is named after another
 * target (fixtures/ppc64/fib). Only the ELF itself when there is no such directory.
 */
export function siblingPrograms(elfPath: string): Map<Target, string> {
  const target = targetOf(readElfFileSync(elfPath));
  const parts = elfPath.split('/');
  const at = parts.lastIndexOf(target, parts.length - 2);
  const out = new Map<Target, string>();
  for (const t of TARGETS) {
    if (t === target) out.set(t, elfPath);
    else if (at >= 0) {
      const p = [...parts.slice(0, at), t, ...parts.slice(at + 1)].join('/');
      if (archFor(t) && existsSync(p)) out.set(t, p);
    }
  }
  return out;
}

/** The label of a row's placement column: the mode, or `refused`. */
export function modeLabel(r: Placement): string {
  return r.verdict.ok ? r.verdict.mode : 'refused';
}

// --- JSON ------------------------------------------------------------------------------------

/** One JSON-safe object per row (addresses and offsets as hex strings, so 64-bit ones survive). */
export function rowJson(r: Placement): Record<string, unknown> {
  const v = r.verdict;
  const base: Record<string, unknown> = {
    addr: hex(r.addr),
    where: r.where,
    ...(r.fileOffset !== undefined ? { fileOffset: hex(r.fileOffset) } : {}),
    bytes: hexBytes(r.bytes),
    insn: r.text,
    probe: r.kind,
    allowed: v.ok,
    ...(r.data ? { data: true } : {}),
  };
  if (v.ok) {
    Object.assign(base, {
      mode: v.mode,
      ...(v.trapMode && v.trapMode !== v.mode ? { trapMode: v.trapMode } : {}),
      ...(v.notOptimized ? { notOptimized: { errno: -v.notOptimized.errno, errname: errnoLabel(v.notOptimized.errno), reason: v.notOptimized.reason } } : {}),
      ...(v.modeWithPostHandler && v.modeWithPostHandler !== v.mode ? { modeWithPostHandler: v.modeWithPostHandler } : {}),
      slot: v.slot ? hexBytes(v.slot) : null,
      cost: { slotInsns: v.cost.slotInsns, crossings: v.cost.crossings },
    });
  } else {
    Object.assign(base, { errno: -v.errno, errname: errnoLabel(v.errno), reason: v.reason });
  }
  if (r.warning) base.warning = r.warning;
  return base;
}

export function explainJson(doc: ExplainDoc): string {
  return JSON.stringify(
    {
      target: doc.target,
      file: doc.file,
      probe: doc.kind,
      costModel: COST_MODEL,
      functions: doc.functions.map((f) => ({ name: f.name, addr: hex(f.start), size: Number(f.size), insns: f.rows.map(rowJson) })),
    },
    null,
    2,
  );
}

// --- text ------------------------------------------------------------------------------------

/** Tally of modes/refusals, for the summary line. */
export function summarize(rows: readonly Placement[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of rows) m.set(modeLabel(r), (m.get(modeLabel(r)) ?? 0) + 1);
  return m;
}

function table(head: string[], rows: string[][]): string[] {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(w[i]!))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)];
}

/** The placement column: the mode, and what it becomes before optimization / with a post handler. */
function modeText(v: Extract<Placement['verdict'], { ok: true }>): string {
  const notes: string[] = [];
  if (v.mode === 'optimize' && v.trapMode) notes.push(`${v.trapMode} until optimized`);
  if (v.modeWithPostHandler && v.modeWithPostHandler !== (v.trapMode ?? v.mode)) notes.push(`${v.modeWithPostHandler} w/ post`);
  else if (v.mode === 'optimize' && v.modeWithPostHandler) notes.push(`${v.modeWithPostHandler} w/ post`);
  return notes.length ? `${v.mode} (${notes.join(', ')})` : v.mode;
}

/** The text table: one block per function, a summary line each. */
export function explainText(doc: ExplainDoc): string[] {
  const out: string[] = [];
  const what = doc.kind === 'uprobe' ? 'uprobes' : 'kprobes (guest kernel)';
  out.push(`# ${what} on ${doc.file} (${doc.target}); cost = host crossings / guest instructions in the slot per hit`);
  for (const f of doc.functions) {
    out.push('', `${f.name} @ ${hex(f.start)}, ${f.size} bytes`);
    const rows = f.rows.map((r) => {
      const v = r.verdict;
      const mode = v.ok ? modeText(v) : `refused -${errnoLabel(v.errno)}`;
      const cost = v.ok ? `${v.cost.crossings} / ${v.cost.slotInsns}` : '-';
      const slot = v.ok && v.slot ? `slot: ${hexBytes(v.slot)}` : '';
      const notOpt = v.ok && v.notOptimized ? `not optimized (-${errnoLabel(v.notOptimized.errno)}): ${v.notOptimized.reason}` : '';
      const detail = v.ok ? [slot, notOpt].filter(Boolean).join('; ') : v.reason;
      return [hex(r.addr), r.where, hexBytes(r.bytes), r.text, mode, cost, r.warning ? `${detail}${detail ? '; ' : ''}warning: ${r.warning}` : detail];
    });
    out.push(...table(['ADDRESS', 'WHERE', 'BYTES', 'INSTRUCTION', 'PLACEMENT', 'COST', 'SLOT / REASON'], rows));
    const s = [...summarize(f.rows)].map(([k, n]) => `${n} ${k}`).join(', ');
    out.push(`  ${f.rows.length} instructions: ${s}`);
  }
  return out;
}
