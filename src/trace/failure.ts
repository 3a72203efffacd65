/**
 * Internal: how the parser's pieces report an error before parse.ts turns it into a ProbeError.
 * Like the kernel's trace_probe_log, an error names a token (index into argv) and an offset
 * inside it; the caret column follows from the tokens (§8).
 */
import type { TraceErrorCode } from './errors.js';

export class ParseFailure {
  constructor(
    readonly code: TraceErrorCode,
    /** Offset inside the token (or inside the argument, for fetch args). */
    readonly offset: number,
    /** Token index; fetch-arg parsers leave it to the caller (-1). */
    readonly token = -1,
    readonly errno?: number,
    readonly message?: string,
  ) {}
}

export function fail(code: TraceErrorCode, offset: number, token = -1): never {
  throw new ParseFailure(code, offset, token);
}
