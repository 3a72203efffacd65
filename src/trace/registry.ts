/**
 * The dynamic probe-event table behind `kprobe_events` / `uprobe_events` (§7): events by
 * GRP/EVENT, each with one or more probe points (multi-probe events), enable flags, users, and
 * the per-probe hit/miss counters the cores increment. Independent of any machine: the cores
 * arm what is listed here and report registration failures through the `register` hook.
 */
import { splitCommand } from './command.js';
import type { ProbeDeletion, ProbeEventDefinition, ProbeFlavor } from './definition.js';
import { makeProbeError, type ProbeError, type TraceSubsystem } from './errors.js';
import { formatArg, formatPlace, formatProbeEvent } from './format.js';
import { parseProbeDefinition, registrationError, type ParseContext } from './parse.js';
import { archFor } from '../../arch/index.js';

/** error_log keeps this many recent entries (TRACING_LOG_ERRS_MAX). */
export const ERROR_LOG_MAX = 16;

export interface ProbeEntry {
  readonly definition: ProbeEventDefinition;
  /** Times the probe's handler ran (kprobe_profile / uprobe_profile "nhit"). */
  hits: number;
  /** Times it was missed: reentry, maxactive exhausted (kprobe_profile "nmissed"). */
  misses: number;
}

export interface ProbeEvent {
  readonly flavor: ProbeFlavor;
  readonly group: string;
  readonly event: string;
  readonly kind: 'p' | 'r';
  /** events/GRP/EVENT/enable. Probes appended to an enabled event are enabled with it. */
  enabled: boolean;
  /** Other holders of the event (perf, an open trace pipe…): deletion is refused while > 0. */
  users: number;
  /** Probe points, oldest first. */
  readonly probes: ProbeEntry[];
}

export type RegistryResult<T> = { ok: true; value: T } | { ok: false; error: ProbeError };

export interface RegistryOptions {
  /** Names taken by events that are not probe events (static tracepoints…): EVENT_EXIST. */
  isOtherEvent?(group: string, event: string): boolean;
}

export interface AddOptions {
  /**
   * The core's registration of the new probe point, run last (after every name and argument
   * check passed), as register_trace_kprobe/uprobe do. An error leaves the registry unchanged;
   * build it with `registrationError(def, 'BAD_INSN_BNDRY')` etc.
   */
  register?(def: ProbeEventDefinition): ProbeError | undefined;
}

export interface WriteOptions extends AddOptions {
  /** Open with truncation (shell `>`): first delete every probe of this kind (EBUSY if one is busy). */
  truncate?: boolean;
}

export interface WriteResult {
  ok: boolean;
  /** The failing line's error (the write stops there; earlier lines stay in effect). */
  error?: ProbeError;
  /** Lines applied before the stop. */
  applied: number;
}

function subsystemOf(flavor: ProbeFlavor | 'any'): TraceSubsystem {
  return flavor === 'uprobe' ? 'trace_uprobe' : 'trace_kprobe';
}

function key(group: string, event: string): string {
  return `${group}/${event}`;
}

/** Same names, types and array sizes, in order (trace_probe_compare_arg_type): index of the first difference. */
function firstArgDifference(existing: ProbeEventDefinition, added: ProbeEventDefinition): number | undefined {
  const a = existing.args;
  const b = added.args;
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.name !== y.name || x.type.name !== y.type.name || x.type.array !== y.type.array) return i;
  }
  return undefined;
}

function samePlace(a: ProbeEventDefinition, b: ProbeEventDefinition): boolean {
  const x = a.location;
  const y = b.location;
  if (x.type === 'symbol' && y.type === 'symbol') return x.symbol === y.symbol && x.module === y.module && x.offset === y.offset;
  if (x.type === 'address' && y.type === 'address') return x.address === y.address;
  if (x.type === 'file' && y.type === 'file') return x.path === y.path && x.offset === y.offset;
  return false;
}

function wordSize(def: ProbeEventDefinition): number {
  return archFor(def.target)?.wordSize ?? 8;
}

export class ProbeEventRegistry {
  private readonly byName = new Map<string, ProbeEvent>();
  private readonly log: ProbeError[] = [];

  constructor(private readonly options: RegistryOptions = {}) {}

  /** Recent logged errors from write(), oldest first (the error_log file). */
  get errorLog(): readonly ProbeError[] {
    return this.log;
  }

  clearErrorLog(): void {
    this.log.length = 0;
  }

  find(group: string, event: string): ProbeEvent | undefined {
    return this.byName.get(key(group, event));
  }

  events(flavor?: ProbeFlavor): ProbeEvent[] {
    return [...this.byName.values()].filter((e) => flavor === undefined || e.flavor === flavor);
  }

  /**
   * Add a probe point. A new GRP/EVENT creates the event; an existing one of the same flavor gets
   * one more probe point if it is the same kind (else DIFF_PROBE_TYPE), has the same argument
   * names and types (else DIFF_ARG_TYPE at the first difference) and is not an exact copy of a
   * probe already there (else SAME_PROBE). A name used by another kind of event: EVENT_EXIST.
   */
  add(def: ProbeEventDefinition, opts: AddOptions = {}): RegistryResult<{ event: ProbeEvent; probe: ProbeEntry }> {
    const existing = this.find(def.group, def.event);
    if (existing && existing.flavor === def.flavor) {
      if (existing.kind !== def.kind) return { ok: false, error: registrationError(def, 'DIFF_PROBE_TYPE') };
      const first = existing.probes[0]!.definition;
      const diff = firstArgDifference(first, def);
      if (diff !== undefined) return { ok: false, error: registrationError(def, 'DIFF_ARG_TYPE', { argIndex: diff }) };
      const same = existing.probes.some(
        (p) => samePlace(p.definition, def) && p.definition.args.every((a, i) => a.text === def.args[i]!.text),
      );
      if (same) return { ok: false, error: registrationError(def, 'SAME_PROBE') };
      const failed = opts.register?.(def);
      if (failed) return { ok: false, error: failed };
      const probe: ProbeEntry = { definition: def, hits: 0, misses: 0 };
      existing.probes.push(probe);
      return { ok: true, value: { event: existing, probe } };
    }
    if (existing || this.options.isOtherEvent?.(def.group, def.event)) {
      return { ok: false, error: registrationError(def, 'EVENT_EXIST') };
    }
    const failed = opts.register?.(def);
    if (failed) return { ok: false, error: failed };
    const probe: ProbeEntry = { definition: def, hits: 0, misses: 0 };
    const event: ProbeEvent = { flavor: def.flavor, group: def.group, event: def.event, kind: def.kind, enabled: false, users: 0, probes: [probe] };
    this.byName.set(key(def.group, def.event), event);
    return { ok: true, value: { event, probe } };
  }

  private matches(del: ProbeDeletion, ev: ProbeEvent, probe: ProbeEntry): boolean {
    if (del.flavor !== 'any' && del.flavor !== ev.flavor) return false;
    if (ev.event !== del.event || (del.group !== undefined && del.group !== ev.group)) return false;
    if (del.match.length === 0) return true;
    const def = probe.definition;
    if (del.match[0] !== formatPlace(def.location, wordSize(def))) return false;
    const args = del.match.slice(1);
    return args.length <= def.args.length && args.every((t, i) => t === formatArg(def.args[i]!));
  }

  /**
   * `-:[GRP/]EVENT [PLACE ARGS…]`: remove the matching probe points (all of the event's without
   * PLACE). Like the kernel, a probe point with siblings on its event is removed even while the
   * event is enabled; the last one of an enabled or used event is refused with EBUSY, which stops
   * the deletion. Nothing matched: ENOENT. Errors are not logged.
   */
  remove(del: ProbeDeletion): RegistryResult<ProbeEntry[]> {
    const removed: ProbeEntry[] = [];
    for (const ev of [...this.byName.values()]) {
      for (const probe of [...ev.probes]) {
        if (!this.matches(del, ev, probe)) continue;
        if (ev.probes.length === 1 && (ev.enabled || ev.users > 0)) {
          return { ok: false, error: makeProbeError('EVENT_BUSY', del.command, 0, subsystemOf(del.flavor)) };
        }
        ev.probes.splice(ev.probes.indexOf(probe), 1);
        removed.push(probe);
        if (ev.probes.length === 0) this.byName.delete(key(ev.group, ev.event));
      }
    }
    if (removed.length === 0) return { ok: false, error: makeProbeError('NO_SUCH_EVENT', del.command, 0, subsystemOf(del.flavor)) };
    return { ok: true, value: removed };
  }

  /** Truncating open of the file: every event of `flavor` goes, or none if one is busy (EBUSY). */
  clear(flavor: ProbeFlavor): RegistryResult<number> {
    const victims = this.events(flavor);
    if (victims.some((e) => e.enabled || e.users > 0)) {
      return { ok: false, error: makeProbeError('EVENT_BUSY', '', 0, subsystemOf(flavor)) };
    }
    for (const e of victims) this.byName.delete(key(e.group, e.event));
    return { ok: true, value: victims.length };
  }

  /**
   * Take back a probe point `add` just accepted, when the core's registration (which is async and
   * so cannot run inside `add`'s hook) failed afterwards: the registry is as before the add.
   */
  discard(probe: ProbeEntry): void {
    for (const ev of this.byName.values()) {
      const i = ev.probes.indexOf(probe);
      if (i < 0) continue;
      ev.probes.splice(i, 1);
      if (ev.probes.length === 0) this.byName.delete(key(ev.group, ev.event));
      return;
    }
  }

  /** events/GRP/EVENT/enable. False if there is no such event. */
  setEnabled(group: string, event: string, enabled: boolean): boolean {
    const ev = this.find(group, event);
    if (!ev) return false;
    ev.enabled = enabled;
    return true;
  }

  /**
   * A write() of one or more lines to kprobe_events / uprobe_events (ctx.kind; 'auto' behaves
   * like dynamic_events). Lines run in order; the first failure stops the write and is returned
   * (and logged in errorLog when the kernel logs it); lines before it stay in effect.
   */
  write(text: string, ctx: ParseContext, opts: WriteOptions = {}): WriteResult {
    if (opts.truncate && ctx.kind !== 'auto') {
      const cleared = this.clear(ctx.kind);
      if (!cleared.ok) return { ok: false, error: cleared.error, applied: 0 };
    }
    let applied = 0;
    for (const line of text.split('\n')) {
      if (splitCommand(line).tokens.length === 0) continue;
      const parsed = parseProbeDefinition(line, ctx);
      let error: ProbeError | undefined;
      if (!parsed.ok) error = parsed.error;
      else if (parsed.value.kind === 'delete') {
        const r = this.remove(parsed.value);
        if (!r.ok) error = r.error;
      } else {
        const r = this.add(parsed.value, opts);
        if (!r.ok) error = r.error;
      }
      if (error) {
        if (error.logged) {
          this.log.push(error);
          if (this.log.length > ERROR_LOG_MAX) this.log.shift();
        }
        return { ok: false, error, applied };
      }
      applied++;
    }
    return { ok: true, applied };
  }

  /** The file's contents: one normalised line per probe point (events in creation order). */
  list(flavor?: ProbeFlavor): string[] {
    return this.events(flavor).flatMap((e) => e.probes.map((p) => formatProbeEvent(p.definition)));
  }

  /**
   * kprobe_profile / uprobe_profile: per probe point, `  EVENT NHIT NMISSED` for kprobes and
   * `  PATH EVENT NHIT` for uprobes, in the kernel's column widths.
   */
  profile(flavor: ProbeFlavor): string[] {
    return this.events(flavor).flatMap((e) =>
      e.probes.map((p) => {
        const loc = p.definition.location;
        if (loc.type === 'file') return `  ${loc.path} ${e.event.padEnd(44)} ${String(p.hits).padStart(15)}`;
        return `  ${e.event.padEnd(44)} ${String(p.hits).padStart(15)} ${String(p.misses).padStart(15)}`;
      }),
    );
  }
}
