/**
 * Differential harness for the uprobe back-ends (arch/<family>/uprobes): run a snippet once
 * natively and once with the probed instruction replaced by the swbp, each on a fresh engine
 * seeded identically, and compare every register the arch snapshots, every byte of memory, where
 * and how the run ended, and how often the probed address ran.
 *
 * The probe path is the smallest stand-in for the generic core's hit flow (Linux's handle_swbp and
 * handle_singlestep): at the swbp the IP goes back to the probe address, then `emulate`, or
 * `preXol` and a jump to the slot — which lives on its own page far from the text (x86-64: more
 * than 2 GiB away, so a RIP-relative copy cannot reach its target unless it is rewritten) — and at
 * the slot's step trap `postXol`, each with the trap's `pcAfter`. A fault while the copy runs is
 * `abortXol` and reported at the probe address, as the kernel reports it after abort_xol. The
 * probe may fire more than once (a loop through it, an x86 `rep` iteration, a restart), and more
 * addresses may be probed at once (`extraProbes`, each with its own slot).
 */
import '../../arch/decoders-ready.js'; // the back-ends decode with Capstone
import { pooledEngine, releaseEngine } from './engine-pool.js';

/**
 * The differential runs execute a few hundred instructions per engine, thousands of engines per
 * file: a 1 MiB translation buffer instead of 32 MiB (Unicorn clears the whole buffer when it
 * sets it up and at every flush).
 */
const SMALL_ENGINE = { translationBufferBytes: 1 << 20 };
import { Buffer } from 'node:buffer';
import { readElfFileSync } from '../../src/elf/index.js';
import { UniprobeError } from '../../src/errors.js';
import { Engine, UC_PROT } from '../../src/emu/unicorn.js';
import { countExecutions } from './executions.js';
import type { Arch, GuestMemoryAccess, TrapSink } from '../../arch/types.js';
import { isRefusal, type PreparedUprobe, type ProbeCpu, type ProbeRefusal, type UprobeArch } from '../../arch/probes.js';

export interface Region {
  base: bigint;
  bytes: Uint8Array;
}

export interface UprobeScenario {
  arch: Arch;
  ua: UprobeArch;
  /** Memory both runs map (all permissions, page-rounded) with its initial content. */
  regions: Region[];
  /** The XOL slot; its page is mapped in the probed run only. */
  xol: bigint;
  vaddr: bigint;
  /** Where both runs start (default: vaddr). */
  start?: bigint;
  /** Registers, written after the arch's engine setup. */
  seed(e: Engine): void;
  /** x86: end a run at the first instruction outside the probe (and the slot). Else only traps end it. */
  stopOutside?: boolean;
  /** Instruction budget of a run. */
  maxInsns?: number;
  /** Probe hits after which the probed run gives up (a loop through the probe). */
  maxHits?: number;
  /**
   * Analyse the probed bytes as if at this address (default vaddr): a uprobe is analysed once and
   * may run in an mm that maps the file elsewhere; the run itself is at vaddr.
   */
  analyzeAt?: bigint;
  /** More probed addresses (e.g. the delay slot of a probed branch); each is analysed and armed too. */
  extraProbes?: bigint[];
  /** Names of the arch snapshot's values, for messages. */
  regNames?: readonly string[];
  /** Change the analysed instruction before it runs (harness self-tests). */
  tamper?: (p: PreparedUprobe) => PreparedUprobe;
}

export interface UprobeRun {
  err: number;
  regs: bigint[];
  wide: string[];
  events: string[];
  memory: Uint8Array[];
  /** Probed: swbp hits at vaddr. Native: executions of vaddr (a one-address code hook). */
  hits: number;
  /** Probed: hits at each extra probe, in order. */
  extraHits: number[];
  emulated: number;
  steps: number;
  aborts: number;
}

export interface UprobeDiff {
  prepared?: PreparedUprobe;
  refusal?: ProbeRefusal;
  native?: UprobeRun;
  probed?: UprobeRun;
  mismatches: string[];
}

const hex = (v: bigint): string => '0x' + v.toString(16);

/**
 * Guest memory through the engine. An unmapped access throws UniprobeError('MM') as the mm's
 * accessors do (arch code that works on the task's memory, e.g. sparc64's window spills and
 * fills, turns exactly that into the task's SIGSEGV).
 */
export function memAccess(e: Engine, arch: Arch): GuestMemoryAccess {
  const le = arch.endian === 'little';
  const n = arch.wordSize;
  const guard = <R>(what: string, a: bigint, f: () => R): R => {
    try {
      return f();
    } catch (err) {
      throw new UniprobeError('MM', `${what} at 0x${a.toString(16)}`, { cause: err });
    }
  };
  return {
    read: (a, len) => guard('read', a, () => e.memRead(a, len)),
    write: (a, b) => guard('write', a, () => e.memWrite(a, b)),
    readWord(a) {
      const b = e.memRead(a, n);
      const v = new DataView(b.buffer, b.byteOffset, n);
      return n === 8 ? v.getBigUint64(0, le) : BigInt(v.getUint32(0, le));
    },
    writeWord(a, value) {
      const b = new Uint8Array(n);
      const v = new DataView(b.buffer);
      if (n === 8) v.setBigUint64(0, BigInt.asUintN(64, value), le);
      else v.setUint32(0, Number(BigInt.asUintN(32, value)), le);
      e.memWrite(a, b);
    },
  };
}

function pageRound(arch: Arch, n: number): number {
  const p = arch.layout.pageSize;
  return Math.ceil(n / p) * p;
}

function freshEngine(s: UprobeScenario): Engine {
  const e = pooledEngine(s.arch, SMALL_ENGINE);
  s.arch.setupEngine(e, { mapPrivate: (a, size, x) => e.memMap(a, size, x ? UC_PROT.ALL : UC_PROT.READ | UC_PROT.WRITE) });
  for (const r of s.regions) {
    e.memMap(r.base, pageRound(s.arch, r.bytes.length), UC_PROT.ALL);
    e.memWrite(r.base, r.bytes);
  }
  return e;
}

function finish(s: UprobeScenario, e: Engine, err: number, events: string[], counts: Omit<UprobeRun, 'err' | 'regs' | 'wide' | 'events' | 'memory' | 'extraHits'> & { extraHits?: number[] }): UprobeRun {
  const snap = s.arch.snapshot(e);
  return {
    err,
    regs: snap.values,
    wide: (snap.wide ?? []).map((b) => Buffer.from(b).toString('hex')),
    events,
    memory: s.regions.map((r) => e.memRead(r.base, r.bytes.length)),
    extraHits: [],
    ...counts,
  };
}

function stopOutside(e: Engine, allowed: (a: bigint) => boolean): void {
  e.hookCode((signed) => {
    // 64-bit addresses arrive as signed values from the binding.
    const a = BigInt.asUintN(64, signed);
    if (!allowed(a)) e.stop();
  });
}

export function runNative(s: UprobeScenario): UprobeRun {
  const e = freshEngine(s);
  try {
    const events: string[] = [];
    const sink: TrapSink = {
      isKernelText: () => false,
      syscall: (pc) => void events.push(`syscall@${hex(pc)}`),
      hypercall: (pc) => (events.push(`hypercall@${hex(pc)}`), { stop: true }),
      breakpoint: (addr, after) => (events.push(`breakpoint@${hex(addr)}→${hex(after)}`), { stop: true, pc: addr }),
      fault: (f, pc) => (events.push(`fault:${f.reason}@${hex(pc)}`), { stop: true, pc }),
      memory: () => Object.assign(memAccess(e, s.arch), { unsettled: false }),
    };
    s.arch.installTrapHooks(e, sink);
    const executed = countExecutions(e, [s.vaddr]);
    if (s.stopOutside) stopOutside(e, (a) => a === s.vaddr);
    s.seed(e);
    const r = e.start(s.start ?? s.vaddr, 0n, s.maxInsns ?? 200);
    if (r.err !== 0) events.push(`err${r.err}@${hex(s.arch.getPc(e))}`);
    return finish(s, e, r.err, events, { hits: executed.get(s.vaddr)!, emulated: 0, steps: 0, aborts: 0 });
  } finally {
    releaseEngine(e);
  }
}

/** One armed probe of the probed run: its analysis, its own slot in the XOL page, its hits. */
interface Armed {
  vaddr: bigint;
  p: PreparedUprobe;
  slot: bigint;
  len: number;
  hits: number;
}

export function runProbed(s: UprobeScenario, p: PreparedUprobe, extra: PreparedUprobe[] = []): UprobeRun {
  const e = freshEngine(s);
  try {
    const { arch, xol } = s;
    const page = BigInt(arch.layout.pageSize);
    e.memMap(xol & ~(page - 1n), arch.layout.pageSize, UC_PROT.ALL);
    const armed: Armed[] = [p, ...extra].map((q, k) => {
      // Each probe gets its own slot, the main one at `xol` (xol_take_insn_slot hands out one per hit).
      const slot = xol + BigInt(k * s.ua.xolSlotBytes);
      const bytes = q.slotBytes(slot);
      e.memWrite(slot, bytes);
      return { vaddr: k === 0 ? s.vaddr : s.extraProbes![k - 1]!, p: q, slot, len: bytes.length, hits: 0 };
    });
    for (const a of armed) e.memWrite(a.vaddr, s.ua.swbp);
    // As on a machine: the back-end's register accesses go through the trap register cache.
    e.cacheTrapRegisters(s.ua.hitRegisters);
    const mem = memAccess(e, arch);
    const slotOf = (a: bigint): Armed | undefined => armed.find((x) => a >= x.slot && a < x.slot + BigInt(x.len));
    const inSlot = (a: bigint): boolean => slotOf(a) !== undefined;
    const where = (a: bigint): string => {
      const x = slotOf(a);
      return hex(x ? x.vaddr + (a - x.slot) : a);
    };
    const events: string[] = [];
    const c = { hits: 0, emulated: 0, steps: 0, aborts: 0 };
    /** The probe whose copy is running, if any (a task steps one instruction at a time). */
    let stepping: Armed | undefined;
    let abortAfterRun = false;
    let state: unknown;
    const abort = (): void => {
      stepping!.p.abortXol({ engine: e, mem }, stepping!.slot, stepping!.vaddr, state);
      stepping = undefined;
      c.aborts++;
    };
    const sink: TrapSink = {
      isKernelText: () => false,
      syscall: (pc) => void events.push(`syscall@${where(pc)}`),
      hypercall: (pc) => (events.push(`hypercall@${where(pc)}`), { stop: true }),
      breakpoint(addr, pcAfter) {
        const cpu: ProbeCpu = { engine: e, mem, pcAfter };
        const hit = stepping ? undefined : armed.find((x) => x.vaddr === addr);
        if (hit) {
          hit.hits++;
          if (hit === armed[0]) c.hits++;
          if (hit.hits > (s.maxHits ?? 64)) {
            events.push('too many hits');
            return { stop: true, pc: addr };
          }
          arch.setPc(e, hit.vaddr); // handle_swbp: the IP goes back to the probe first
          if (hit.p.mode === 'emulate' && hit.p.emulate!(cpu, hit.vaddr)) {
            c.emulated++;
            return { pc: arch.getPc(e) };
          }
          state = hit.p.preXol(cpu, hit.slot, hit.vaddr);
          stepping = hit;
          return { pc: arch.getPc(e) };
        }
        if (stepping && addr === stepping.slot + BigInt(stepping.p.stepTrapOffset)) {
          const done = stepping;
          stepping = undefined;
          c.steps++;
          done.p.postXol(cpu, done.slot, done.vaddr, state);
          return { pc: arch.getPc(e) };
        }
        if (stepping) {
          // The copy itself trapped: the kernel aborts the step (UTASK_SSTEP_TRAPPED).
          abortAfterRun = true;
          events.push(`breakpoint@${hex(stepping.vaddr)}→${where(pcAfter)}`);
          return { stop: true };
        }
        events.push(`breakpoint@${where(addr)}→${where(pcAfter)}`);
        return { stop: true, pc: addr };
      },
      fault(f, pc) {
        if (stepping) {
          // abort_xol runs on the way to the signal, after the run: a PC write inside the hook
          // would cancel the stop on x86 and ppc.
          abortAfterRun = true;
          events.push(`fault:${f.reason}@${hex(stepping.vaddr)}`);
          return { stop: true };
        }
        events.push(`fault:${f.reason}@${where(pc)}`);
        return { stop: true, pc };
      },
      memory: () => Object.assign(mem, { unsettled: false }),
    };
    arch.installTrapHooks(e, sink);
    if (s.stopOutside) stopOutside(e, (a) => armed.some((x) => x.vaddr === a) || inSlot(a));
    s.seed(e);
    const r = e.start(s.start ?? s.vaddr, 0n, s.maxInsns ?? 200);
    if (abortAfterRun) abort();
    else if (r.err !== 0) {
      // An access Unicorn refuses ends the run with the PC on the faulting instruction.
      const pc = arch.getPc(e);
      if (stepping && inSlot(pc)) abort();
      events.push(`err${r.err}@${where(pc)}`);
    } else if (stepping) {
      events.push('the run ended inside the step');
    }
    return finish(s, e, r.err, events, { ...c, extraHits: armed.slice(1).map((x) => x.hits) });
  } finally {
    releaseEngine(e);
  }
}

/** Analyse the probed instruction, run both ways, list every difference. */
export function runUprobeDiff(s: UprobeScenario): UprobeDiff {
  const at = s.regions.find((r) => s.vaddr >= r.base && s.vaddr < r.base + BigInt(r.bytes.length));
  if (!at) throw new Error(`vaddr ${hex(s.vaddr)} is in no region`);
  const off = Number(s.vaddr - at.base);
  const p0 = s.ua.analyzeUprobe(s.analyzeAt ?? s.vaddr, at.bytes.subarray(off, off + s.ua.maxInsnBytes));
  if (isRefusal(p0)) return { refusal: p0, mismatches: [] };
  const p = s.tamper ? s.tamper(p0) : p0;
  const extra = (s.extraProbes ?? []).map((a) => {
    const r = s.regions.find((x) => a >= x.base && a < x.base + BigInt(x.bytes.length))!;
    const o = Number(a - r.base);
    const q = s.ua.analyzeUprobe(a, r.bytes.subarray(o, o + s.ua.maxInsnBytes));
    if (isRefusal(q)) throw new Error(`extra probe at ${hex(a)} refused: ${q.reason}`);
    return q;
  });
  const native = runNative(s);
  const probed = runProbed(s, p, extra);
  const mismatches: string[] = [];
  if (native.err !== probed.err) mismatches.push(`run error: native ${native.err} probed ${probed.err}`);
  native.regs.forEach((v, i) => {
    const w = probed.regs[i];
    if (v !== w) mismatches.push(`${s.regNames?.[i] ?? `snapshot[${i}]`}: native ${hex(v)} probed ${w === undefined ? 'missing' : hex(w)}`);
  });
  if (native.regs.length !== probed.regs.length) mismatches.push(`register snapshot length ${native.regs.length} vs ${probed.regs.length}`);
  native.wide.forEach((v, i) => {
    if (v !== probed.wide[i]) mismatches.push(`wide[${i}]: native ${v} probed ${probed.wide[i]}`);
  });
  if (native.events.join() !== probed.events.join()) mismatches.push(`events: native [${native.events.join(', ')}] probed [${probed.events.join(', ')}]`);
  s.regions.forEach((r, k) => {
    const x = Buffer.from(native.memory[k]!);
    const y = Buffer.from(probed.memory[k]!);
    // The probed run has the swbp at each probe: that is the point, not a difference.
    for (const a of [s.vaddr, ...(s.extraProbes ?? [])]) {
      const o = Number(a - r.base);
      if (o >= 0 && o < y.length) for (let i = 0; i < s.ua.swbp.length && o + i < y.length; i++) y[o + i] = x[o + i]!;
    }
    if (x.equals(y)) return;
    let n = 0;
    for (let i = 0; i < x.length && n < 6; i++) {
      if (x[i] !== y[i]) {
        mismatches.push(`memory ${hex(r.base + BigInt(i))}: native 0x${x[i]!.toString(16)} probed 0x${y[i]!.toString(16)}`);
        n++;
      }
    }
  });
  return { prepared: p, native, probed, mismatches };
}

/** The PT_LOAD segments of an ELF, as page-aligned regions (zero-filled around them). */
export function elfRegions(path: string, page: number): Region[] {
  const elf = readElfFileSync(path);
  const out: Region[] = [];
  for (const s of elf.loadSegments()) {
    const base = s.vaddr & ~BigInt(page - 1);
    const end = (s.vaddr + s.memsz + BigInt(page - 1)) & ~BigInt(page - 1);
    const bytes = new Uint8Array(Number(end - base));
    bytes.set(elf.textBytesAt(s.vaddr, Number(s.memsz)), Number(s.vaddr - base));
    const prev = out[out.length - 1];
    if (prev && base < prev.base + BigInt(prev.bytes.length)) {
      // Two segments sharing a page: one region holding both.
      const merged = new Uint8Array(Number(end - prev.base));
      merged.set(prev.bytes, 0);
      merged.set(bytes.subarray(Number(prev.base + BigInt(prev.bytes.length) - base)), prev.bytes.length);
      merged.set(elf.textBytesAt(s.vaddr, Number(s.memsz)), Number(s.vaddr - prev.base));
      out[out.length - 1] = { base: prev.base, bytes: merged };
    } else out.push({ base, bytes });
  }
  return out;
}


/**
 * A corpus by file as [label, items] chunks of at most `n` items: long synchronous tests starve
 * vitest's worker RPC, so big corpora run as several tests.
 */
export function chunked<T>(byFile: Map<string, T[]>, n: number): Array<[string, T[]]> {
  const out: Array<[string, T[]]> = [];
  for (const [file, items] of byFile) {
    for (let i = 0; i < items.length; i += n) {
      const part = items.length > n ? ` [${i + 1}–${Math.min(i + n, items.length)} of ${items.length}]` : '';
      out.push([file + part, items.slice(i, i + n)]);
    }
  }
  return out;
}
