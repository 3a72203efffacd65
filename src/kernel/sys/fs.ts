/**
 * The filesystem system calls on the guest's VFS (src/vfs): open and close, the stat family
 * (struct layouts from the arch: arch/<family>/stat.ts), directory reads, links, the namespace
 * calls, cwd and umask. Each resolves its path from the cwd or a dirfd (files.ts) and returns
 * the VFS's errno; the *at flags are checked as Linux checks them (EINVAL for unknown bits).
 */
import { E, err } from '../errno.js';
import { decodeOpenFlags } from '../abi/open-flags.js';
import { encodeStat, encodeStatx, type StatLayout } from '../abi/stat-layout.js';
import { mayAccess } from '../../vfs/access.js';
import { DirNode, ReopenNode, type VNode } from '../../vfs/node.js';
import type { OpenFile } from '../task.js';
import { dirent64, direntLegacy, DirentOverflow, type FileDescription } from '../../vfs/file.js';
import { copyOut, procOf, readPath, s32, user, type Handler, type SyscallCtx, type SyscallResult } from './common.js';
import {
  AT_EACCESS,
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_NO_AUTOMOUNT,
  AT_REMOVEDIR,
  AT_SYMLINK_FOLLOW,
  AT_SYMLINK_NOFOLLOW,
  fileOf,
  startDir,
} from './files.js';

const AT_STATX_SYNC_TYPE = 0x6000;
/** The mount id statx reports for every file (one mount here). */
const MNT_ID = 21n;

type PathArg = { start: DirNode; path: string };

/** A path argument resolved against a dirfd: the start directory and the path, or -errno. */
function pathAt(ctx: SyscallCtx, dfd: number, ptr: bigint, allowEmpty = false): PathArg | bigint {
  const path = readPath(ctx, ptr, allowEmpty);
  if (typeof path === 'bigint') return path;
  const start = startDir(ctx, dfd, path === '' ? '.' : path);
  if (typeof start === 'bigint') return start;
  return { start, path };
}

const n2b = (r: number): bigint => BigInt(r);

// --- open / close --------------------------------------------------------------------------------

function doOpen(ctx: SyscallCtx, dfd: number, ptr: bigint, raw: number, mode: number): SyscallResult {
  const p = pathAt(ctx, dfd, ptr);
  if (typeof p === 'bigint') return p;
  const d = decodeOpenFlags(ctx.host.arch.fsAbi.openFlags, raw);
  if (d.tmpfile) return err(E.EOPNOTSUPP);
  const proc = procOf(ctx);
  if (proc.fds.lowestFree() < 0) return err(E.EMFILE);
  const f = ctx.host.vfs.open(proc.fs, p.start, p.path, d.flags, mode & 0o7777);
  if (typeof f === 'number') return n2b(f);
  if (f.node instanceof ReopenNode && !d.flags.path) {
    // /proc/self/fd/N (/dev/fd/N) of a pipe or stdio: that object again (ReopenNode).
    const fd = proc.fds.install(f.node.reopen(d.flags.write) as OpenFile);
    if (d.cloexec) proc.fds.closeOnExec.add(fd);
    return BigInt(fd);
  }
  const fd = proc.fds.install({ kind: 'vfs', file: f, status: d.statusBits, nonblock: d.nonblock });
  if (d.cloexec) proc.fds.closeOnExec.add(fd);
  return BigInt(fd);
}

// --- stat ----------------------------------------------------------------------------------------

function nodeAt(ctx: SyscallCtx, dfd: number, ptr: bigint, flags: number, allowed: number): VNode | bigint {
  if (flags & ~allowed) return err(E.EINVAL);
  const empty = (flags & AT_EMPTY_PATH) !== 0;
  const p = pathAt(ctx, dfd, ptr, empty);
  if (typeof p === 'bigint') return p;
  if (p.path === '' && empty) {
    if (dfd === AT_FDCWD) return procOf(ctx).fs.cwd;
    const f = fileOf(ctx, dfd);
    if (!f) return err(E.EBADF);
    return f.kind === 'vfs' ? f.file.node : err(E.EOPNOTSUPP); // pipes and stdio: see fstat
  }
  const n = ctx.host.vfs.lookup(p.start, p.path, !(flags & AT_SYMLINK_NOFOLLOW));
  return typeof n === 'number' ? n2b(n) : n;
}

/** fstat of a pipe or the host's stdio: a FIFO or a character device the way Linux shows them. */
function fdStat(ctx: SyscallCtx, fd: number): import('../../vfs/stat.js').Stat | bigint {
  const f = fileOf(ctx, fd);
  if (!f) return err(E.EBADF);
  if (f.kind === 'vfs') return f.file.node.stat();
  const now = ctx.host.clockNs();
  const base = { nlink: 1, uid: ctx.host.vfs.uid, gid: ctx.host.vfs.gid, size: 0n, blksize: 4096, blocks: 0n, atimeNs: now, mtimeNs: now, ctimeNs: now };
  if (f.kind === 'pipe') return { ...base, dev: 0xcn, ino: BigInt(f.pipe.id), mode: 0o10600, rdev: 0n }; // pipefs: S_IFIFO 0600
  // stdio is whatever the host gave; to the guest it is a pipe (no terminal: TCGETS is ENOTTY).
  return { ...base, dev: 0xcn, ino: BigInt(f.hostFd + 1), mode: 0o10600, rdev: 0n };
}

function writeStat(ctx: SyscallCtx, st: import('../../vfs/stat.js').Stat, layout: StatLayout | undefined, buf: bigint): bigint {
  if (!layout) return err(E.ENOSYS);
  const bytes = encodeStat(st, layout, ctx.host.arch.endian === 'little');
  if (typeof bytes === 'number') return n2b(bytes);
  return copyOut(ctx, buf, bytes) ?? 0n;
}

function statAt(ctx: SyscallCtx, dfd: number, ptr: bigint, flags: number, buf: bigint, layout: StatLayout | undefined): bigint {
  if (flags & AT_EMPTY_PATH && dfd !== AT_FDCWD) {
    const path = readPath(ctx, ptr, true);
    if (path === '') {
      const st = fdStat(ctx, dfd);
      return typeof st === 'bigint' ? st : writeStat(ctx, st, layout, buf);
    }
  }
  const n = nodeAt(ctx, dfd, ptr, flags, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT);
  return typeof n === 'bigint' ? n : writeStat(ctx, n.stat(), layout, buf);
}

function statx(ctx: SyscallCtx, dfd: number, ptr: bigint, flags: number, _mask: number, buf: bigint): bigint {
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE)) return err(E.EINVAL);
  if ((flags & AT_STATX_SYNC_TYPE) === AT_STATX_SYNC_TYPE) return err(E.EINVAL);
  let st: import('../../vfs/stat.js').Stat | bigint;
  const path = readPath(ctx, ptr, (flags & AT_EMPTY_PATH) !== 0);
  if (typeof path === 'bigint') return path;
  if (path === '' && dfd !== AT_FDCWD) st = fdStat(ctx, dfd);
  else {
    const n = nodeAt(ctx, dfd, ptr, flags & ~AT_STATX_SYNC_TYPE, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT);
    st = typeof n === 'bigint' ? n : n.stat();
  }
  if (typeof st === 'bigint') return st;
  return copyOut(ctx, buf, encodeStatx(st, MNT_ID, ctx.host.arch.endian === 'little')) ?? 0n;
}

// --- directories ---------------------------------------------------------------------------------

function getdents(ctx: SyscallCtx, fd: number, buf: bigint, count: bigint, legacy: boolean): bigint {
  const f = fileOf(ctx, fd);
  if (!f) return err(E.EBADF);
  if (f.kind !== 'vfs') return err(E.ENOTDIR);
  const le = ctx.host.arch.endian === 'little';
  const size = Number(count > 1n << 30n ? 1n << 30n : count);
  let r: Uint8Array | number;
  try {
    r = f.file.readdir(size, legacy ? direntLegacy(le, ctx.host.arch.wordSize) : dirent64(le));
  } catch (e) {
    if (e instanceof DirentOverflow) return err(E.EOVERFLOW);
    throw e;
  }
  if (typeof r === 'number') return n2b(r);
  return copyOut(ctx, buf, r) ?? BigInt(r.length);
}

// --- links and names -----------------------------------------------------------------------------

function readlinkAt(ctx: SyscallCtx, dfd: number, ptr: bigint, buf: bigint, size: bigint): bigint {
  if (BigInt.asIntN(32, size) <= 0n) return err(E.EINVAL);
  const p = pathAt(ctx, dfd, ptr);
  if (typeof p === 'bigint') return p;
  const t = ctx.host.vfs.readlink(p.start, p.path);
  if (typeof t === 'number') return n2b(t);
  const bytes = Buffer.from(t);
  const n = Math.min(bytes.length, Number(size));
  return copyOut(ctx, buf, new Uint8Array(bytes.subarray(0, n))) ?? BigInt(n);
}

function two(ctx: SyscallCtx, d1: number, p1: bigint, d2: number, p2: bigint, fn: (a: PathArg, b: PathArg) => number): bigint {
  const a = pathAt(ctx, d1, p1);
  if (typeof a === 'bigint') return a;
  const b = pathAt(ctx, d2, p2);
  if (typeof b === 'bigint') return b;
  return n2b(fn(a, b));
}

function one(ctx: SyscallCtx, dfd: number, ptr: bigint, fn: (a: PathArg) => number): bigint {
  const a = pathAt(ctx, dfd, ptr);
  return typeof a === 'bigint' ? a : n2b(fn(a));
}

function accessAt(ctx: SyscallCtx, dfd: number, ptr: bigint, mode: number, flags: number): bigint {
  if (flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return err(E.EINVAL);
  if (mode & ~7) return err(E.EINVAL);
  const n = nodeAt(ctx, dfd, ptr, flags & ~AT_EACCESS, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH);
  if (typeof n === 'bigint') return n;
  return mode === 0 || mayAccess(ctx.host.vfs, n, mode) ? 0n : err(E.EACCES);
}

function getcwd(ctx: SyscallCtx, buf: bigint, size: bigint): bigint {
  const cwd = ctx.host.vfs.getcwd(procOf(ctx).fs);
  if (typeof cwd === 'number') return n2b(cwd);
  const bytes = Buffer.from(`${cwd}\0`);
  if (BigInt(bytes.length) > size) return err(E.ERANGE);
  return copyOut(ctx, buf, new Uint8Array(bytes)) ?? BigInt(bytes.length);
}

function truncateFd(ctx: SyscallCtx, fd: number, len: bigint): bigint {
  const f = fileOf(ctx, fd);
  if (!f) return err(E.EBADF);
  if (f.kind !== 'vfs') return err(E.EINVAL);
  return n2b(ctx.host.vfs.ftruncate(f.file, len));
}

/**
 * The id width of the original chown/lchown/fchown: 16 bits where the ABI also has chown32
 * (i386's sys_chown16), 32 elsewhere (ppc32's chown takes a 32-bit __kernel_uid_t).
 */
const legacyIdBits = (ctx: SyscallCtx): 16 | 32 => (ctx.host.arch.syscallNumber('chown32') !== undefined ? 16 : 32);

/** chown's ids: -1 (0xffff in the 16-bit calls) leaves one unchanged. */
function chownNode(ctx: SyscallCtx, n: VNode | bigint, uid: bigint, gid: bigint, bits: 16 | 32): bigint {
  if (typeof n === 'bigint') return n;
  const id = (v: bigint): number => {
    const x = Number(BigInt.asUintN(bits, v));
    return x === (bits === 16 ? 0xffff : 0xffffffff) ? -1 : x;
  };
  return n2b(ctx.host.vfs.chown(n, id(uid), id(gid)));
}

function fchownFd(ctx: SyscallCtx, fd: number, uid: bigint, gid: bigint, bits: 16 | 32): bigint {
  const f = fileOf(ctx, fd);
  if (!f) return err(E.EBADF);
  if (f.kind !== 'vfs') return 0n; // a pipe's inode lives in pipefs: nothing the guest sees changes
  if (f.file.flags.path) return err(E.EBADF);
  return chownNode(ctx, f.file.node, uid, gid, bits);
}

function chmodNode(ctx: SyscallCtx, n: VNode | bigint, mode: bigint): bigint {
  return typeof n === 'bigint' ? n : n2b(ctx.host.vfs.chmod(n, Number(mode & 0o7777n)));
}

/** A 64-bit file length argument (a register pair on 32-bit targets). */
function lenArg(ctx: SyscallCtx, a: bigint[], at: number): bigint {
  return ctx.host.arch.fileOffsetArg?.(a, at) ?? BigInt.asIntN(ctx.host.arch.wordSize * 8, a[at]!);
}

const flagsOf = (v: bigint | undefined): number => s32(v ?? 0n);

const UTIME_NOW = (1n << 30n) - 1n;
const UTIME_OMIT = (1n << 30n) - 2n;

/**
 * utimensat / futimens (fs/utimes.c): NULL times = now; UTIME_NOW / UTIME_OMIT per field; a
 * nanosecond value past 999,999,999 is EINVAL. Setting explicit times needs the owner (or root);
 * setting both to now is allowed to anyone who may write the file.
 */
function utimens(ctx: SyscallCtx, dfd: number, pathPtr: bigint, timesPtr: bigint, flags: number, tsWord: 4 | 8): bigint {
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return err(E.EINVAL);
  const now = ctx.host.clockNs();
  let at: bigint | undefined = now;
  let mt: bigint | undefined = now;
  let explicit = false;
  if (timesPtr !== 0n) {
    const mm = ctx.task.mm;
    const le = ctx.host.arch.endian === 'little';
    const raw = user(() => mm.read(timesPtr, tsWord * 4));
    if (typeof raw === 'bigint') return raw;
    const v = new DataView(raw.buffer, raw.byteOffset);
    const word = (i: number): bigint => (tsWord === 8 ? v.getBigInt64(i * 8, le) : BigInt(v.getInt32(i * 4, le)));
    const one = (sec: bigint, nsec: bigint): bigint | undefined | null => {
      if (nsec === UTIME_OMIT) return undefined;
      if (nsec === UTIME_NOW) return now;
      if (nsec < 0n || nsec > 999_999_999n) return null;
      explicit = true;
      return sec * 1_000_000_000n + nsec;
    };
    const a = one(word(0), word(1));
    const m = one(word(2), word(3));
    if (a === null || m === null) return err(E.EINVAL);
    at = a;
    mt = m;
  }
  let node: VNode | bigint;
  if (pathPtr === 0n) {
    // futimens: the descriptor itself.
    const f = fileOf(ctx, dfd);
    if (!f) return err(E.EBADF);
    if (f.kind !== 'vfs') return 0n;
    node = f.file.node;
  } else node = nodeAt(ctx, dfd, pathPtr, flags, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH);
  if (typeof node === 'bigint') return node;
  const vfs = ctx.host.vfs;
  const owner = vfs.uid === 0 || vfs.uid === node.uid;
  if (explicit && !owner) return err(E.EPERM);
  if (!explicit && !owner && !mayAccess(vfs, node, 2)) return err(E.EACCES);
  if (at !== undefined || mt !== undefined) node.setTimes(at, mt);
  return 0n;
}

export const fsHandlers: Record<string, Handler> = {
  openat: (ctx, [dfd, path, flags, mode]) => doOpen(ctx, s32(dfd!), path!, flagsOf(flags), Number(mode! & 0o7777n)),
  creat: (ctx, [path, mode]) => {
    const b = ctx.host.arch.fsAbi.openFlags;
    return doOpen(ctx, AT_FDCWD, path!, b.O_CREAT | b.O_WRONLY | b.O_TRUNC, Number(mode! & 0o7777n));
  },
  close: (ctx, [fd]) => (procOf(ctx).fds.delete(s32(fd!)) ? 0n : err(E.EBADF)),

  stat: (ctx, [path, buf]) => statAt(ctx, AT_FDCWD, path!, 0, buf!, ctx.host.arch.fsAbi.stat),
  lstat: (ctx, [path, buf]) => statAt(ctx, AT_FDCWD, path!, AT_SYMLINK_NOFOLLOW, buf!, ctx.host.arch.fsAbi.stat),
  fstat: (ctx, [fd, buf]) => {
    const st = fdStat(ctx, s32(fd!));
    return typeof st === 'bigint' ? st : writeStat(ctx, st, ctx.host.arch.fsAbi.stat, buf!);
  },
  newfstatat: (ctx, [dfd, path, buf, flags]) => statAt(ctx, s32(dfd!), path!, flagsOf(flags), buf!, ctx.host.arch.fsAbi.stat),
  stat64: (ctx, [path, buf]) => statAt(ctx, AT_FDCWD, path!, 0, buf!, ctx.host.arch.fsAbi.stat64),
  lstat64: (ctx, [path, buf]) => statAt(ctx, AT_FDCWD, path!, AT_SYMLINK_NOFOLLOW, buf!, ctx.host.arch.fsAbi.stat64),
  fstat64: (ctx, [fd, buf]) => {
    const st = fdStat(ctx, s32(fd!));
    return typeof st === 'bigint' ? st : writeStat(ctx, st, ctx.host.arch.fsAbi.stat64, buf!);
  },
  fstatat64: (ctx, [dfd, path, buf, flags]) => statAt(ctx, s32(dfd!), path!, flagsOf(flags), buf!, ctx.host.arch.fsAbi.stat64),
  statx: (ctx, [dfd, path, flags, mask, buf]) => statx(ctx, s32(dfd!), path!, flagsOf(flags), Number(mask!), buf!),

  getdents64: (ctx, [fd, buf, count]) => getdents(ctx, s32(fd!), buf!, count! & 0xffffffffn, false),
  getdents: (ctx, [fd, buf, count]) => getdents(ctx, s32(fd!), buf!, count! & 0xffffffffn, true),

  readlink: (ctx, [path, buf, size]) => readlinkAt(ctx, AT_FDCWD, path!, buf!, size!),
  readlinkat: (ctx, [dfd, path, buf, size]) => readlinkAt(ctx, s32(dfd!), path!, buf!, size!),
  access: (ctx, [path, mode]) => accessAt(ctx, AT_FDCWD, path!, Number(mode!), 0),
  faccessat: (ctx, [dfd, path, mode]) => accessAt(ctx, s32(dfd!), path!, Number(mode!), 0),
  faccessat2: (ctx, [dfd, path, mode, flags]) => accessAt(ctx, s32(dfd!), path!, Number(mode!), flagsOf(flags)),

  getcwd: (ctx, [buf, size]) => getcwd(ctx, buf!, size!),
  chdir: (ctx, [path]) => one(ctx, AT_FDCWD, path!, (a) => ctx.host.vfs.chdir(procOf(ctx).fs, a.start, a.path)),
  fchdir: (ctx, [fd]) => {
    const f = fileOf(ctx, s32(fd!));
    if (!f) return err(E.EBADF);
    return f.kind === 'vfs' ? n2b(ctx.host.vfs.enter(procOf(ctx).fs, f.file.node)) : err(E.ENOTDIR);
  },
  umask: (ctx, [mask]) => {
    const fs = procOf(ctx).fs;
    const old = fs.umask;
    fs.umask = Number(mask! & 0o777n);
    return BigInt(old);
  },

  mkdir: (ctx, [path, mode]) => one(ctx, AT_FDCWD, path!, (a) => ctx.host.vfs.mkdir(procOf(ctx).fs, a.start, a.path, Number(mode! & 0o7777n))),
  mkdirat: (ctx, [dfd, path, mode]) => one(ctx, s32(dfd!), path!, (a) => ctx.host.vfs.mkdir(procOf(ctx).fs, a.start, a.path, Number(mode! & 0o7777n))),
  rmdir: (ctx, [path]) => one(ctx, AT_FDCWD, path!, (a) => ctx.host.vfs.rmdir(a.start, a.path)),
  unlink: (ctx, [path]) => one(ctx, AT_FDCWD, path!, (a) => ctx.host.vfs.unlink(a.start, a.path)),
  unlinkat: (ctx, [dfd, path, flags]) => {
    const fl = flagsOf(flags);
    if (fl & ~AT_REMOVEDIR) return err(E.EINVAL);
    return one(ctx, s32(dfd!), path!, (a) => (fl & AT_REMOVEDIR ? ctx.host.vfs.rmdir(a.start, a.path) : ctx.host.vfs.unlink(a.start, a.path)));
  },
  rename: (ctx, [from, to]) => two(ctx, AT_FDCWD, from!, AT_FDCWD, to!, (a, b) => ctx.host.vfs.rename(a.start, a.path, b.start, b.path)),
  renameat: (ctx, [d1, from, d2, to]) => two(ctx, s32(d1!), from!, s32(d2!), to!, (a, b) => ctx.host.vfs.rename(a.start, a.path, b.start, b.path)),
  renameat2: (ctx, [d1, from, d2, to, flags]) =>
    two(ctx, s32(d1!), from!, s32(d2!), to!, (a, b) => ctx.host.vfs.rename(a.start, a.path, b.start, b.path, flagsOf(flags))),
  symlink: (ctx, [target, path]) => {
    const t = readPath(ctx, target!);
    return typeof t === 'bigint' ? t : one(ctx, AT_FDCWD, path!, (a) => ctx.host.vfs.symlink(t, a.start, a.path));
  },
  symlinkat: (ctx, [target, dfd, path]) => {
    const t = readPath(ctx, target!);
    return typeof t === 'bigint' ? t : one(ctx, s32(dfd!), path!, (a) => ctx.host.vfs.symlink(t, a.start, a.path));
  },
  link: (ctx, [from, to]) => two(ctx, AT_FDCWD, from!, AT_FDCWD, to!, (a, b) => ctx.host.vfs.link(a.start, a.path, b.start, b.path)),
  linkat: (ctx, [d1, from, d2, to, flags]) => {
    const fl = flagsOf(flags);
    if (fl & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) return err(E.EINVAL);
    return two(ctx, s32(d1!), from!, s32(d2!), to!, (a, b) => ctx.host.vfs.link(a.start, a.path, b.start, b.path, (fl & AT_SYMLINK_FOLLOW) !== 0));
  },

  truncate: (ctx, a) => one(ctx, AT_FDCWD, a[0]!, (p) => ctx.host.vfs.truncate(p.start, p.path, lenArg(ctx, a, 1))),
  truncate64: (ctx, a) => one(ctx, AT_FDCWD, a[0]!, (p) => ctx.host.vfs.truncate(p.start, p.path, lenArg(ctx, a, 1))),
  ftruncate: (ctx, a) => truncateFd(ctx, s32(a[0]!), lenArg(ctx, a, 1)),
  ftruncate64: (ctx, a) => truncateFd(ctx, s32(a[0]!), lenArg(ctx, a, 1)),
  utimensat: (ctx, [dfd, path, times, flags]) => utimens(ctx, s32(dfd!), path!, times!, flagsOf(flags), ctx.host.arch.wordSize),
  utimensat_time64: (ctx, [dfd, path, times, flags]) => utimens(ctx, s32(dfd!), path!, times!, flagsOf(flags), 8),
  chmod: (ctx, [path, mode]) => chmodNode(ctx, nodeAt(ctx, AT_FDCWD, path!, 0, 0), mode!),
  fchmodat: (ctx, [dfd, path, mode]) => chmodNode(ctx, nodeAt(ctx, s32(dfd!), path!, 0, 0), mode!),
  chown: (ctx, [path, uid, gid]) => chownNode(ctx, nodeAt(ctx, AT_FDCWD, path!, 0, 0), uid!, gid!, legacyIdBits(ctx)),
  lchown: (ctx, [path, uid, gid]) => chownNode(ctx, nodeAt(ctx, AT_FDCWD, path!, AT_SYMLINK_NOFOLLOW, AT_SYMLINK_NOFOLLOW), uid!, gid!, legacyIdBits(ctx)),
  fchown: (ctx, [fd, uid, gid]) => fchownFd(ctx, s32(fd!), uid!, gid!, legacyIdBits(ctx)),
  chown32: (ctx, [path, uid, gid]) => chownNode(ctx, nodeAt(ctx, AT_FDCWD, path!, 0, 0), uid!, gid!, 32),
  lchown32: (ctx, [path, uid, gid]) => chownNode(ctx, nodeAt(ctx, AT_FDCWD, path!, AT_SYMLINK_NOFOLLOW, AT_SYMLINK_NOFOLLOW), uid!, gid!, 32),
  fchown32: (ctx, [fd, uid, gid]) => fchownFd(ctx, s32(fd!), uid!, gid!, 32),
  fchownat: (ctx, [dfd, path, uid, gid, flags]) => chownNode(ctx, nodeAt(ctx, s32(dfd!), path!, flagsOf(flags), AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH), uid!, gid!, 32),
  fchmod: (ctx, [fd, mode]) => {
    const f = fileOf(ctx, s32(fd!));
    if (!f) return err(E.EBADF);
    return f.kind === 'vfs' ? chmodNode(ctx, f.file.node, mode!) : 0n;
  },
};

/** The open description of a descriptor when it is a VFS file (for mmap). */
export function vfsFileOf(ctx: SyscallCtx, fd: number): FileDescription | undefined {
  const f = fileOf(ctx, fd);
  return f?.kind === 'vfs' ? f.file : undefined;
}

