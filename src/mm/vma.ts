/**
 * Virtual memory areas: a range of an mm with one protection and one backing.
 */
import type { Inode } from './inode.js';
import type { Mm } from './mm.js';

export const PROT = { NONE: 0, READ: 1, WRITE: 2, EXEC: 4 } as const;

export interface VmaFlags {
  /** MAP_SHARED: writes go to the shared pages (no copy-on-write). */
  shared: boolean;
  /** Grows down (the stack). */
  growsDown?: boolean;
  /** Not inherited by fork (VM_DONTCOPY: the uprobes XOL area). */
  dontCopy?: boolean;
  /**
   * VM_MAYWRITE cleared (false): mprotect may never add PROT_WRITE (EACCES). do_mmap clears it
   * for a shared mapping of a file opened without write access; a private mapping keeps it
   * (its writes go to private copies, never to the page cache).
   */
  mayWrite?: boolean;
}

export class Vma {
  start: bigint;
  end: bigint;
  prot: number;
  readonly flags: VmaFlags;
  /** File backing: the inode and the file page index mapped at `start`. */
  readonly file: Inode | undefined;
  pgoff: number;
  /** A name for listings: "[heap]", "[stack]", "[uprobes]", or the file path. */
  readonly name: string;
  readonly mm: Mm;

  constructor(mm: Mm, start: bigint, end: bigint, prot: number, flags: VmaFlags, file: Inode | undefined, pgoff: number, name: string) {
    this.mm = mm;
    this.start = start;
    this.end = end;
    this.prot = prot;
    this.flags = flags;
    this.file = file;
    this.pgoff = pgoff;
    this.name = name;
  }

  contains(addr: bigint): boolean {
    return addr >= this.start && addr < this.end;
  }

  /** File offset backing `addr` (uprobes' vaddr → offset). */
  fileOffset(addr: bigint, pageSize: number): bigint {
    // Asked at every uprobe hit: offset − address, made again only when start or pgoff changed.
    if (this.baseStart !== this.start || this.basePgoff !== this.pgoff || this.basePageSize !== pageSize) {
      this.baseStart = this.start;
      this.basePgoff = this.pgoff;
      this.basePageSize = pageSize;
      this.offsetBase = BigInt(this.pgoff * pageSize) - this.start;
    }
    return addr + this.offsetBase;
  }

  private baseStart = -1n;
  private basePgoff = -1;
  private basePageSize = 0;
  private offsetBase = 0n;

  /** VM_MAYEXEC-style test uprobes use: private file mapping that is executable. */
  get isPrivateExecFile(): boolean {
    return this.file !== undefined && !this.flags.shared && (this.prot & PROT.EXEC) !== 0;
  }
}
