/**
 * Fetch arguments (§3): `[NAME=]BODY[:TYPE]` → a named, typed fetch tree.
 *
 * Offsets in errors count from the start of the argument token, `NAME=` included: an error in a
 * (sub-)body points at its first character; an error a dereference finds after parsing its inner
 * body (COMM_CANT_DEREF, TOO_MANY_OPS) points at that inner body, just after the '(' (the ftrace
 * selftests pin `+0(^$comm)` and, for 14 levels over `@0`, the caret after the outermost '(').
 */
import type { FetchNode, ProbeArg, ProbeFlavor } from './definition.js';
import { fail } from './failure.js';
import { isGoodName } from './names.js';
import { kstrtol, kstrtoul } from './numbers.js';
import { checkBitfield, defaultFetchType, findFetchType, parseTypeSpec, type FetchType } from './types.js';

/** Argument names: 1 to 32 characters (MAX_ARG_NAME_LEN). */
export const MAX_ARG_NAME_LEN = 32;
/** Argument body (after NAME=, type included): 1 to 63 characters (MAX_ARGSTR_LEN). */
export const MAX_ARGSTR_LEN = 63;
/** Arguments per probe (MAX_TRACE_ARGS). */
export const MAX_TRACE_ARGS = 128;
/**
 * `$stackN` / `$argN` limit on kprobes: THREAD_SIZE / sizeof(long). That is 2048 on all five
 * targets (16 KiB / 8 on x86-64, ppc64, sparc64; 8 KiB / 4 on i386 and ppc32).
 */
export const PARAM_MAX_STACK = 2048;
/**
 * A fetch program has FETCH_INSN_MAX = 16 steps; the last is kept for the END step, so parsing
 * fails when a step would land in slot 15. A register base uses one step, `@ADDR` two, `@SYM`
 * three, each dereference one more; the final memory load doubles as the store step, other
 * fetches need a store step; a bitfield and an array take one step each. So 14 nested
 * dereferences of a register fit and the 15th does not.
 */
export const FETCH_INSN_MAX = 16;

/** Field names every trace event already has: an argument may not take them (§3). */
export const RESERVED_FIELD_NAMES: readonly string[] = [
  'common_type',
  'common_flags',
  'common_preempt_count',
  'common_pid',
  'common_tgid',
  '__probe_ip',
  '__probe_ret_ip',
  '__probe_func',
];

export interface FetchContext {
  flavor: ProbeFlavor;
  isReturn: boolean;
  /** Kprobe at SYM or SYM+0 (the kernel's TPARG_FL_FENTRY): `$argN` allowed. */
  atFunctionEntry: boolean;
  registers: ReadonlyMap<string, { id: number; size: number }>;
  wordSize: 4 | 8;
}

interface BodyState {
  readonly ctx: FetchContext;
  /** Fetch-program steps used so far. */
  steps: number;
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

/** One more fetch-program step; `at` = where the caret goes if it does not fit. */
function addStep(st: BodyState, at: number): void {
  if (st.steps + 1 >= FETCH_INSN_MAX) fail('TOO_MANY_OPS', at);
  st.steps++;
}

/** Fetches whose last step is a memory load (deref): what arrays and strings need. */
function endsInMemoryLoad(n: FetchNode): boolean {
  return n.type === 'deref' || n.type === 'memory' || n.type === 'symbol' || n.type === 'file-offset';
}

/** Parse `$…` (text without the '$'). `named`: the argument has `NAME=`. */
function parseVariable(name: string, st: BodyState, at: number, nested: boolean, named: boolean): FetchNode {
  const { ctx } = st;
  if (name === 'retval') {
    if (!ctx.isReturn) fail('RETVAL_ON_PROBE', at);
    return { type: 'retval' };
  }
  if (name === 'comm' || name === 'COMM') return { type: 'comm' };
  if (name.startsWith('stack')) {
    const rest = name.slice(5);
    if (rest === '') return { type: 'stack-pointer' };
    if (!isDigit(rest[0])) fail('BAD_VAR', at);
    const n = kstrtoul(rest, 64, 10);
    if (n === undefined) fail('BAD_VAR', at);
    // Kernel stacks are THREAD_SIZE; user stacks have no such bound.
    if (ctx.flavor === 'kprobe' && n > BigInt(PARAM_MAX_STACK)) fail('BAD_STACK_NUM', at);
    return { type: 'stack', index: Number(n) };
  }
  if (name === 'arg*') {
    // `$arg*` expands from BTF, which we do not have; inside a name or a dereference the kernel
    // never expands it and the variable parser rejects it.
    fail(nested || named ? 'BAD_VAR' : 'NOSUP_BTFARG', at);
  }
  if (name.startsWith('arg')) {
    const rest = name.slice(3);
    if (!/^[0-9]+$/.test(rest)) fail('BAD_VAR', at);
    const n = kstrtoul(rest, 64, 10);
    if (n === undefined) fail('BAD_VAR', at);
    if (n === 0n || n > BigInt(PARAM_MAX_STACK)) fail('BAD_ARG_NUM', at);
    // Kprobes: function entry, or a return probe (newer kernels save entry arguments for the
    // exit). Uprobes: our extension, the core reads the ABI argument at the probed address.
    if (ctx.flavor === 'kprobe' && !ctx.atFunctionEntry && !ctx.isReturn) fail('NOFENTRY_ARGS', at);
    return { type: 'arg', index: Number(n) };
  }
  fail('BAD_VAR', at);
}

/** `\IMM`: a number starting with a digit (base auto-detected), or with '+' / '-'. */
function parseImmediate(text: string, wordSize: number): bigint | undefined {
  const bits = wordSize * 8;
  let v: bigint | undefined;
  if (isDigit(text[0])) v = kstrtoul(text, bits);
  else if (text[0] === '-') v = kstrtol(text, bits);
  else if (text[0] === '+') v = kstrtol(text.slice(1), bits);
  if (v === undefined) return undefined;
  return BigInt.asUintN(bits, v);
}

/** One fetch body (no type), starting at column `at` of the argument. */
function parseBody(text: string, st: BodyState, at: number, nested: boolean, named: boolean): FetchNode {
  const { ctx } = st;
  const bits = ctx.wordSize * 8;
  switch (text[0]) {
    case '%': {
      const reg = ctx.registers.get(text.slice(1));
      if (!reg) fail('BAD_REG_NAME', at);
      addStep(st, at);
      return { type: 'register', name: text.slice(1), size: reg.size };
    }
    case '$': {
      const node = parseVariable(text.slice(1), st, at, nested, named);
      addStep(st, at);
      return node;
    }
    case '@': {
      let node: FetchNode;
      if (isDigit(text[1])) {
        const addr = kstrtoul(text.slice(1), bits);
        if (addr === undefined) fail('BAD_MEM_ADDR', at);
        node = { type: 'memory', address: addr };
        addStep(st, at); // the address as an immediate
      } else if (text[1] === '+') {
        if (ctx.flavor === 'kprobe') fail('FILE_ON_KPROBE', at);
        const off = kstrtol(text.slice(1), bits);
        if (off === undefined) fail('BAD_FILE_OFFS', at);
        node = { type: 'file-offset', offset: off };
        addStep(st, at);
      } else {
        if (ctx.flavor === 'uprobe') fail('SYM_ON_UPROBE', at);
        const spec = text.slice(1);
        const sign = spec.search(/[+-]/);
        let symbol = spec;
        let offset = 0n;
        if (sign >= 0) {
          const off = kstrtol(spec.slice(sign), bits);
          if (off === undefined) fail('BAD_MEM_ADDR', at);
          symbol = spec.slice(0, sign);
          offset = off;
        }
        // An empty symbol (`@`, `@-8`) is not a parse error: the kernel keeps the name for
        // registration, whose lookup fails with ENOENT — BAD_PROBE_ADDR at the probe point.
        node = { type: 'symbol', symbol, offset };
        addStep(st, at); // the symbol kept for (re)resolution
        addStep(st, at); // its address as an immediate
      }
      addStep(st, at); // the load from memory
      return node;
    }
    case '+':
    case '-': {
      const paren = text.indexOf('(');
      if (paren < 0) fail('DEREF_NEED_BRACE', at);
      const prefix = text.slice(0, paren);
      const user = prefix[1] === 'u';
      const offset = kstrtol(user ? prefix[0] + prefix.slice(2) : prefix, bits);
      if (offset === undefined) fail('BAD_DEREF_OFFS', at);
      const innerAt = at + paren + 1;
      const rest = text.slice(paren + 1);
      // The first '(' and the LAST ')': anything after that ')' is ignored, as in the kernel.
      const close = rest.lastIndexOf(')');
      if (close < 0) fail('DEREF_OPEN_BRACE', innerAt + rest.length);
      const base = parseBody(rest.slice(0, close), st, innerAt, true, named);
      if (base.type === 'comm' || base.type === 'immediate-string') fail('COMM_CANT_DEREF', innerAt);
      addStep(st, innerAt);
      return { type: 'deref', offset, user, base };
    }
    case '\\': {
      if (text[1] === '"') {
        const quoted = text.slice(2);
        if (quoted.length === 0 || !quoted.endsWith('"')) fail('IMMSTR_NO_CLOSE', at + text.length);
        addStep(st, at);
        return { type: 'immediate-string', value: quoted.slice(0, -1) };
      }
      const v = parseImmediate(text.slice(1), ctx.wordSize);
      if (v === undefined) fail('BAD_IMM', at + 1);
      addStep(st, at);
      return { type: 'immediate', value: v };
    }
  }
  // A bare identifier names a BTF parameter; without BTF the kernel refuses it.
  if (/^[A-Za-z_]/.test(text)) fail('NOSUP_BTFARG', at);
  fail('BAD_FETCH_ARG', at);
}

function isCommOrImmString(body: string): boolean {
  return body === '$comm' || body === '$COMM' || body.startsWith('\\"');
}

/**
 * Parse argument `index` (0-based) of a probe line. `previous` = the arguments already parsed
 * (names must not repeat). Throws ParseFailure with the offset inside `arg`.
 */
export function parseProbeArg(arg: string, index: number, previous: readonly ProbeArg[], ctx: FetchContext): ProbeArg {
  const eq = arg.indexOf('=');
  let name: string;
  let bodyAt = 0;
  if (eq >= 0) {
    if (eq > MAX_ARG_NAME_LEN) fail('ARG_NAME_TOO_LONG', 0);
    if (eq === 0) fail('NO_ARG_NAME', 0);
    name = arg.slice(0, eq);
    bodyAt = eq + 1;
  } else {
    name = `arg${index + 1}`;
  }
  if (!isGoodName(name)) fail('BAD_ARG_NAME', 0);
  // Default names count too: `arg2=%ax %bx` makes the second one's `arg2` a duplicate.
  if (RESERVED_FIELD_NAMES.includes(name) || previous.some((p) => p.name === name)) fail('USED_ARG_NAME', 0);

  const text = arg.slice(bodyAt);
  if (text.length === 0) fail('NO_ARG_BODY', bodyAt);
  if (text.length > MAX_ARGSTR_LEN) fail('ARG_TOO_LONG', bodyAt);

  // The type comes first, split at the FIRST ':' (so `%ax::x16` has the type ":x16").
  const colon = text.indexOf(':');
  const body = colon >= 0 ? text.slice(0, colon) : text;
  const typeAt = colon >= 0 ? bodyAt + colon + 1 : bodyAt;
  const spec = parseTypeSpec(colon >= 0 ? text.slice(colon + 1) : undefined, typeAt);

  let type: FetchType | undefined;
  if (isCommOrImmString(body)) {
    // $comm and immediate strings are strings: no other type, no array.
    if (spec.array !== undefined || (spec.name !== undefined && spec.name !== 'string')) fail('NEED_STRING_TYPE', typeAt);
    type = findFetchType('string', { wordSize: ctx.wordSize, kernel: ctx.flavor === 'kprobe' });
  } else if (spec.name === undefined) {
    type = defaultFetchType(ctx.wordSize);
  } else {
    type = findFetchType(spec.name, { wordSize: ctx.wordSize, kernel: ctx.flavor === 'kprobe' });
  }
  if (!type) fail('BAD_TYPE', typeAt);
  if (spec.array !== undefined) type.array = spec.array;

  const st: BodyState = { ctx, steps: 0 };
  const fetch = parseBody(body, st, bodyAt, false, eq >= 0);

  // The store step and the type's constraints on what it may fetch.
  if (type.kind === 'symstr') {
    const ok = ['register', 'stack', 'retval', 'arg'].includes(fetch.type) || endsInMemoryLoad(fetch);
    if (!ok) fail('BAD_SYMSTRING', typeAt);
  }
  if (type.kind === 'string') {
    const ok = endsInMemoryLoad(fetch) || ['immediate', 'comm', 'immediate-string'].includes(fetch.type);
    if (!ok) fail('BAD_STRING', typeAt);
  }
  if (type.array !== undefined && !endsInMemoryLoad(fetch)) fail('BAD_STRING', typeAt);
  if (!endsInMemoryLoad(fetch)) addStep(st, typeAt);
  if (type.bitfield) {
    checkBitfield(type, typeAt);
    addStep(st, typeAt);
  }
  if (type.array !== undefined) addStep(st, typeAt);

  return { name, text, fetch, type };
}
