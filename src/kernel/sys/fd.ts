/**
 * Descriptor operations: dup/dup2/dup3, fcntl, ioctl and pipe/pipe2 (fs/file.c, fs/fcntl.c,
 * fs/pipe.c). Descriptors share one open description; FD_CLOEXEC belongs to the descriptor.
 */
import { E, err } from '../errno.js';
import { Pipe } from '../../vfs/pipe.js';
import { copyOut, procOf, s32, type Handler, type SyscallCtx } from './common.js';
import { fileOf } from './files.js';

const F_DUPFD = 0;
const F_GETFD = 1;
const F_SETFD = 2;
const F_GETFL = 3;
const F_SETFL = 4;
const F_SETPIPE_SZ = 1031;
const F_GETPIPE_SZ = 1032;
const F_DUPFD_CLOEXEC = 1030;
const FD_CLOEXEC = 1;
/** fs.pipe-max-size's default: F_SETPIPE_SZ past it is EPERM without CAP_SYS_RESOURCE. */
const PIPE_MAX_SIZE = 1 << 20;

/** dup / F_DUPFD: the lowest free descriptor ≥ min (alloc_fd), EMFILE when none is left. */
function dupFd(ctx: SyscallCtx, fd: number, min: number, cloexec: boolean): bigint {
  const fds = procOf(ctx).fds;
  const f = fds.get(fd);
  if (!f) return err(E.EBADF);
  const n = fds.install(f, min);
  if (n < 0) return err(E.EMFILE);
  if (cloexec) fds.closeOnExec.add(n);
  return BigInt(n);
}

function dup3(ctx: SyscallCtx, fd: number, to: number, cloexec: boolean): bigint {
  const fds = procOf(ctx).fds;
  const f = fds.get(fd);
  if (!f) return err(E.EBADF);
  // ksys_dup3: newfd at or past RLIMIT_NOFILE is EBADF.
  if (to < 0 || to >= fds.limit) return err(E.EBADF);
  if (to !== fd) fds.set(to, f);
  if (cloexec) fds.closeOnExec.add(to);
  return BigInt(to);
}

function fcntl(ctx: SyscallCtx, fd: number, cmd: number, arg: bigint): bigint {
  const fds = procOf(ctx).fds;
  const f = fileOf(ctx, fd);
  if (!f) return err(E.EBADF);
  const bits = ctx.host.arch.fsAbi.openFlags;
  switch (cmd) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
      // f_dupfd: an unsigned long at or past RLIMIT_NOFILE is EINVAL (2^62 included).
      if (BigInt.asUintN(ctx.host.arch.wordSize * 8, arg) >= BigInt(fds.limit)) return err(E.EINVAL);
      return dupFd(ctx, fd, Number(arg), cmd === F_DUPFD_CLOEXEC);
    case F_GETFD:
      return fds.closeOnExec.has(fd) ? BigInt(FD_CLOEXEC) : 0n;
    case F_SETFD:
      if (arg & BigInt(FD_CLOEXEC)) fds.closeOnExec.add(fd);
      else fds.closeOnExec.delete(fd);
      return 0n;
    case F_GETFL:
      if (f.kind === 'stdio') return BigInt(f.hostFd === 0 ? 0 : bits.O_WRONLY); // pipes from the host
      if (f.kind === 'pipe') return BigInt((f.end === 'read' ? 0 : bits.O_WRONLY) | (f.nonblock ? bits.O_NONBLOCK : 0));
      return BigInt(f.status ?? 0);
    case F_SETFL: {
      // setfl: only O_APPEND, O_NONBLOCK, O_DIRECT and O_NOATIME change (and FASYNC, not kept).
      const v = Number(arg);
      const mask = bits.O_APPEND | bits.O_NONBLOCK | bits.O_DIRECT | bits.O_NOATIME;
      f.status = ((f.status ?? 0) & ~mask) | (v & mask);
      f.nonblock = (v & bits.O_NONBLOCK) !== 0;
      if (f.kind === 'vfs') f.file.flags.append = (v & bits.O_APPEND) !== 0;
      return 0n;
    }
    case F_GETPIPE_SZ:
      return f.kind === 'pipe' ? BigInt(f.pipe.capacity) : err(E.EBADF);
    case F_SETPIPE_SZ: {
      if (f.kind !== 'pipe') return err(E.EBADF);
      // round_pipe_size: whole pages, a power of two of them; smaller than what it holds is EBUSY.
      let size = 4096;
      const want = Number(BigInt.asUintN(32, arg));
      while (size < want) size *= 2;
      if (size > PIPE_MAX_SIZE && ctx.host.vfs.uid !== 0) return err(E.EPERM);
      if (size < f.pipe.available) return err(E.EBUSY);
      f.pipe.capacity = size;
      return BigInt(size);
    }
    default:
      return err(E.EINVAL);
  }
}

/** pipe2: flags O_NONBLOCK, O_CLOEXEC, O_DIRECT (anything else EINVAL); two int descriptors out. */
function pipe2(ctx: SyscallCtx, fdsPtr: bigint, flags: number): bigint {
  const b = ctx.host.arch.fsAbi.openFlags;
  if (flags & ~(b.O_NONBLOCK | b.O_CLOEXEC | b.O_DIRECT)) return err(E.EINVAL);
  const fds = procOf(ctx).fds;
  const nonblock = (flags & b.O_NONBLOCK) !== 0;
  const pipe = new Pipe();
  pipe.open('read');
  pipe.open('write');
  const rd = { kind: 'pipe' as const, pipe, end: 'read' as const, nonblock, status: nonblock ? b.O_NONBLOCK : 0 };
  const wr = { kind: 'pipe' as const, pipe, end: 'write' as const, nonblock, status: b.O_WRONLY | (nonblock ? b.O_NONBLOCK : 0) };
  const r = fds.install(rd);
  if (r < 0) return (pipe.close('read'), pipe.close('write'), err(E.EMFILE));
  const w = fds.install(wr);
  if (w < 0) {
    fds.delete(r);
    pipe.close('write');
    return err(E.EMFILE);
  }
  const out = new Uint8Array(8);
  const v = new DataView(out.buffer);
  const le = ctx.host.arch.endian === 'little';
  v.setInt32(0, r, le);
  v.setInt32(4, w, le);
  const bad = copyOut(ctx, fdsPtr, out);
  if (bad !== undefined) {
    // do_pipe2 installs only after the copy succeeded: nothing stays open.
    fds.delete(r);
    fds.delete(w);
    return bad;
  }
  if (flags & b.O_CLOEXEC) {
    fds.closeOnExec.add(r);
    fds.closeOnExec.add(w);
  }
  return 0n;
}

export const fdHandlers: Record<string, Handler> = {
  dup: (ctx, [fd]) => dupFd(ctx, s32(fd!), 0, false),
  dup2: (ctx, [fd, to]) => {
    // dup2 of a descriptor onto itself checks it and returns it.
    if (s32(fd!) === s32(to!)) return fileOf(ctx, s32(fd!)) ? BigInt(s32(fd!)) : err(E.EBADF);
    return dup3(ctx, s32(fd!), s32(to!), false);
  },
  dup3: (ctx, [fd, to, flags]) => {
    const b = ctx.host.arch.fsAbi.openFlags;
    if (Number(flags!) & ~b.O_CLOEXEC) return err(E.EINVAL);
    if (s32(fd!) === s32(to!)) return err(E.EINVAL);
    return dup3(ctx, s32(fd!), s32(to!), (Number(flags!) & b.O_CLOEXEC) !== 0);
  },
  fcntl: (ctx, [fd, cmd, arg]) => fcntl(ctx, s32(fd!), Number(cmd!), arg!),
  fcntl64: (ctx, [fd, cmd, arg]) => fcntl(ctx, s32(fd!), Number(cmd!), arg!),
  // No descriptor is a terminal (TCGETS, TIOCGWINSZ…: ENOTTY), after the descriptor check.
  ioctl: (ctx, [fd]) => (fileOf(ctx, s32(fd!)) ? err(E.ENOTTY) : err(E.EBADF)),
  pipe: (ctx, [fds]) => pipe2(ctx, fds!, 0),
  pipe2: (ctx, [fds, flags]) => pipe2(ctx, fds!, s32(flags!)),
};
