/**
 * What stat(2) reports about a node, in the kernel's generic form (struct kstat). Each target's
 * user-visible layouts (struct stat, stat64, statx) are written from it by the arch layer.
 */
export interface Stat {
  dev: bigint;
  ino: bigint;
  /** File type and permission bits (st_mode). */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: bigint;
  size: bigint;
  blksize: number;
  /** 512-byte blocks. */
  blocks: bigint;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

// File types (include/uapi/linux/stat.h): the same on every target.
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

/** getdents64's d_type for a mode (include/linux/fs_types.h: DT_* = S_IFMT >> 12). */
export const dtype = (mode: number): number => (mode & S_IFMT) >>> 12;
