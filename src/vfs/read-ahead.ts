/**
 * Read-ahead for host files: small reads (a program reading a file 4 KiB at a time) are served
 * from a window of READ_AHEAD bytes read from the host at once, as Linux's page cache reads ahead
 * of a sequential reader. Each host read costs 3-12 µs whatever its size up to there (measured:
 * busybox sha256sum's 4,096 reads per 16 MiB become 256).
 *
 * A window belongs to one node (RegNode), which stands for the host file as it was looked up: a
 * new lookup (another machine, a later run) makes a new node and reads the host afresh. The guest
 * never writes through a window (a host file the guest changes is copied up first).
 *
 * Limits: at most MAX_WINDOWS windows per process, the least recently used dropped first.
 */
const READ_AHEAD = 64 * 1024;
/** Reads up to this size go through the window; larger ones go straight to the host. */
export const SMALL_READ = 16 * 1024;
const MAX_WINDOWS = 16;

export class ReadAhead {
  /** `valid` bytes of the file from `at`. */
  private bytes: Uint8Array | undefined;
  private at = 0n;
  private valid = 0;

  /**
   * Read `into.length` (at most SMALL_READ) bytes at `offset` through the window; `fill` reads the
   * host file (like pread: bytes read, fewer at its end). Returns the bytes read.
   */
  read(into: Uint8Array, offset: bigint, fill: (into: Uint8Array, offset: bigint) => number): number {
    if (this.bytes === undefined || offset < this.at || offset >= this.at + BigInt(this.valid)) {
      this.bytes ??= new Uint8Array(READ_AHEAD);
      this.at = offset;
      this.valid = 0; // a failed fill leaves no stale window behind
      this.valid = fill(this.bytes, offset);
    }
    touch(this);
    const from = Number(offset - this.at);
    const n = Math.min(into.length, this.valid - from);
    into.set(this.bytes.subarray(from, from + n));
    // The window ended inside this read: the rest comes straight from the file.
    return n < into.length && this.valid === READ_AHEAD ? n + fill(into.subarray(n), offset + BigInt(n)) : n;
  }

  /** Give the window's memory back (the node was copied up or released). */
  drop(): void {
    this.bytes = undefined;
    this.valid = 0;
    recent.delete(this);
  }
}

/** Windows in use, least recently used first. */
const recent = new Set<ReadAhead>();

function touch(ra: ReadAhead): void {
  recent.delete(ra);
  recent.add(ra);
  if (recent.size > MAX_WINDOWS) recent.values().next().value!.drop();
}
