/**
 * The contents of a file the guest wrote: pages of 4 KiB allocated on first write, as tmpfs does,
 * so a file may be sparse (ftruncate to 1 TiB costs nothing; a read of a hole gives zeros). Every
 * allocated page is charged to the machine's guest memory; past the limit a write fails with
 * ENOSPC, which is what tmpfs returns when it cannot get a page.
 */
import { E } from '../kernel/errno.js';

const PAGE = 4096;
const PAGE_N = BigInt(PAGE);
/** Linux's MAX_LFS_FILESIZE on 64-bit kernels: past it write/truncate give EFBIG. */
export const MAX_FILE_SIZE = (1n << 63n) - 1n;

export interface DataCharge {
  charge(bytes: number): boolean;
  uncharge(bytes: number): void;
}

export class SparseData {
  private readonly pages = new Map<bigint, Uint8Array>();
  size = 0n;

  constructor(private readonly mem: DataCharge) {}

  blocks512(): bigint {
    return BigInt(this.pages.size) * (PAGE_N / 512n);
  }

  /** `len` bytes at `offset` (holes read as zeros), into `into` when it is large enough. */
  read(offset: bigint, len: number, into?: Uint8Array): Uint8Array {
    const out = into !== undefined && into.length >= len ? into.subarray(0, len).fill(0) : new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const pos = offset + BigInt(done);
      const idx = pos / PAGE_N;
      const inPage = Number(pos % PAGE_N);
      const n = Math.min(PAGE - inPage, len - done);
      const page = this.pages.get(idx);
      if (page) out.set(page.subarray(inPage, inPage + n), done);
      done += n;
    }
    return out;
  }

  /** Bytes written, or -errno (EFBIG past the largest file, ENOSPC when no page can be had). */
  write(offset: bigint, bytes: Uint8Array): number {
    if (offset < 0n) return -E.EINVAL;
    if (offset + BigInt(bytes.length) > MAX_FILE_SIZE) return -E.EFBIG;
    let done = 0;
    while (done < bytes.length) {
      const pos = offset + BigInt(done);
      const idx = pos / PAGE_N;
      const inPage = Number(pos % PAGE_N);
      const n = Math.min(PAGE - inPage, bytes.length - done);
      let page = this.pages.get(idx);
      if (!page) {
        if (!this.mem.charge(PAGE)) break;
        page = new Uint8Array(PAGE);
        this.pages.set(idx, page);
      }
      page.set(bytes.subarray(done, done + n), inPage);
      done += n;
    }
    const end = offset + BigInt(done);
    if (end > this.size) this.size = end;
    // A short write is still a success (Linux returns what it wrote); nothing at all is ENOSPC.
    return done === 0 && bytes.length > 0 ? -E.ENOSPC : done;
  }

  /** Set the size; pages past it are freed, and the tail of the last page zeroed. */
  truncate(len: bigint): number {
    if (len < 0n) return -E.EINVAL;
    if (len > MAX_FILE_SIZE) return -E.EFBIG;
    if (len < this.size) {
      const keep = (len + PAGE_N - 1n) / PAGE_N;
      for (const idx of [...this.pages.keys()]) {
        if (idx >= keep) {
          this.pages.delete(idx);
          this.mem.uncharge(PAGE);
        }
      }
      const tail = Number(len % PAGE_N);
      if (tail) this.pages.get(len / PAGE_N)?.fill(0, tail);
    }
    this.size = len;
    return 0;
  }
}
