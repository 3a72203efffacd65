/**
 * Pipes (fs/pipe.c), as pipe(7) defines them:
 * - capacity 65,536 bytes (16 pages; small writes merge into the last page, so bytes are what
 *   count), F_GETPIPE_SZ reports it;
 * - a read returns what is there (up to the count); on an empty pipe it returns 0 when no writer
 *   is left, EAGAIN with O_NONBLOCK, and otherwise the task sleeps until a writer writes or goes;
 * - a write of at most PIPE_BUF (4,096) bytes is atomic: it waits (or fails with EAGAIN) until
 *   all of it fits; a larger write may be split, and returns what it wrote when it would block
 *   under O_NONBLOCK; with no reader left a write fails with EPIPE and the writer gets SIGPIPE
 *   (a write that already wrote something returns that count instead).
 *
 * Blocking is the caller's: an operation that must wait returns `BLOCK` with nothing consumed
 * (or the progress of a partial write kept in the pipe, as Linux keeps it), and the wait queue
 * wakes sleepers when data, room, or the last reader or writer changes.
 */
import { E } from '../kernel/errno.js';

export const PIPE_BUF = 4096;
export const PIPE_DEF_CAPACITY = 65536;

/** The task must sleep on `pipe.waiters` and retry. */
export const BLOCK = Symbol('block');

export interface WriteResult {
  /** Bytes written, or -errno. */
  result: number;
  /** The writer gets SIGPIPE (no reader was left). */
  sigpipe: boolean;
}

let nextPipeId = 1;

export class Pipe {
  /** The pipefs inode number (fstat's st_ino, /proc's "pipe:[N]"). */
  readonly id = nextPipeId++;
  private chunks: Uint8Array[] = [];
  private head = 0; // bytes of chunks[0] already read
  private used = 0;
  readers = 0;
  writers = 0;
  /** F_SETPIPE_SZ may change it. */
  capacity = PIPE_DEF_CAPACITY;
  /** Called whenever something a sleeper waits for may have changed. */
  private readonly listeners = new Set<() => void>();

  get available(): number {
    return this.used;
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private wake(): void {
    for (const fn of [...this.listeners]) fn();
  }

  read(len: number, nonblock: boolean): Uint8Array | number | typeof BLOCK {
    if (len === 0) return new Uint8Array(0);
    if (this.used === 0) {
      if (this.writers === 0) return new Uint8Array(0);
      return nonblock ? -E.EAGAIN : BLOCK;
    }
    const n = Math.min(len, this.used);
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const c = this.chunks[0]!;
      const take = Math.min(c.length - this.head, n - got);
      out.set(c.subarray(this.head, this.head + take), got);
      got += take;
      this.head += take;
      if (this.head === c.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    this.used -= n;
    this.wake();
    return out;
  }

  /**
   * Write `bytes[done..]`; `done` is what an earlier, blocked attempt of the same write(2) already
   * wrote. Returns BLOCK with the new `done` when the rest must wait.
   */
  write(bytes: Uint8Array, nonblock: boolean, done = 0): WriteResult | { block: typeof BLOCK; done: number } {
    return this.writeFrom(bytes.length, (off, n) => bytes.subarray(off, off + n), nonblock, done);
  }

  /**
   * The same with the bytes fetched on demand (`source(offset, n)`, a copy from user memory that
   * may fail with -errno): only what fits is ever copied.
   */
  writeFrom(
    total: number,
    source: (offset: number, n: number) => Uint8Array | number,
    nonblock: boolean,
    done = 0,
  ): WriteResult | { block: typeof BLOCK; done: number } {
    if (this.readers === 0) return done > 0 ? { result: done, sigpipe: true } : { result: -E.EPIPE, sigpipe: true };
    if (total === 0) return { result: 0, sigpipe: false };
    let room = this.capacity - this.used;
    // At most PIPE_BUF bytes go in whole or not at all.
    if (total <= PIPE_BUF && room < total - done) {
      return nonblock ? { result: -E.EAGAIN, sigpipe: false } : { block: BLOCK, done };
    }
    while (room > 0 && done < total) {
      const got = source(done, Math.min(room, total - done, 1 << 16));
      if (typeof got === 'number') return { result: done > 0 ? done : got, sigpipe: false };
      this.chunks.push(got.slice());
      this.used += got.length;
      done += got.length;
      room -= got.length;
    }
    if (done > 0) this.wake();
    if (done === total) return { result: done, sigpipe: false };
    if (nonblock) return { result: done > 0 ? done : -E.EAGAIN, sigpipe: false };
    return { block: BLOCK, done };
  }

  /** An end closed (the last descriptor of its open file description went away). */
  close(end: 'read' | 'write'): void {
    if (end === 'read') this.readers--;
    else this.writers--;
    this.wake();
  }

  open(end: 'read' | 'write'): void {
    if (end === 'read') this.readers++;
    else this.writers++;
  }
}
