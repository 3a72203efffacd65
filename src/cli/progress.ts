/**
 * The progress line of long runs: on a terminal only, redrawn at most four times a second after
 * the first second, erased when the run ends. It goes to stderr, so it is shown only when trace
 * events do not go there too (they would interleave with it).
 */
import type { Machine } from '../kernel/machine.js';

export interface Progress {
  /** Machine's onQuantum callback. */
  tick(m: Machine): void;
  /** Erase the line before something else is written to the stream (the next tick redraws it). */
  clear(): void;
  /** Erase the line (end of run). */
  done(): void;
}

export function progressLine(stream: NodeJS.WriteStream, enabled: boolean): Progress | undefined {
  if (!enabled || !stream.isTTY) return undefined;
  const start = Date.now();
  let last = 0;
  let drawn = false;
  return {
    tick(m) {
      const now = Date.now();
      if (now - start < 1000 || now - last < 250) return;
      last = now;
      drawn = true;
      const live = m.processes.filter((p) => !p.zombie).length;
      const insns = m.insns >= 1e6 ? `${(m.insns / 1e6).toFixed(1)}M` : String(m.insns);
      stream.write(`\r\x1b[Kuniprobe: ${insns} guest instructions, ${live} process${live === 1 ? '' : 'es'} running, ${((now - start) / 1000).toFixed(1)} s`);
    },
    clear() {
      if (drawn) stream.write('\r\x1b[K');
      drawn = false;
      last = Date.now(); // let the other output stand a moment before the line comes back
    },
    done() {
      if (drawn) stream.write('\r\x1b[K');
      drawn = false;
    },
  };
}
