/**
 * Function entry points, as the kprobes core asks for them (kprobe_lookup_name,
 * arch_kprobe_on_func_entry). Most targets have one: the symbol's code address. ppc64 ELFv2 has
 * two — the global entry sets up the TOC pointer (r2) and the local entry, where direct calls
 * land, follows it — and Linux probes the local one, while either counts as the function's
 * entry for a return probe. Each Arch picks one of these as its `functionEntry`.
 */
import type { ElfSymbol } from '../src/elf/index.js';

export interface FunctionEntry {
  /** Where a probe on the symbol (offset 0) goes. */
  readonly probe: bigint;
  /** Every address that is an entry of the function (a return probe may only go there). */
  readonly entries: readonly bigint[];
}

/** One entry point: the code address. */
export const singleEntry = (sym: ElfSymbol): FunctionEntry => ({ probe: sym.codeAddress, entries: [sym.codeAddress] });

/** ppc64 ELFv2: probe the local entry (past the TOC set-up); both entries are entries. */
export const elfv2Entry = (sym: ElfSymbol): FunctionEntry =>
  sym.localEntry === sym.codeAddress ? singleEntry(sym) : { probe: sym.localEntry, entries: [sym.codeAddress, sym.localEntry] };
