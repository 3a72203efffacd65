/**
 * The file rmap's lock as an Mm sees it: i_mmap_rwsem taken for write around every link and
 * unlink of a file VMA (vma_link, __vma_adjust, unlink_file_vma, dup_mmap, exit_mmap), as Linux
 * does, so a walker holding it for read (build_map_info) sees a stable set of mappings. The
 * machine's implementation is src/mm/kernel-locking.ts; fork passes it to the child mm.
 */
import type { Inode } from './inode.js';

export interface RmapLock {
  /** Run `change` with the file's i_mmap_rwsem held for write. */
  link(inode: Inode, where: string, change: () => void): void;
  /**
   * The same, except that it may defer `change` until the lock is free (exit_mmap sleeping on
   * it): meanwhile the VMA stays in the rmap with its mm already dead, and walkers skip it.
   */
  unlink(inode: Inode, where: string, change: () => void): void;
}
