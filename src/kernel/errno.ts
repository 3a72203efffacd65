/**
 * Linux's generic errno numbers (include/uapi/asm-generic/errno-base.h and errno.h). The kernel
 * layer always speaks these; an arch translates for its user ABI when they differ (sparc).
 */
export const E = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  EOVERFLOW: 75,
  ETIMEDOUT: 110,
  EILSEQ: 84,
  ENOTSUPP: 524,
  EOPNOTSUPP: 95,
} as const;

export const errnoName = new Map<number, string>(Object.entries(E).map(([k, v]) => [v, k]));

/** -errno as the bigint a system call returns. */
export const err = (n: number): bigint => -BigInt(n);
