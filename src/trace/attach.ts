/**
 * Probe events on a machine: what writing to `kprobe_events` / `uprobe_events` and to
 * `events/GRP/EVENT/enable` does in Linux, on top of the probe cores.
 *
 * - A definition is parsed (symbols counted in the guest kernel's kallsyms, uprobe paths looked
 *   up), checked against the event table (names, multi-probe rules), then its probe is
 *   registered with the core *disabled*, as trace_kprobe registers it: a failure there (not an
 *   instruction boundary, blacklisted text…) is reported with the kernel's error code at the
 *   kernel's caret and leaves the table as it was.
 * - Enabling an event arms its probes; every hit runs the event's fetch arguments and hands a
 *   TraceRecord to `onRecord`. Hits and misses are kept per probe point (kprobe_profile).
 * - `-:[GRP/]EVENT [PLACE …]` unregisters and removes (EBUSY while the event is enabled, as in
 *   Linux).
 * - kretprobe events capture the `$argN` values they use at function entry (an entry handler, as
 *   newer kernels do for `$argN` in return probes) and evaluate everything else at the return.
 * - uprobe events (`PATH:OFFSET`) register a consumer with the uprobes core when enabled, as
 *   trace_uprobe does; `$argN` there (our extension) reads the user C ABI.
 */
import { realpathSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { UniprobeError } from '../errors.js';
import type { Machine } from '../kernel/machine.js';
import { Kprobe } from '../kprobes/kprobe.js';
import { EILSEQ, ENOENT, Kprobes } from '../kprobes/kprobes.js';
import { Kretprobe, Kretprobes, type KretprobeInstance } from '../kprobes/kretprobe.js';
import type { ProbeRegs } from '../regs/probe-regs.js';
import type { Task } from '../kernel/task.js';
import { MAX_URETPROBE_DEPTH, Uprobes, type UprobeConsumer } from '../uprobes/index.js';
import type { Kthread } from '../sync/index.js';
import type { ProbeDeletion, ProbeEventDefinition } from './definition.js';
import type { ProbeError } from './errors.js';
import { argIndexes, evaluateArg, symbolReferences, type FetchEnv } from './fetch-eval.js';
import { hitEnv, kernelFunctionName, kernelSymbolizer } from './fetch-env.js';
import type { ProfileRow, Symbolizer, TraceRecord } from './output.js';
import { parseProbeDefinition, registrationError, type ParseContext, type PathStat } from './parse.js';
import { ProbeEventRegistry, type ProbeEntry, type ProbeEvent } from './registry.js';

const STT_SECTION = 3;
const STT_FILE = 4;

export interface TraceSessionOptions {
  /** Every hit of an enabled event. Runs inside the trap handler: keep it short, never throw. */
  onRecord(record: TraceRecord): void;
  /** The machine's kprobes core (created on first use when not given). */
  kprobes?: Kprobes;
  kretprobes?: Kretprobes;
  /** The machine's uprobes core (created on first use when not given). */
  uprobes?: Uprobes;
  /** Relative uprobe paths are resolved against this directory (default: the process's cwd). */
  cwd?: string;
}

/** A probe point attached to a core. */
interface Attached {
  readonly def: ProbeEventDefinition;
  enable(t: Kthread): Promise<void>;
  disable(t: Kthread): Promise<void>;
  detach(t: Kthread): Promise<void>;
  /** The core's miss counters (reentry, maxactive exhausted). */
  misses(): number;
}

export class TraceSession {
  readonly registry = new ProbeEventRegistry();
  readonly symbolizer: Symbolizer;
  private readonly attached = new Map<ProbeEntry, Attached>();
  private kallsyms: Map<string, Set<bigint>> | undefined;
  private kprobesCore: Kprobes | undefined;
  private kretprobesCore: Kretprobes | undefined;
  private uprobesCore: Uprobes | undefined;
  private readonly symbolize: (a: bigint) => string;

  constructor(
    readonly machine: Machine,
    private readonly opts: TraceSessionOptions,
  ) {
    this.kprobesCore = opts.kprobes;
    this.kretprobesCore = opts.kretprobes;
    this.uprobesCore = opts.uprobes;
    this.symbolize = kernelSymbolizer(machine);
    this.symbolizer = { symbol: this.symbolize, functionName: (a) => kernelFunctionName(machine, a) };
  }

  get kprobes(): Kprobes {
    return (this.kprobesCore ??= new Kprobes(this.machine));
  }

  get kretprobes(): Kretprobes {
    return (this.kretprobesCore ??= new Kretprobes(this.kprobes));
  }

  get uprobes(): Uprobes {
    // Linux's die-notifier chain asks kprobes before uprobes; the machine asks trap handlers in
    // the order the cores were created, so the kprobes core must exist first. (On sparc64 the
    // uprobes core claims the kprobe single-step trap otherwise, and the run never ends.)
    void this.kprobes;
    return (this.uprobesCore ??= new Uprobes(this.machine));
  }

  /** Distinct addresses per kallsyms name (NON_UNIQ_SYMBOL needs more than one). */
  private symbolAddresses(name: string): Set<bigint> | undefined {
    if (!this.kallsyms) {
      this.kallsyms = new Map();
      for (const s of this.machine.kernel.elf.symbols) {
        if (!s.name || s.type === STT_SECTION || s.type === STT_FILE) continue;
        let set = this.kallsyms.get(s.name);
        if (!set) this.kallsyms.set(s.name, (set = new Set()));
        set.add(s.value);
      }
    }
    return this.kallsyms.get(name);
  }

  /** The parse context for this machine's target: kallsyms and host paths checked where the kernel checks them. */
  parseContext(kind: ParseContext['kind'] = 'auto'): ParseContext {
    const cwd = this.opts.cwd ?? process.cwd();
    return {
      target: this.machine.target,
      kind,
      // The guest kernel has no modules: `MOD:SYM` waits for a module that never loads, as Linux
      // accepts a probe on a module that is not loaded yet.
      countSymbol: (symbol, module) => (module === undefined ? (this.symbolAddresses(symbol)?.size ?? 0) : undefined),
      statPath: (path): PathStat => {
        try {
          return statSync(resolve(cwd, path)).isFile() ? 'regular' : 'not-regular';
        } catch (e) {
          return { errno: -((e as NodeJS.ErrnoException).errno ?? -ENOENT) };
        }
      },
    };
  }

  /**
   * One line of `kprobe_events`/`uprobe_events` syntax (kernel-thread context): a definition
   * (registered disabled) or a `-:` deletion. Returns the kernel's error, or undefined.
   */
  async write(t: Kthread, line: string, kind: ParseContext['kind'] = 'auto'): Promise<ProbeError | undefined> {
    const parsed = parseProbeDefinition(line, this.parseContext(kind));
    if (!parsed.ok) return parsed.error;
    const def = parsed.value;
    if (def.kind === 'delete') return this.delete(t, def);
    return this.define(t, def);
  }

  private async define(t: Kthread, def: ProbeEventDefinition): Promise<ProbeError | undefined> {
    const added = this.registry.add(def);
    if (!added.ok) return added.error;
    const { event, probe } = added.value;
    let result: Attached | ProbeError;
    try {
      result = def.flavor === 'kprobe' ? await this.attachKprobe(t, def, event, probe) : this.attachUprobe(def, event, probe);
    } catch (e) {
      this.registry.discard(probe);
      throw e;
    }
    if (!('detach' in result)) {
      this.registry.discard(probe);
      return result;
    }
    this.attached.set(probe, result);
    // A probe point added to an enabled event is enabled with it.
    if (event.enabled) await result.enable(t);
    return undefined;
  }

  private async delete(t: Kthread, del: ProbeDeletion): Promise<ProbeError | undefined> {
    const removed = this.registry.remove(del);
    if (!removed.ok) return removed.error;
    for (const probe of removed.value) {
      const a = this.attached.get(probe);
      this.attached.delete(probe);
      await a?.detach(t);
    }
    return undefined;
  }

  /** events/GRP/EVENT/enable (every event when no name is given). False: no such event. */
  async enable(t: Kthread, group?: string, event?: string): Promise<boolean> {
    return this.setEnabled(t, true, group, event);
  }

  async disable(t: Kthread, group?: string, event?: string): Promise<boolean> {
    return this.setEnabled(t, false, group, event);
  }

  private async setEnabled(t: Kthread, on: boolean, group?: string, event?: string): Promise<boolean> {
    const events = this.registry.events().filter((e) => (group === undefined || e.group === group) && (event === undefined || e.event === event));
    for (const ev of events) {
      if (ev.enabled === on) continue;
      this.registry.setEnabled(ev.group, ev.event, on);
      for (const p of ev.probes) {
        const a = this.attached.get(p);
        if (a) await (on ? a.enable(t) : a.disable(t));
      }
    }
    return events.length > 0;
  }

  /** Disable and remove every event (what a truncating write does once nothing is enabled). */
  async detachAll(t: Kthread): Promise<void> {
    await this.disable(t);
    for (const [probe, a] of [...this.attached]) {
      this.attached.delete(probe);
      await a.detach(t);
    }
    this.registry.clear('kprobe');
    this.registry.clear('uprobe');
  }

  /** Per probe point: hits and misses, the misses read from the cores now. */
  profile(): ProfileRow[] {
    return this.registry.events().flatMap((e) =>
      e.probes.map((p) => {
        p.misses = this.attached.get(p)?.misses() ?? p.misses;
        const loc = p.definition.location;
        const row: ProfileRow = { group: e.group, event: e.event, flavor: e.flavor, hits: p.hits, misses: p.misses, ...(loc.type === 'file' ? { path: loc.path } : {}) };
        return row;
      }),
    );
  }

  // --- kprobes -----------------------------------------------------------------------------

  private async attachKprobe(t: Kthread, def: ProbeEventDefinition, event: ProbeEvent, probe: ProbeEntry): Promise<Attached | ProbeError> {
    const loc = def.location;
    if (loc.type === 'file') throw new UniprobeError('INTERNAL', `kprobe event with a file place: ${def.command}`);
    // `@SYM` resolves at registration; an unknown one fails it with ENOENT, logged at the place.
    const symbols = new Map<string, bigint>();
    for (const name of symbolReferences(def.args)) {
      const s = this.machine.kernel.symbol(name);
      if (!s) return registrationError(def, 'BAD_PROBE_ADDR', { errno: ENOENT });
      symbols.set(name, s.value);
    }
    if (loc.type === 'symbol' && loc.module !== undefined) return unarmedProbe(def);
    const where = loc.type === 'symbol' ? { symbolName: loc.symbol, offset: loc.offset } : { addr: loc.address };
    if (def.kind === 'r' && loc.type === 'address') {
      // kprobe_on_func_entry, checked before registering: only a function's first instruction.
      const at = this.machine.kernel.elf.symbolAt(loc.address);
      if (!at || !this.machine.arch.functionEntry(at.symbol).entries.includes(loc.address)) return registrationError(def, 'BAD_RETPROBE');
    }
    const emit = (regs: ProbeRegs, env: FetchEnv, ip: bigint, func?: bigint): void => {
      probe.hits++;
      if (!event.enabled) return;
      this.opts.onRecord(this.record(def, regs, env, ip, func));
    };

    if (def.kind === 'p') {
      const make = (disabled: boolean): Kprobe => {
        const kp = new Kprobe({ ...where, disabled });
        kp.preHandler = (_p, regs) => {
          const env = hitEnv(this.machine, regs, { args: 'kernel', isReturn: false, symbols, symbolize: this.symbolize });
          emit(regs, env, regs.ip);
          return 0;
        };
        return kp;
      };
      const kp = make(true);
      const rc = await this.kprobes.register(t, kp);
      if (rc < 0) return this.registerFailure(def, rc);
      return this.coreProbe(def, kp, make, {
        register: (tt, p) => this.kprobes.register(tt, p),
        unregister: (tt, p) => this.kprobes.unregister(tt, p),
        kprobe: (p) => p,
        misses: (p) => p.nmissed,
      });
    }

    const wanted = argIndexes(def.args);
    const make = (disabled: boolean): Kretprobe => {
      const entryArgs = new Map<KretprobeInstance, bigint[]>();
      const rp = new Kretprobe({ ...where, disabled, ...(def.maxactive !== undefined ? { maxactive: def.maxactive } : {}) });
      if (wanted.length) {
        const n = wanted[wanted.length - 1]!;
        rp.entryHandler = (ri, regs) => {
          entryArgs.set(ri, Array.from({ length: n }, (_, i) => regs.arg(i)));
          return 0;
        };
      }
      rp.handler = (ri, regs) => {
        const args = entryArgs.get(ri);
        entryArgs.delete(ri);
        const env = hitEnv(this.machine, regs, { args: args ?? [], isReturn: true, symbols, symbolize: this.symbolize });
        emit(regs, env, regs.ip, rp.kp.addr);
      };
      return rp;
    };
    const rp = make(true);
    const rc = await this.kretprobes.register(t, rp);
    if (rc < 0) return this.registerFailure(def, rc);
    return this.coreProbe(def, rp, make, {
      register: (tt, p) => this.kretprobes.register(tt, p),
      unregister: (tt, p) => this.kretprobes.unregister(tt, p),
      kprobe: (p) => p.kp,
      // kprobe_profile of a kretprobe event: reentries of its kprobe plus calls not tracked.
      misses: (p) => p.kp.nmissed + p.nmissed,
    });
  }

  /**
   * Enable/disable/detach of a registered kprobe or kretprobe.
   *
   * Enabling uses enable_kprobe, and checks that the breakpoint is in the text afterwards: the
   * core does not arm a lone probe that was registered disabled (it clears the flag before it
   * tests it), so in that case the probe is registered again, enabled. Misses of the replaced
   * registration are carried over.
   */
  private coreProbe<P>(
    def: ProbeEventDefinition,
    first: P,
    make: (disabled: boolean) => P,
    core: {
      register(t: Kthread, p: P): Promise<number>;
      unregister(t: Kthread, p: P): Promise<void>;
      kprobe(p: P): Kprobe;
      misses(p: P): number;
    },
  ): Attached {
    let current = first;
    let carried = 0;
    return {
      def,
      enable: async (t) => {
        const kp = core.kprobe(current);
        const rc = await this.kprobes.enable(t, kp);
        if (rc < 0) throw new UniprobeError('PROBE', `enable_kprobe failed (${rc}) for ${def.command}`);
        if (this.kprobes.isArmed(kp.addr!)) return;
        const again = make(false);
        carried += core.misses(current);
        await core.unregister(t, current);
        const rc2 = await core.register(t, again);
        if (rc2 < 0) throw new UniprobeError('PROBE', `re-registering ${def.command} failed (${rc2})`);
        current = again;
      },
      disable: async (t) => void (await this.kprobes.disable(t, core.kprobe(current))),
      detach: (t) => core.unregister(t, current),
      misses: () => carried + core.misses(current),
    };
  }

  // --- uprobes ------------------------------------------------------------------------------

  /**
   * trace_uprobe: the definition only looks the file up; the consumer is registered when the
   * event is enabled (probe_event_enable) and unregistered when it is disabled, so a failure to
   * install (an offset past the file, a misaligned offset) is reported by the enable.
   *
   * uretprobe events: `nhit` counts entries (uprobe_dispatcher runs for both kinds), records are
   * written at the return. `$argN` (our extension) is captured at entry on a per-task stack that
   * follows the return instances (at most MAX_URETPROBE_DEPTH deep, as the core keeps them).
   */
  private attachUprobe(def: ProbeEventDefinition, event: ProbeEvent, probe: ProbeEntry): Attached {
    const loc = def.location;
    if (loc.type !== 'file') throw new UniprobeError('INTERNAL', `uprobe event without a file place: ${def.command}`);
    const real = realpathSync(resolve(this.opts.cwd ?? process.cwd(), loc.path));
    const inode = this.machine.inodeFor(real);
    const uprobes = this.uprobes;
    const wanted = argIndexes(def.args);
    const maxArg = wanted.length ? wanted[wanted.length - 1]! : 0;
    const pending = new Map<Task, bigint[][]>();
    const emit = (regs: ProbeRegs, ip: bigint, base: bigint, args: 'user' | readonly bigint[], func?: bigint): void => {
      if (!event.enabled) return;
      const env = hitEnv(this.machine, regs, { args, isReturn: func !== undefined, fileBase: base - loc.offset, symbolize: this.symbolize });
      this.opts.onRecord(this.record(def, regs, env, ip, func));
    };
    const consumer: UprobeConsumer = {
      handler: (_c, regs) => {
        probe.hits++;
        if (def.kind === 'p') emit(regs, regs.ip, regs.ip, 'user');
        else if (maxArg > 0) {
          let stack = pending.get(regs.task);
          if (!stack) pending.set(regs.task, (stack = []));
          if (stack.length < MAX_URETPROBE_DEPTH) stack.push(Array.from({ length: maxArg }, (_, i) => regs.arg(i)));
        }
        return 0;
      },
    };
    if (def.kind === 'r') {
      consumer.retHandler = (_c, func, regs) => {
        const stack = pending.get(regs.task);
        const args = stack?.pop() ?? [];
        if (stack && stack.length === 0) pending.delete(regs.task);
        emit(regs, regs.ip, func, args, func);
        return 0;
      };
    }
    let registered = false;
    const off = loc.offset;
    const unregister = async (t: Kthread): Promise<void> => {
      if (!registered) return;
      registered = false;
      await uprobes.unregister(t, inode, off, consumer);
      pending.clear();
    };
    return {
      def,
      enable: async (t) => {
        if (registered) return;
        const rc = await uprobes.register(t, inode, off, consumer, loc.refCtrOffset);
        if (rc < 0) throw new UniprobeError('PROBE', `cannot enable ${def.group}/${def.event} at ${loc.path}:0x${off.toString(16)}: uprobe_register failed (${errnoName(-rc)})`, { errno: -rc });
        registered = true;
      },
      disable: unregister,
      detach: unregister,
      misses: () => 0,
    };
  }

  /** __register_trace_kprobe's translation of the core's errno into an error_log entry. */
  private registerFailure(def: ProbeEventDefinition, rc: number): ProbeError {
    if (rc === -EILSEQ) return registrationError(def, 'BAD_INSN_BNDRY', { errno: EILSEQ });
    if (rc === -ENOENT) return registrationError(def, 'BAD_PROBE_ADDR', { errno: ENOENT });
    return registrationError(def, 'FAIL_REG_PROBE', { errno: -rc });
  }

  private record(def: ProbeEventDefinition, regs: ProbeRegs, env: FetchEnv, ip: bigint, func?: bigint): TraceRecord {
    const task = regs.task;
    return {
      group: def.group,
      event: def.event,
      kind: def.kind,
      flavor: def.flavor,
      pid: task.process.pid,
      tid: task.tid,
      cpu: regs.cpu,
      comm: task.process.comm,
      ip,
      ...(func !== undefined ? { func } : {}),
      timestamp: this.machine.insnsNow(),
      args: def.args.map((a) => ({ name: a.name, type: a.type, value: evaluateArg(a, env, def.flavor) })),
    };
  }
}

/** A probe on a module that never loads: listed, never armed, never hit. */
function unarmedProbe(def: ProbeEventDefinition): Attached {
  const nothing = async (): Promise<void> => undefined;
  return { def, enable: nothing, disable: nothing, detach: nothing, misses: () => 0 };
}

const ERRNO_NAMES: Record<number, string> = { 2: 'ENOENT', 5: 'EIO', 11: 'EAGAIN', 12: 'ENOMEM', 22: 'EINVAL', 524: 'ENOTSUPP' };

function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}
