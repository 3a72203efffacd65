/**
 * Evaluating parsed fetch arguments (`ProbeArg`) at a probe hit, and printing the values the way
 * the kernel's trace output does.
 *
 * Evaluation is a pure function of a `FetchEnv` (registers, memory, the task): the machine-backed
 * environment lives in fetch-env.ts, tests use a table of bytes. Nothing here throws for guest
 * data: an unreadable address makes the argument a fault, printed `(fault)`.
 *
 * Semantics, step by step as the kernel's fetch programs run them (trace_probe_tmpl.h):
 * - A base (`%REG`, `$stackN`, `$argN`, `$retval`, `\IMM`, `$stack`) yields a word; an integer type
 *   keeps its low `size` bytes (registers are numbers, so this is endian-free).
 * - `@ADDR`, `@SYM±OFF`, `@+FOFF` and `±OFF(BASE)` load from memory. Inner loads read a word
 *   (an `unsigned long`); the outermost load reads the type's size, or N consecutive elements for
 *   `TYPE[N]`, in the target's byte order.
 * - For `string`/`ustring` the outermost load's address is where the string starts (the kernel
 *   turns that DEREF into its string store); for `string[N]` it is an array of N pointers.
 *   `\IMM:string` reads the string at IMM, `$comm` and `\"…"` are strings already.
 * - Which memory: on kprobes a plain load is a kernel read and `+u…(…)` or `ustring` a user read;
 *   on uprobes every load is a user read. The environment refuses a kernel read of a user address
 *   and a user read of a kernel address (x86's copy_from_kernel_nofault has refused user
 *   addresses since Linux 5.8), which is why `+0(%si):string` on a user pointer gives `(fault)`
 *   in a kprobe and `ustring` is the cure — as on a real kernel.
 * - Bitfields `b<W>@<O>/<C>`: (value >> O) masked to W bits, printed unsigned.
 */
import type { FetchNode, ProbeArg, ProbeFlavor } from './definition.js';
import type { FetchType } from './types.js';

/** The kernel copies at most PATH_MAX bytes of a string, NUL included (MAX_STRING_SIZE). */
export const MAX_STRING_SIZE = 4096;

/** What an argument evaluated to. Integers hold the raw, zero-extended bits of the type. */
export type ArgValue =
  | { kind: 'fault' }
  | { kind: 'int'; value: bigint }
  | { kind: 'string'; value: string }
  | { kind: 'array'; items: ArgValue[] };

const FAULT: ArgValue = Object.freeze({ kind: 'fault' });

/** Everything evaluation needs to know about the hit. */
export interface FetchEnv {
  readonly wordSize: 4 | 8;
  readonly endian: 'little' | 'big';
  /** A register by the kernel's name for the target (without '%'). */
  register(name: string): bigint;
  /** `$stack`. */
  stackPointer(): bigint;
  /** Address of `$stack0` (the stack's first word; differs from `$stack` on sparc64's biased %sp). */
  stackAddress(): bigint;
  /** `$argN` (1-based); undefined = not available here (fault). */
  arg(n: number): bigint | undefined;
  /** `$retval`; undefined = not available (fault). */
  retval(): bigint | undefined;
  comm(): string;
  /** Kernel memory (kprobe loads without `u`); undefined = fault. */
  readKernel(addr: bigint, len: number): Uint8Array | undefined;
  /** User memory of the current task; undefined = fault. */
  readUser(addr: bigint, len: number): Uint8Array | undefined;
  /** `@SYM` (kprobes): the symbol's address, resolved at registration. */
  symbolAddress(name: string): bigint | undefined;
  /** `@+FOFF` (uprobes): where that offset of the probed file is mapped in this task. */
  fileOffsetAddress?(offset: bigint): bigint | undefined;
  /** `%pS` of a kernel address: `sym+0xoff/0xsize`, or `0x…` when no symbol covers it. */
  symbolize(addr: bigint): string;
}

class Fault {}
const fault = new Fault();

function mask(value: bigint, bytes: number): bigint {
  return BigInt.asUintN(bytes * 8, value);
}

/** Decode `bytes` as an unsigned integer in the target's byte order. */
export function decodeUnsigned(bytes: Uint8Array, endian: 'little' | 'big'): bigint {
  let v = 0n;
  if (endian === 'little') for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  else for (let i = 0; i < bytes.length; i++) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}

interface Evaluator {
  readonly env: FetchEnv;
  readonly flavor: ProbeFlavor;
}

function read(ev: Evaluator, addr: bigint, len: number, user: boolean): Uint8Array {
  const a = mask(addr, ev.env.wordSize);
  const b = user || ev.flavor === 'uprobe' ? ev.env.readUser(a, len) : ev.env.readKernel(a, len);
  if (b === undefined || b.length !== len) throw fault;
  return b;
}

function readWord(ev: Evaluator, addr: bigint, user: boolean): bigint {
  return decodeUnsigned(read(ev, addr, ev.env.wordSize, user), ev.env.endian);
}

/** Memory nodes: where their (outermost) load reads, and whether it is a user read. */
function loadAddress(ev: Evaluator, node: FetchNode): { addr: bigint; user: boolean } {
  const ws = ev.env.wordSize;
  switch (node.type) {
    case 'memory':
      return { addr: node.address, user: false };
    case 'symbol': {
      const base = ev.env.symbolAddress(node.symbol);
      if (base === undefined) throw fault;
      return { addr: mask(base + node.offset, ws), user: false };
    }
    case 'file-offset': {
      const a = ev.env.fileOffsetAddress?.(node.offset);
      if (a === undefined) throw fault;
      return { addr: a, user: true };
    }
    case 'deref':
      return { addr: mask(wordValue(ev, node.base) + node.offset, ws), user: node.user };
    default:
      throw new Error(`internal: ${node.type} is not a memory fetch`);
  }
}

function isLoad(node: FetchNode): boolean {
  return node.type === 'memory' || node.type === 'symbol' || node.type === 'file-offset' || node.type === 'deref';
}

/** A node's value as a word: what an enclosing dereference adds its offset to. */
function wordValue(ev: Evaluator, node: FetchNode): bigint {
  const { env } = ev;
  switch (node.type) {
    case 'register':
      return mask(env.register(node.name), node.size);
    case 'stack-pointer':
      return env.stackPointer();
    case 'stack':
      // The kernel stack on kprobes, the user stack on uprobes (read() picks by flavor).
      return readWord(ev, env.stackAddress() + BigInt(node.index * env.wordSize), false);
    case 'arg': {
      const v = env.arg(node.index);
      if (v === undefined) throw fault;
      return mask(v, env.wordSize);
    }
    case 'retval': {
      const v = env.retval();
      if (v === undefined) throw fault;
      return mask(v, env.wordSize);
    }
    case 'immediate':
      return node.value;
    case 'comm':
    case 'immediate-string':
      // The parser refuses these inside a dereference (COMM_CANT_DEREF).
      throw new Error(`internal: ${node.type} has no numeric value`);
    default: {
      const { addr, user } = loadAddress(ev, node);
      return readWord(ev, addr, user);
    }
  }
}

/** A C string at `addr`: at most MAX_STRING_SIZE - 1 characters (the kernel keeps room for NUL). */
function readString(ev: Evaluator, addr: bigint, user: boolean): string {
  const bytes: number[] = [];
  // Page by page would be faster; strings in traces are short, and byte reads fault exactly where
  // the kernel's strncpy_from_*_nofault would.
  for (let i = 0; i < MAX_STRING_SIZE - 1; i++) {
    const c = read(ev, addr + BigInt(i), 1, user)[0]!;
    if (c === 0) break;
    bytes.push(c);
  }
  // The kernel copies bytes; the terminal that shows them decodes UTF-8, so do the same here.
  return Buffer.from(bytes).toString('utf8');
}

function intFromBytes(ev: Evaluator, bytes: Uint8Array): bigint {
  return decodeUnsigned(bytes, ev.env.endian);
}

function applyBitfield(type: FetchType, v: bigint): bigint {
  const bf = type.bitfield;
  if (!bf) return v;
  return (v >> BigInt(bf.offset)) & ((1n << BigInt(bf.width)) - 1n);
}

function evalString(ev: Evaluator, arg: ProbeArg): ArgValue {
  const { fetch, type } = arg;
  if (fetch.type === 'comm') return { kind: 'string', value: ev.env.comm() };
  if (fetch.type === 'immediate-string') return { kind: 'string', value: fetch.value };
  const user = type.user === true;
  if (fetch.type === 'immediate') return { kind: 'string', value: readString(ev, fetch.value, user) };
  const { addr, user: loadUser } = loadAddress(ev, fetch);
  const u = user || loadUser;
  if (type.array === undefined) return { kind: 'string', value: readString(ev, addr, u) };
  // string[N]: N pointers from addr on, each to a string (a fault spoils only its element).
  const items: ArgValue[] = [];
  for (let i = 0; i < type.array; i++) {
    try {
      const p = readWord(ev, addr + BigInt(i * ev.env.wordSize), loadUser);
      items.push({ kind: 'string', value: readString(ev, p, u) });
    } catch (e) {
      if (!(e instanceof Fault)) throw e;
      items.push(FAULT);
    }
  }
  return { kind: 'array', items };
}

function evalArg(ev: Evaluator, arg: ProbeArg): ArgValue {
  const { fetch, type } = arg;
  if (type.kind === 'string') return evalString(ev, arg);
  if (type.kind === 'symstr') {
    // The pointer-sized value itself (a load reads a word), then `%pS` as a string.
    const v = wordValue(ev, fetch);
    return { kind: 'string', value: ev.env.symbolize(v) };
  }
  if (isLoad(fetch)) {
    const { addr, user } = loadAddress(ev, fetch);
    const one = (at: bigint): ArgValue => ({ kind: 'int', value: applyBitfield(type, intFromBytes(ev, read(ev, at, type.size, user))) });
    if (type.array === undefined) return one(addr);
    // An array is one read in the kernel: a fault anywhere faults the whole argument.
    const items: ArgValue[] = [];
    for (let i = 0; i < type.array; i++) items.push(one(addr + BigInt(i * type.size)));
    return { kind: 'array', items };
  }
  return { kind: 'int', value: applyBitfield(type, mask(wordValue(ev, fetch), type.size)) };
}

/** Evaluate one argument at a hit. Guest faults give `{ kind: 'fault' }`; nothing else is caught. */
export function evaluateArg(arg: ProbeArg, env: FetchEnv, flavor: ProbeFlavor): ArgValue {
  try {
    return evalArg({ env, flavor }, arg);
  } catch (e) {
    if (e instanceof Fault) return FAULT;
    throw e;
  }
}

/** Every `$argN` index an argument list uses (kretprobes capture them at function entry). */
export function argIndexes(args: readonly ProbeArg[]): number[] {
  const out = new Set<number>();
  const walk = (n: FetchNode): void => {
    if (n.type === 'arg') out.add(n.index);
    else if (n.type === 'deref') walk(n.base);
  };
  for (const a of args) walk(a.fetch);
  return [...out].sort((a, b) => a - b);
}

/** Every `@SYM` an argument list reads (resolved at registration). */
export function symbolReferences(args: readonly ProbeArg[]): string[] {
  const out = new Set<string>();
  const walk = (n: FetchNode): void => {
    if (n.type === 'symbol') out.add(n.symbol);
    else if (n.type === 'deref') walk(n.base);
  };
  for (const a of args) walk(a.fetch);
  return [...out];
}

// --- printing --------------------------------------------------------------------------------

export const FAULT_STRING = '(fault)';

function scalarText(type: FetchType, v: bigint, symbolize: (a: bigint) => string): string {
  const bits = type.size * 8;
  switch (type.kind) {
    case 'unsigned':
    case 'bitfield':
      return v.toString();
    case 'signed':
      return BigInt.asIntN(bits, v).toString();
    case 'hex':
      return `0x${v.toString(16)}`;
    case 'char':
      return `'${String.fromCharCode(Number(v & 0xffn))}'`;
    case 'symbol':
      return symbolize(v);
    default:
      return v.toString();
  }
}

/**
 * The value as the kernel's trace output prints it: u* decimal, s* signed decimal, x* `0x%x`,
 * char `'c'`, symbol `%pS`, strings `"…"`, a faulted fetch `(fault)`, arrays `{a,b,…}`.
 * `symbolize` is `%pS` (used by the `symbol` type only).
 */
export function formatValueText(type: FetchType, value: ArgValue, symbolize: (a: bigint) => string = (a) => `0x${a.toString(16)}`): string {
  switch (value.kind) {
    case 'fault':
      return FAULT_STRING;
    case 'int':
      return scalarText(type, value.value, symbolize);
    case 'string':
      return `"${value.value}"`;
    case 'array':
      return `{${value.items.map((i) => formatValueText(type, i, symbolize)).join(',')}}`;
  }
}

export type JsonArgValue = string | null | JsonArgValue[];

/**
 * The value for `--format json`: integers as strings in the type's format (so 64-bit values
 * survive JSON), strings and chars bare (JSON quotes them), a fault `null`, arrays as arrays.
 */
export function formatValueJson(type: FetchType, value: ArgValue, symbolize: (a: bigint) => string = (a) => `0x${a.toString(16)}`): JsonArgValue {
  switch (value.kind) {
    case 'fault':
      return null;
    case 'int':
      return type.kind === 'char' ? String.fromCharCode(Number(value.value & 0xffn)) : scalarText(type, value.value, symbolize);
    case 'string':
      return value.value;
    case 'array':
      return value.items.map((i) => formatValueJson(type, i, symbolize));
  }
}
