/**
 * struct stat / stat64 of the powerpc targets (arch/powerpc/include/uapi/asm/stat.h). mode_t is
 * 4 bytes; ppc32 aligns `long long` to 8, so stat64 has holes after __pad2 and st_blksize.
 */
import type { StatLayout } from '../../src/kernel/abi/stat-layout.js';
import { STAT_LP64 } from '../stat-lp64.js';

/** ppc64 `struct stat` (stat, fstat, lstat, newfstatat): 144 bytes, the shared LP64 layout. */
export const STAT_PPC64: StatLayout = STAT_LP64;

/** ppc32 `struct stat` (stat, fstat, lstat): 72 bytes, nlink 16-bit. */
export const STAT_PPC32: StatLayout = {
  size: 72,
  devEncoding: 'old',
  fields: [
    ['dev', 0, 4],
    ['ino', 4, 4],
    ['mode', 8, 4],
    ['nlink', 12, 2],
    ['uid', 16, 4],
    ['gid', 20, 4],
    ['rdev', 24, 4],
    ['size', 28, 4],
    ['blksize', 32, 4],
    ['blocks', 36, 4],
    ['atime', 40, 4],
    ['atime_nsec', 44, 4],
    ['mtime', 48, 4],
    ['mtime_nsec', 52, 4],
    ['ctime', 56, 4],
    ['ctime_nsec', 60, 4],
  ],
};

/** ppc32 `struct stat64` (stat64, fstat64, lstat64, fstatat64): 104 bytes. */
export const STAT64_PPC32: StatLayout = {
  size: 104,
  devEncoding: 'new',
  fields: [
    ['dev', 0, 8],
    ['ino', 8, 8],
    ['mode', 16, 4],
    ['nlink', 20, 4],
    ['uid', 24, 4],
    ['gid', 28, 4],
    ['rdev', 32, 8],
    ['size', 48, 8],
    ['blksize', 56, 4],
    ['blocks', 64, 8],
    ['atime', 72, 4],
    ['atime_nsec', 76, 4],
    ['mtime', 80, 4],
    ['mtime_nsec', 84, 4],
    ['ctime', 88, 4],
    ['ctime_nsec', 92, 4],
  ],
};
