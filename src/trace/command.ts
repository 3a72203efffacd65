/**
 * One tracefs command line as the kernel sees it: comment stripped, split into tokens like
 * `argv_split`, and the error_log's idea of positions (§1, §8).
 */

/** A write buffer is 4096 bytes; a line may use 4094 of them (§1.1). Longer: EINVAL, no log. */
export const MAX_COMMAND_LINE = 4094;

export interface CommandLine {
  tokens: string[];
  /** Tokens joined with single spaces: what error_log shows after "Command:". */
  command: string;
}

/** Everything from the first '#' is a comment (so '#' can never appear in a probe). */
export function splitCommand(line: string): CommandLine {
  const hash = line.indexOf('#');
  const body = hash >= 0 ? line.slice(0, hash) : line;
  // argv_split splits on isspace(): space, \t, \n, \v, \f, \r.
  const tokens = body.split(/[ \t\n\v\f\r]+/).filter((t) => t.length > 0);
  return { tokens, command: tokens.join(' ') };
}

/**
 * Caret column of offset `offset` inside token `index` (§8): the lengths of the earlier tokens,
 * each plus its separating space. An index past the last token points one past the command's end,
 * as if one space had been appended.
 */
export function tokenPosition(tokens: readonly string[], index: number, offset = 0): number {
  if (index >= tokens.length) {
    const len = tokens.join(' ').length;
    return len + 1;
  }
  let pos = 0;
  for (let i = 0; i < index; i++) pos += (tokens[i] as string).length + 1;
  return pos + offset;
}
