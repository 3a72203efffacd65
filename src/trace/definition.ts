/**
 * The parsed, validated probe definitions the tracefs parser produces (what `kprobe_events` /
 * `uprobe_events` lines mean), independent of any machine.
 */
import type { Target } from '../../arch/types.js';
import type { FetchType } from './types.js';

export type ProbeFlavor = 'kprobe' | 'uprobe';

/** Where a kprobe goes: a kernel symbol (optionally MOD:SYM) plus offset… */
export interface SymbolLocation {
  type: 'symbol';
  /** The symbol without module prefix. */
  symbol: string;
  /** The module of `MOD:SYM`, when given. */
  module?: string;
  /** Byte offset from the symbol (0 … UINT_MAX). */
  offset: number;
}

/** …or a raw kernel address. */
export interface AddressLocation {
  type: 'address';
  address: bigint;
}

/** Where a uprobe goes: a file and a file offset (not a virtual address). */
export interface FileLocation {
  type: 'file';
  path: string;
  offset: bigint;
  /** The `(REF_CTR_OFFSET)` semaphore's file offset, when given (0 is not listed back). */
  refCtrOffset?: bigint;
}

export type ProbeLocation = SymbolLocation | AddressLocation | FileLocation;

/**
 * A fetch argument's data source, as a tree (dereferences nest). Register names are the kernel's
 * (the keys of `archFor(target).registers.byName`).
 */
export type FetchNode =
  | { type: 'register'; name: string; size: number }
  /** `@ADDR`: the word at an absolute address (kernel memory for kprobes, user memory for uprobes). */
  | { type: 'memory'; address: bigint }
  /** `@+OFFS` (uprobes): memory at a file offset of the probed file, in the probed process. */
  | { type: 'file-offset'; offset: bigint }
  /** `@SYM[+|-OFFS]` (kprobes): memory at a kernel data symbol, resolved at registration. */
  | { type: 'symbol'; symbol: string; offset: bigint }
  /** `$stack`: the stack pointer's value. */
  | { type: 'stack-pointer' }
  /** `$stackN`: the Nth word on the stack. */
  | { type: 'stack'; index: number }
  | { type: 'retval' }
  | { type: 'comm' }
  /** `$argN` (1-based): the Nth integer argument by the target's C ABI, read at function entry. */
  | { type: 'arg'; index: number }
  /** `\IMM`: the number itself. */
  | { type: 'immediate'; value: bigint }
  /** `\"TEXT"`: the string itself. */
  | { type: 'immediate-string'; value: string }
  /**
   * `±[u]OFFS(BASE)`: the memory at value(BASE) + offset. `user`: read user memory (`+u`; for
   * uprobes every read is a user read anyway). For a `string` type the string lives at that
   * address instead (the last memory load becomes the string copy, as in the kernel).
   */
  | { type: 'deref'; offset: bigint; user: boolean; base: FetchNode };

export interface ProbeArg {
  /** `NAME=` or the default `argN` (N = position in the line, from 1). */
  name: string;
  /** The argument as written after `NAME=`, type included: the kernel lists it back verbatim. */
  text: string;
  fetch: FetchNode;
  type: FetchType;
}

/** `p`/`r` definition of one probe point of an event. */
export interface ProbeEventDefinition {
  kind: 'p' | 'r';
  flavor: ProbeFlavor;
  target: Target;
  group: string;
  event: string;
  location: ProbeLocation;
  /** kretprobe MAXACTIVE (`r<N>`), when given. */
  maxactive?: number;
  args: ProbeArg[];
  /** The tokens joined with single spaces (the error_log "Command:"). */
  command: string;
  /** The command's tokens (for caret positions of errors found after parsing). */
  tokens: string[];
  /**
   * The kprobe place token named a function entry (SYM or SYM+0): the kernel's TPARG_FL_FENTRY,
   * which `$argN` on a kprobe needs. Always false for address kprobes (the kernel does not look).
   */
  atFunctionEntry: boolean;
}

/** `-:[GRP/]EVENT [PLACE [ARGS…]]`. */
export interface ProbeDeletion {
  kind: 'delete';
  /** Which file the line was written to; 'any' = dynamic_events style (every kind). */
  flavor: ProbeFlavor | 'any';
  /** Undefined: any group. */
  group?: string;
  event: string;
  /** Extra tokens: only the probe whose listing starts with these is removed (§7). */
  match: string[];
  command: string;
  tokens: string[];
}

export type ProbeDefinition = ProbeEventDefinition | ProbeDeletion;

export type ParseResult<T = ProbeDefinition> = { ok: true; value: T } | { ok: false; error: import('./errors.js').ProbeError };
