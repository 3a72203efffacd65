/**
 * The 144-byte stat layout of three 64-bit ABIs, field for field the same (each checked against
 * its own uapi header by test/kernel/abi-headers.test.ts): x86-64's `struct stat`, powerpc64's
 * `struct stat` and sparc64's `struct stat64` — word-sized dev/ino/nlink, 32-bit mode/uid/gid,
 * word-sized sizes, seconds and nanoseconds.
 */
import type { StatLayout } from '../src/kernel/abi/stat-layout.js';

export const STAT_LP64: StatLayout = {
  size: 144,
  devEncoding: 'new',
  fields: [
    ['dev', 0, 8],
    ['ino', 8, 8],
    ['nlink', 16, 8],
    ['mode', 24, 4],
    ['uid', 28, 4],
    ['gid', 32, 4],
    ['rdev', 40, 8],
    ['size', 48, 8],
    ['blksize', 56, 8],
    ['blocks', 64, 8],
    ['atime', 72, 8],
    ['atime_nsec', 80, 8],
    ['mtime', 88, 8],
    ['mtime_nsec', 96, 8],
    ['ctime', 104, 8],
    ['ctime_nsec', 112, 8],
  ],
};
