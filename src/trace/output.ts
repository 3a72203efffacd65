/**
 * Trace output: one record per probe hit, printed as ftrace's text line or as one JSON object.
 *
 * Text (the `trace` file with the irq-info option off):
 *   `<comm %16s>-<tid %-7d> [<cpu %03d>] <secs %5d>.<usecs %06d>: <EVENT>: (<where>) name=value …`
 * where `<where>` is `sym+0xoff/0xsize` for a kprobe, `caller+0xoff/0xsize <- func` for a
 * kretprobe, `0x<ip>` for a uprobe and `0x<ret> <- 0x<func>` for a uretprobe (reference §6).
 *
 * JSON (DESIGN.md): `{"event":"GRP/NAME","kind":"p"|"r","pid":…,"tid":…,"cpu":…,"comm":…,
 * "ip":"0x…","args":{…}}`; for return probes `ip` is the address the function returned to (the
 * kernel's regs->ip in a kretprobe handler). Argument values: see formatValueJson.
 *
 * Timestamps are the guest's instruction clock, not the host's, so traces diff cleanly: one guest
 * instruction counts as one nanosecond, and a hit is stamped with the instructions the scheduler
 * had run on all vCPUs before the quantum the hit happened in (Unicorn reports no position inside
 * a run). Hits within one quantum (10,000–30,000 instructions) share a stamp; the order of the
 * lines is the order of the hits.
 */
import type { ProbeFlavor } from './definition.js';
import { formatValueJson, formatValueText, type ArgValue, type JsonArgValue } from './fetch-eval.js';
import type { FetchType } from './types.js';

export interface TraceArg {
  readonly name: string;
  readonly type: FetchType;
  readonly value: ArgValue;
}

export interface TraceRecord {
  readonly group: string;
  readonly event: string;
  readonly kind: 'p' | 'r';
  readonly flavor: ProbeFlavor;
  /** Thread-group id (getpid) and thread id (what ftrace prints after the comm). */
  readonly pid: number;
  readonly tid: number;
  readonly cpu: number;
  readonly comm: string;
  /** Entry probes: the probed address. Return probes: where the function returned to. */
  readonly ip: bigint;
  /** Return probes: the probed function's address. */
  readonly func?: bigint;
  /** Guest instruction clock (nanoseconds at one instruction per ns). */
  readonly timestamp: number;
  readonly args: readonly TraceArg[];
}

/** How kernel addresses are named in text output: `%pS` and `%ps`. */
export interface Symbolizer {
  /** `sym+0xoff/0xsize` or `0x…`. */
  symbol(addr: bigint): string;
  /** The function's name or `0x…`. */
  functionName(addr: bigint): string;
}

const plainSymbolizer: Symbolizer = {
  symbol: (a) => `0x${a.toString(16)}`,
  functionName: (a) => `0x${a.toString(16)}`,
};

/** ftrace's `%5lu.%06lu` of a nanosecond clock. */
export function formatTimestamp(ns: number): string {
  const us = Math.floor(ns / 1000);
  const secs = Math.floor(us / 1e6);
  return `${String(secs).padStart(5, ' ')}.${String(us % 1e6).padStart(6, '0')}`;
}

function where(r: TraceRecord, sym: Symbolizer): string {
  const hex = (a: bigint) => `0x${a.toString(16)}`;
  if (r.flavor === 'kprobe') {
    return r.kind === 'r' && r.func !== undefined ? `${sym.symbol(r.ip)} <- ${sym.functionName(r.func)}` : sym.symbol(r.ip);
  }
  return r.kind === 'r' && r.func !== undefined ? `${hex(r.ip)} <- ${hex(r.func)}` : hex(r.ip);
}

/** One line of the `trace` file (no newline). */
export function formatTraceText(r: TraceRecord, sym: Symbolizer = plainSymbolizer): string {
  const head = `${r.comm.padStart(16)}-${String(r.tid).padEnd(7)} [${String(r.cpu).padStart(3, '0')}] ${formatTimestamp(r.timestamp)}: ${r.event}: (${where(r, sym)})`;
  const args = r.args.map((a) => ` ${a.name}=${formatValueText(a.type, a.value, (v) => sym.symbol(v))}`).join('');
  return head + args;
}

/** One JSON line (no newline), keys in DESIGN.md's order. */
export function formatTraceJson(r: TraceRecord, sym: Symbolizer = plainSymbolizer): string {
  const args: Record<string, JsonArgValue> = {};
  for (const a of r.args) args[a.name] = formatValueJson(a.type, a.value, (v) => sym.symbol(v));
  return JSON.stringify({
    event: `${r.group}/${r.event}`,
    kind: r.kind,
    pid: r.pid,
    tid: r.tid,
    cpu: r.cpu,
    comm: r.comm,
    ip: `0x${r.ip.toString(16)}`,
    args,
  });
}

export type TraceFormat = 'text' | 'json';

export function formatTraceRecord(r: TraceRecord, format: TraceFormat, sym?: Symbolizer): string {
  return format === 'json' ? formatTraceJson(r, sym) : formatTraceText(r, sym);
}

export interface ProfileRow {
  readonly group: string;
  readonly event: string;
  readonly flavor: ProbeFlavor;
  /** Uprobes: the probed file (uprobe_profile's first column). */
  readonly path?: string;
  readonly hits: number;
  readonly misses: number;
}

/**
 * `--stats`: kprobe_profile's `  EVENT NHIT NMISSED` columns (%-44s %15lu %15lu) per probe point,
 * uprobe_profile's `  PATH EVENT NHIT` for uprobes — with a header, since both files are printed
 * together — or one JSON object per probe point.
 */
export function formatProfile(rows: readonly ProfileRow[], format: TraceFormat): string[] {
  if (format === 'json') {
    return rows.map((r) => JSON.stringify({ stats: `${r.group}/${r.event}`, kind: r.flavor, hits: r.hits, misses: r.misses }));
  }
  const out: string[] = [];
  const k = rows.filter((r) => r.flavor === 'kprobe');
  const u = rows.filter((r) => r.flavor === 'uprobe');
  if (k.length) {
    out.push('# kprobe_profile: event, hits, misses');
    for (const r of k) out.push(`  ${r.event.padEnd(44)} ${String(r.hits).padStart(15)} ${String(r.misses).padStart(15)}`);
  }
  if (u.length) {
    out.push('# uprobe_profile: file, event, hits');
    for (const r of u) out.push(`  ${r.path ?? ''} ${r.event.padEnd(44)} ${String(r.hits).padStart(15)}`);
  }
  return out;
}
