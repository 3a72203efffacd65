/**
 * Linux/sparc user errno numbers (Solaris-compatible, arch/sparc/include/uapi/asm/errno.h) for the
 * generic Linux numbers the kernel layer speaks (asm-generic/errno*.h). Numbers below 35 are the
 * same on both and are not listed. Generated from Debian's sparc64 cross headers
 * (/usr/sparc64-linux-gnu/include/asm{,-generic}/errno.h).
 */
export const SPARC_ERRNO: ReadonlyMap<number, number> = new Map([
  [35, 78], // EDEADLK
  [36, 63], // ENAMETOOLONG
  [37, 79], // ENOLCK
  [38, 90], // ENOSYS
  [39, 66], // ENOTEMPTY
  [40, 62], // ELOOP
  [42, 75], // ENOMSG
  [43, 77], // EIDRM
  [44, 94], // ECHRNG
  [45, 95], // EL2NSYNC
  [46, 96], // EL3HLT
  [47, 97], // EL3RST
  [48, 98], // ELNRNG
  [49, 99], // EUNATCH
  [50, 100], // ENOCSI
  [51, 101], // EL2HLT
  [52, 102], // EBADE
  [53, 103], // EBADR
  [54, 104], // EXFULL
  [55, 105], // ENOANO
  [56, 106], // EBADRQC
  [57, 107], // EBADSLT
  [59, 109], // EBFONT
  [60, 72], // ENOSTR
  [61, 111], // ENODATA
  [62, 73], // ETIME
  [63, 74], // ENOSR
  [64, 80], // ENONET
  [65, 113], // ENOPKG
  [66, 71], // EREMOTE
  [67, 82], // ENOLINK
  [68, 83], // EADV
  [69, 84], // ESRMNT
  [70, 85], // ECOMM
  [71, 86], // EPROTO
  [72, 87], // EMULTIHOP
  [73, 88], // EDOTDOT
  [74, 76], // EBADMSG
  [75, 92], // EOVERFLOW
  [76, 115], // ENOTUNIQ
  [77, 93], // EBADFD
  [78, 89], // EREMCHG
  [79, 114], // ELIBACC
  [80, 112], // ELIBBAD
  [81, 124], // ELIBSCN
  [82, 123], // ELIBMAX
  [83, 110], // ELIBEXEC
  [84, 122], // EILSEQ
  [85, 116], // ERESTART
  [86, 91], // ESTRPIPE
  [87, 68], // EUSERS
  [88, 38], // ENOTSOCK
  [89, 39], // EDESTADDRREQ
  [90, 40], // EMSGSIZE
  [91, 41], // EPROTOTYPE
  [92, 42], // ENOPROTOOPT
  [93, 43], // EPROTONOSUPPORT
  [94, 44], // ESOCKTNOSUPPORT
  [95, 45], // EOPNOTSUPP
  [96, 46], // EPFNOSUPPORT
  [97, 47], // EAFNOSUPPORT
  [98, 48], // EADDRINUSE
  [99, 49], // EADDRNOTAVAIL
  [100, 50], // ENETDOWN
  [101, 51], // ENETUNREACH
  [102, 52], // ENETRESET
  [103, 53], // ECONNABORTED
  [104, 54], // ECONNRESET
  [105, 55], // ENOBUFS
  [106, 56], // EISCONN
  [107, 57], // ENOTCONN
  [108, 58], // ESHUTDOWN
  [109, 59], // ETOOMANYREFS
  [110, 60], // ETIMEDOUT
  [111, 61], // ECONNREFUSED
  [112, 64], // EHOSTDOWN
  [113, 65], // EHOSTUNREACH
  [114, 37], // EALREADY
  [115, 36], // EINPROGRESS
  [116, 70], // ESTALE
  [122, 69], // EDQUOT
  [123, 125], // ENOMEDIUM
  [124, 126], // EMEDIUMTYPE
  [125, 127], // ECANCELED
  [126, 128], // ENOKEY
  [127, 129], // EKEYEXPIRED
  [128, 130], // EKEYREVOKED
  [129, 131], // EKEYREJECTED
  [130, 132], // EOWNERDEAD
  [131, 133], // ENOTRECOVERABLE
  [132, 134], // ERFKILL
  [133, 135], // EHWPOISON
]);

/** Generic Linux errno → the number a sparc64 program sees. */
export function sparcErrno(linuxErrno: number): number {
  return SPARC_ERRNO.get(linuxErrno) ?? linuxErrno;
}
