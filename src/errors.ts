/**
 * The engine's one error type. Every failure that reaches a user (CLI or library) is a
 * UniprobeError with a stable `code`, so callers can branch on the kind of failure and the CLI can
 * print one line `uniprobe: error: MESSAGE` without a stack trace.
 *
 * `errno` carries the Linux error number when the failure reproduces a kernel error
 * (registration returning -EINVAL, -EILSEQ, …), so tests can check the same value Linux returns.
 */
export type ErrorCode =
  | 'ELF' // malformed or unsupported ELF file
  | 'IO' // host file could not be read
  | 'UNICORN' // the emulator refused an operation
  | 'ARCH' // unsupported target or instruction set feature
  | 'MM' // address-space operation failed
  | 'KERNEL' // guest kernel image or system-call layer
  | 'USAGE' // bad command line or library call
  | 'PROBE' // probe registration / definition
  | 'SYNC' // locking rule broken
  | 'INTERNAL';

export class UniprobeError extends Error {
  readonly code: ErrorCode;
  readonly errno: number | undefined;

  constructor(code: ErrorCode, message: string, options: { errno?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UniprobeError';
    this.code = code;
    this.errno = options.errno;
  }
}

export function isUniprobeError(e: unknown): e is UniprobeError {
  return e instanceof UniprobeError;
}
