/**
 * `--strace` lines in strace(1)'s shape: `[tid] name(decoded args) = result`.
 *
 * Arguments are decoded where that is simple and unambiguous: C strings for path arguments,
 * descriptors and counts in decimal, `AT_FDCWD`, the first bytes of a write(2) buffer; everything
 * else in hex. Results: decimal, hex for addresses (mmap, brk), `-1 ENOENT (No such file or
 * directory)` for an error. A call that does not return (exit, exit_group) prints ` = ?` when it
 * is entered, as strace does. Error numbers here are the kernel's generic ones: the line is made
 * before the arch turns a result into its user ABI (sparc64's Solaris numbering, carry flag).
 */
import { errnoName } from './errno.js';

/** Argument kinds by system call name (index = argument position). */
type Kind = 's' | 'fd' | 'dirfd' | 'n' | 'buf' | 'x';
const SIGNATURES: Record<string, readonly Kind[]> = {
  read: ['fd', 'x', 'n'],
  write: ['fd', 'buf', 'n'],
  pread64: ['fd', 'x', 'n', 'n'],
  pwrite64: ['fd', 'buf', 'n', 'n'],
  readv: ['fd', 'x', 'n'],
  writev: ['fd', 'x', 'n'],
  open: ['s', 'x', 'x'],
  creat: ['s', 'x'],
  openat: ['dirfd', 's', 'x', 'x'],
  close: ['fd'],
  dup: ['fd'],
  dup2: ['fd', 'fd'],
  dup3: ['fd', 'fd', 'x'],
  fstat: ['fd', 'x'],
  fstat64: ['fd', 'x'],
  stat: ['s', 'x'],
  stat64: ['s', 'x'],
  lstat: ['s', 'x'],
  lstat64: ['s', 'x'],
  newfstatat: ['dirfd', 's', 'x', 'x'],
  fstatat64: ['dirfd', 's', 'x', 'x'],
  statx: ['dirfd', 's', 'x', 'x', 'x'],
  access: ['s', 'x'],
  faccessat: ['dirfd', 's', 'x'],
  faccessat2: ['dirfd', 's', 'x', 'x'],
  readlink: ['s', 'x', 'n'],
  readlinkat: ['dirfd', 's', 'x', 'n'],
  unlink: ['s'],
  unlinkat: ['dirfd', 's', 'x'],
  mkdir: ['s', 'x'],
  mkdirat: ['dirfd', 's', 'x'],
  rmdir: ['s'],
  chdir: ['s'],
  rename: ['s', 's'],
  execve: ['s', 'x', 'x'],
  lseek: ['fd', 'n', 'n'],
  ioctl: ['fd', 'x', 'x'],
  fcntl: ['fd', 'n', 'x'],
  fcntl64: ['fd', 'n', 'x'],
  exit: ['n'],
  exit_group: ['n'],
  wait4: ['n', 'x', 'x', 'x'],
  kill: ['n', 'n'],
  tgkill: ['n', 'n', 'n'],
  getrandom: ['x', 'n', 'x'],
};

/** Results that are addresses. */
const HEX_RESULT = new Set(['mmap', 'mmap2', 'brk', 'mremap']);
/** Calls that do not return to their caller. */
const NO_RETURN = new Set(['exit', 'exit_group']);

/** strerror() text of the errno names the engine returns (glibc's wording). */
const STRERROR: Record<string, string> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EINTR: 'Interrupted system call',
  EIO: 'Input/output error',
  E2BIG: 'Argument list too long',
  ENOEXEC: 'Exec format error',
  EBADF: 'Bad file descriptor',
  ECHILD: 'No child processes',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EFAULT: 'Bad address',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EINVAL: 'Invalid argument',
  EMFILE: 'Too many open files',
  ENOTTY: 'Inappropriate ioctl for device',
  ESPIPE: 'Illegal seek',
  ERANGE: 'Numerical result out of range',
  ENOSYS: 'Function not implemented',
  EILSEQ: 'Invalid or incomplete multibyte or wide character',
  EOPNOTSUPP: 'Operation not supported',
  ENOTSUPP: 'Unknown error 524',
  ENXIO: 'No such device or address',
  EXDEV: 'Invalid cross-device link',
  ENODEV: 'No such device',
  ENFILE: 'Too many open files in system',
  ETXTBSY: 'Text file busy',
  EFBIG: 'File too large',
  ENOSPC: 'No space left on device',
  EROFS: 'Read-only file system',
  EMLINK: 'Too many links',
  EPIPE: 'Broken pipe',
  ENAMETOOLONG: 'File name too long',
  ENOTEMPTY: 'Directory not empty',
  ELOOP: 'Too many levels of symbolic links',
  EOVERFLOW: 'Value too large for defined data type',
  ETIMEDOUT: 'Connection timed out',
};

const AT_FDCWD = -100n;
const MAX_STRING = 32;

/** How arguments are read from the guest (undefined when the memory is not readable). */
export interface StraceMemory {
  read(addr: bigint, len: number): Uint8Array | undefined;
}

function quote(bytes: Uint8Array, truncated: boolean): string {
  let s = '"';
  for (const b of bytes) {
    if (b === 0x22 || b === 0x5c) s += `\\${String.fromCharCode(b)}`;
    else if (b === 0x0a) s += '\\n';
    else if (b === 0x09) s += '\\t';
    else if (b >= 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += `\\${b.toString(8)}`;
  }
  return `${s}"${truncated ? '...' : ''}`;
}

function cString(mem: StraceMemory, addr: bigint): string {
  if (addr === 0n) return 'NULL';
  const bytes: number[] = [];
  for (let chunk = 0; chunk < 8; chunk++) {
    const b = mem.read(addr + BigInt(chunk * 64), 64) ?? mem.read(addr + BigInt(chunk * 64), 1);
    if (!b) break;
    for (const x of b) {
      if (x === 0) return quote(Uint8Array.from(bytes.slice(0, 4 * MAX_STRING)), bytes.length > 4 * MAX_STRING);
      bytes.push(x);
    }
  }
  return bytes.length ? quote(Uint8Array.from(bytes.slice(0, 4 * MAX_STRING)), true) : `0x${addr.toString(16)}`;
}

const signedWord = (v: bigint, bits: number): bigint => BigInt.asIntN(bits, v);

/** `name(args)` for a call being entered. */
export function formatSyscallCall(name: string, args: readonly bigint[], mem: StraceMemory, wordBits: number): string {
  const sig = SIGNATURES[name];
  const shown = sig ? args.slice(0, sig.length) : args;
  const parts = shown.map((a, i) => {
    switch (sig?.[i]) {
      case 's':
        return cString(mem, a);
      case 'fd':
      case 'n':
        return String(signedWord(a, wordBits));
      case 'dirfd':
        return signedWord(a, 32) === AT_FDCWD ? 'AT_FDCWD' : String(signedWord(a, wordBits));
      case 'buf': {
        const len = Number(BigInt.asUintN(32, args[i + 1] ?? 0n));
        const b = mem.read(a, Math.min(len, MAX_STRING));
        return b ? quote(b, len > MAX_STRING) : `0x${a.toString(16)}`;
      }
      default:
        return `0x${a.toString(16)}`;
    }
  });
  return `${name}(${parts.join(', ')})`;
}

/** ` = result` for a call's return value (the kernel's: -errno on failure). */
export function formatSyscallResult(name: string, value: bigint, wordBits: number): string {
  const v = signedWord(value, wordBits);
  if (v < 0n && v >= -4095n) {
    const e = errnoName.get(Number(-v)) ?? `E${-v}`;
    return ` = -1 ${e} (${STRERROR[e] ?? `Unknown error ${-v}`})`;
  }
  return HEX_RESULT.has(name) ? ` = 0x${BigInt.asUintN(wordBits, value).toString(16)}` : ` = ${v}`;
}

/** Does the call return to its caller (else its line ends ` = ?` when entered)? */
export function syscallReturns(name: string): boolean {
  return !NO_RETURN.has(name);
}
