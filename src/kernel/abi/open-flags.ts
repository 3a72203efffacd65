/**
 * open(2) flag bits, which differ per target (asm-generic/fcntl.h, overridden by
 * arch/powerpc/include/uapi/asm/fcntl.h and arch/sparc/include/uapi/asm/fcntl.h), and their
 * decoding into what the VFS acts on, with build_open_flags's rules (fs/open.c).
 */
import type { OpenFlags } from '../../vfs/file.js';

export interface OpenFlagBits {
  O_WRONLY: number;
  O_RDWR: number;
  O_CREAT: number;
  O_EXCL: number;
  O_NOCTTY: number;
  O_TRUNC: number;
  O_APPEND: number;
  O_NONBLOCK: number;
  O_DSYNC: number;
  O_DIRECT: number;
  O_LARGEFILE: number;
  O_DIRECTORY: number;
  O_NOFOLLOW: number;
  O_NOATIME: number;
  O_CLOEXEC: number;
  __O_SYNC: number;
  O_PATH: number;
  __O_TMPFILE: number;
}

/** asm-generic/fcntl.h (x86 uses these). */
export const GENERIC_OPEN_FLAGS: OpenFlagBits = {
  O_WRONLY: 0o1,
  O_RDWR: 0o2,
  O_CREAT: 0o100,
  O_EXCL: 0o200,
  O_NOCTTY: 0o400,
  O_TRUNC: 0o1000,
  O_APPEND: 0o2000,
  O_NONBLOCK: 0o4000,
  O_DSYNC: 0o10000,
  O_DIRECT: 0o40000,
  O_LARGEFILE: 0o100000,
  O_DIRECTORY: 0o200000,
  O_NOFOLLOW: 0o400000,
  O_NOATIME: 0o1000000,
  O_CLOEXEC: 0o2000000,
  __O_SYNC: 0o4000000,
  O_PATH: 0o10000000,
  __O_TMPFILE: 0o20000000,
};

export interface DecodedOpen {
  flags: OpenFlags;
  nonblock: boolean;
  cloexec: boolean;
  /** O_TMPFILE: not supported here (EOPNOTSUPP), unlike Linux's tmpfs. */
  tmpfile: boolean;
  /** The status flags F_GETFL reports (access mode, O_APPEND, O_NONBLOCK…, in the target's bits). */
  statusBits: number;
}

export function decodeOpenFlags(b: OpenFlagBits, raw: number): DecodedOpen {
  const has = (bit: number): boolean => (raw & bit) !== 0;
  const path = has(b.O_PATH);
  const acc = raw & 3;
  // build_open_flags: O_PATH keeps only O_DIRECTORY, O_NOFOLLOW and O_CLOEXEC.
  const flags: OpenFlags = path
    ? { read: false, write: false, path: true, directory: has(b.O_DIRECTORY), nofollow: has(b.O_NOFOLLOW) }
    : {
        read: acc !== 1,
        write: acc !== 0,
        create: has(b.O_CREAT),
        excl: has(b.O_EXCL) && has(b.O_CREAT),
        trunc: has(b.O_TRUNC),
        append: has(b.O_APPEND),
        directory: has(b.O_DIRECTORY),
        nofollow: has(b.O_NOFOLLOW),
      };
  const kept = b.O_APPEND | b.O_NONBLOCK | b.O_DSYNC | b.O_DIRECT | b.O_LARGEFILE | b.O_NOATIME | b.__O_SYNC;
  return {
    flags,
    nonblock: !path && has(b.O_NONBLOCK),
    cloexec: has(b.O_CLOEXEC),
    tmpfile: !path && has(b.__O_TMPFILE),
    statusBits: path ? b.O_PATH : acc | (raw & kept),
  };
}
