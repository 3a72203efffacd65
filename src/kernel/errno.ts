/**
 * errno: one module, symbolic names, per-target numbers.
 *
 * The engine's kernel layer speaks the generic numbering (`E`, from include/uapi/asm-generic/
 * errno-base.h and errno.h) — the numbers x86 and (but for EDEADLOCK) powerpc use too. Each arch
 * supplies its own table by name (`Arch.errno`: arch/sparc/errno.ts has the SunOS-compatible
 * numbers of arch/sparc/include/uapi/asm/errno.h, arch/ppc/errno.ts powerpc's EDEADLOCK), and
 * wherever a number crosses to the guest or the user (a system call's result, a registration's
 * return value) it is translated by name through `errnoTranslator`, so no generic code knows a
 * target's numbers. test/kernel/errno.test.ts checks every table against the kernel headers.
 */

/** The uapi errno names, in the generic numbering (asm-generic/errno-base.h, asm-generic/errno.h). */
export const GENERIC_ERRNO = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, ENXIO: 6, E2BIG: 7, ENOEXEC: 8, EBADF: 9, ECHILD: 10,
  EAGAIN: 11, ENOMEM: 12, EACCES: 13, EFAULT: 14, ENOTBLK: 15, EBUSY: 16, EEXIST: 17, EXDEV: 18, ENODEV: 19,
  ENOTDIR: 20, EISDIR: 21, EINVAL: 22, ENFILE: 23, EMFILE: 24, ENOTTY: 25, ETXTBSY: 26, EFBIG: 27, ENOSPC: 28,
  ESPIPE: 29, EROFS: 30, EMLINK: 31, EPIPE: 32, EDOM: 33, ERANGE: 34,
  EDEADLK: 35, ENAMETOOLONG: 36, ENOLCK: 37, ENOSYS: 38, ENOTEMPTY: 39, ELOOP: 40, EWOULDBLOCK: 11, ENOMSG: 42,
  EIDRM: 43, ECHRNG: 44, EL2NSYNC: 45, EL3HLT: 46, EL3RST: 47, ELNRNG: 48, EUNATCH: 49, ENOCSI: 50, EL2HLT: 51,
  EBADE: 52, EBADR: 53, EXFULL: 54, ENOANO: 55, EBADRQC: 56, EBADSLT: 57, EDEADLOCK: 35, EBFONT: 59, ENOSTR: 60,
  ENODATA: 61, ETIME: 62, ENOSR: 63, ENONET: 64, ENOPKG: 65, EREMOTE: 66, ENOLINK: 67, EADV: 68, ESRMNT: 69,
  ECOMM: 70, EPROTO: 71, EMULTIHOP: 72, EDOTDOT: 73, EBADMSG: 74, EOVERFLOW: 75, ENOTUNIQ: 76, EBADFD: 77,
  EREMCHG: 78, ELIBACC: 79, ELIBBAD: 80, ELIBSCN: 81, ELIBMAX: 82, ELIBEXEC: 83, EILSEQ: 84, ERESTART: 85,
  ESTRPIPE: 86, EUSERS: 87, ENOTSOCK: 88, EDESTADDRREQ: 89, EMSGSIZE: 90, EPROTOTYPE: 91, ENOPROTOOPT: 92,
  EPROTONOSUPPORT: 93, ESOCKTNOSUPPORT: 94, EOPNOTSUPP: 95, EPFNOSUPPORT: 96, EAFNOSUPPORT: 97, EADDRINUSE: 98,
  EADDRNOTAVAIL: 99, ENETDOWN: 100, ENETUNREACH: 101, ENETRESET: 102, ECONNABORTED: 103, ECONNRESET: 104,
  ENOBUFS: 105, EISCONN: 106, ENOTCONN: 107, ESHUTDOWN: 108, ETOOMANYREFS: 109, ETIMEDOUT: 110,
  ECONNREFUSED: 111, EHOSTDOWN: 112, EHOSTUNREACH: 113, EALREADY: 114, EINPROGRESS: 115, ESTALE: 116,
  EUCLEAN: 117, ENOTNAM: 118, ENAVAIL: 119, EISNAM: 120, EREMOTEIO: 121, EDQUOT: 122, ENOMEDIUM: 123,
  EMEDIUMTYPE: 124, ECANCELED: 125, ENOKEY: 126, EKEYEXPIRED: 127, EKEYREVOKED: 128, EKEYREJECTED: 129,
  EOWNERDEAD: 130, ENOTRECOVERABLE: 131, ERFKILL: 132, EHWPOISON: 133,
} as const;

export type ErrnoName = keyof typeof GENERIC_ERRNO;
/** A target's number for every uapi errno name. */
export type ErrnoTable = Readonly<Record<ErrnoName, number>>;

/** Names that are another name's number (listed second in the headers): never used to name a number. */
const ALIASES = new Set<string>(['EWOULDBLOCK', 'EDEADLOCK']);

/**
 * The kernel layer's errno numbers: the generic ones, plus ENOTSUPP (include/linux/errno.h, not
 * uapi: the kprobes core returns it, and it is 524 on every target).
 */
export const E = { ...GENERIC_ERRNO, ENOTSUPP: 524 } as const;

/** Generic number → its name (the first name the headers give it). */
export const errnoName: ReadonlyMap<number, string> = new Map(
  Object.entries(E)
    .filter(([k]) => !ALIASES.has(k))
    .map(([k, v]) => [v, k]),
);

/** -errno as the bigint a system call returns. */
export const err = (n: number): bigint => -BigInt(n);

/**
 * Generic errno → the same error in `table`'s numbering, by name; a number with no uapi name
 * (ENOTSUPP, or one the generic table lacks) is passed on unchanged, as Linux does.
 */
export function errnoTranslator(table: ErrnoTable): (generic: number) => number {
  const map = new Map<number, number>();
  for (const [name, n] of Object.entries(GENERIC_ERRNO)) {
    if (!ALIASES.has(name)) map.set(n, table[name as ErrnoName]);
  }
  return (generic) => map.get(generic) ?? generic;
}
