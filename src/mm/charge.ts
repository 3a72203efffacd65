/**
 * Guest memory accounting: every byte of host memory allocated to hold guest pages (anonymous
 * mappings, private copy-on-write copies, the page cache of files the guest maps or opens) is
 * charged to one MemCharge per machine, like a memory cgroup's counter. The check happens before
 * the host allocation, so a guest asking for 1 TiB gets ENOMEM instead of the host allocator
 * aborting node.
 *
 * Fork shares pages copy-on-write and charges nothing until a copy is made, as Linux charges a
 * page when it is allocated, not when it is mapped.
 */
export class MemCharge {
  readonly limit: number;
  /** Bytes charged now. */
  used = 0;
  /** Highest `used` seen (tests and --stats). */
  peak = 0;
  /** Refused allocations (ENOMEM, or an OOM kill for a copy-on-write fault). */
  failures = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Charge `bytes` if they fit under the limit (or unconditionally with `force`). */
  tryCharge(bytes: number, force = false): boolean {
    if (!force && !(bytes >= 0 && this.used + bytes <= this.limit)) {
      this.failures++;
      return false;
    }
    this.used += bytes;
    if (this.used > this.peak) this.peak = this.used;
    return true;
  }

  uncharge(bytes: number): void {
    this.used -= bytes;
  }
}

/**
 * The largest single host block allocated for guest pages when no MemCharge applies (a bare Mm
 * in tests and scenarios): a size check before the host allocator, never after.
 */
export const UNCHARGED_BLOCK_MAX = 1 << 30;
