/**
 * sparc's open(2) bits (arch/sparc/include/uapi/asm/fcntl.h): most differ from asm-generic;
 * O_DIRECTORY and O_NOFOLLOW keep the generic values.
 */
import { GENERIC_OPEN_FLAGS, type OpenFlagBits } from '../../src/kernel/abi/open-flags.js';

export const SPARC_OPEN_FLAGS: OpenFlagBits = {
  ...GENERIC_OPEN_FLAGS,
  O_APPEND: 0x8,
  O_CREAT: 0x200,
  O_TRUNC: 0x400,
  O_EXCL: 0x800,
  O_DSYNC: 0x2000,
  O_NONBLOCK: 0x4000,
  O_NOCTTY: 0x8000,
  O_LARGEFILE: 0x40000,
  O_DIRECT: 0x100000,
  O_NOATIME: 0x200000,
  O_CLOEXEC: 0x400000,
  __O_SYNC: 0x800000,
  O_PATH: 0x1000000,
  __O_TMPFILE: 0x2000000,
};
