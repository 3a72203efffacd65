/**
 * Listing definitions back the way reading `kprobe_events` / `uprobe_events` shows them (§6).
 *
 * - kprobe: `p:GRP/EVENT SYM[+OFF]` (decimal offset, `MOD:` kept), `0x<address>` for an address
 *   (padded to the pointer width; the kernel would print a hashed %p), `r[MAXACTIVE]:` for return
 *   probes (a `%return` place is listed as `r`).
 * - uprobe: `p|r:GRP/EVENT PATH:0x<offset, 16 hex digits on 64-bit, 8 on 32-bit>`, then
 *   `(0x<ref>)` when the reference counter offset is non-zero.
 * - then ` NAME=TEXT` per argument, TEXT as written (type included).
 *
 * parseProbeDefinition(formatProbeDefinition(d)) gives back d's meaning (names, place, args).
 */
import { archFor } from '../../arch/index.js';
import type { ProbeArg, ProbeDeletion, ProbeDefinition, ProbeEventDefinition, ProbeLocation } from './definition.js';
import { hex } from './numbers.js';

function wordSizeOf(def: ProbeEventDefinition): number {
  return archFor(def.target)?.wordSize ?? 8;
}

/** The place token as listed (also what a `-:` line must give to match one probe, §7). */
export function formatPlace(location: ProbeLocation, wordSize: number): string {
  switch (location.type) {
    case 'symbol': {
      const sym = location.module === undefined ? location.symbol : `${location.module}:${location.symbol}`;
      return location.offset === 0 ? sym : `${sym}+${location.offset}`;
    }
    case 'address':
      return `0x${hex(location.address, wordSize * 2)}`;
    case 'file': {
      const ref = location.refCtrOffset ? `(0x${hex(location.refCtrOffset)})` : '';
      return `${location.path}:0x${hex(location.offset, wordSize * 2)}${ref}`;
    }
  }
}

/** ` NAME=TEXT` as listed (without the leading space). */
export function formatArg(arg: ProbeArg): string {
  return `${arg.name}=${arg.text}`;
}

/** The head token: `p:GRP/EVENT`, `r:GRP/EVENT`, `r16:GRP/EVENT`. */
export function formatHead(def: ProbeEventDefinition): string {
  const max = def.kind === 'r' && def.flavor === 'kprobe' && def.maxactive !== undefined ? String(def.maxactive) : '';
  return `${def.kind}${max}:${def.group}/${def.event}`;
}

/** One line of `kprobe_events` / `uprobe_events` for this probe point. */
export function formatProbeEvent(def: ProbeEventDefinition): string {
  const parts = [formatHead(def), formatPlace(def.location, wordSizeOf(def)), ...def.args.map(formatArg)];
  return parts.join(' ');
}

export function formatProbeDeletion(del: ProbeDeletion): string {
  const name = del.group === undefined ? del.event : `${del.group}/${del.event}`;
  return [`-:${name}`, ...del.match].join(' ');
}

export function formatProbeDefinition(def: ProbeDefinition): string {
  return def.kind === 'delete' ? formatProbeDeletion(def) : formatProbeEvent(def);
}
