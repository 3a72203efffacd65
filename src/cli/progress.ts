/**
 * The one progress line of every long command (`run`, `verify`, `explain`, `regress`): on a
 * terminal only, not in the first second (a short command prints nothing extra), redrawn at most
 * four times a second after that, and erased at the end.
 *
 * It shares stderr with warnings, errors and the guest's own stderr, so it must never be left
 * half-way on a line another message starts on. Two guards: callers that write to the file
 * descriptor directly (the guest's stderr, reports) call clear() first; and while the line is
 * alive the stream's write() is wrapped so that anything else written through it (a warning, the
 * error main() prints when a command fails midway) erases the line first. done() restores write().
 */
import type { Machine } from '../kernel/machine.js';

export interface Progress {
  /**
   * Show `status` (`uniprobe: STATUS, 3.2 s`) if a redraw is due. A function is called only then,
   * so a caller may pass a costly description at every step.
   */
  update(status: string | (() => string)): void;
  /** Machine's onQuantum callback: instructions and live processes. */
  tick(m: Machine): void;
  /** Erase the line before something else is written to the stream (the next update redraws it). */
  clear(): void;
  /** Erase the line and stop guarding the stream (end of the command). Idempotent. */
  done(): void;
}

/** Nothing in the first second; then at most one redraw per this many milliseconds. */
const FIRST_MS = 1000;
const EVERY_MS = 250;
const ERASE = '\r\x1b[K';

/** `12.3M` / `999`: instruction counts at a glance. */
export function count(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : String(n);
}

/** The run's status: instructions so far and processes still alive. */
export function machineStatus(m: Machine): string {
  const live = m.processes.filter((p) => !p.zombie).length;
  return `${count(m.insns)} guest instructions, ${live} process${live === 1 ? '' : 'es'} running`;
}

/** verify's onProgress worded: `probed run, 1.2M instructions`, `registering probes 512/3000`. */
export function verifyStatus(phase: string, n: number, total?: number): string {
  if (total !== undefined) return `${phase} ${n}/${total}`;
  return n ? `${phase}, ${count(n)} instructions` : phase;
}

/** A `[#####.....] 12/30 LABEL` bar, for work counted in items. */
export function bar(done: number, total: number, label: string, width = 24): string {
  const full = Math.min(width, Math.round((done / Math.max(1, total)) * width));
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${done}/${total} ${label}`;
}

type Write = NodeJS.WriteStream['write'];

/** A progress line on `stream`, or undefined when it is not a terminal or `enabled` is false. */
export function progressLine(stream: NodeJS.WriteStream, enabled = true): Progress | undefined {
  if (!enabled || !stream.isTTY) return undefined;
  const start = Date.now();
  let last = 0;
  let drawn = false;
  let finished = false;
  const own: Write = stream.write;
  const raw = (s: string): void => void own.call(stream, s);
  // Any other write first erases the line, and the message stands a moment before it comes back.
  const guarded = function (this: unknown, ...args: Parameters<Write>): boolean {
    if (drawn) {
      raw(ERASE);
      drawn = false;
      last = Date.now();
    }
    return (own as (...a: Parameters<Write>) => boolean).apply(stream, args);
  } as Write;
  stream.write = guarded;
  const p: Progress = {
    update(status) {
      if (finished) return;
      const now = Date.now();
      if (now - start < FIRST_MS || now - last < EVERY_MS) return;
      last = now;
      let line = `uniprobe: ${typeof status === 'function' ? status() : status}, ${((now - start) / 1000).toFixed(1)} s`;
      // A line that wraps cannot be erased by `\r\e[K` (that erases only the last row).
      const cols = stream.columns;
      if (cols && line.length > cols - 1) line = `${line.slice(0, Math.max(0, cols - 2))}…`;
      raw(`${ERASE}${line}`);
      drawn = true;
    },
    tick(m) {
      p.update(() => machineStatus(m));
    },
    clear() {
      if (drawn) raw(ERASE);
      drawn = false;
      last = Date.now(); // let the other output stand a moment before the line comes back
    },
    done() {
      if (drawn) raw(ERASE);
      drawn = false;
      if (!finished && stream.write === guarded) stream.write = own;
      finished = true;
    },
  };
  return p;
}
