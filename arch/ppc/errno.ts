/**
 * Linux/powerpc's errno numbers (arch/powerpc/include/uapi/asm/errno.h): asm-generic's, except
 * EDEADLOCK, which powerpc redefines as 58 (asm-generic makes it an alias of EDEADLK, 35).
 */
import { GENERIC_ERRNO, type ErrnoTable } from '../../src/kernel/errno.js';

export const PPC_ERRNO: ErrnoTable = { ...GENERIC_ERRNO, EDEADLOCK: 58 };
