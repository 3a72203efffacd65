/**
 * The transparency verifier: run a program without probes and again with a read-only uprobe at
 * every instruction of the chosen functions, and compare what a program (or its user) could see.
 *
 * Compared, in the order a divergence is reported (the earliest in the program's own time first):
 * - per thread, the sequence of text instructions executed — ground truth from a UC_HOOK_CODE
 *   over the ELF's executable segments in the unprobed run; in the probed run a probed
 *   instruction is recorded by its handler (exactly once per execution, whatever restarts or
 *   slot steps the hit needs) and every other one by the same code hook;
 * - at each probed instruction, the named registers (the kernel's names for the target) against
 *   the unprobed run's at the same point of the sequence: a broken fixup shows at the next probe;
 * - the registers at every system call entry, which include the exit call;
 * - exit statuses, stdout and stderr, and the writable memory of every process at exit;
 * - per probe, hits == executions (from the sequences).
 * Instructions the kernel refuses to probe are listed with errno and reason (from the placement
 * map, which test/placement checks against registration).
 */
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import type { Target } from '../../arch/types.js';
import { archFor } from '../../arch/index.js';
import { readElfFileSync, type ElfFile } from '../elf/index.js';
import { Machine } from '../kernel/machine.js';
import { UniprobeError } from '../errors.js';
import { SIG } from '../../arch/types.js';
import type { Task } from '../kernel/task.js';
import type { Mm } from '../mm/mm.js';
import { Uprobes } from '../uprobes/uprobes.js';
import type { UprobeConsumer } from '../uprobes/uprobe.js';
import { errnoLabel, UprobePlacer, type MapFunction } from '../placement/placement.js';
import { ensureListings } from '../placement/explain.js';
import { isLastTask, RegisterSet, RunRecord, writableMemory, type ThreadTrace } from './record.js';
import { PROT } from '../mm/vma.js';

export interface VerifyOptions {
  /** 'all' (every function) or function names. */
  probes?: 'all' | readonly string[];
  /** Instructions to leave unprobed: `SYMBOL+0xOFF`, `SYMBOL` (its entry) or an address `0x…`. */
  skip?: readonly string[];
  seed?: number;
  cpus?: number;
  /** The program's arguments (argv[1…]). */
  args?: readonly string[];
  /** Files the guest may open besides its arguments. */
  allowFiles?: string[];
  /**
   * The probed run is killed once its threads executed this many user instructions (default: 4×
   * the unprobed run's + 100,000): a broken fixup that loops ends as a divergence, not a hang.
   */
  maxSteps?: number;
  /**
   * Progress for a display: every 4,096 instructions a run executes (a verify run is one long
   * quantum, so Machine's onQuantum would not do) with the count so far, and every 256 probes
   * registered with that count and the total (registering a program glibc starts takes longest).
   */
  onProgress?: (phase: 'unprobed run' | 'registering probes' | 'probed run' | 'comparing', count: number, total?: number) => void;
}

/** The onProgress beat of one run, called at every instruction its code hook sees. */
function heartbeat(opts: VerifyOptions, phase: 'unprobed run' | 'probed run'): () => void {
  const cb = opts.onProgress;
  let n = 0;
  return cb ? () => void ((++n & 0xfff) === 0 && cb(phase, n)) : () => undefined;
}

export interface ProbeResult {
  readonly addr: bigint;
  readonly where: string;
  readonly hits: number;
  readonly executed: number;
}

export interface Refusal {
  readonly addr: bigint;
  readonly where: string;
  readonly errno: number;
  readonly reason: string;
}

/** One comparison and its outcome; `detail` says what differed first, exactly. */
export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly summary: string;
  readonly detail?: string;
}

export interface VerifyReport {
  readonly file: string;
  readonly target: Target;
  readonly seed: number;
  readonly functions: readonly string[];
  readonly probes: readonly ProbeResult[];
  readonly refused: readonly Refusal[];
  /** Instructions of the chosen functions left unprobed: data in text, --skip. */
  readonly skipped: ReadonlyArray<{ addr: bigint; where: string; why: string }>;
  readonly checks: readonly Check[];
  /** The first failing check's detail (undefined when transparent). */
  readonly firstDivergence: string | undefined;
  readonly transparent: boolean;
  /** Text instructions executed by the unprobed run (all threads). */
  readonly executed: number;
  /** Differences Linux has too (a register holding the XOL slot's address), one per occurrence. */
  readonly notes: readonly string[];
}

const hex = (a: bigint | number): string => `0x${a.toString(16)}`;

const VERIFY_QUANTUM = 1_000_000_000;

function targetOf(elf: ElfFile): Target {
  const t = elf.target;
  if (!t || !archFor(t)) throw new UniprobeError('ELF', `${elf.file}: not an ELF for a supported target (${elf.machineName})`);
  return t;
}

/** The executable PT_LOAD ranges of the program: where the code hook counts. */
function textRanges(elf: ElfFile): Array<[bigint, bigint]> {
  return elf.loadSegments().filter((s) => s.flags & 1 && s.memsz > 0n).map((s) => [s.vaddr, s.vaddr + s.memsz - 1n] as [bigint, bigint]);
}

/**
 * Address ranges outside the text ranges (inclusive bounds, as hookCode takes them): user space,
 * or with `all` the whole address space (arch trampolines may live above it).
 */
function outsideText(plan: RunPlan, all = false): Array<[bigint, bigint]> {
  const top = all ? (1n << BigInt(plan.wordSize * 8)) - 1n : plan.taskSize - 1n;
  const out: Array<[bigint, bigint]> = [];
  let lo = 1n;
  for (const [a, b] of [...plan.ranges].sort((x, y) => (x[0] < y[0] ? -1 : 1))) {
    if (a > lo) out.push([lo, a - 1n]);
    lo = b + 1n;
  }
  if (lo <= top) out.push([lo, top]);
  return out;
}

interface RunPlan {
  target: Target;
  path: string;
  argv: string[];
  opts: VerifyOptions;
  ranges: Array<[bigint, bigint]>;
  regset: RegisterSet;
  /** Addresses whose registers the unprobed run records (every probe candidate). */
  watched: Set<number>;
  /** UprobeArch.xolSlotBytes: how the XOL page is cut into slots. */
  xolSlotBytes: number;
  pageSize: number;
  taskSize: bigint;
  /** Where XolArea.create maps the area when that page is free: the last user page. */
  xolHint: bigint;
  wordSize: number;
  littleEndian: boolean;
}

function newMachine(plan: RunPlan, rec: RunRecord): Machine {
  const m = new Machine({
    target: plan.target,
    seed: plan.opts.seed ?? 1,
    cpus: plan.opts.cpus ?? 1,
    // A task runs until it blocks or exits: the probed run stops and restarts its runs far more
    // often, and with quanta of ordinary length that would change how the scheduler's random
    // stream is consumed — and with it the interleaving and what getrandom() returns.
    quantum: VERIFY_QUANTUM,
    // The machine's budget counts a run cut short as a whole quantum; the watchdog of the probed
    // run (maxSteps) is what stops a runaway guest here.
    maxInsns: Number.MAX_SAFE_INTEGER,
    allowFiles: plan.opts.allowFiles,
    stdout: (b) => void rec.stdout.push(Buffer.from(b)),
    stderr: (b) => void rec.stderr.push(Buffer.from(b)),
    report: (l) => void rec.reports.push(l),
    // Called synchronously at every system call entry, with the user registers still loaded.
    strace: () => {
      const task = m.runningCpu?.current;
      if (!task) return;
      rec.syscall(task.tid, task.syscall?.name ?? '?', plan.regset.read(task.mm));
      reseed(m, plan.opts.seed ?? 1, task.tid, rec.thread(task.tid).syscalls.length);
    },
  });
  m.taskExitHooks.push((t) => {
    if (!isLastTask(t) || rec.ends.has(t.process.pid)) return;
    rec.ends.set(t.process.pid, { pid: t.process.pid, status: -1, ...writableMemory(t.mm) });
  });
  m.mmAttachHooks.push((mm) => {
    // Run boundaries, for the repeats they cause (RunRecord.isBoundaryRepeat). The engine offers
    // no hook at run start, so its run() is wrapped — on this machine's engines only (the
    // arch's own stub runs use start() and are no run boundary of the guest).
    const engine = mm.engine;
    const run = engine.run.bind(engine);
    engine.run = (begin, budget, pcAfter) => {
      const task = m.runningCpu?.current;
      if (task) {
        rec.thread(task.tid).runPending = true;
        rec.threadPids.set(task.tid, task.process.pid);
      }
      return run(begin, budget, pcAfter);
    };
  });
  return m;
}

/**
 * The machine's random stream feeds both the scheduler and getrandom(). The probed run stops and
 * restarts far more often (and registers its probes in kernel threads first), which draws from
 * the stream at other moments; so that the program reads the same random bytes in both runs,
 * the stream is reseeded at every system call entry from (seed, thread, call number) — a
 * function of the program's own progress. (Rng keeps its state in a plain field; it has no
 * public seek.)
 */
function reseed(m: Machine, seed: number, tid: number, call: number): void {
  const h = createHash('sha256').update(`${seed}/${tid}/${call}`).digest();
  (m.rng as unknown as { state: bigint }).state = h.readBigUInt64LE(0);
}

function finish(m: Machine, rec: RunRecord, r: { status: number; reason: string }): void {
  rec.status = r.status;
  rec.reason = r.reason;
  for (const p of m.processes) {
    const end = rec.ends.get(p.pid);
    if (end) end.status = p.shellStatus;
    else rec.ends.set(p.pid, { pid: p.pid, status: p.zombie ? p.shellStatus : -1, pages: new Map(), digest: '' });
  }
}

/**
 * The unprobed run: every text instruction through the code hook, registers at the watched ones.
 * The pages the probed run's XOL areas took are reserved here too (same address, same moment
 * relative to the program's own mappings: a fixed mapping at exec or fork), so both runs have the
 * same address-space layout — Linux's XOL page shifts later mmap()s just the same, and that is a
 * property of uprobes as such, not of a placement.
 */
async function baselineRun(plan: RunPlan, xolAreas: Map<number, Set<bigint>> | 'guess'): Promise<RunRecord> {
  const rec = new RunRecord(plan.regset);
  const m = newMachine(plan, rec);
  const beat = heartbeat(plan.opts, 'unprobed run');
  const reserve = (pid: number, mm: Mm): void => {
    // The guess maps as XolArea.create does (the hint, else the highest free page); the pages
    // the probed run really used are mapped where they were.
    const guess = xolAreas === 'guess';
    for (const vaddr of guess ? [plan.xolHint] : (xolAreas.get(pid) ?? [])) {
      const at = mm.mmap({ addr: vaddr, len: BigInt(plan.pageSize), prot: PROT.READ | PROT.EXEC, fixed: !guess, shared: false, name: '[uprobes]', flags: { dontCopy: true } });
      if (at >= 0n) rec.xol(pid, at);
    }
  };
  try {
    m.mmAttachHooks.push((mm) => {
      for (const [lo, hi] of plan.ranges) {
        mm.engine.hookCode((addr) => {
          const task = m.runningCpu?.current;
          if (!task) return;
          beat();
          rec.step(task.tid, addr, plan.watched.has(Number(addr)) ? plan.regset.read(mm, addr) : undefined);
        }, lo, hi);
      }
    });
    m.mmAttachHooks.push((mm) => {
      for (const [lo, hi] of outsideText(plan, true)) {
        mm.engine.hookCode((addr, size) => {
          const task = m.runningCpu?.current;
          if (!task || m.kernel.isText(addr)) return;
          const bytes = mm.engine.tryMemRead(addr, size) ?? new Uint8Array(0);
          rec.foreignStep(task.tid, bytes, plan.regset.read(mm));
        }, lo, hi);
      }
    });
    m.forkHooks.push((_parent, child) => reserve(child.process.pid, child.mm));
    const proc = m.spawn(plan.path, plan.argv);
    reserve(proc.pid, proc.mm);
    finish(m, rec, await m.runAsync());
  } finally {
    m.close();
  }
  return rec;
}

/** The probed run: read-only handlers record the hit; the code hook records everything else. */
async function probedRun(plan: RunPlan, probes: Array<{ addr: bigint; off: bigint }>, maxSteps: number): Promise<{ rec: RunRecord; registered: Set<number>; failed: Map<bigint, number> }> {
  const rec = new RunRecord(plan.regset);
  const m = newMachine(plan, rec);
  const registered = new Set<number>();
  const failed = new Map<bigint, number>();
  let steps = 0;
  const beat = heartbeat(plan.opts, 'probed run');
  // The machine's own budget counts every run stopped early as a whole quantum (an upper bound),
  // and a probed run stops often; the watchdog counts what the program really executed.
  const watchdog = (task: Task, mm: Mm, addr: bigint): boolean => {
    beat();
    if (++steps <= maxSteps) return true;
    if (task.state !== 'dead') m.forceSignal(task, { signal: SIG.SIGKILL, reason: `verify: more than ${maxSteps} user instructions executed` }, addr);
    // Asked at every instruction until the run ends: a stop asked from a trap hook that also
    // moved the PC is dropped by Unicorn, one asked from a code hook is not.
    mm.engine.stop();
    return false;
  };
  try {
    const up = new Uprobes(m);
    m.mmAttachHooks.push((mm) => {
      for (const [lo, hi] of plan.ranges) {
        mm.engine.hookCode((addr) => {
          if (registered.has(Number(addr))) return; // the breakpoint: its handler records the hit
          const task = m.runningCpu?.current;
          if (task && watchdog(task, mm, addr)) rec.step(task.tid, addr);
        }, lo, hi);
      }
      // User code outside the text (XOL slots, mapped blobs) is not recorded but counts for the
      // watchdog, so a fixup that loops inside a slot ends too.
      for (const [lo, hi] of outsideText(plan)) {
        mm.engine.hookCode((addr) => {
          const task = m.runningCpu?.current;
          if (task) watchdog(task, mm, addr);
        }, lo, hi);
      }
    });
    m.forkHooks.push((parent, child) => void rec.parents.set(child.process.pid, parent.process.pid));
    m.spawn(plan.path, plan.argv);
    const inode = m.inodeFor(realpathSync(plan.path));
    const uc: UprobeConsumer = {
      handler: (_c, regs) => {
        const xol = up.stateIf(regs.mem)?.xol;
        if (xol) rec.xol(regs.task.process.pid, xol.vaddr);
        if (watchdog(regs.task, regs.mem, regs.ip)) rec.step(regs.task.tid, regs.ip, plan.regset.read(regs.mem));
        return 0;
      },
    };
    await m.kernelCall('verify: register', async (t) => {
      for (const [i, p] of probes.entries()) {
        if ((i & 0xff) === 0) plan.opts.onProgress?.('registering probes', i, probes.length);
        // One consumer for every probe, as a tracing tool attaches one handler many times.
        const rc = await up.register(t, inode, p.off, uc);
        if (rc === 0) registered.add(Number(p.addr));
        else failed.set(p.addr, -rc);
      }
    });
    // An area created after the last hit (a step needing it) is seen at exit.
    m.taskExitHooks.push((t) => {
      const xol = up.stateIf(t.mm)?.xol;
      if (xol) rec.xol(t.process.pid, xol.vaddr);
    });
    try {
      finish(m, rec, await m.runAsync());
    } catch (e) {
      rec.error = e instanceof Error ? e.message : String(e);
      finish(m, rec, { status: -1, reason: 'error' });
    }
  } finally {
    m.close();
  }
  return { rec, registered, failed };
}

/** Run both and compare. */
export async function verify(elfPath: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  await ensureListings();
  const elf = readElfFileSync(elfPath);
  const target = targetOf(elf);
  const arch = archFor(target)!;
  const placer = new UprobePlacer(arch, elf);
  const fns: MapFunction[] =
    opts.probes === undefined || opts.probes === 'all'
      ? placer.functions
      : opts.probes.map((n) => {
          const f = placer.functionNamed(n);
          if (!f) throw new UniprobeError('ELF', `${elfPath}: no function named ${n}`);
          return f;
        });
  const skip = new Set((opts.skip ?? []).map((x) => resolveAddr(placer, x, elfPath)));
  const candidates: Array<{ addr: bigint; off: bigint }> = [];
  const dataWords: bigint[] = [];
  for (const f of fns) {
    for (const w of placer.walk(f)) {
      const off = elf.vaddrToOffset(w.addr);
      // Data in text is not an instruction: a probe there corrupts the data (explain warns).
      if (w.data) dataWords.push(w.addr);
      else if (off !== undefined && !skip.has(w.addr)) candidates.push({ addr: w.addr, off });
    }
  }
  const plan: RunPlan = {
    wordSize: arch.wordSize,
    littleEndian: arch.endian === 'little',
    target,
    path: elfPath,
    argv: [elfPath, ...(opts.args ?? [])],
    opts,
    ranges: textRanges(elf),
    regset: new RegisterSet(arch),
    watched: new Set(candidates.map((c) => Number(c.addr))),
    xolSlotBytes: placer.up.xolSlotBytes,
    pageSize: arch.layout.pageSize,
    taskSize: arch.layout.taskSize,
    xolHint: arch.layout.taskSize - BigInt(arch.layout.pageSize),
  };
  // The unprobed run reserves the page each process's XOL area will take: first where the uprobes
  // core puts it when that page is free (XolArea.create's hint), and again with the pages the
  // probed run really used if they differ.
  let base = await baselineRun(plan, 'guess');
  const unprobedSteps = [...base.threads.values()].reduce((n, t) => n + t.addrs.length, 0);
  const { rec: probed, registered, failed } = await probedRun(plan, candidates, opts.maxSteps ?? unprobedSteps * 4 + 100_000);
  if (!sameAreas(base.xolAreas, probed.xolAreas)) base = await baselineRun(plan, probed.xolAreas);

  const refused: Refusal[] = [...failed].map(([addr, errno]) => {
    const v = placer.verdictAt(addr);
    return { addr, where: placer.where(addr), errno, reason: v.ok ? `registration failed (${errnoLabel(errno)}) though the map accepts it` : v.reason };
  });
  const notes: string[] = [];
  opts.onProgress?.('comparing', 0);
  const cmp = new Comparison(base, probed, plan, placer, registered, notes);
  const checks = cmp.run();
  const probes: ProbeResult[] = candidates
    .filter((c) => registered.has(Number(c.addr)))
    .map((c) => ({ addr: c.addr, where: placer.where(c.addr), hits: cmp.hits.get(Number(c.addr)) ?? 0, executed: cmp.executed.get(Number(c.addr)) ?? 0 }));
  checks.splice(cmp.hitsCheckAt, 0, hitsCheck(probes));
  const firstBad = checks.find((c) => !c.ok);
  return {
    file: elfPath,
    target,
    seed: opts.seed ?? 1,
    functions: fns.map((f) => f.name),
    probes,
    refused,
    skipped: [
      ...dataWords.map((a) => ({ addr: a, where: placer.where(a), why: 'not a valid instruction (data in text): a breakpoint would corrupt it' })),
      ...[...skip].map((a) => ({ addr: a, where: placer.where(a), why: 'left unprobed (--skip)' })),
    ],
    checks,
    firstDivergence: firstBad ? `${firstBad.name}: ${firstBad.detail ?? firstBad.summary}` : undefined,
    transparent: firstBad === undefined,
    executed: [...cmp.executed.values()].reduce((x, y) => x + y, 0),
    notes,
  };
}

function sameAreas(a: Map<number, Set<bigint>>, b: Map<number, Set<bigint>>): boolean {
  const key = (m: Map<number, Set<bigint>>) =>
    [...m]
      .filter(([, s]) => s.size > 0)
      .map(([pid, s]) => `${pid}:${[...s].sort().join(',')}`)
      .sort()
      .join(';');
  return key(a) === key(b);
}

/** `SYMBOL+0xOFF`, `SYMBOL` or `0xADDR` → an address of the program. */
function resolveAddr(placer: UprobePlacer, spec: string, file: string): bigint {
  const m = /^([^+\s]+?)(?:\+(0x[0-9a-f]+|\d+))?$/i.exec(spec.trim());
  if (m && /^0x[0-9a-f]+$/i.test(m[1]!) && m[2] === undefined) return BigInt(m[1]!);
  const f = m ? placer.functionNamed(m[1]!) : undefined;
  if (!m || !f) throw new UniprobeError('USAGE', `${file}: cannot resolve ${JSON.stringify(spec)} (SYMBOL, SYMBOL+0xOFF or 0xADDR)`);
  return f.start + BigInt(m[2] ?? 0);
}

function hitsCheck(probes: readonly ProbeResult[]): Check {
  const bad = probes.filter((x) => x.hits !== x.executed);
  const first = bad[0];
  return {
    name: 'hits == executed',
    ok: bad.length === 0,
    summary: `${probes.length - bad.length}/${probes.length} probes`,
    detail: first ? `${first.where} (${hex(first.addr)}): hit ${first.hits}, executed ${first.executed}${bad.length > 1 ? ` (and ${bad.length - 1} more)` : ''}` : undefined,
  };
}

function firstByteDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/**
 * Both runs side by side. Differences Linux has too are notes, not divergences: a value that is
 * the address of the slot copy (+ d) where the unprobed run has the stepped instruction's own
 * address (+ d). An instruction that records its own address (x86-64 `syscall` puts the next PC
 * in %rcx; a system call made from the slot is entered at the slot) does so at the slot, and
 * Linux's out-of-line step leaves that value as it is; a program may then copy it to memory.
 */
class Comparison {
  readonly checks: Check[] = [];
  /** Executions per address in the unprobed run (boundary repeats removed), hits in the probed run. */
  readonly executed = new Map<number, number>();
  readonly hits = new Map<number, number>();
  hitsCheckAt = 0;
  /** Text addresses the probed run stepped out of line, with the XOL pages per process. */
  private readonly slot: bigint;

  constructor(
    private readonly base: RunRecord,
    private readonly probed: RunRecord,
    private readonly plan: RunPlan,
    private readonly placer: UprobePlacer,
    private readonly registered: Set<number>,
    private readonly notes: string[],
  ) {
    this.slot = BigInt(plan.xolSlotBytes);
  }

  private where(a: number): string {
    return `${this.placer.where(BigInt(a))} (${hex(a)})`;
  }

  private mode(a: number): string {
    if (!this.registered.has(a)) return 'not probed';
    const v = this.placer.verdictAt(BigInt(a));
    return v.ok ? v.mode : 'refused';
  }

  /** Is `got` the slot copy's address + d where `want` is `stepped` + d (stepped = a probe)? */
  private slotAddress(pid: number, want: bigint, got: bigint, stepped: bigint | undefined): boolean {
    for (const area of this.probed.xolAreas.get(pid) ?? []) {
      if (got < area || got >= area + BigInt(this.plan.pageSize)) continue;
      const d = got - (area + ((got - area) / this.slot) * this.slot);
      if (stepped !== undefined) {
        if (want - stepped === d) return true;
      } else if (this.registered.has(Number(want - d))) return true;
    }
    return false;
  }

  run(): Check[] {
    if (this.probed.error) this.checks.push({ name: 'probed run', ok: false, summary: 'the probed run failed', detail: this.probed.error });
    this.sequences();
    this.hitsCheckAt = this.checks.length;
    this.exits();
    this.outputs();
    this.memory();
    return this.checks;
  }

  /**
   * Per thread, one pass over both instruction sequences, aligned (a repeat made by a run
   * boundary is skipped — on the probed side only where the code hook, not a handler, recorded
   * it, since a handler that runs twice is a real double hit), with the system calls in place:
   * the order of execution, the registers at every probe hit, the registers at every system call.
   */
  private sequences(): void {
    const { base, probed, plan } = this;
    // Divergences of different threads are ordered by when the unprobed run reached them.
    const seq = { detail: undefined as string | undefined, at: Infinity, steps: 0, regChecks: 0 };
    const sys = { detail: undefined as string | undefined, at: Infinity, calls: 0 };
    const note = (o: { detail: string | undefined; at: number }, when: number, text: string): void => {
      if (when < o.at) {
        o.at = when;
        o.detail = text;
      }
    };
    let leaks = 0;
    let unseen = 0;
    let firstLeak: string | undefined;
    const pcIds = plan.regset.pcIds ?? new Set<number>();
    const tids = [...new Set([...base.threads.keys(), ...probed.threads.keys()])].sort((x, y) => x - y);
    for (const tid of tids) {
      const b = base.threads.get(tid);
      const p = probed.threads.get(tid);
      for (const a of b?.addrs ?? []) this.executed.set(a, (this.executed.get(a) ?? 0) + 1);
      if (p) p.addrs.forEach((a, i) => p.regRow[i]! >= 0 && this.hits.set(a, (this.hits.get(a) ?? 0) + 1));
      if (!b || !p) {
        note(seq, b?.clock[0] ?? Infinity, `thread ${tid} ${b ? `never ran in the probed run${this.fate(tid)}` : 'exists only in the probed run'}`);
        continue;
      }
      const when = (i: number): number => b.clock[Math.min(i, b.clock.length - 1)] ?? Infinity;
      let sysDone = false;
      const pid = this.pidOf(tid);
      // Registers found holding a slot address, by index: [unprobed value, probed value].
      const leaked = new Map<number, [bigint, bigint]>();
      const classify = (want: BigUint64Array, got: BigUint64Array, stepped: number | undefined, skipPc: boolean): string | undefined => {
        for (let r = 0; r < want.length; r++) {
          const w = want[r]!;
          const g = got[r]!;
          if (w === g || (skipPc && pcIds.has(plan.regset.ids[r]!))) {
            leaked.delete(r);
            continue;
          }
          const known = leaked.get(r);
          if (known && known[0] === w && known[1] === g) continue;
          // The stepped instruction's own address, or (a value carried over, e.g. into a forked
          // child) any probed instruction's.
          if ((stepped !== undefined && this.slotAddress(pid, w, g, BigInt(stepped))) || this.slotAddress(pid, w, g, undefined) || this.slotAddress(this.parentPid(pid), w, g, undefined)) {
            leaked.set(r, [w, g]);
            leaks++;
            firstLeak ??= `thread ${tid}: %${plan.regset.names[r]} = ${hex(g)} (in the XOL slot) where the unprobed run has ${hex(w)}${stepped !== undefined ? `, after ${this.where(stepped)}` : ''}`;
            continue;
          }
          return `%${plan.regset.names[r]} = ${hex(g)}, expected ${hex(w)}`;
        }
        return undefined;
      };
      let i = 0;
      let j = 0;
      let sc = 0;
      let diverged = false;
      const nsc = Math.min(b.syscalls.length, p.syscalls.length);
      for (;;) {
        // System calls the unprobed thread made after i instructions.
        for (; sc < nsc && b.syscalls[sc]!.at <= i && !sysDone; sc++) {
          const bs = b.syscalls[sc]!;
          const qs = p.syscalls[sc]!;
          sys.calls++;
          if (qs.name !== bs.name) {
            note(sys, when(i), `thread ${tid}, system call #${sc}: ${qs.name}, expected ${bs.name}`);
            sysDone = true;
            break;
          }
          const d = classify(base.regs.row(bs.row), probed.regs.row(qs.row), i > 0 ? b.addrs[i - 1] : undefined, false);
          if (d) {
            note(sys, when(i), `thread ${tid}, system call #${sc} (${bs.name}): ${d}`);
            sysDone = true;
          }
        }
        if (i >= b.addrs.length || j >= p.addrs.length) break;
        const a = b.addrs[i]!;
        if (a !== p.addrs[j]) {
          if (base.isBoundaryRepeat(b, i)) {
            this.executed.set(a, this.executed.get(a)! - 1);
            i++;
            continue;
          }
          if (p.regRow[j]! < 0 && probed.isBoundaryRepeat(p, j)) {
            j++;
            continue;
          }
          // A probe hit where the unprobed run executed a copy of that very instruction outside
          // the text (an arch trampoline): the same execution, seen at two places.
          const copy = p.regRow[j]! >= 0 ? this.foreignCopy(b, i, p.addrs[j]!) : undefined;
          if (copy) {
            copy.used = true;
            const h = p.addrs[j]!;
            this.executed.set(h, (this.executed.get(h) ?? 0) + 1);
            seq.regChecks++;
            const d = classify(base.regs.row(copy.row), probed.regs.row(p.regRow[j]!), i > 0 ? b.addrs[i - 1] : undefined, true);
            if (d) {
              note(seq, when(i), `thread ${tid}, step ${i}: at ${this.where(h)} (run from a trampoline when unprobed): ${d}`);
              diverged = true;
              break;
            }
            j++;
            continue;
          }
          // A probe hit on the instruction right after the previous one, after which both runs go
          // on together: the unprobed run executed it too, but not where a hook sees it — the arch
          // layer carried it out itself (sparc64 skips the `nop` in the delay slot of a `return`
          // it emulates). Counted as executed, noted, registers not comparable.
          if (p.regRow[j]! >= 0 && i > 0 && p.addrs[j] === this.fallThrough(b.addrs[i - 1]!) && p.addrs[j + 1] === a) {
            this.executed.set(p.addrs[j]!, (this.executed.get(p.addrs[j]!) ?? 0) + 1);
            unseen++;
            j++;
            continue;
          }
          const prev = i > 0 ? `after ${this.where(b.addrs[i - 1]!)} [${this.mode(b.addrs[i - 1]!)}], ` : '';
          note(seq, when(i), `thread ${tid}, step ${i}: ${prev}executed ${this.where(p.addrs[j]!)} instead of ${this.where(a)}`);
          diverged = true;
          break;
        }
        if (this.registered.has(a) && b.regRow[i]! >= 0 && p.regRow[j]! >= 0) {
          seq.regChecks++;
          const d = classify(base.regs.row(b.regRow[i]!), probed.regs.row(p.regRow[j]!), i > 0 ? b.addrs[i - 1] : undefined, true);
          if (d) {
            const prev = i > 0 ? ` after ${this.where(b.addrs[i - 1]!)} [${this.mode(b.addrs[i - 1]!)}]` : '';
            note(seq, when(i), `thread ${tid}, step ${i}: at ${this.where(a)}${prev}: ${d}`);
            diverged = true;
            break;
          }
        }
        i++;
        j++;
      }
      seq.steps += i;
      // Trailing boundary repeats are no divergence either.
      while (i < b.addrs.length && base.isBoundaryRepeat(b, i)) this.executed.set(b.addrs[i]!, this.executed.get(b.addrs[i]!)! - 1), i++;
      while (j < p.addrs.length && p.regRow[j]! < 0 && probed.isBoundaryRepeat(p, j)) j++;
      if (!diverged && (i < b.addrs.length || j < p.addrs.length)) {
        const prev = i > 0 ? `after ${this.where(b.addrs[i - 1]!)} [${this.mode(b.addrs[i - 1]!)}], ` : '';
        const longer = i < b.addrs.length ? `the probed run stopped${this.fate(tid)}; the unprobed run went on at ${this.where(b.addrs[i]!)}` : `the probed run went on at ${this.where(p.addrs[j]!)}`;
        note(seq, when(i), `thread ${tid}, step ${i}: ${prev}${longer} (${b.addrs.length} vs ${p.addrs.length} steps)`);
        diverged = true;
      }
      if (!diverged && !sysDone && b.syscalls.length !== p.syscalls.length) note(sys, when(i), `thread ${tid}: ${p.syscalls.length} system calls, expected ${b.syscalls.length}`);
    }
    this.checks.push({ name: 'instruction sequence', ok: seq.detail === undefined, summary: `${seq.steps} steps in ${tids.length} thread(s), registers compared at ${seq.regChecks} hits`, detail: seq.detail });
    this.checks.push({ name: 'registers at system calls', ok: sys.detail === undefined, summary: `${sys.calls} calls (the exit call included)`, detail: sys.detail });
    if (unseen > 0) {
      this.notes.push(`${unseen} execution(s) of probed instructions that the unprobed run carried out without a code hook seeing them at their address (the arch layer ran them itself, e.g. the delay slot of an emulated sparc64 \`return\`); counted as executed`);
    }
    if (leaks > 0) this.notes.push(`${leaks} register value(s) held an XOL slot address where the unprobed run had the stepped instruction's (Linux does the same); first: ${firstLeak}`);
  }

  /**
   * Why a thread of the probed run ended early: its fault report, and whether the PC was in an
   * XOL area — a child forked by a system call that was being stepped out of line resumes in
   * its parent's slot, and fork does not copy the XOL area (VM_DONTCOPY; Linux re-creates it in
   * the child only for pending return probes), so the child faults there.
   */
  private fate(tid: number): string {
    const line = this.probed.reports.find((l) => l.includes(`[${tid}]:`));
    if (!line) return '';
    const pc = /pc (0x[0-9a-f]+)/.exec(line)?.[1];
    const inXol = pc !== undefined && [...this.probed.xolAreas.values()].some((set) => [...set].some((a) => BigInt(pc) >= a && BigInt(pc) < a + BigInt(this.plan.pageSize)));
    const why = inXol ? ' — the PC is in an XOL slot: a fork made from a slot leaves the child there, and fork does not copy the XOL area' : '';
    return ` (${line.replace(/^uniprobe: /, '')}${why})`;
  }

  /** The address after the instruction at `addr` (where execution falls through to). */
  private fallThrough(addr: number): number {
    const insn = this.placer.decoder.decode(BigInt(addr), this.placer.read(BigInt(addr), this.placer.decoder.maxInsnLength));
    return addr + (insn?.length ?? this.placer.up.swbp.length);
  }

  /** An unused out-of-text copy of the instruction at `addr` executed before step i of `t`. */
  private foreignCopy(t: ThreadTrace, i: number, addr: number): { bytes: Uint8Array; row: number; used: boolean } | undefined {
    const list = t.foreign.get(i);
    if (!list) return undefined;
    const w = this.placer.walk(this.placer.functionAt(BigInt(addr)) ?? { name: '', start: BigInt(addr), size: 1n }).find((x) => x.addr === BigInt(addr));
    if (!w) return undefined;
    const orig = this.placer.read(BigInt(addr), w.length);
    return list.find((c) => !c.used && c.bytes.length === orig.length && c.bytes.every((x, k) => x === orig[k]));
  }

  private parentPid(pid: number): number {
    return this.probed.parents.get(pid) ?? pid;
  }

  private pidOf(tid: number): number {
    return this.probed.threadPids.get(tid) ?? tid;
  }

  private exits(): void {
    const { base, probed } = this;
    const diffs: string[] = [];
    if (base.status !== probed.status) diffs.push(`run status ${probed.status}, expected ${base.status}`);
    for (const [pid, e] of base.ends) {
      const q = probed.ends.get(pid);
      if (!q) diffs.push(`process ${pid} missing`);
      else if (q.status !== e.status) diffs.push(`process ${pid} exited ${q.status}, expected ${e.status}`);
    }
    this.checks.push({ name: 'exit status', ok: diffs.length === 0, summary: `${base.status} (${base.ends.size} process(es))`, detail: diffs[0] });
  }

  private outputs(): void {
    const { base, probed } = this;
    for (const [name, b, p] of [
      ['stdout', base.stdoutText, probed.stdoutText],
      ['stderr', base.stderrText, probed.stderrText],
    ] as const) {
      const at = firstByteDiff(b, p);
      this.checks.push({
        name,
        ok: at < 0,
        summary: `${b.length} bytes`,
        detail: at < 0 ? undefined : `byte ${at}: ${JSON.stringify(p.subarray(at, at + 20).toString('utf8'))}, expected ${JSON.stringify(b.subarray(at, at + 20).toString('utf8'))}`,
      });
    }
    const ok = base.reports.join('\n') === probed.reports.join('\n');
    this.checks.push({ name: 'fault reports', ok, summary: `${base.reports.length} line(s)`, detail: ok ? undefined : `probed: ${probed.reports[0] ?? '(none)'}; unprobed: ${base.reports[0] ?? '(none)'}` });
  }

  private readWord(bytes: Uint8Array, at: number): bigint {
    let v = 0n;
    const w = this.plan.wordSize;
    for (let k = 0; k < w; k++) {
      const byte = BigInt(bytes[this.plan.littleEndian ? at + w - 1 - k : at + k] ?? 0);
      v = (v << 8n) | byte;
    }
    return v;
  }

  /** Writable memory at exit, page by page, word by word where bytes differ. */
  private memory(): void {
    const { base, probed } = this;
    let detail: string | undefined;
    let pages = 0;
    let leaks = 0;
    const w = this.plan.wordSize;
    for (const [pid, e] of base.ends) {
      const q = probed.ends.get(pid);
      if (!q || detail) continue;
      pages += e.pages.size;
      if (q.digest === e.digest) continue;
      for (const [addr, bytes] of e.pages) {
        const other = q.pages.get(addr);
        if (!other) {
          detail = `process ${pid}: page ${hex(addr)} not mapped at exit`;
          break;
        }
        for (let at = firstByteDiff(bytes, other); at >= 0 && at < bytes.length; ) {
          const word = at - (at % w);
          if (this.slotAddress(pid, this.readWord(bytes, word), this.readWord(other, word), undefined)) {
            leaks++;
            const next = firstByteDiff(bytes.subarray(word + w), other.subarray(word + w));
            at = next < 0 ? -1 : word + w + next;
            continue;
          }
          const a = addr + BigInt(at);
          detail = `process ${pid}: byte ${hex(a)}${dataSymbol(this.placer.elf, a)} = 0x${other[at]!.toString(16).padStart(2, '0')}, expected 0x${bytes[at]!.toString(16).padStart(2, '0')}`;
          break;
        }
        if (detail) break;
      }
      if (!detail) {
        const extra = [...q.pages.keys()].find((a) => !e.pages.has(a));
        if (extra !== undefined) detail = `process ${pid}: page ${hex(extra)} mapped writable only in the probed run`;
      }
    }
    this.checks.push({ name: 'writable memory at exit', ok: detail === undefined, summary: `${pages} pages`, detail });
    if (leaks > 0) this.notes.push(`${leaks} memory word(s) at exit held an XOL slot address where the unprobed run had a probed instruction's (a register value above, stored by the program)`);
  }
}

/** ` (sym+0xoff)` for a data address inside an object symbol of the program, else ''. */
function dataSymbol(elf: ElfFile, a: bigint): string {
  for (const s of elf.symbols) {
    if (s.size > 0n && a >= s.value && a < s.value + s.size && s.name) return ` (${s.name}+0x${(a - s.value).toString(16)})`;
  }
  return '';
}

/** The report as text lines. */
export function verifyText(r: VerifyReport): string[] {
  const out: string[] = [];
  out.push(`uniprobe verify: ${r.file} (${r.target}), seed ${r.seed}`);
  out.push(`probes: ${r.probes.length} uprobes on ${r.functions.length} function(s), ${r.refused.length} instruction(s) refused, ${r.skipped.length} not probed; ${r.executed} instructions executed unprobed`);
  for (const c of r.checks) out.push(`  ${c.ok ? 'same' : 'DIFF'}  ${c.name}: ${c.summary}${c.detail ? ` — ${c.detail}` : ''}`);
  for (const n of r.notes) out.push(`note: ${n}`);
  if (r.skipped.length > 0) {
    out.push('not probed:');
    for (const x of r.skipped) out.push(`  ${x.where} (${hex(x.addr)}): ${x.why}`);
  }
  if (r.refused.length > 0) {
    out.push('refused (the kernel would refuse these too):');
    for (const x of r.refused) out.push(`  ${x.where} (${hex(x.addr)}): -${errnoLabel(x.errno)} ${x.reason}`);
  }
  out.push(r.transparent ? 'TRANSPARENT' : `NOT TRANSPARENT — first divergence: ${r.firstDivergence}`);
  return out;
}

export function verifyJson(r: VerifyReport): string {
  return JSON.stringify(
    {
      file: r.file,
      target: r.target,
      seed: r.seed,
      transparent: r.transparent,
      firstDivergence: r.firstDivergence ?? null,
      executed: r.executed,
      functions: r.functions,
      checks: r.checks,
      notes: r.notes,
      skipped: r.skipped.map((x) => ({ addr: hex(x.addr), where: x.where, why: x.why })),
      refused: r.refused.map((x) => ({ addr: hex(x.addr), where: x.where, errno: -x.errno, errname: errnoLabel(x.errno), reason: x.reason })),
      probes: r.probes.map((p) => ({ addr: hex(p.addr), where: p.where, hits: p.hits, executed: p.executed })),
    },
    null,
    2,
  );
}
