/**
 * The kernel's probe-definition error table (trace_probe.h `ERRORS`), with the errno a write()
 * returns, plus the few failures the kernel reports with an errno only (no error_log entry).
 *
 * Messages are the upstream text, including its typos ("valiable", "an function"): users compare
 * them with what a real kernel prints.
 */
import { E } from '../kernel/errno.js';

export const KERNEL_ERROR_MESSAGES = {
  FILE_NOT_FOUND: 'Failed to find the given file',
  NO_REGULAR_FILE: 'Not a regular file',
  BAD_REFCNT: 'Invalid reference counter offset',
  REFCNT_OPEN_BRACE: 'Reference counter brace is not closed',
  BAD_REFCNT_SUFFIX: 'Reference counter has wrong suffix',
  BAD_UPROBE_OFFS: 'Invalid uprobe offset',
  BAD_MAXACT_TYPE: 'Maxactive is only for function exit',
  BAD_MAXACT: 'Invalid maxactive number',
  MAXACT_TOO_BIG: 'Maxactive is too big',
  BAD_PROBE_ADDR: 'Invalid probed address or symbol',
  NON_UNIQ_SYMBOL: 'The symbol is not unique',
  BAD_RETPROBE: 'Retprobe address must be an function entry',
  BAD_ADDR_SUFFIX: 'Invalid probed address suffix',
  NO_GROUP_NAME: 'Group name is not specified',
  GROUP_TOO_LONG: 'Group name is too long',
  BAD_GROUP_NAME: 'Group name must follow the same rules as C identifiers',
  NO_EVENT_NAME: 'Event name is not specified',
  EVENT_TOO_LONG: 'Event name is too long',
  BAD_EVENT_NAME: 'Event name must follow the same rules as C identifiers',
  EVENT_EXIST: 'Given group/event name is already used by another event',
  RETVAL_ON_PROBE: '$retval is not available on probe',
  NO_RETVAL: "This function returns 'void' type",
  BAD_STACK_NUM: 'Invalid stack number',
  BAD_ARG_NUM: 'Invalid argument number',
  BAD_VAR: 'Invalid $-valiable specified',
  BAD_REG_NAME: 'Invalid register name',
  BAD_MEM_ADDR: 'Invalid memory address',
  BAD_IMM: 'Invalid immediate value',
  IMMSTR_NO_CLOSE: `String is not closed with '"'`,
  FILE_ON_KPROBE: 'File offset is not available with kprobe',
  BAD_FILE_OFFS: 'Invalid file offset value',
  SYM_ON_UPROBE: 'Symbol is not available with uprobe',
  TOO_MANY_OPS: 'Dereference is too much nested',
  DEREF_NEED_BRACE: 'Dereference needs a brace',
  BAD_DEREF_OFFS: 'Invalid dereference offset',
  DEREF_OPEN_BRACE: 'Dereference brace is not closed',
  COMM_CANT_DEREF: '$comm can not be dereferenced',
  BAD_FETCH_ARG: 'Invalid fetch argument',
  ARRAY_NO_CLOSE: 'Array is not closed',
  BAD_ARRAY_SUFFIX: 'Array has wrong suffix',
  BAD_ARRAY_NUM: 'Invalid array size',
  ARRAY_TOO_BIG: 'Array number is too big',
  BAD_TYPE: 'Unknown type is specified',
  BAD_STRING: 'String accepts only memory argument',
  BAD_SYMSTRING: "Symbol String doesn't accept data/userdata",
  BAD_BITFIELD: 'Invalid bitfield',
  ARG_NAME_TOO_LONG: 'Argument name is too long',
  NO_ARG_NAME: 'Argument name is not specified',
  BAD_ARG_NAME: 'Argument name must follow the same rules as C identifiers',
  USED_ARG_NAME: 'This argument name is already used',
  ARG_TOO_LONG: 'Argument expression is too long',
  NO_ARG_BODY: 'No argument expression',
  BAD_INSN_BNDRY: 'Probe point is not an instruction boundary',
  FAIL_REG_PROBE: 'Failed to register probe event',
  DIFF_PROBE_TYPE: 'Probe type is different from existing probe',
  DIFF_ARG_TYPE: 'Argument type or name is different from existing probe',
  SAME_PROBE: 'There is already the exact same probe event',
  NOSUP_BTFARG: 'BTF is not available or not supported',
  NO_BTFARG: 'This variable is not found at this probe point',
  NO_BTF_ENTRY: 'No BTF entry for this probe point',
  BAD_VAR_ARGS: '$arg* must be an independent parameter without name etc.',
  NOFENTRY_ARGS: '$arg* can be used only on function entry or exit',
  DOUBLE_ARGS: '$arg* can be used only once in the parameters',
  ARGS_2LONG: '$arg* failed because the argument list is too long',
  ARGIDX_2BIG: '$argN index is too big',
  NO_PTR_STRCT: 'This is not a pointer to union/structure.',
  NOSUP_DAT_ARG: 'Non pointer structure/union argument is not supported.',
  BAD_HYPHEN: "Failed to parse single hyphen. Forgot '>'?",
  NO_BTF_FIELD: 'This field is not found.',
  BAD_BTF_TID: 'Failed to get BTF type info.',
  BAD_TYPE4STR: 'This type does not fit for string.',
  NEED_STRING_TYPE: '$comm and immediate-string only accepts string type',
  TOO_MANY_ARGS: 'Too many arguments are specified',
  TOO_MANY_EARGS: 'Too many entry arguments specified',
} as const;

/** A code of the kernel's error_log table. */
export type KernelErrorCode = keyof typeof KERNEL_ERROR_MESSAGES;

/**
 * Failures the kernel reports with an errno alone (nothing in error_log). We still give the user a
 * message: the kernel's bare EINVAL was the complaint that led to error_log in the first place.
 */
export const UNLOGGED_ERROR_MESSAGES = {
  /** No probe parser claims the line (§1.6): unknown letter, one token, wrong probe-point shape. */
  NOT_CLAIMED: 'Invalid probe definition',
  /** Longer than the 4094 characters a tracefs write buffer holds. */
  LINE_TOO_LONG: 'Probe definition is too long',
  /** Nothing but whitespace or a comment (the kernel does nothing; a library call wants a probe). */
  EMPTY: 'Empty probe definition',
  /** `-:` deletion errors (never logged): no matching event, or it is enabled / in use. */
  NO_SUCH_EVENT: 'No such probe event',
  EVENT_BUSY: 'Probe event is enabled or in use',
  /** `-:` with neither group nor event. */
  BAD_DELETE: 'Invalid probe deletion',
} as const;

export type UnloggedErrorCode = keyof typeof UNLOGGED_ERROR_MESSAGES;
export type TraceErrorCode = KernelErrorCode | UnloggedErrorCode;

/** Which tracefs file's parser produced the error (the error_log entry's subsystem). */
export type TraceSubsystem = 'trace_kprobe' | 'trace_uprobe';

export interface ProbeError {
  code: TraceErrorCode;
  message: string;
  /** Caret column: index into `command` of the offending character (may be command.length + 1). */
  position: number;
  /** The definition as the kernel logs it: its tokens joined with single spaces. */
  command: string;
  /** Positive Linux errno the tracefs write() would fail with. */
  errno: number;
  /** Whether the kernel writes an error_log entry for this failure. */
  logged: boolean;
  subsystem: TraceSubsystem;
}

/** errno of each logged code; everything not listed is EINVAL (§8 "errno returned by write()"). */
const KERNEL_ERRNO: Partial<Record<KernelErrorCode, number>> = {
  ARG_TOO_LONG: E.E2BIG,
  TOO_MANY_ARGS: E.E2BIG,
  FILE_NOT_FOUND: E.ENOENT,
  DIFF_PROBE_TYPE: E.EEXIST,
  DIFF_ARG_TYPE: E.EEXIST,
  SAME_PROBE: E.EEXIST,
  EVENT_EXIST: E.EEXIST,
  BAD_INSN_BNDRY: E.EILSEQ,
};

const UNLOGGED_ERRNO: Record<UnloggedErrorCode, number> = {
  NOT_CLAIMED: E.EINVAL,
  LINE_TOO_LONG: E.EINVAL,
  EMPTY: E.EINVAL,
  NO_SUCH_EVENT: E.ENOENT,
  EVENT_BUSY: E.EBUSY,
  BAD_DELETE: E.EINVAL,
};

export function isKernelErrorCode(code: string): code is KernelErrorCode {
  return Object.hasOwn(KERNEL_ERROR_MESSAGES, code);
}

/** Default errno of a code (a caller may override: FILE_NOT_FOUND returns the lookup's errno). */
export function errnoOf(code: TraceErrorCode): number {
  if (isKernelErrorCode(code)) return KERNEL_ERRNO[code] ?? E.EINVAL;
  return UNLOGGED_ERRNO[code];
}

export function messageOf(code: TraceErrorCode): string {
  return isKernelErrorCode(code) ? KERNEL_ERROR_MESSAGES[code] : UNLOGGED_ERROR_MESSAGES[code];
}

export function makeProbeError(
  code: TraceErrorCode,
  command: string,
  position: number,
  subsystem: TraceSubsystem,
  opts: { errno?: number; message?: string } = {},
): ProbeError {
  return {
    code,
    message: opts.message ?? messageOf(code),
    position,
    command,
    errno: opts.errno ?? errnoOf(code),
    logged: isKernelErrorCode(code),
    subsystem,
  };
}
