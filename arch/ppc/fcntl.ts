/** powerpc's open(2) bits (arch/powerpc/include/uapi/asm/fcntl.h): four differ from asm-generic. */
import { GENERIC_OPEN_FLAGS, type OpenFlagBits } from '../../src/kernel/abi/open-flags.js';

export const PPC_OPEN_FLAGS: OpenFlagBits = {
  ...GENERIC_OPEN_FLAGS,
  O_DIRECTORY: 0o40000,
  O_NOFOLLOW: 0o100000,
  O_LARGEFILE: 0o200000,
  O_DIRECT: 0o400000,
};
