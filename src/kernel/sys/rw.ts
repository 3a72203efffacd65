/**
 * read/write and their vector and positional forms, on the three kinds of open file: the host's
 * stdio (stdin read, stdout/stderr written), a VFS file, a pipe end.
 *
 * Order of checks as in Linux's ksys_read/ksys_write: the descriptor (EBADF, also for the wrong
 * access mode), then access_ok on the buffer (EFAULT), then the count capped at MAX_RW_COUNT.
 * A pipe read on an empty pipe and a pipe write into a full one put the task to sleep (`wait`):
 * the system call is retried when the pipe changes, with a partial write's progress kept on the
 * task, as pipe_write keeps it across its sleeps.
 */
import { readSync } from 'node:fs';
import { GSIG } from '../signal/numbers.js';
import { E, err } from '../errno.js';
import { MAX_RW_COUNT } from '../limits.js';
import { RW_CHUNK, writeStreamed } from '../rw.js';
import { BLOCK, type Pipe } from '../../vfs/pipe.js';
import { DirNode } from '../../vfs/node.js';
import { SEEK_CUR, SEEK_END, SEEK_SET } from '../../vfs/file.js';
import type { OpenFile } from '../task.js';
import { accessOk, copyOut, mmOf, s32, user, type Handler, type SyscallCtx, type SyscallResult } from './common.js';
import { fileOf } from './files.js';

const IOV_MAX = 1024;

type Seg = { base: bigint; len: number };

/** The wait directive for a pipe: sleep until it changes, then retry the call. */
function waitOn(pipe: Pipe): SyscallResult {
  return { kind: 'wait', subscribe: (wake) => pipe.onChange(wake) };
}

const readable = (f: OpenFile | undefined): boolean =>
  !!f && (f.kind === 'stdio' ? f.hostFd === 0 : f.kind === 'pipe' ? f.end === 'read' : f.file.readable);
const writable = (f: OpenFile | undefined): boolean =>
  !!f && (f.kind === 'stdio' ? f.hostFd !== 0 : f.kind === 'pipe' ? f.end === 'write' : f.file.writable);

/** import_iovec: EINVAL for a bad count or a negative length, EFAULT for a range outside user space. */
function readIovecs(ctx: SyscallCtx, iov: bigint, cnt: number): Seg[] | bigint {
  if (cnt < 0 || cnt > IOV_MAX) return err(E.EINVAL);
  const w = ctx.host.arch.wordSize;
  const out: Seg[] = [];
  const mm = mmOf(ctx);
  let total = 0;
  let bad = false;
  let fault = false;
  const r = user(() => {
    for (let i = 0; i < cnt; i++) {
      const base = mm.readWord(iov + BigInt(i * 2 * w));
      const len = BigInt.asIntN(w * 8, mm.readWord(iov + BigInt(i * 2 * w + w)));
      // A negative (ssize_t) length is EINVAL; past MAX_RW_COUNT in total the rest of the vector
      // is truncated, so one call never moves more than that.
      if (len < 0n) bad = true;
      else if (!accessOk(ctx, base, len)) fault = true;
      const n = Math.min(Number(len < 0n ? 0n : len > BigInt(MAX_RW_COUNT) ? BigInt(MAX_RW_COUNT) : len), MAX_RW_COUNT - total);
      total += n;
      out.push({ base, len: n });
    }
  });
  if (typeof r === 'bigint') return r;
  return bad ? err(E.EINVAL) : fault ? err(E.EFAULT) : out;
}

function capCount(count: bigint): number {
  return Number(count > BigInt(MAX_RW_COUNT) ? BigInt(MAX_RW_COUNT) : count);
}

// --- reading -------------------------------------------------------------------------------------

/**
 * Where a regular file's bytes are read before they are copied out to the guest: every read(2)
 * would otherwise allocate its buffer outside V8's heap (over 10 µs for 4 KiB, measured). Used only
 * between `pull` and the copy-out that follows it; nothing in between reads a file into it (a
 * fault during the copy-out reads page caches with buffers of their own).
 */
const pullBuffer = new Uint8Array(64 * 1024);

/** Bytes from the file for one read of up to `len` (not yet copied out), or a result. */
function pull(ctx: SyscallCtx, f: OpenFile, len: number, at: bigint | undefined): Uint8Array | SyscallResult {
  switch (f.kind) {
    case 'stdio': {
      const buf = Buffer.alloc(Math.min(len, RW_CHUNK));
      try {
        return new Uint8Array(buf.subarray(0, readSync(0, buf, 0, buf.length, null)));
      } catch {
        return new Uint8Array(0); // no usable stdin: end of file
      }
    }
    case 'pipe': {
      if (at !== undefined) return err(E.ESPIPE);
      const r = f.pipe.read(len, !!f.nonblock);
      if (r === BLOCK) return waitOn(f.pipe);
      return typeof r === 'number' ? BigInt(r) : r;
    }
    case 'vfs': {
      const r = at === undefined ? f.file.pread(f.file.pos, len, true, pullBuffer) : f.file.pread(at, len, false, pullBuffer);
      return typeof r === 'number' ? BigInt(r) : r;
    }
  }
}

/**
 * Read into the segments. The file position moves only by what was delivered: a read whose copy
 * faults leaves it where it was, as filemap_read advances ki_pos by the bytes copied.
 */
function readInto(ctx: SyscallCtx, fd: number, segs: Seg[], at: bigint | undefined): SyscallResult {
  const f = fileOf(ctx, fd)!;
  if (f.kind === 'vfs' && f.file.node instanceof DirNode) return err(E.EISDIR);
  let total = 0;
  for (const s of segs) {
    if (s.len === 0) continue;
    const got = pull(ctx, f, s.len, at === undefined ? undefined : at + BigInt(total));
    if (!(got instanceof Uint8Array)) return total > 0 ? BigInt(total) : got;
    const bad = copyOut(ctx, s.base, got);
    if (bad !== undefined) return total > 0 ? BigInt(total) : bad;
    if (f.kind === 'vfs' && at === undefined) f.file.pos += BigInt(got.length);
    total += got.length;
    if (got.length < s.len) break;
  }
  return BigInt(total);
}

// --- writing -------------------------------------------------------------------------------------

function pushOut(ctx: SyscallCtx, f: OpenFile, segs: Seg[], at: bigint | undefined): SyscallResult {
  switch (f.kind) {
    case 'stdio': {
      const hostFd = f.hostFd as 1 | 2;
      return writeStreamed(mmOf(ctx), segs, (b) => (ctx.host.write(hostFd, b), BigInt(b.length)));
    }
    case 'vfs': {
      const file = f.file;
      let pos = at;
      return writeStreamed(mmOf(ctx), segs, (b) => {
        const r = pos === undefined ? file.write(b) : file.pwrite(pos, b);
        if (r > 0 && pos !== undefined) pos += BigInt(r);
        return BigInt(r);
      });
    }
    case 'pipe':
      return at !== undefined ? err(E.ESPIPE) : pipeWrite(ctx, f.pipe, segs, !!f.nonblock);
  }
}

function pipeWrite(ctx: SyscallCtx, pipe: Pipe, segs: Seg[], nonblock: boolean): SyscallResult {
  const task = ctx.task;
  const total = segs.reduce((n, s) => n + s.len, 0);
  const mm = mmOf(ctx);
  const source = (off: number, n: number): Uint8Array | number => {
    // The segment holding byte `off` of the whole vector, and as much of it as asked.
    let base = 0;
    for (const s of segs) {
      if (off < base + s.len) {
        const take = Math.min(n, base + s.len - off);
        const r = user(() => mm.read(s.base + BigInt(off - base), take));
        return typeof r === 'bigint' ? Number(r) : r;
      }
      base += s.len;
    }
    return new Uint8Array(0);
  };
  const r = pipe.writeFrom(total, source, nonblock, task.ioProgress ?? 0);
  if ('block' in r) {
    task.ioProgress = r.done;
    return waitOn(pipe);
  }
  task.ioProgress = undefined;
  // pipe_write's send_sig(SIGPIPE, current, 0): to this thread, SI_USER from itself.
  if (r.sigpipe) ctx.host.signals.send(ctx.host.signals.userInfo(GSIG.SIGPIPE, task), task.process, task);
  return BigInt(r.result);
}

// --- the handlers --------------------------------------------------------------------------------

function readCall(ctx: SyscallCtx, fd: number, segs: Seg[] | bigint, at?: bigint): SyscallResult {
  if (typeof segs === 'bigint') return segs;
  return readInto(ctx, fd, segs, at);
}

/** Checks shared by every read-family call: the descriptor and its mode, then (positional) ESPIPE. */
function readFd(ctx: SyscallCtx, fd: number): bigint | undefined {
  return readable(fileOf(ctx, fd)) ? undefined : err(E.EBADF);
}
function writeFd(ctx: SyscallCtx, fd: number): bigint | undefined {
  return writable(fileOf(ctx, fd)) ? undefined : err(E.EBADF);
}

function oneSeg(ctx: SyscallCtx, buf: bigint, count: bigint): Seg[] | bigint {
  if (!accessOk(ctx, buf, count)) return err(E.EFAULT);
  return [{ base: buf, len: capCount(count) }];
}

function positional(ctx: SyscallCtx, fd: number, off: bigint): bigint | undefined {
  const f = fileOf(ctx, fd)!;
  if (f.kind !== 'vfs') return err(E.ESPIPE);
  if (off < 0n) return err(E.EINVAL);
  return undefined;
}

export const rwHandlers: Record<string, Handler> = {
  read(ctx, [fd, buf, count]) {
    return readFd(ctx, s32(fd!)) ?? readCall(ctx, s32(fd!), oneSeg(ctx, buf!, count!));
  },
  readv(ctx, [fd, iov, cnt]) {
    return readFd(ctx, s32(fd!)) ?? readCall(ctx, s32(fd!), readIovecs(ctx, iov!, s32(cnt!)));
  },
  pread64(ctx, a) {
    const fd = s32(a[0]!);
    const off = ctx.host.arch.fileOffsetArg?.(a, 3) ?? BigInt.asIntN(64, a[3]!);
    return negative(off) ?? open_(ctx, fd) ?? positional(ctx, fd, off) ?? readFd(ctx, fd) ?? readCall(ctx, fd, oneSeg(ctx, a[1]!, a[2]!), off);
  },
  write(ctx, [fd, buf, count]) {
    const bad = writeFd(ctx, s32(fd!));
    if (bad !== undefined) return bad;
    const segs = oneSeg(ctx, buf!, count!);
    return typeof segs === 'bigint' ? segs : pushOut(ctx, fileOf(ctx, s32(fd!))!, segs, undefined);
  },
  writev(ctx, [fd, iov, cnt]) {
    const bad = writeFd(ctx, s32(fd!));
    if (bad !== undefined) return bad;
    const segs = readIovecs(ctx, iov!, s32(cnt!));
    return typeof segs === 'bigint' ? segs : pushOut(ctx, fileOf(ctx, s32(fd!))!, segs, undefined);
  },
  pwrite64(ctx, a) {
    const fd = s32(a[0]!);
    const off = ctx.host.arch.fileOffsetArg?.(a, 3) ?? BigInt.asIntN(64, a[3]!);
    const bad = negative(off) ?? open_(ctx, fd) ?? positional(ctx, fd, off) ?? writeFd(ctx, fd);
    if (bad !== undefined) return bad;
    const segs = oneSeg(ctx, a[1]!, a[2]!);
    return typeof segs === 'bigint' ? segs : pushOut(ctx, fileOf(ctx, fd)!, segs, off);
  },
  // preadv/pwritev(fd, iov, vlen, pos_l, pos_h): pos_from_hilo — the low word alone on 64-bit
  // kernels, high:low on 32-bit ones; a negative position is EINVAL.
  preadv(ctx, a) {
    const fd = s32(a[0]!);
    const off = posFromHiLo(ctx, a[3]!, a[4]!);
    return negative(off) ?? open_(ctx, fd) ?? positional(ctx, fd, off) ?? readFd(ctx, fd) ?? readCall(ctx, fd, readIovecs(ctx, a[1]!, s32(a[2]!)), off);
  },
  pwritev(ctx, a) {
    const fd = s32(a[0]!);
    const off = posFromHiLo(ctx, a[3]!, a[4]!);
    const bad = negative(off) ?? open_(ctx, fd) ?? positional(ctx, fd, off) ?? writeFd(ctx, fd);
    if (bad !== undefined) return bad;
    const segs = readIovecs(ctx, a[1]!, s32(a[2]!));
    return typeof segs === 'bigint' ? segs : pushOut(ctx, fileOf(ctx, fd)!, segs, off);
  },
  // fsync/fdatasync: the overlay is memory, there is nothing to write back; a file without an
  // fsync operation (a pipe, and the host's stdio the guest sees as one) is EINVAL.
  fsync: (ctx, [fd]) => syncFd(ctx, s32(fd!)),
  fdatasync: (ctx, [fd]) => syncFd(ctx, s32(fd!)),
  lseek(ctx, [fd, off, whence]) {
    const r = seek(ctx, s32(fd!), BigInt.asIntN(ctx.host.arch.wordSize * 8, off!), Number(whence!));
    if (r < 0n) return r;
    // On a 32-bit kernel lseek returns an off_t: a position past 2^31 − 1 is EOVERFLOW.
    return ctx.host.arch.wordSize === 4 && r > 0x7fffffffn ? err(E.EOVERFLOW) : r;
  },
  _llseek(ctx, [fd, hi, lo, result, whence]) {
    const off = BigInt.asIntN(64, ((hi! & 0xffffffffn) << 32n) | (lo! & 0xffffffffn));
    const r = seek(ctx, s32(fd!), off, Number(whence!));
    if (r < 0n) return r;
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigInt64(0, r, ctx.host.arch.endian === 'little');
    return copyOut(ctx, result!, b) ?? 0n;
  },
};

/**
 * The positional calls' order (ksys_pread64/pwrite64, do_preadv/pwritev): a negative position is
 * EINVAL before the descriptor is looked up; then EBADF for none, ESPIPE for one without
 * positional I/O (a pipe), and only then EBADF for the wrong mode (vfs_read/vfs_write).
 */
function open_(ctx: SyscallCtx, fd: number): bigint | undefined {
  return fileOf(ctx, fd) ? undefined : err(E.EBADF);
}

function negative(off: bigint): bigint | undefined {
  return off < 0n ? err(E.EINVAL) : undefined;
}

function posFromHiLo(ctx: SyscallCtx, lo: bigint, hi: bigint): bigint {
  const w = ctx.host.arch.wordSize * 8;
  return w === 64 ? BigInt.asIntN(64, lo) : BigInt.asIntN(64, ((hi & 0xffffffffn) << 32n) | (lo & 0xffffffffn));
}

function syncFd(ctx: SyscallCtx, fd: number): bigint {
  const f = fileOf(ctx, fd);
  if (!f) return err(E.EBADF);
  return f.kind === 'vfs' ? 0n : err(E.EINVAL);
}

function seek(ctx: SyscallCtx, fd: number, off: bigint, whence: number): bigint {
  const f = fileOf(ctx, fd);
  if (!f) return err(E.EBADF);
  if (f.kind !== 'vfs') return err(E.ESPIPE);
  if (whence !== SEEK_SET && whence !== SEEK_CUR && whence !== SEEK_END && whence !== 3 && whence !== 4) return err(E.EINVAL);
  const r = f.file.lseek(off, whence);
  return typeof r === 'number' ? BigInt(r) : r;
}
