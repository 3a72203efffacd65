/**
 * Positional reads of unchanged host files through descriptors kept open between reads.
 *
 * A guest read of a host file used to open, read and close the host file each time: about 10 µs
 * of host system calls per 4 KiB read (2.5 µs for the read alone, node on this machine), a quarter
 * of the time busybox `sha256sum` spent outside the emulator. A small cache keeps the last few
 * host files open instead.
 *
 * Identity: a VFS node stands for the host inode it was looked up as (its dev and ino). A cached
 * descriptor is used only for that inode; when the path now names another file (replaced by a
 * rename), the read goes to the path as before and nothing is cached, so the cache never changes
 * what a read returns. Writes never go through here: a host file the guest changes is copied up
 * into guest memory first (RegNode.copyUp).
 *
 * Limits: at most MAX_OPEN descriptors per process, least recently used closed first.
 */
import { closeSync, fstatSync, openSync, readSync, constants as fsc } from 'node:fs';

const MAX_OPEN = 16;

interface Open {
  fd: number;
  dev: bigint;
  ino: bigint;
}

/** Insertion order is recency: a hit is moved to the end, the first entry is closed first. */
const open = new Map<string, Open>();

/**
 * Read up to `into.length` bytes at `offset` of the host file at `path` that the node knows as
 * (dev, ino); returns the bytes read (fewer at end of file). Throws what openSync/readSync throw.
 */
export function hostPread(path: string, dev: bigint, ino: bigint, into: Uint8Array, offset: bigint): number {
  let o = open.get(path);
  if (o !== undefined && (o.dev !== dev || o.ino !== ino)) {
    forget(path, o);
    o = undefined;
  }
  if (o === undefined) {
    const fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    const st = fstatSync(fd, { bigint: true });
    if (st.dev !== dev || st.ino !== ino) {
      try {
        return readFully(fd, into, offset);
      } finally {
        closeSync(fd);
      }
    }
    o = { fd, dev, ino };
    if (open.size >= MAX_OPEN) {
      const [oldest, first] = open.entries().next().value as [string, Open];
      forget(oldest, first);
    }
  } else open.delete(path);
  open.set(path, o);
  return readFully(o.fd, into, offset);
}

function readFully(fd: number, into: Uint8Array, offset: bigint): number {
  let got = 0;
  while (got < into.length) {
    const n = readSync(fd, into, got, into.length - got, offset + BigInt(got));
    if (n === 0) break;
    got += n;
  }
  return got;
}

function forget(path: string, o: Open): void {
  open.delete(path);
  try {
    closeSync(o.fd);
  } catch {
    /* already closed: nothing to release */
  }
}

/** Close every cached descriptor (tests; a host that wants its descriptors back). */
export function closeHostFiles(): void {
  for (const [path, o] of [...open]) forget(path, o);
}
