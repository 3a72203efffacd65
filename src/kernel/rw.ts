/**
 * Streaming write(2)/writev(2): the guest's buffer is copied and handed on in bounded chunks, so
 * host memory stays at one chunk whatever the guest asks for (a 2 GiB write used to copy 2 GiB
 * into a host buffer first, writev of 1024 × 2 GiB grew past 6 GB).
 *
 * Linux's semantics are kept: the count is already capped at MAX_RW_COUNT; a fault part-way
 * returns the bytes written before it (as a pipe or tty write does), a fault before anything was
 * written returns -EFAULT; an error from the file itself likewise ends the call.
 */
import { MmFault, type Mm } from '../mm/mm.js';
import { E, err } from './errno.js';

/** Bytes copied from the guest per step (also the most one stdin read returns). */
export const RW_CHUNK = 1 << 16;

export function writeStreamed(mm: Mm, segs: ReadonlyArray<{ base: bigint; len: number }>, sink: (bytes: Uint8Array) => bigint): bigint {
  let total = 0;
  for (const s of segs) {
    for (let off = 0; off < s.len; ) {
      const n = Math.min(RW_CHUNK, s.len - off);
      let bytes: Uint8Array;
      try {
        bytes = mm.read(s.base + BigInt(off), n);
      } catch (e) {
        if (!(e instanceof MmFault)) throw e;
        return total > 0 ? BigInt(total) : err(E.EFAULT);
      }
      const r = sink(bytes);
      if (r < 0n) return total > 0 ? BigInt(total) : r;
      total += Number(r);
      off += n;
      if (Number(r) < n) return BigInt(total); // a short write ends the call
    }
  }
  return BigInt(total);
}
