/**
 * The verifier's two runs of the program on fresh machines: the unprobed run, which records
 * every text instruction through a code hook (registers at each probe candidate), and the
 * probed run, with a read-only uprobe on every candidate whose handler records the hit. Both
 * runs see the same random stream at the same points of the program's progress (`reseed`) and
 * the same address-space layout (the XOL pages reserved in the unprobed run too).
 */
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import type { Target } from '../../arch/types.js';
import { SIG } from '../../arch/types.js';
import type { ElfFile } from '../elf/index.js';
import { Machine } from '../kernel/machine.js';
import type { Task } from '../kernel/task.js';
import type { Mm } from '../mm/mm.js';
import { PROT } from '../mm/vma.js';
import { Uprobes } from '../uprobes/uprobes.js';
import type { UprobeConsumer } from '../uprobes/uprobe.js';
import { isLastTask, RunRecord, writableMemory, type RegisterSet } from './record.js';
import type { VerifyOptions } from './types.js';

const VERIFY_QUANTUM = 1_000_000_000;


/** The executable PT_LOAD ranges of the program: where the code hook counts. */
export function textRanges(elf: ElfFile): Array<[bigint, bigint]> {
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

export interface RunPlan {
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
    // An instruction the CPU runs again after a transparently served trap is one step.
    engine.retryHooks.push((pc) => {
      const task = m.runningCpu?.current;
      if (task) rec.unstep(task.tid, pc);
    });
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
/** The onProgress beat of one run, called at every instruction its code hook sees. */
function heartbeat(opts: VerifyOptions, phase: 'unprobed run' | 'probed run'): () => void {
  const cb = opts.onProgress;
  let n = 0;
  return cb ? () => void ((++n & 0xfff) === 0 && cb(phase, n)) : () => undefined;
}

export async function baselineRun(plan: RunPlan, xolAreas: Map<number, Set<bigint>> | 'guess'): Promise<RunRecord> {
  const beat = heartbeat(plan.opts, 'unprobed run');
  const rec = new RunRecord(plan.regset);
  const m = newMachine(plan, rec);
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
export async function probedRun(plan: RunPlan, probes: Array<{ addr: bigint; off: bigint }>, maxSteps: number): Promise<{ rec: RunRecord; registered: Set<number>; failed: Map<bigint, number> }> {
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
