/** Shared helpers for the tracefs-syntax tests. */
import { expect } from 'vitest';
import type { Target } from '../../arch/types.js';
import { parseProbeDefinition, type ParseContext } from '../../src/trace/parse.js';
import type { ProbeEventDefinition } from '../../src/trace/definition.js';
import type { ProbeError } from '../../src/trace/errors.js';

/**
 * Like the ftrace selftests' check_error: the '^' marks the caret; the command is the text without
 * it. A '^' after a trailing space means "one past the end" (len + 1).
 */
export function caret(marked: string): { command: string; position: number } {
  const position = marked.indexOf('^');
  if (position < 0) throw new Error(`no caret in ${marked}`);
  return { command: (marked.slice(0, position) + marked.slice(position + 1)).trim(), position };
}

export function ctxFor(kind: ParseContext['kind'], target: Target = 'x86_64', extra: Partial<ParseContext> = {}): ParseContext {
  return { target, kind, ...extra };
}

export function parseError(line: string, ctx: ParseContext): ProbeError {
  const r = parseProbeDefinition(line, ctx);
  if (r.ok) throw new Error(`expected an error for ${JSON.stringify(line)}, got ${JSON.stringify(r.value, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`);
  return r.error;
}

export function parseOk(line: string, ctx: ParseContext): ProbeEventDefinition {
  const r = parseProbeDefinition(line, ctx);
  if (!r.ok) throw new Error(`expected ${JSON.stringify(line)} to parse, got ${r.error.code} at ${r.error.position}: ${r.error.message}`);
  if (r.value.kind === 'delete') throw new Error('expected a probe, got a deletion');
  return r.value;
}

export function expectCaret(err: ProbeError, marked: string): void {
  const { command, position } = caret(marked);
  expect({ command: err.command, position: err.position }).toEqual({ command, position });
}
