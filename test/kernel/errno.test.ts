/**
 * Each target's errno table against the kernel's uapi headers. The reference values below are
 * copied from the Linux sources (v6.x), one `NAME NUMBER` per #define, aliases resolved:
 * - include/uapi/asm-generic/errno-base.h and include/uapi/asm-generic/errno.h (x86, and the base
 *   of the other two);
 * - arch/powerpc/include/uapi/asm/errno.h (asm-generic, with EDEADLOCK redefined as 58);
 * - arch/sparc/include/uapi/asm/errno.h (errno-base.h below 35, then SunOS numbers; EPROCLIM 67
 *   and ERREMOTE 81 exist only there and have no generic counterpart, so no table carries them).
 */
import { describe, expect, it } from 'vitest';
import { archFor } from '../../arch/index.js';
import { TARGETS } from '../../arch/types.js';
import { E, errnoName, GENERIC_ERRNO } from '../../src/kernel/errno.js';

const parse = (text: string): Map<string, number> =>
  new Map(
    text
      .trim()
      .split(/\s*\n\s*/)
      .map((l) => l.split(/\s+/))
      .map(([n, v]) => [n!, Number(v)]),
  );

// include/uapi/asm-generic/errno-base.h
const ERRNO_BASE = `
  EPERM 1
  ENOENT 2
  ESRCH 3
  EINTR 4
  EIO 5
  ENXIO 6
  E2BIG 7
  ENOEXEC 8
  EBADF 9
  ECHILD 10
  EAGAIN 11
  ENOMEM 12
  EACCES 13
  EFAULT 14
  ENOTBLK 15
  EBUSY 16
  EEXIST 17
  EXDEV 18
  ENODEV 19
  ENOTDIR 20
  EISDIR 21
  EINVAL 22
  ENFILE 23
  EMFILE 24
  ENOTTY 25
  ETXTBSY 26
  EFBIG 27
  ENOSPC 28
  ESPIPE 29
  EROFS 30
  EMLINK 31
  EPIPE 32
  EDOM 33
  ERANGE 34`;

// include/uapi/asm-generic/errno.h (EWOULDBLOCK = EAGAIN, EDEADLOCK = EDEADLK)
const ASM_GENERIC = `
  EDEADLK 35
  ENAMETOOLONG 36
  ENOLCK 37
  ENOSYS 38
  ENOTEMPTY 39
  ELOOP 40
  EWOULDBLOCK 11
  ENOMSG 42
  EIDRM 43
  ECHRNG 44
  EL2NSYNC 45
  EL3HLT 46
  EL3RST 47
  ELNRNG 48
  EUNATCH 49
  ENOCSI 50
  EL2HLT 51
  EBADE 52
  EBADR 53
  EXFULL 54
  ENOANO 55
  EBADRQC 56
  EBADSLT 57
  EDEADLOCK 35
  EBFONT 59
  ENOSTR 60
  ENODATA 61
  ETIME 62
  ENOSR 63
  ENONET 64
  ENOPKG 65
  EREMOTE 66
  ENOLINK 67
  EADV 68
  ESRMNT 69
  ECOMM 70
  EPROTO 71
  EMULTIHOP 72
  EDOTDOT 73
  EBADMSG 74
  EOVERFLOW 75
  ENOTUNIQ 76
  EBADFD 77
  EREMCHG 78
  ELIBACC 79
  ELIBBAD 80
  ELIBSCN 81
  ELIBMAX 82
  ELIBEXEC 83
  EILSEQ 84
  ERESTART 85
  ESTRPIPE 86
  EUSERS 87
  ENOTSOCK 88
  EDESTADDRREQ 89
  EMSGSIZE 90
  EPROTOTYPE 91
  ENOPROTOOPT 92
  EPROTONOSUPPORT 93
  ESOCKTNOSUPPORT 94
  EOPNOTSUPP 95
  EPFNOSUPPORT 96
  EAFNOSUPPORT 97
  EADDRINUSE 98
  EADDRNOTAVAIL 99
  ENETDOWN 100
  ENETUNREACH 101
  ENETRESET 102
  ECONNABORTED 103
  ECONNRESET 104
  ENOBUFS 105
  EISCONN 106
  ENOTCONN 107
  ESHUTDOWN 108
  ETOOMANYREFS 109
  ETIMEDOUT 110
  ECONNREFUSED 111
  EHOSTDOWN 112
  EHOSTUNREACH 113
  EALREADY 114
  EINPROGRESS 115
  ESTALE 116
  EUCLEAN 117
  ENOTNAM 118
  ENAVAIL 119
  EISNAM 120
  EREMOTEIO 121
  EDQUOT 122
  ENOMEDIUM 123
  EMEDIUMTYPE 124
  ECANCELED 125
  ENOKEY 126
  EKEYEXPIRED 127
  EKEYREVOKED 128
  EKEYREJECTED 129
  EOWNERDEAD 130
  ENOTRECOVERABLE 131
  ERFKILL 132
  EHWPOISON 133`;

// arch/powerpc/include/uapi/asm/errno.h: #undef EDEADLOCK, #define EDEADLOCK 58
const POWERPC = `EDEADLOCK 58`;

// arch/sparc/include/uapi/asm/errno.h (after #include <asm-generic/errno-base.h>; EWOULDBLOCK = EAGAIN)
const SPARC = `
  EWOULDBLOCK 11
  EINPROGRESS 36
  EALREADY 37
  ENOTSOCK 38
  EDESTADDRREQ 39
  EMSGSIZE 40
  EPROTOTYPE 41
  ENOPROTOOPT 42
  EPROTONOSUPPORT 43
  ESOCKTNOSUPPORT 44
  EOPNOTSUPP 45
  EPFNOSUPPORT 46
  EAFNOSUPPORT 47
  EADDRINUSE 48
  EADDRNOTAVAIL 49
  ENETDOWN 50
  ENETUNREACH 51
  ENETRESET 52
  ECONNABORTED 53
  ECONNRESET 54
  ENOBUFS 55
  EISCONN 56
  ENOTCONN 57
  ESHUTDOWN 58
  ETOOMANYREFS 59
  ETIMEDOUT 60
  ECONNREFUSED 61
  ELOOP 62
  ENAMETOOLONG 63
  EHOSTDOWN 64
  EHOSTUNREACH 65
  ENOTEMPTY 66
  EUSERS 68
  EDQUOT 69
  ESTALE 70
  EREMOTE 71
  ENOSTR 72
  ETIME 73
  ENOSR 74
  ENOMSG 75
  EBADMSG 76
  EIDRM 77
  EDEADLK 78
  ENOLCK 79
  ENONET 80
  ENOLINK 82
  EADV 83
  ESRMNT 84
  ECOMM 85
  EPROTO 86
  EMULTIHOP 87
  EDOTDOT 88
  EREMCHG 89
  ENOSYS 90
  ESTRPIPE 91
  EOVERFLOW 92
  EBADFD 93
  ECHRNG 94
  EL2NSYNC 95
  EL3HLT 96
  EL3RST 97
  ELNRNG 98
  EUNATCH 99
  ENOCSI 100
  EL2HLT 101
  EBADE 102
  EBADR 103
  EXFULL 104
  ENOANO 105
  EBADRQC 106
  EBADSLT 107
  EDEADLOCK 108
  EBFONT 109
  ELIBEXEC 110
  ENODATA 111
  ELIBBAD 112
  ENOPKG 113
  ELIBACC 114
  ENOTUNIQ 115
  ERESTART 116
  EUCLEAN 117
  ENOTNAM 118
  ENAVAIL 119
  EISNAM 120
  EREMOTEIO 121
  EILSEQ 122
  ELIBMAX 123
  ELIBSCN 124
  ENOMEDIUM 125
  EMEDIUMTYPE 126
  ECANCELED 127
  ENOKEY 128
  EKEYEXPIRED 129
  EKEYREVOKED 130
  EKEYREJECTED 131
  EOWNERDEAD 132
  ENOTRECOVERABLE 133
  ERFKILL 134
  EHWPOISON 135`;

const generic = new Map([...parse(ERRNO_BASE), ...parse(ASM_GENERIC)]);
const headers: Record<string, Map<string, number>> = {
  x86_64: generic,
  i386: generic,
  ppc32: new Map([...generic, ...parse(POWERPC)]),
  ppc64: new Map([...generic, ...parse(POWERPC)]),
  sparc64: new Map([...parse(ERRNO_BASE), ...parse(SPARC)]),
};

describe('errno numbering per target', () => {
  it('the generic table is asm-generic errno-base.h + errno.h, name for name', () => {
    expect(new Map(Object.entries(GENERIC_ERRNO))).toEqual(generic);
  });

  for (const target of TARGETS) {
    it(`${target}: every errno name has its uapi header's number`, () => {
      const arch = archFor(target)!;
      expect(new Map(Object.entries(arch.errno))).toEqual(headers[target]);
    });

    it(`${target}: a generic errno reaches the program under the same name, in the target's number`, () => {
      const arch = archFor(target)!;
      const ref = headers[target]!;
      for (const [name, n] of generic) {
        if (name === 'EWOULDBLOCK' || name === 'EDEADLOCK') continue; // aliases: named by EAGAIN, EDEADLK
        expect([name, arch.userErrno(n)]).toEqual([name, ref.get(name)]);
      }
      // Not uapi: the kprobes core's ENOTSUPP is 524 everywhere.
      expect(arch.userErrno(E.ENOTSUPP)).toBe(524);
    });
  }

  it("sparc64's EILSEQ is 122 and its ENOSYS 90; generic 84 and 38 are other errors there", () => {
    const sparc = archFor('sparc64')!;
    expect(sparc.userErrno(E.EILSEQ)).toBe(122);
    expect(sparc.userErrno(E.ENOSYS)).toBe(90);
    expect(sparc.errno.ESRMNT).toBe(84);
    expect(sparc.errno.EMSGSIZE).toBe(40);
  });

  it('a number is named by its first name, not an alias', () => {
    expect(errnoName.get(11)).toBe('EAGAIN');
    expect(errnoName.get(35)).toBe('EDEADLK');
    expect(errnoName.get(84)).toBe('EILSEQ');
    expect(errnoName.get(524)).toBe('ENOTSUPP');
  });
});
