/**
 * The probe-definition language of `kprobe_events` / `uprobe_events` (tracefs), as a pure
 * function: one line in, a validated definition or the kernel's error (code, message, caret
 * column) out. Registration-time checks (symbol existence and uniqueness, instruction boundary,
 * path lookup) belong to the probe cores; optional hooks let a caller run the first of them at
 * the point of the parse where the kernel runs them, and `registrationError` builds the error
 * the kernel logs when one fails later.
 *
 * Where we go beyond the kernel (no error where Linux gives one):
 *  - `$argN` on uprobes and uretprobes (Linux: NOFENTRY_ARGS). The core reads the Nth integer
 *    argument of the target's C ABI; it is meaningful at a function's first instruction.
 *  - `$argN` on every target, sparc64 included (Linux lacks the argument-access API on sparc and
 *    answers BAD_VAR).
 *  - `%REG` accepts every name of the target's register table (arch `registers.byName`), which
 *    may hold a few aliases the kernel lacks (sparc64 `%sp`, `%fp`, `%pc`).
 * Deliberate differences:
 *  - Default names of address kprobes print the real address (`p_0x<16 hex digits>`), as a kernel
 *    booted with no_hash_pointers does, not a hashed pointer.
 *  - No BTF: bare identifiers and `$arg*` give NOSUP_BTFARG, so the BTF-only codes are never
 *    produced; the `%pd`/`%pD` types are not supported (BAD_TYPE).
 */
import { archFor } from '../../arch/index.js';
import type { Target } from '../../arch/types.js';
import { MAX_COMMAND_LINE, splitCommand, tokenPosition } from './command.js';
import type { ParseResult, ProbeArg, ProbeDefinition, ProbeDeletion, ProbeEventDefinition, ProbeFlavor, ProbeLocation } from './definition.js';
import { makeProbeError, type KernelErrorCode, type ProbeError, type TraceSubsystem } from './errors.js';
import { ParseFailure, fail } from './failure.js';
import { MAX_TRACE_ARGS, parseProbeArg, type FetchContext } from './fetch.js';
import {
  DEFAULT_GROUP,
  defaultKprobeAddressEventName,
  defaultKprobeSymbolEventName,
  defaultUprobeEventName,
  parseEventName,
} from './names.js';
import { kstrtol, kstrtoul } from './numbers.js';

/** kretprobe MAXACTIVE upper bound (KRETPROBE_MAXACTIVE_MAX). */
export const KRETPROBE_MAXACTIVE_MAX = 4096;
const UINT_MAX = 0xffffffffn;

export type PathStat = 'regular' | 'not-regular' | { errno: number };

export interface ParseContext {
  target: Target;
  /** Which file the line is written to; 'auto' = dynamic_events (kprobe parser first). */
  kind: ProbeFlavor | 'auto';
  /**
   * Optional: kallsyms lookup for a kprobe symbol, run where the kernel validates it (before the
   * event name and the arguments). Returns the number of matches, or undefined to defer (e.g. a
   * module that is not loaded). 0 → BAD_PROBE_ADDR, > 1 → NON_UNIQ_SYMBOL.
   */
  countSymbol?(symbol: string, module: string | undefined): number | undefined;
  /** Optional: path lookup for a uprobe file (symlinks followed). */
  statPath?(path: string): PathStat;
}

type NotMine = { notMine: string; position: number };

function notMine(reason: string, tokens: string[], token: number): NotMine {
  return { notMine: reason, position: tokenPosition(tokens, token) };
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function archInfo(target: Target): { wordSize: 4 | 8; registers: FetchContext['registers'] } {
  const arch = archFor(target);
  if (!arch) throw new Error(`unsupported target ${target}`);
  return { wordSize: arch.wordSize, registers: arch.registers.byName };
}

/** Parse the arguments (tokens 2…); failures name their token (i + 2). */
function parseArgs(tokens: string[], fctx: FetchContext): ProbeArg[] {
  const argTokens = tokens.slice(2);
  if (argTokens.length > MAX_TRACE_ARGS) fail('TOO_MANY_ARGS', 0, 2);
  const args: ProbeArg[] = [];
  argTokens.forEach((text, i) => {
    try {
      args.push(parseProbeArg(text, i, args, fctx));
    } catch (e) {
      if (e instanceof ParseFailure && e.token < 0) throw new ParseFailure(e.code, e.offset, i + 2, e.errno, e.message);
      throw e;
    }
  });
  return args;
}

/** What both probe kinds check first: the p/r letter and that a probe point follows. */
function probeHead(tokens: string[], ctx: ParseContext): NotMine | { head: string; isReturn: boolean; wordSize: 4 | 8; wordBits: number; registers: ReturnType<typeof archInfo>['registers'] } {
  const head = tokens[0] as string;
  if (head[0] !== 'p' && head[0] !== 'r') return notMine(`Unknown probe type '${head[0]}' (expected p, r or -:)`, tokens, 0);
  if (tokens.length < 2) return notMine('Probe point is not specified', tokens, 1);
  const { wordSize, registers } = archInfo(ctx.target);
  return { head, isReturn: head[0] === 'r', wordSize, wordBits: wordSize * 8, registers };
}

function parseKprobe(tokens: string[], command: string, ctx: ParseContext): ProbeEventDefinition | NotMine {
  const h = probeHead(tokens, ctx);
  if ('notMine' in h) return h;
  const { head, wordSize, registers, wordBits } = h;
  let isReturn = h.isReturn;
  // The name-spec starts after the first ':' past the letter; other junk there is ignored.
  const colon = head.indexOf(':', 1);

  let maxactive: number | undefined;
  if (isDigit(head[1])) {
    if (!isReturn) fail('BAD_MAXACT_TYPE', 1, 0);
    const text = colon >= 0 ? head.slice(1, colon) : head.slice(1);
    if (text.length > 63) fail('BAD_MAXACT', 1, 0);
    const n = kstrtoul(text, 32);
    if (n === undefined || n === 0n) fail('BAD_MAXACT', 1, 0);
    if (n > BigInt(KRETPROBE_MAXACTIVE_MAX)) fail('MAXACT_TOO_BIG', 1, 0);
    maxactive = Number(n);
  }

  const place = tokens[1] as string;
  let location: ProbeLocation;
  let atFunctionEntry = false;
  let symbolText = '';
  const address = kstrtoul(place, wordBits);
  if (address !== undefined) {
    location = { type: 'address', address };
  } else {
    if (place.includes('/') && place.includes(':')) return notMine(`Probe point '${place}' is a uprobe place (PATH:OFFSET)`, tokens, 1);
    symbolText = place;
    const pct = place.indexOf('%');
    if (pct >= 0) {
      if (place.slice(pct) !== '%return') fail('BAD_ADDR_SUFFIX', pct, 1);
      symbolText = place.slice(0, pct);
      isReturn = true;
    }
    let offset = 0n;
    const sign = symbolText.search(/[+-]/);
    if (sign >= 0) {
      const off = kstrtol(symbolText.slice(sign), wordBits);
      if (off === undefined || off < 0n || off > UINT_MAX) fail('BAD_PROBE_ADDR', 0, 1);
      offset = off;
      symbolText = symbolText.slice(0, sign);
    }
    const modColon = symbolText.indexOf(':');
    const module = modColon >= 0 ? symbolText.slice(0, modColon) : undefined;
    const symbol = modColon >= 0 ? symbolText.slice(modColon + 1) : symbolText;
    // An empty symbol can never resolve; say so now rather than at registration.
    if (symbol === '') fail('BAD_PROBE_ADDR', 0, 1);
    const count = ctx.countSymbol?.(symbol, module);
    if (count === 0) fail('BAD_PROBE_ADDR', 0, 1);
    if (count !== undefined && count > 1) fail('NON_UNIQ_SYMBOL', 0, 1);
    // A return probe must sit on the function entry, i.e. offset 0 on our targets.
    if (isReturn && offset !== 0n) fail('BAD_RETPROBE', 0, 1);
    atFunctionEntry = offset === 0n;
    location = module === undefined ? { type: 'symbol', symbol, offset: Number(offset) } : { type: 'symbol', symbol, module, offset: Number(offset) };
  }

  let group: string = DEFAULT_GROUP.kprobe;
  let event: string | undefined;
  if (colon >= 0) {
    const names = parseEventName(head.slice(colon + 1), colon + 1);
    if (names.group !== undefined) group = names.group;
    event = names.event;
  }
  if (event === undefined) {
    event =
      location.type === 'address'
        ? defaultKprobeAddressEventName(isReturn, location.address, wordSize)
        : defaultKprobeSymbolEventName(isReturn, symbolText, location.offset);
  }

  const args = parseArgs(tokens, { flavor: 'kprobe', isReturn, atFunctionEntry, registers, wordSize });
  const def: ProbeEventDefinition = {
    kind: isReturn ? 'r' : 'p',
    flavor: 'kprobe',
    target: ctx.target,
    group,
    event,
    location,
    args,
    command,
    tokens,
    atFunctionEntry,
  };
  if (maxactive !== undefined) def.maxactive = maxactive;
  return def;
}

function parseUprobe(tokens: string[], command: string, ctx: ParseContext): ProbeEventDefinition | NotMine {
  const h = probeHead(tokens, ctx);
  if ('notMine' in h) return h;
  const { head, wordSize, registers, wordBits } = h;
  let isReturn = h.isReturn;
  const place = tokens[1] as string;
  if (!place.includes('/')) return notMine(`Uprobe path must contain '/' (PATH:OFFSET)`, tokens, 1);
  // The LAST ':' splits path and offset, so paths may contain ':'.
  const split = place.lastIndexOf(':');
  if (split < 0 || !isDigit(place[split + 1])) return notMine('Uprobe offset must follow the last ":" and start with a digit', tokens, 1);
  const path = place.slice(0, split);
  const at = split + 1;
  let rest = place.slice(at);

  const stat = ctx.statPath?.(path);
  if (stat !== undefined && typeof stat === 'object') throw new ParseFailure('FILE_NOT_FOUND', 0, 1, stat.errno);
  if (stat === 'not-regular') fail('NO_REGULAR_FILE', 0, 1);

  // The reference counter is taken before the %return suffix, so `%return` must precede it.
  let refCtrOffset: bigint | undefined;
  const open = rest.indexOf('(');
  if (open >= 0) {
    const close = rest.indexOf(')', open);
    if (close < 0) fail('REFCNT_OPEN_BRACE', at + rest.length, 1);
    if (close !== rest.length - 1) fail('BAD_REFCNT_SUFFIX', at + close + 1, 1);
    const ref = kstrtoul(rest.slice(open + 1, close), wordBits);
    if (ref === undefined) fail('BAD_REFCNT', at + open + 1, 1);
    refCtrOffset = ref;
    rest = rest.slice(0, open);
  }
  const pct = rest.indexOf('%');
  if (pct >= 0) {
    if (rest.slice(pct) !== '%return') fail('BAD_ADDR_SUFFIX', at + pct, 1);
    rest = rest.slice(0, pct);
    isReturn = true;
  }
  const offset = kstrtoul(rest, wordBits);
  if (offset === undefined) fail('BAD_UPROBE_OFFS', at, 1);

  // Only "p:…"/"r:…" name the event here: `r10:ev` is a plain `r` with a default name.
  let group: string = DEFAULT_GROUP.uprobe;
  let event: string | undefined;
  if (head[1] === ':') {
    const names = parseEventName(head.slice(2), 2);
    if (names.group !== undefined) group = names.group;
    event = names.event;
  }
  event ??= defaultUprobeEventName(path, offset);

  const args = parseArgs(tokens, { flavor: 'uprobe', isReturn, atFunctionEntry: false, registers, wordSize });
  const location: ProbeLocation = refCtrOffset === undefined ? { type: 'file', path, offset } : { type: 'file', path, offset, refCtrOffset };
  return {
    kind: isReturn ? 'r' : 'p',
    flavor: 'uprobe',
    target: ctx.target,
    group,
    event,
    location,
    args,
    command,
    tokens,
    atFunctionEntry: false,
  };
}

function parseDeletion(tokens: string[], command: string, ctx: ParseContext): ProbeDeletion | ProbeError {
  const head = tokens[0] as string;
  const subsystem: TraceSubsystem = ctx.kind === 'uprobe' ? 'trace_uprobe' : 'trace_kprobe';
  if (head[1] !== ':') return makeProbeError('BAD_DELETE', command, 1, subsystem);
  const spec = head.slice(2);
  let sep = spec.indexOf('/');
  if (sep < 0) sep = spec.indexOf('.');
  const group = sep >= 0 ? spec.slice(0, sep) : undefined;
  const event = sep >= 0 ? spec.slice(sep + 1) : spec;
  if (group === undefined && event === '') return makeProbeError('BAD_DELETE', command, 2, subsystem);
  const del: ProbeDeletion = { kind: 'delete', flavor: ctx.kind === 'auto' ? 'any' : ctx.kind, event, match: tokens.slice(1), command, tokens };
  if (group !== undefined) del.group = group;
  return del;
}

function failureToError(e: ParseFailure, tokens: string[], command: string, subsystem: TraceSubsystem): ProbeError {
  const pos = tokenPosition(tokens, e.token < 0 ? 0 : e.token, e.offset);
  const opts: { errno?: number; message?: string } = {};
  if (e.errno !== undefined) opts.errno = e.errno;
  if (e.message !== undefined) opts.message = e.message;
  return makeProbeError(e.code, command, pos, subsystem, opts);
}

function runParser(
  parser: typeof parseKprobe,
  subsystem: TraceSubsystem,
  tokens: string[],
  command: string,
  ctx: ParseContext,
): ProbeEventDefinition | NotMine | ProbeError {
  try {
    return parser(tokens, command, ctx);
  } catch (e) {
    if (e instanceof ParseFailure) return failureToError(e, tokens, command, subsystem);
    throw e;
  }
}

/**
 * Parse one line of `kprobe_events` / `uprobe_events` syntax. Never throws for bad input (an
 * unsupported target is a programming error and does).
 */
export function parseProbeDefinition(text: string, ctx: ParseContext): ParseResult<ProbeDefinition> {
  const { tokens, command } = splitCommand(text);
  const subsystem: TraceSubsystem = ctx.kind === 'uprobe' ? 'trace_uprobe' : 'trace_kprobe';
  if (text.length > MAX_COMMAND_LINE) return { ok: false, error: makeProbeError('LINE_TOO_LONG', command, 0, subsystem) };
  if (tokens.length === 0) return { ok: false, error: makeProbeError('EMPTY', command, 0, subsystem) };
  if ((tokens[0] as string)[0] === '-') {
    const del = parseDeletion(tokens, command, ctx);
    return 'kind' in del ? { ok: true, value: del } : { ok: false, error: del };
  }
  const attempts: Array<[typeof parseKprobe, TraceSubsystem]> = [];
  if (ctx.kind !== 'uprobe') attempts.push([parseKprobe, 'trace_kprobe']);
  if (ctx.kind !== 'kprobe') attempts.push([parseUprobe, 'trace_uprobe']);
  let last: NotMine | undefined;
  for (const [parser, sub] of attempts) {
    const r = runParser(parser, sub, tokens, command, ctx);
    if ('notMine' in r) {
      last = r;
      continue;
    }
    if ('kind' in r) return { ok: true, value: r };
    return { ok: false, error: r };
  }
  const why = last ?? { notMine: 'Invalid probe definition', position: 0 };
  return { ok: false, error: makeProbeError('NOT_CLAIMED', command, why.position, subsystem, { message: why.notMine }) };
}

/** Parse a probe (not a deletion); a `-:` line is an error here. */
export function parseProbeEvent(text: string, ctx: ParseContext): ParseResult<ProbeEventDefinition> {
  const r = parseProbeDefinition(text, ctx);
  if (!r.ok || r.value.kind !== 'delete') return r as ParseResult<ProbeEventDefinition>;
  const sub: TraceSubsystem = ctx.kind === 'uprobe' ? 'trace_uprobe' : 'trace_kprobe';
  return { ok: false, error: makeProbeError('NOT_CLAIMED', r.value.command, 0, sub, { message: 'Expected a probe definition, not a deletion' }) };
}

/**
 * The error the kernel logs when a parsed definition fails later (registration, or appending to
 * an existing event): caret on the place for BAD_PROBE_ADDR, NON_UNIQ_SYMBOL, BAD_RETPROBE,
 * BAD_INSN_BNDRY, FAIL_REG_PROBE, FILE_NOT_FOUND, NO_REGULAR_FILE; at 0 for EVENT_EXIST,
 * DIFF_PROBE_TYPE, SAME_PROBE; on argument `argIndex` (0-based; past the end allowed) for
 * DIFF_ARG_TYPE and argument errors.
 */
export function registrationError(
  def: ProbeEventDefinition,
  code: KernelErrorCode,
  opts: { argIndex?: number; errno?: number } = {},
): ProbeError {
  let pos: number;
  if (opts.argIndex !== undefined) pos = tokenPosition(def.tokens, opts.argIndex + 2);
  else if (code === 'EVENT_EXIST' || code === 'DIFF_PROBE_TYPE' || code === 'SAME_PROBE') pos = 0;
  else pos = tokenPosition(def.tokens, 1);
  const subsystem: TraceSubsystem = def.flavor === 'uprobe' ? 'trace_uprobe' : 'trace_kprobe';
  return makeProbeError(code, def.command, pos, subsystem, opts.errno === undefined ? {} : { errno: opts.errno });
}
