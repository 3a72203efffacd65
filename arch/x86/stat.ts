/**
 * struct stat / stat64 of the x86 targets (arch/x86/include/uapi/asm/stat.h). i386 lays out
 * `long long` on 4-byte boundaries, which is why stat64's fields sit where they do; its 32-bit
 * __st_ino holds the low half of the inode number and st_ino, at the end, all of it.
 */
import type { StatLayout } from '../../src/kernel/abi/stat-layout.js';
import { STAT_LP64 } from '../stat-lp64.js';

/** x86-64 `struct stat` (stat, fstat, lstat, newfstatat): 144 bytes, the shared LP64 layout. */
export const STAT_X86_64: StatLayout = STAT_LP64;

/** i386 `struct stat` (stat, fstat, lstat: 32-bit fields, 16-bit mode/nlink/uid/gid): 64 bytes. */
export const STAT_I386: StatLayout = {
  size: 64,
  devEncoding: 'old',
  fields: [
    ['dev', 0, 4],
    ['ino', 4, 4],
    ['mode', 8, 2],
    ['nlink', 10, 2],
    ['uid', 12, 2],
    ['gid', 14, 2],
    ['rdev', 16, 4],
    ['size', 20, 4],
    ['blksize', 24, 4],
    ['blocks', 28, 4],
    ['atime', 32, 4],
    ['atime_nsec', 36, 4],
    ['mtime', 40, 4],
    ['mtime_nsec', 44, 4],
    ['ctime', 48, 4],
    ['ctime_nsec', 52, 4],
  ],
};

/** i386 `struct stat64` (stat64, fstat64, lstat64, fstatat64): 96 bytes. */
export const STAT64_I386: StatLayout = {
  size: 96,
  devEncoding: 'new',
  fields: [
    ['dev', 0, 8],
    ['ino_lo', 12, 4],
    ['mode', 16, 4],
    ['nlink', 20, 4],
    ['uid', 24, 4],
    ['gid', 28, 4],
    ['rdev', 32, 8],
    ['size', 44, 8],
    ['blksize', 52, 4],
    ['blocks', 56, 8],
    ['atime', 64, 4],
    ['atime_nsec', 68, 4],
    ['mtime', 72, 4],
    ['mtime_nsec', 76, 4],
    ['ctime', 80, 4],
    ['ctime_nsec', 84, 4],
    ['ino', 88, 8],
  ],
};
