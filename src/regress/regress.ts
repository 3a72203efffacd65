/**
 * Cross-architecture regression: the same program, the same probes, every target — and one
 * golden trace they must all reproduce.
 *
 * A suite is a directory of cases (`NAME.case.json`) and goldens (`NAME.golden.jsonl`, or
 * `NAME.TARGET.golden.jsonl` where one target legitimately differs — the compiler made another
 * choice, such as a call that is a tail call elsewhere; create the file, even empty, and
 * `--update` keeps it). A case names a program (a
 * path with `{target}` in it) and probes by symbol; the runner places uprobes (entry) and
 * uretprobes (return) through the uprobes core and records each hit as one JSON line, normalised
 * so that what must differ between instruction sets does not show:
 * - addresses become symbols: the probe is named by the case (ppc64 ELFv2 probes the local entry,
 *   8 bytes in, where direct calls land), a return site by the function it returns into (offsets
 *   are instruction-set specific), a code pointer by its function (ppc64 ELFv1 pointers, which
 *   point at descriptors, included);
 * - registers are never named: values come from argument positions ($argN, the user ABI's N-th
 *   word argument), $retval, and data symbols (`@SYM`);
 * - values are cut to the declared C type: width and sign (`s32` of a 64-bit register is its low
 *   half, sign-extended), `long`/`ulong` at the target's word size, memory read with the target's
 *   byte order, and printed in decimal (`x*` in hex);
 * - lines are ordered by process id, each process's in the order of its hits (processes run in
 *   scheduler order, which is not the program's business).
 */
import { functionProbeSite } from '../trace/symbolic.js';
import { existsSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Arch, Target } from '../../arch/types.js';
import { archFor, supportedTargets } from '../../arch/index.js';
import { readElfFileSync, type ElfFile } from '../elf/index.js';
import { Machine } from '../kernel/machine.js';
import { UniprobeError } from '../errors.js';
import { Uprobes } from '../uprobes/uprobes.js';
import type { UprobeConsumer } from '../uprobes/uprobe.js';
import type { UprobeRegs } from '../uprobes/regs.js';
import { shardOf, type Shard } from './shard.js';

/** A value to record: an argument position or the return value, optionally dereferenced. */
export interface FetchSpec {
  name: string;
  /** 1-based word argument of the user ABI at the probed function's entry. */
  arg?: number;
  /** The return value (return probes). */
  retval?: boolean;
  /** A data symbol of the program: the value stored there (tracefs' `@SYM`). */
  symbol?: string;
  /** Read memory at the value + this offset instead (a pointer argument's target). */
  deref?: number;
  /** s8 s16 s32 s64 u8 u16 u32 u64 x8 x16 x32 x64 long ulong symbol string (default long). */
  type?: string;
}

export interface ProbeSpec {
  event: string;
  /** A function of the program. */
  at: string;
  /** A return probe (uretprobe) on that function. */
  return?: boolean;
  fetch?: FetchSpec[];
}

export interface RegressCase {
  name: string;
  /** The program, relative to the suite directory; `{target}` is replaced. */
  program: string;
  args?: string[];
  /** Default: every supported target. */
  targets?: Target[];
  probes: ProbeSpec[];
}

export interface CaseResult {
  readonly case: string;
  readonly target: Target;
  readonly ok: boolean;
  /** What differed first (line number, expected, got), or why the case could not run. */
  readonly detail?: string;
  readonly lines: readonly string[];
  readonly golden: string;
  readonly updated?: boolean;
}

const TYPES: Record<string, { bytes: number | 'word'; signed: boolean; hex?: boolean }> = {
  s8: { bytes: 1, signed: true },
  s16: { bytes: 2, signed: true },
  s32: { bytes: 4, signed: true },
  s64: { bytes: 8, signed: true },
  u8: { bytes: 1, signed: false },
  u16: { bytes: 2, signed: false },
  u32: { bytes: 4, signed: false },
  u64: { bytes: 8, signed: false },
  x8: { bytes: 1, signed: false, hex: true },
  x16: { bytes: 2, signed: false, hex: true },
  x32: { bytes: 4, signed: false, hex: true },
  x64: { bytes: 8, signed: false, hex: true },
  long: { bytes: 'word', signed: true },
  ulong: { bytes: 'word', signed: false },
};

function caseError(file: string, msg: string): UniprobeError {
  return new UniprobeError('USAGE', `${file}: ${msg}`);
}

/** Check a case file's shape; the message names the file and the field. */
export function parseCase(text: string, file: string): RegressCase {
  let c: RegressCase;
  try {
    c = JSON.parse(text) as RegressCase;
  } catch (e) {
    throw caseError(file, `not JSON (${(e as Error).message})`);
  }
  if (typeof c?.name !== 'string' || !/^[\w.-]+$/.test(c.name)) throw caseError(file, '"name" must be a word (letters, digits, . _ -)');
  if (typeof c.program !== 'string') throw caseError(file, '"program" must be a path');
  if (!Array.isArray(c.probes) || c.probes.length === 0) throw caseError(file, '"probes" must be a non-empty list');
  for (const t of c.targets ?? []) if (!archFor(t)) throw caseError(file, `unknown target ${JSON.stringify(t)}`);
  for (const p of c.probes) {
    if (typeof p.event !== 'string' || typeof p.at !== 'string') throw caseError(file, 'every probe needs "event" and "at"');
    for (const f of p.fetch ?? []) {
      const type = f.type ?? 'long';
      if (type !== 'symbol' && type !== 'string' && !TYPES[type]) throw caseError(file, `${p.event}.${f.name}: unknown type ${JSON.stringify(type)}`);
      if ([f.arg !== undefined, !!f.retval, f.symbol !== undefined].filter(Boolean).length !== 1) throw caseError(file, `${p.event}.${f.name}: exactly one of "arg", "retval" and "symbol"`);
      if (f.arg !== undefined && (!Number.isInteger(f.arg) || f.arg < 1)) throw caseError(file, `${p.event}.${f.name}: "arg" counts from 1`);
      if (f.arg !== undefined && p.return) throw caseError(file, `${p.event}.${f.name}: a return probe records $retval only`);
      if (f.retval && !p.return) throw caseError(file, `${p.event}.${f.name}: $retval needs a return probe`);
    }
  }
  return c;
}

/** The cases of a suite directory, by name. */
export function loadSuite(dir: string): RegressCase[] {
  if (!existsSync(dir)) throw new UniprobeError('IO', `${dir}: No such file or directory`);
  const files = readdirSync(dir).filter((f) => f.endsWith('.case.json')).sort();
  if (files.length === 0) throw new UniprobeError('IO', `${dir}: no *.case.json files`);
  return files.map((f) => parseCase(readFileSync(join(dir, f), 'utf8'), join(dir, f)));
}

/** Symbols of the program for normalising addresses (function entries and ELFv1 descriptors). */
class Symbolizer {
  constructor(private readonly elf: ElfFile) {}

  /** `fn` or `fn+0xoff` for a code address, the function for a descriptor, else the hex. */
  name(a: bigint): string {
    const loc = this.elf.symbolAt(a);
    if (loc) return loc.offset === 0n ? loc.symbol.name : `${loc.symbol.name}+0x${loc.offset.toString(16)}`;
    const desc = this.elf.functions().find((f) => f.value === a);
    return desc ? desc.name : `0x${a.toString(16)}`;
  }

  /** The function a return address lies in (offsets differ between instruction sets). */
  fn(a: bigint): string {
    return this.elf.symbolAt(a)?.symbol.name ?? `0x${a.toString(16)}`;
  }
}

function formatValue(v: bigint, type: string, arch: Arch): string {
  const t = TYPES[type]!;
  const bits = (t.bytes === 'word' ? arch.wordSize : t.bytes) * 8;
  const x = t.signed ? BigInt.asIntN(bits, v) : BigInt.asUintN(bits, v);
  return t.hex ? `0x${x.toString(16)}` : x.toString();
}

/** Read a `type` from user memory in the target's byte order. */
function readMemory(regs: UprobeRegs, addr: bigint, type: string, arch: Arch): bigint {
  const t = TYPES[type]!;
  const n = t.bytes === 'word' ? arch.wordSize : t.bytes;
  const b = regs.mem.read(addr, n);
  let v = 0n;
  for (let k = 0; k < n; k++) v = (v << 8n) | BigInt(b[arch.endian === 'little' ? n - 1 - k : k]!);
  return v;
}

function fetch(f: FetchSpec, regs: UprobeRegs, arch: Arch, sym: Symbolizer, elf: ElfFile): string | null {
  const type = f.type ?? 'long';
  const ptr = (v: bigint) => BigInt.asUintN(arch.wordSize * 8, v);
  try {
    if (f.symbol !== undefined) {
      const at = elf.symbolByName(f.symbol)!.value + BigInt(f.deref ?? 0);
      if (type === 'string') return regs.mem.readCString(ptr(readMemory(regs, at, 'ulong', arch)));
      if (type === 'symbol') return sym.name(ptr(readMemory(regs, at, 'ulong', arch)));
      return formatValue(readMemory(regs, at, type, arch), type, arch);
    }
    let v = f.retval ? regs.returnValue() : regs.arg(f.arg! - 1);
    if (type === 'string') return regs.mem.readCString(BigInt.asUintN(arch.wordSize * 8, v) + BigInt(f.deref ?? 0));
    if (f.deref !== undefined) v = readMemory(regs, BigInt.asUintN(arch.wordSize * 8, v) + BigInt(f.deref), type === 'symbol' ? 'ulong' : type, arch);
    if (type === 'symbol') return sym.name(BigInt.asUintN(arch.wordSize * 8, v));
    return formatValue(v, type, arch);
  } catch {
    // A fetch that faults (an unmapped pointer) is recorded as null, as the trace shows (fault).
    return null;
  }
}

export interface RunCaseOptions {
  /** Directory `program` is relative to. */
  dir: string;
  seed?: number;
  /** Guest instruction budget of a run (default 100,000,000): a broken program ends, status 124. */
  maxInsns?: number;
}

/** Run one case on one target: the normalised trace, one JSON line per hit. */
export async function runCase(c: RegressCase, target: Target, opts: RunCaseOptions): Promise<string[]> {
  const arch = archFor(target);
  if (!arch) throw new UniprobeError('USAGE', `${c.name}: unknown target ${target}`);
  const path = resolve(opts.dir, c.program.replaceAll('{target}', target));
  if (!existsSync(path)) throw new UniprobeError('IO', `${c.name}: ${path}: No such file or directory`);
  const elf = readElfFileSync(path);
  if (elf.target !== target) throw new UniprobeError('ELF', `${c.name}: ${path} is for ${elf.target}, not ${target}`);
  const sym = new Symbolizer(elf);
  const events: Array<{ pid: number; seq: number; line: string }> = [];
  let seq = 0;
  const m = new Machine({ target, seed: opts.seed ?? 1, maxInsns: opts.maxInsns ?? 100_000_000, stdout: () => undefined, stderr: () => undefined, report: () => undefined });
  try {
    const up = new Uprobes(m);
    m.spawn(path, [path, ...(c.args ?? [])]);
    const inode = m.inodeFor(realpathSync(path));
    const record = (pid: number, obj: Record<string, unknown>) => events.push({ pid, seq: seq++, line: JSON.stringify(obj) });
    const consumers: Array<{ off: bigint; uc: UprobeConsumer; probe: ProbeSpec }> = [];
    for (const p of c.probes) {
      // Direct calls land on the local entry (ppc64 ELFv2: after the TOC setup).
      const site = functionProbeSite(elf, path, p.at);
      if ('error' in site) throw new UniprobeError('ELF', `${c.name}: ${site.error}`);
      const off = site.fileOffset;
      for (const f of p.fetch ?? []) {
        if (f.symbol !== undefined && !elf.symbolByName(f.symbol)) throw new UniprobeError('ELF', `${c.name}: ${path}: no symbol ${f.symbol} (${p.event}.${f.name})`);
      }
      const args = (regs: UprobeRegs) => Object.fromEntries((p.fetch ?? []).map((f) => [f.name, fetch(f, regs, arch, sym, elf)]));
      const where = (ip: bigint) => (ip === site.vaddr ? p.at : sym.name(ip));
      const uc: UprobeConsumer = p.return
        ? { retHandler: (_c, func, regs) => (record(regs.task.process.pid, { pid: regs.task.process.pid, event: p.event, func: where(func), ret_to: sym.fn(regs.ip), args: args(regs) }), 0) }
        : { handler: (_c, regs) => (record(regs.task.process.pid, { pid: regs.task.process.pid, event: p.event, at: where(regs.ip), args: args(regs) }), 0) };
      consumers.push({ off, uc, probe: p });
    }
    await m.kernelCall('regress: register', async (t) => {
      for (const { off, uc, probe } of consumers) {
        const rc = await up.register(t, inode, off, uc);
        if (rc !== 0) throw new UniprobeError('PROBE', `${c.name}: ${probe.event} on ${probe.at}: registration failed (${rc}) ${up.lastRefusal ?? ''}`.trimEnd());
      }
    });
    const r = await m.runAsync();
    events.push({ pid: 0, seq: seq++, line: JSON.stringify({ exit: r.status }) });
  } finally {
    m.close();
  }
  // By process, each in hit order; the run's exit status last.
  return events.sort((a, b) => (a.pid === 0 ? 1 : b.pid === 0 ? -1 : a.pid - b.pid || a.seq - b.seq)).map((e) => e.line);
}

/** The golden a target is checked against: its own override if the suite has one. */
export function goldenPath(dir: string, c: RegressCase, target: Target): string {
  const own = join(dir, `${c.name}.${target}.golden.jsonl`);
  return existsSync(own) ? own : join(dir, `${c.name}.golden.jsonl`);
}

function firstDifference(want: readonly string[], got: readonly string[]): string | undefined {
  const n = Math.max(want.length, got.length);
  for (let i = 0; i < n; i++) {
    if (want[i] !== got[i]) return `line ${i + 1}: expected ${want[i] ?? '(end of trace)'}, got ${got[i] ?? '(end of trace)'}`;
  }
  return undefined;
}

export interface SuiteOptions {
  /** Write the goldens from this run (the first target of each case writes the shared one). */
  update?: boolean;
  /** Only these targets (default: each case's, else every supported one). */
  targets?: readonly Target[];
  seed?: number;
  /** Guest instruction budget of each run (RunCaseOptions.maxInsns). */
  maxInsns?: number;
  /** Worker threads to run pairs on (default 1: this thread, no worker). */
  jobs?: number;
  /** Only this shard of the suite's cases (shard.ts). */
  shard?: Shard;
  /** Called before each (case, target) run: for a progress display. */
  progress?: (done: number, total: number, label: string) => void;
}

/** The (case, target) pairs a suite run covers. */
export function plan(cases: readonly RegressCase[], targets?: readonly Target[]): Array<{ c: RegressCase; target: Target }> {
  const all = supportedTargets();
  const out: Array<{ c: RegressCase; target: Target }> = [];
  for (const c of cases) for (const t of c.targets ?? all) if (all.includes(t) && (!targets || targets.includes(t))) out.push({ c, target: t });
  return out;
}

/** What running a pair gave: its trace, or why it could not run. */
export type RunOutcome = { lines: string[] } | { error: string };

/** Run one (case, target) against its golden (or, updating, write it). */
export async function checkCase(dir: string, c: RegressCase, target: Target, opts: SuiteOptions = {}): Promise<CaseResult> {
  return judge(dir, c, target, await outcomeOf(dir, c, target, opts), opts);
}

async function outcomeOf(dir: string, c: RegressCase, target: Target, opts: SuiteOptions): Promise<RunOutcome> {
  try {
    return { lines: await runCase(c, target, { dir, seed: opts.seed, maxInsns: opts.maxInsns }) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/**
 * Compare a run with its golden, or write the golden when updating. Only this step touches the
 * goldens, and a suite calls it in plan order whatever ran the pairs (pool.ts).
 */
export function judge(dir: string, c: RegressCase, target: Target, run: RunOutcome, opts: SuiteOptions = {}): CaseResult {
  if ('error' in run) return { case: c.name, target, ok: false, detail: `could not run: ${run.error}`, lines: [], golden: goldenPath(dir, c, target) };
  const lines = run.lines;
  const golden = goldenPath(dir, c, target);
  const first = (c.targets ?? supportedTargets()).find((t) => !opts.targets || opts.targets.includes(t));
  const own = golden.endsWith(`.${target}.golden.jsonl`);
  if (opts.update && (own || target === first || !existsSync(golden))) {
    writeFileSync(golden, lines.map((l) => `${l}\n`).join(''));
    return { case: c.name, target, ok: true, lines, golden, updated: true };
  }
  if (!existsSync(golden)) return { case: c.name, target, ok: false, detail: `no golden ${golden} (run with --update)`, lines, golden };
  const want = readFileSync(golden, 'utf8').split('\n').filter((l) => l !== '');
  const detail = firstDifference(want, lines);
  return { case: c.name, target, ok: detail === undefined, detail, lines, golden };
}

/**
 * Run a whole suite directory (or one shard of it). With `jobs` > 1 the pairs run on worker
 * threads; the results, and the goldens --update writes, are the same as with one.
 */
export async function runSuite(dir: string, opts: SuiteOptions = {}): Promise<CaseResult[]> {
  const cases = loadSuite(dir);
  const work = plan(opts.shard ? shardOf(cases, opts.shard) : cases, opts.targets);
  const label = (w: { c: RegressCase; target: Target }) => `${w.c.name} ${w.target}`;
  const out: CaseResult[] = [];
  if ((opts.jobs ?? 1) > 1 && work.length > 1) {
    const { runJobs } = await import('./pool.js');
    const jobs = work.map(({ c, target }, id) => ({ id, dir, c, target, seed: opts.seed, maxInsns: opts.maxInsns }));
    const runs = await runJobs(jobs, opts.jobs!, (job, done) => opts.progress?.(done, work.length, label(job)));
    for (const [i, { c, target }] of work.entries()) out.push(judge(dir, c, target, runs[i]!, opts));
  } else {
    for (const [i, w] of work.entries()) {
      opts.progress?.(i, work.length, label(w));
      out.push(await checkCase(dir, w.c, w.target, opts));
    }
  }
  opts.progress?.(work.length, work.length, 'done');
  return out;
}
