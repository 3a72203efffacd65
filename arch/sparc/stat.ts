/**
 * struct stat / stat64 of sparc64 (arch/sparc/include/uapi/asm/stat.h, the __arch64__ half).
 * The plain `struct stat` has a 4-byte st_dev, a 2-byte st_nlink and no nanoseconds; glibc uses
 * the stat64 calls (fstatat64), whose struct is x86-64's shape.
 */
import type { StatLayout } from '../../src/kernel/abi/stat-layout.js';
import { STAT_LP64 } from '../stat-lp64.js';

/** sparc64 `struct stat` (stat, fstat, lstat): 104 bytes. */
export const STAT_SPARC64: StatLayout = {
  size: 104,
  devEncoding: 'new',
  fields: [
    ['dev', 0, 4],
    ['ino', 8, 8],
    ['mode', 16, 4],
    ['nlink', 20, 2],
    ['uid', 24, 4],
    ['gid', 28, 4],
    ['rdev', 32, 4],
    ['size', 40, 8],
    ['atime', 48, 8],
    ['mtime', 56, 8],
    ['ctime', 64, 8],
    ['blksize', 72, 8],
    ['blocks', 80, 8],
  ],
};

/** sparc64 `struct stat64` (stat64, fstat64, lstat64, fstatat64): 144 bytes, the shared LP64 layout. */
export const STAT64_SPARC64: StatLayout = STAT_LP64;
