/**
 * A process's file descriptor table (Linux's fdtable in fs/file.c): descriptor → open file, with
 * RLIMIT_NOFILE enforced and the lowest free slot found the way alloc_fd finds it — a bitmap of
 * open descriptors, a second bitmap with one bit per full 32-descriptor word (full_fds_bits), and
 * the next_fd hint, so a loop of dup() calls costs O(1) each instead of a scan from 0.
 *
 * It is a Map so the rest of the kernel reads it as before; every change goes through set,
 * delete and clear, which keep the bitmaps in step.
 */
import type { OpenFile } from './task.js';

/** RLIMIT_NOFILE's default soft limit on Linux. */
export const DEFAULT_NOFILE = 1024;
/** fs.nr_open's default: the most descriptors a limit may allow. */
export const NR_OPEN = 1 << 20;

export class FdTable extends Map<number, OpenFile> {
  /** RLIMIT_NOFILE: descriptors are 0 … limit − 1. */
  readonly limit: number;
  private readonly open: Uint32Array;
  private readonly full: Uint32Array;
  /** files->next_fd: no descriptor below it is free. */
  private nextFd = 0;

  constructor(limit = DEFAULT_NOFILE) {
    super();
    this.limit = limit;
    // Map's constructor calls set() for initial entries; there are none, so the fields are ready.
    this.open = new Uint32Array(Math.ceil(limit / 32));
    this.full = new Uint32Array(Math.ceil(this.open.length / 32));
  }

  /** Descriptors with FD_CLOEXEC (closed by execve). */
  readonly closeOnExec = new Set<number>();

  override set(fd: number, file: OpenFile): this {
    if (!Number.isInteger(fd) || fd < 0 || fd >= this.limit) throw new RangeError(`fd ${fd} outside 0..${this.limit - 1}`);
    const old = super.get(fd);
    file.refs = (file.refs ?? 0) + 1;
    if (old) release(old);
    this.closeOnExec.delete(fd);
    super.set(fd, file);
    const w = fd >>> 5;
    this.open[w]! |= 1 << (fd & 31);
    if (this.open[w] === 0xffffffff) this.full[w >>> 5]! |= 1 << (w & 31);
    return this;
  }

  override delete(fd: number): boolean {
    const old = super.get(fd);
    if (!super.delete(fd)) return false;
    release(old!);
    this.closeOnExec.delete(fd);
    const w = fd >>> 5;
    this.open[w]! &= ~(1 << (fd & 31));
    this.full[w >>> 5]! &= ~(1 << (w & 31));
    if (fd < this.nextFd) this.nextFd = fd;
    return true;
  }

  override clear(): void {
    for (const f of super.values()) release(f);
    this.closeOnExec.clear();
    super.clear();
    this.open.fill(0);
    this.full.fill(0);
    this.nextFd = 0;
  }

  /** The lowest free descriptor ≥ `min`, or −1 when every one below the limit is open. */
  lowestFree(min = 0): number {
    let fd = Math.max(min, this.nextFd);
    while (fd < this.limit) {
      let w = fd >>> 5;
      // Skip whole full words by the second-level bitmap (find_next_zero_bit over full_fds_bits).
      if (this.open[w] === 0xffffffff) {
        w = this.nextNotFullWord(w);
        if (w < 0) return -1;
        fd = w << 5;
        continue;
      }
      const free = ~this.open[w]! & (0xffffffff << (fd & 31));
      if (free === 0) {
        fd = (w + 1) << 5;
        continue;
      }
      const bit = 31 - Math.clz32(free & -free);
      const found = (w << 5) + bit;
      return found < this.limit ? found : -1;
    }
    return -1;
  }

  private nextNotFullWord(w: number): number {
    let i = w;
    while (i < this.open.length) {
      const fw = i >>> 5;
      const notFull = ~this.full[fw]! & (0xffffffff << (i & 31));
      if (notFull !== 0) {
        const word = (fw << 5) + (31 - Math.clz32(notFull & -notFull));
        return word < this.open.length ? word : -1;
      }
      i = (fw + 1) << 5;
    }
    return -1;
  }

  /**
   * alloc_fd: install `file` at the lowest free descriptor ≥ `min`. Returns it, or −1 when none is
   * free below the limit (the caller's EMFILE; F_DUPFD checks `min` against the limit first).
   */
  install(file: OpenFile, min = 0): number {
    const fd = this.lowestFree(min);
    if (fd < 0) return -1;
    this.set(fd, file);
    if (min <= this.nextFd) this.nextFd = fd + 1;
    return fd;
  }
}

/** One descriptor less on a description; the last one closes it (a pipe end goes away). */
function release(f: OpenFile): void {
  f.refs = (f.refs ?? 1) - 1;
  if (f.refs > 0) return;
  if (f.kind === 'pipe') f.pipe.close(f.end);
}
