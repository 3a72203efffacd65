/**
 * Writing to host file descriptors the way a CLI must: a full non-blocking pipe is retried, a
 * reader that went away (EPIPE) ends the output quietly instead of crashing the run.
 */
import { writeSync } from 'node:fs';

export function writeAll(fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) {
    try {
      off += writeSync(fd, bytes, off, bytes.length - off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') continue;
      if (code === 'EPIPE') return;
      throw e;
    }
  }
}
