/**
 * Inodes and their page cache.
 *
 * A host file the guest maps is read once into its inode's page cache; every mm that maps the
 * file maps those very pages by pointer (uc_mem_map_ptr), so there is one copy of the file's text
 * however many processes run it. Private writes never reach these pages: the mm copies the page
 * first (copy-on-write), as do uprobes when they install a breakpoint.
 *
 * The inode also keeps its reverse map (Linux's `mapping->i_mmap`): the VMAs of every mm that map
 * it, which uprobe registration walks.
 */
import { UniprobeError } from '../errors.js';
import type { MemCharge } from './charge.js';
import { HostBlock, PageFrame, chargeBlock } from './page.js';
import type { Vma } from './vma.js';

let nextIno = 1;

export class Inode {
  readonly ino = nextIno++;
  /** Host path (for messages and /proc/self/exe). */
  readonly path: string;
  readonly size: number;
  readonly pageSize: number;
  private readonly block: HostBlock | undefined;
  private readonly frames: PageFrame[];
  /** i_mmap: every VMA (in any mm) mapping this inode. */
  readonly mappings = new Set<Vma>();

  /** `charge`: the machine's guest memory (the page cache counts); over it, a MM error with ENOMEM. */
  constructor(path: string, contents: Uint8Array, pageSize: number, charge?: MemCharge) {
    this.path = path;
    this.size = contents.length;
    this.pageSize = pageSize;
    const pages = Math.max(1, Math.ceil(contents.length / pageSize));
    if (!chargeBlock(charge, pages * pageSize)) {
      throw new UniprobeError('MM', `${path}: ${pages * pageSize} bytes of page cache exceed the guest memory limit`, { errno: 12 });
    }
    try {
      this.block = new HostBlock(pages * pageSize, 'cache', charge);
    } catch (e) {
      charge?.uncharge(pages * pageSize);
      throw e;
    }
    this.block.mem.bytes.set(contents);
    this.frames = Array.from({ length: pages }, (_, i) => new PageFrame(this.block!, i * pageSize));
  }

  get pageCount(): number {
    return this.frames.length;
  }

  /** The page-cache page at page index `pgoff`, or undefined beyond the end of the file. */
  page(pgoff: number): PageFrame | undefined {
    return this.frames[pgoff];
  }

  /** Read file bytes through the page cache (what read() and uprobes' copy_insn see). */
  read(offset: number, len: number): Uint8Array {
    const end = Math.min(this.size, offset + len);
    if (offset >= end) return new Uint8Array(0);
    return this.block!.mem.bytes.slice(offset, end);
  }

  /** Drop the page cache (machine shutdown). */
  release(): void {
    this.block?.free();
  }
}
