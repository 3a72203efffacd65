/**
 * Printing a definition error.
 *
 * The kernel's error_log entry is three lines:
 *   [<secs>.<usecs>] trace_kprobe: error: <message>
 *     Command: <command>
 *   <11 + pos spaces>^
 * "  Command: " is 11 characters wide, so the caret stands under character `pos` of the command.
 * uniprobe prints the same shape with `uniprobe` as the subsystem (DESIGN.md, "Command line").
 */
import type { ProbeError } from './errors.js';

const COMMAND_PREFIX = '  Command: ';

function caretLine(err: ProbeError): string {
  return ' '.repeat(COMMAND_PREFIX.length + err.position) + '^';
}

/** `uniprobe: error: MESSAGE` / `  Command: DEF` / caret line (no trailing newline). */
export function formatProbeError(err: ProbeError, prefix = 'uniprobe'): string {
  return [`${prefix}: error: ${err.message}`, `${COMMAND_PREFIX}${err.command}`, caretLine(err)].join('\n');
}

/**
 * The entry exactly as the kernel's error_log shows it, `timestampUs` (microseconds since boot)
 * printed as `[%5lu.%06lu]`. Undefined for failures the kernel does not log.
 */
export function formatKernelErrorLog(err: ProbeError, timestampUs = 0): string | undefined {
  if (!err.logged) return undefined;
  const secs = Math.floor(timestampUs / 1e6);
  const usecs = timestampUs % 1e6;
  const stamp = `[${String(secs).padStart(5, ' ')}.${String(usecs).padStart(6, '0')}]`;
  return [`${stamp} ${err.subsystem}: error: ${err.message}`, `${COMMAND_PREFIX}${err.command}`, caretLine(err)].join('\n');
}
