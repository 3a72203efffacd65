/**
 * Output helpers for the command line: colours only on a terminal, and writes that reach the file
 * descriptor before the next guest instruction runs (so trace lines and the guest's own output
 * interleave in the order they happened).
 */
import { writeAll } from '../host-io.js';
import { closeSync, openSync } from 'node:fs';
import type { ProbeError } from '../trace/errors.js';
import { formatProbeError } from '../trace/errorlog.js';

/**
 * Colour on a stream when it is a terminal, unless NO_COLOR is set (https://no-color.org);
 * FORCE_COLOR=1/2/3/true forces it, FORCE_COLOR=0/false forbids it (Node's own convention).
 */
export function useColour(stream: { isTTY?: boolean }): boolean {
  const force = process.env.FORCE_COLOR;
  if (force === '0' || force === 'false') return false;
  if (force !== undefined && force !== '') return true;
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false;
  return stream.isTTY === true;
}

const SGR = { red: '31', green: '32', bold: '1', dim: '2', reset: '0' } as const;

export function paint(on: boolean, style: keyof typeof SGR, text: string): string {
  return on ? `\x1b[${SGR[style]}m${text}\x1b[0m` : text;
}

/** `uniprobe: error: MESSAGE` with the prefix in bold red on a terminal. */
export function errorLine(message: string, colour: boolean): string {
  return `${paint(colour, 'red', paint(colour, 'bold', 'uniprobe: error:'))} ${message}`;
}

/** DESIGN.md's three-line shape for a bad definition, the caret in green on a terminal. */
export function definitionErrorText(err: ProbeError, colour: boolean): string {
  const [first, command, caret] = formatProbeError(err).split('\n') as [string, string, string];
  const msg = first.replace(/^uniprobe: error: /, '');
  return [errorLine(msg, colour), command, caret.replace('^', paint(colour, 'green', '^'))].join('\n');
}

/** A line sink on a file descriptor: stderr, or a file opened for -o. */
export class LineSink {
  private constructor(
    private readonly fd: number,
    private readonly owned: boolean,
  ) {}

  static stderr(): LineSink {
    return new LineSink(2, false);
  }

  /** Standard output, for listings (a reader that stops early, as `| head` does, is fine). */
  static stdout(): LineSink {
    return new LineSink(1, false);
  }

  /** Create/truncate `path`; throws the fs error (the caller words it). */
  static file(path: string): LineSink {
    return new LineSink(openSync(path, 'w'), true);
  }

  write(line: string): void {
    writeAll(this.fd, Buffer.from(`${line}\n`, 'utf8'));
  }

  close(): void {
    if (this.owned) closeSync(this.fd);
  }
}

