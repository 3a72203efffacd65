/**
 * The fetch-argument type system (`:TYPE`, §4): integer types, char, strings, symbols, bitfields
 * and arrays, with the kernel's default type and its checks on what each type may fetch.
 */
import { fail } from './failure.js';
import { kstrtoul, simpleStrtoul } from './numbers.js';

/** At most 64 array elements (MAX_ARRAY_LEN). */
export const MAX_ARRAY_LEN = 64;

export type FetchTypeKind = 'unsigned' | 'signed' | 'hex' | 'char' | 'string' | 'symbol' | 'symstr' | 'bitfield';

export interface FetchType {
  /** Canonical name: u8…x64, char, string, ustring, symbol, symstr, or `b<W>@<O>/<C>`. */
  name: string;
  kind: FetchTypeKind;
  /** Bytes of one element: 1/2/4/8; strings and symbols: the pointer size. */
  size: number;
  /** `ustring`: the string is read from user memory. */
  user?: boolean;
  /** Bitfield: `width` bits starting at bit `offset` (from the LSB) of a `container`-bit value. */
  bitfield?: { width: number; offset: number; container: 8 | 16 | 32 | 64 };
  /** `TYPE[N]`: N elements read from consecutive memory. */
  array?: number;
}

const INT_TYPES: Record<string, FetchType> = {};
for (const [prefix, kind] of [
  ['u', 'unsigned'],
  ['s', 'signed'],
  ['x', 'hex'],
] as const) {
  for (const bits of [8, 16, 32, 64]) INT_TYPES[`${prefix}${bits}`] = { name: `${prefix}${bits}`, kind, size: bits / 8 };
}

/** x64 on 64-bit targets, x32 on 32-bit ones. */
export function defaultFetchType(wordSize: number): FetchType {
  return { ...(INT_TYPES[`x${wordSize * 8}`] as FetchType) };
}

function stringType(name: 'string' | 'ustring', wordSize: number): FetchType {
  return name === 'ustring' ? { name, kind: 'string', size: wordSize, user: true } : { name, kind: 'string', size: wordSize };
}

/**
 * Look a type name up the way find_fetch_type does; undefined = BAD_TYPE. A bitfield is found by
 * its container only (`b…/C`, C = 8/16/32/64, base auto-detected); its width and offset are
 * checked later (checkBitfield), after the fetch body, as the kernel does.
 */
export function findFetchType(name: string, ctx: { wordSize: number; kernel: boolean }): FetchType | undefined {
  const int = INT_TYPES[name];
  if (int) return { ...int };
  switch (name) {
    case 'char':
      return { name, kind: 'char', size: 1 };
    case 'string':
    case 'ustring':
      return stringType(name, ctx.wordSize);
    case 'symbol':
      // Symbols are kernel addresses: uprobes have no such type.
      return ctx.kernel ? { name, kind: 'symbol', size: ctx.wordSize } : undefined;
    case 'symstr':
      return ctx.kernel ? { name, kind: 'symstr', size: ctx.wordSize } : undefined;
  }
  if (name[0] === 'b') {
    const slash = name.indexOf('/');
    if (slash < 0) return undefined;
    const container = kstrtoul(name.slice(slash + 1), 64);
    if (container !== 8n && container !== 16n && container !== 32n && container !== 64n) return undefined;
    const c = Number(container) as 8 | 16 | 32 | 64;
    return { name, kind: 'bitfield', size: c / 8, bitfield: { width: 0, offset: 0, container: c } };
  }
  return undefined;
}

/**
 * Width and offset of a bitfield type `b<W>@<O>/<C>` (container already validated): W ≥ 1 and
 * '@' right after it, O with at least one digit and '/' right after it, W + O ≤ C. Numbers read
 * like simple_strtoul (base auto-detected). Throws BAD_BITFIELD at `at` (the type's column).
 */
export function checkBitfield(type: FetchType, at: number): void {
  const bf = type.bitfield;
  if (!bf) return;
  const s = type.name;
  const w = simpleStrtoul(s, 1);
  if (w.value === 0n || s[w.end] !== '@') fail('BAD_BITFIELD', at);
  const o = simpleStrtoul(s, w.end + 1);
  if (o.end === w.end + 1 || s[o.end] !== '/') fail('BAD_BITFIELD', at);
  if (w.value + o.value > BigInt(bf.container)) fail('BAD_BITFIELD', at);
  bf.width = Number(w.value);
  bf.offset = Number(o.value);
  // Canonical name keeps what was written; semantics are in `bitfield`.
}

export interface TypeSpec {
  /** The type as written after ':' (array suffix included), undefined if none. */
  text?: string;
  /** Column of the type text inside the argument (first character after ':'). */
  offset: number;
  /** Name part (before '['). */
  name?: string;
  array?: number;
}

/**
 * Split `TYPE[N]` and check the array suffix (§4): missing ']' → ARRAY_NO_CLOSE at the end of the
 * type, text after ']' → BAD_ARRAY_SUFFIX just after it, N not a number or 0 → BAD_ARRAY_NUM and
 * N > 64 → ARRAY_TOO_BIG, both just after '['. `offset` = column of `text` in the argument.
 */
export function parseTypeSpec(text: string | undefined, offset: number): TypeSpec {
  if (text === undefined) return { offset };
  const open = text.indexOf('[');
  if (open < 0) return { text, offset, name: text };
  const close = text.indexOf(']', open);
  if (close < 0) fail('ARRAY_NO_CLOSE', offset + text.length);
  if (close !== text.length - 1) fail('BAD_ARRAY_SUFFIX', offset + close + 1);
  const n = kstrtoul(text.slice(open + 1, close), 32);
  if (n === undefined || n === 0n) fail('BAD_ARRAY_NUM', offset + open + 1);
  if (n > BigInt(MAX_ARRAY_LEN)) fail('ARRAY_TOO_BIG', offset + open + 1);
  return { text, offset, name: text.slice(0, open), array: Number(n) };
}
