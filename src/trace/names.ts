/**
 * Group and event names: the `[GRP/][EVENT]` part of the head (§2.2) and the default names the
 * kernel builds when EVENT is omitted (§6).
 */
import { fail } from './failure.js';
import { hex } from './numbers.js';

/** MAX_EVENT_NAME_LEN: names are at most 63 characters; generated names are cut at 63. */
export const MAX_EVENT_NAME_LEN = 64;

export const DEFAULT_GROUP = { kprobe: 'kprobes', uprobe: 'uprobes' } as const;

/** An event or argument name must look like a C identifier. */
export function isGoodName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}

/** A group ("system") name may also contain '-' after its first character. */
export function isGoodGroupName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(name);
}

/**
 * Parse the name-spec after "p:" (`spec` starts at column `offset` of token 0). Returns the group
 * (undefined: default) and the event (undefined: `GRP/` with an empty event, use the default
 * name). The separator is the first '/', else the first '.'.
 */
export function parseEventName(spec: string, offset: number): { group?: string; event?: string } {
  let sep = spec.indexOf('/');
  if (sep < 0) sep = spec.indexOf('.');
  let group: string | undefined;
  let event = spec;
  let at = offset;
  if (sep >= 0) {
    if (sep === 0) fail('NO_GROUP_NAME', at, 0);
    if (sep + 1 > MAX_EVENT_NAME_LEN) fail('GROUP_TOO_LONG', at, 0);
    group = spec.slice(0, sep);
    if (!isGoodGroupName(group)) fail('BAD_GROUP_NAME', at, 0);
    event = spec.slice(sep + 1);
    at += sep + 1;
  }
  if (event.length === 0) {
    // Current kernels: "GRP/" means "default event name in GRP"; "p:" alone names nothing.
    if (group !== undefined) return { group };
    fail('NO_EVENT_NAME', at, 0);
  }
  if (event.length >= MAX_EVENT_NAME_LEN) fail('EVENT_TOO_LONG', at, 0);
  if (!isGoodName(event)) fail('BAD_EVENT_NAME', at, 0);
  return group === undefined ? { event } : { group, event };
}

/** The kernel formats default names into a 64-byte buffer: anything past 63 characters is lost. */
function truncateName(name: string): string {
  return name.slice(0, MAX_EVENT_NAME_LEN - 1);
}

/**
 * Default kprobe event name for a symbol place: `<p|r>_<SYM>_<OFFS>` (decimal offset, the symbol
 * text as written, MOD: included), then ':' '.' '*' become '_' (never the first character,
 * which is the p/r letter anyway).
 */
export function defaultKprobeSymbolEventName(isReturn: boolean, symbolText: string, offset: number): string {
  const raw = truncateName(`${isReturn ? 'r' : 'p'}_${symbolText}_${offset}`);
  return raw[0] + raw.slice(1).replace(/[:.*]/g, '_');
}

/**
 * Default kprobe event name for an address place: `<p|r>_0x<%p of the address>`. Modern kernels
 * hash %p; we print the real address zero-padded to the pointer width, as a kernel booted with
 * no_hash_pointers does, so names are stable and meaningful.
 */
export function defaultKprobeAddressEventName(isReturn: boolean, address: bigint, wordSize: number): string {
  return truncateName(`${isReturn ? 'r' : 'p'}_0x${hex(address, wordSize * 2)}`);
}

/**
 * Default uprobe event name: `p_<basename cut at the first '.', '-' or '_'>_0x<offset hex>`.
 * Always 'p', even for return probes (the kernel hard-codes it).
 */
export function defaultUprobeEventName(path: string, offset: bigint): string {
  const slash = path.lastIndexOf('/');
  let base = slash >= 0 ? path.slice(slash + 1) : path;
  const cut = base.search(/[._-]/);
  if (cut >= 0) base = base.slice(0, cut);
  return truncateName(`p_${base}_0x${hex(offset)}`);
}
