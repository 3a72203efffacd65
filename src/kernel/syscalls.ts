/**
 * The host half of the system-call layer: what the guest kernel image cannot do itself (I/O,
 * memory maps, processes). Handlers are keyed by the generic Linux name and receive the six
 * argument words; they return the result (or -errno), or a directive for the scheduler.
 *
 * Errors are generic Linux errno values; the arch converts them for the user ABI on return.
 */
import { readSync, realpathSync, statSync } from 'node:fs';
import { UniprobeError } from '../errors.js';
import type { Arch } from '../../arch/types.js';
import { MmFault, type Mm } from '../mm/mm.js';
import { PROT } from '../mm/vma.js';
import { E, err } from './errno.js';
import type { OpenFile, Process, Task } from './task.js';
import { MAX_RW_COUNT, type Limits } from './limits.js';
import { RW_CHUNK, writeStreamed } from './rw.js';

/** What a handler may ask of the scheduler instead of returning a value. */
export type SyscallDirective =
  | { kind: 'exit'; code: number; group: boolean }
  | { kind: 'block' } // wait4 with nothing to reap: retry after a child changes state
  | { kind: 'yield' };

export type SyscallResult = bigint | SyscallDirective;

/** What handlers need from the machine. */
export interface SyscallHost {
  readonly arch: Arch;
  readonly rng: { bytes(n: number): Uint8Array };
  readonly limits: Limits;
  write(hostFd: 1 | 2, bytes: Uint8Array): void;
  /** Host files the guest may open (realpaths). */
  mayOpen(realPath: string): boolean;
  inodeFor(realPath: string): import('../mm/inode.js').Inode;
  clone(task: Task, flags: bigint, stack: bigint, parentTid: bigint, childTid: bigint, tls: bigint): bigint;
  wait4(task: Task, pid: number, statusPtr: bigint, options: number): SyscallResult;
  kill(task: Task, pid: number, sig: number): bigint;
  clockNs(): bigint;
  uname: { sysname: string; nodename: string; release: string; version: string; machine: string };
}

export interface SyscallCtx {
  host: SyscallHost;
  task: Task;
}

const AT_FDCWD = -100;
const O_ACCMODE = 3;
const MAP_SHARED = 0x01;
const MAP_PRIVATE = 0x02;
const MAP_FIXED = 0x10;
const MAP_ANONYMOUS = 0x20; // the same on x86, ppc and sparc
const WNOHANG = 1;
const RLIM_INFINITY = -1n;
const RLIMIT_STACK = 3;
const RLIMIT_NOFILE = 7;
const IOV_MAX = 1024;
const MAX_RW = MAX_RW_COUNT;

const s32 = (v: bigint): number => Number(BigInt.asIntN(32, v));

function mmOf(ctx: SyscallCtx): Mm {
  return ctx.task.mm;
}

/** Run `fn`, turning a guest memory fault into -EFAULT as copy_{from,to}_user would. */
function user<T>(fn: () => T): T | bigint {
  try {
    return fn();
  } catch (e) {
    if (e instanceof MmFault) return err(E.EFAULT);
    throw e;
  }
}

function fdFile(p: Process, fd: number): OpenFile | undefined {
  return p.fds.get(fd);
}

function writeWords(mm: Mm, addr: bigint, words: bigint[], wordSize: number): void {
  words.forEach((w, i) => mm.writeWord(addr + BigInt(i * wordSize), w));
}

function doWrite(ctx: SyscallCtx, fd: number, bytes: Uint8Array): bigint {
  const f = fdFile(ctx.task.process, fd);
  if (!f) return err(E.EBADF);
  if (f.kind === 'stdio') {
    if (f.hostFd === 0) return err(E.EBADF);
    ctx.host.write(f.hostFd, bytes);
    return BigInt(bytes.length);
  }
  return err(E.EBADF); // files are opened read-only
}

/** A descriptor write(2) may use, or -EBADF (Linux checks this before it touches the buffer). */
function writableFd(ctx: SyscallCtx, fd: number): bigint | undefined {
  const f = fdFile(ctx.task.process, fd);
  if (!f || f.kind !== 'stdio' || f.hostFd === 0) return err(E.EBADF); // files are opened read-only
  return undefined;
}

/** A descriptor read(2) may use, or -EBADF (checked before the iovec array is read, as in Linux). */
function readableFd(ctx: SyscallCtx, fd: number): bigint | undefined {
  const f = fdFile(ctx.task.process, fd);
  if (!f || (f.kind === 'stdio' && f.hostFd !== 0)) return err(E.EBADF);
  return undefined;
}

/**
 * Read up to `len` bytes and hand them to `copyOut` (the copy to user memory). The file position
 * moves only by what was delivered: a read whose copy faults leaves it where it was, as Linux's
 * filemap_read does (it advances ki_pos by the bytes copied).
 */
function doRead(ctx: SyscallCtx, fd: number, len: number, copyOut: (data: Uint8Array) => bigint | undefined): bigint {
  const data = readBytes(ctx, fd, len);
  if (typeof data === 'bigint') return data;
  const r = copyOut(data);
  if (r !== undefined) return r;
  const f = fdFile(ctx.task.process, fd);
  if (f?.kind === 'file') f.pos += data.length;
  return BigInt(data.length);
}

function readBytes(ctx: SyscallCtx, fd: number, len: number): Uint8Array | bigint {
  const f = fdFile(ctx.task.process, fd);
  if (!f) return err(E.EBADF);
  if (f.kind === 'stdio') {
    if (f.hostFd !== 0) return err(E.EBADF);
    const buf = Buffer.alloc(Math.min(len, RW_CHUNK));
    try {
      const n = readSync(0, buf, 0, buf.length, null);
      return new Uint8Array(buf.subarray(0, n));
    } catch {
      return new Uint8Array(0); // no usable stdin: end of file
    }
  }
  return f.inode.read(f.pos, len);
}

function readIovecs(ctx: SyscallCtx, iov: bigint, cnt: number): Array<{ base: bigint; len: number }> | bigint {
  if (cnt < 0 || cnt > IOV_MAX) return err(E.EINVAL);
  const w = ctx.host.arch.wordSize;
  const out: Array<{ base: bigint; len: number }> = [];
  const mm = mmOf(ctx);
  let total = 0;
  let bad = false;
  let fault = false;
  const r = user(() => {
    for (let i = 0; i < cnt; i++) {
      const base = mm.readWord(iov + BigInt(i * 2 * w));
      const len = BigInt.asIntN(w * 8, mm.readWord(iov + BigInt(i * 2 * w + w)));
      // iovec_from_user/import_iovec: a negative (ssize_t) length is EINVAL; past MAX_RW_COUNT
      // in total the rest of the vector is truncated, so one call never moves more than that.
      if (len < 0n) bad = true;
      else if (!accessOk(ctx, base, len)) fault = true;
      const n = Math.min(Number(len < 0n ? 0n : len > BigInt(MAX_RW) ? BigInt(MAX_RW) : len), MAX_RW - total);
      total += n;
      out.push({ base, len: n });
    }
  });
  if (typeof r === 'bigint') return r;
  return bad ? err(E.EINVAL) : fault ? err(E.EFAULT) : out;
}

/**
 * access_ok(addr, len): the range lies in user space. vfs_read/vfs_write and the iovec import
 * check it before anything else touches the buffer, so a count of -1 is -EFAULT, not a 2 GiB
 * transfer; within it, the count is then capped at MAX_RW_COUNT.
 */
function accessOk(ctx: SyscallCtx, addr: bigint, len: bigint): boolean {
  const top = ctx.host.arch.layout.taskSize;
  return len <= top && addr <= top - len;
}

type Handler = (ctx: SyscallCtx, a: bigint[]) => SyscallResult;

export const handlers: Record<string, Handler> = {
  write(ctx, [fd, buf, count]) {
    const bad = writableFd(ctx, s32(fd!));
    if (bad !== undefined) return bad;
    if (!accessOk(ctx, buf!, count!)) return err(E.EFAULT);
    const n = Number(count! > BigInt(MAX_RW) ? BigInt(MAX_RW) : count!);
    return writeStreamed(mmOf(ctx), [{ base: buf!, len: n }], (b) => doWrite(ctx, s32(fd!), b));
  },
  writev(ctx, [fd, iov, cnt]) {
    const bad = writableFd(ctx, s32(fd!));
    if (bad !== undefined) return bad;
    const v = readIovecs(ctx, iov!, s32(cnt!));
    if (typeof v === 'bigint') return v;
    return writeStreamed(mmOf(ctx), v, (b) => doWrite(ctx, s32(fd!), b));
  },
  read(ctx, [fd, buf, count]) {
    const bad = readableFd(ctx, s32(fd!));
    if (bad !== undefined) return bad;
    if (!accessOk(ctx, buf!, count!)) return err(E.EFAULT);
    const n = Number(count! > BigInt(MAX_RW) ? BigInt(MAX_RW) : count!);
    return doRead(ctx, s32(fd!), n, (data) => {
      const r = user(() => mmOf(ctx).write(buf!, data));
      return typeof r === 'bigint' ? r : undefined;
    });
  },
  readv(ctx, [fd, iov, cnt]) {
    const bad = readableFd(ctx, s32(fd!));
    if (bad !== undefined) return bad;
    const v = readIovecs(ctx, iov!, s32(cnt!));
    if (typeof v === 'bigint') return v;
    let total = 0;
    for (const x of v) {
      const got = doRead(ctx, s32(fd!), x.len, (data) => {
        const r = user(() => mmOf(ctx).write(x.base, data));
        return typeof r === 'bigint' ? r : undefined;
      });
      if (got < 0n) return total ? BigInt(total) : got;
      total += Number(got);
      if (got < BigInt(x.len)) break;
    }
    return BigInt(total);
  },
  openat(ctx, [dfd, pathPtr, flags]) {
    const path = user(() => mmOf(ctx).readCString(pathPtr!));
    if (typeof path === 'bigint') return path;
    if (s32(dfd!) !== AT_FDCWD && !path.startsWith('/')) return err(E.EBADF);
    if ((Number(flags!) & O_ACCMODE) !== 0) return err(E.EACCES);
    let real: string;
    try {
      real = realpathSync(path);
    } catch {
      return err(E.ENOENT);
    }
    // Only files the user named on the command line are visible to the guest.
    if (!ctx.host.mayOpen(real)) return err(E.ENOENT);
    try {
      if (statSync(real).isDirectory()) return err(E.EISDIR);
    } catch {
      return err(E.EACCES);
    }
    const p = ctx.task.process;
    if (p.fds.lowestFree() < 0) return err(E.EMFILE);
    let inode;
    try {
      inode = ctx.host.inodeFor(real);
    } catch (e) {
      // The page cache for it would pass the guest memory limit (Inode's check).
      if (e instanceof UniprobeError && e.errno === E.ENOMEM) return err(E.ENOMEM);
      throw e;
    }
    return BigInt(p.fds.install({ kind: 'file', inode, pos: 0, flags: Number(flags!) }));
  },
  close(ctx, [fd]) {
    return ctx.task.process.fds.delete(s32(fd!)) ? 0n : err(E.EBADF);
  },
  lseek(ctx, [fd, off, whence]) {
    const f = fdFile(ctx.task.process, s32(fd!));
    if (!f) return err(E.EBADF);
    if (f.kind === 'stdio') return err(E.ESPIPE);
    const o = Number(BigInt.asIntN(ctx.host.arch.wordSize * 8, off!));
    const base = whence === 0n ? 0 : whence === 1n ? f.pos : whence === 2n ? f.inode.size : NaN;
    if (Number.isNaN(base) || base + o < 0) return err(E.EINVAL);
    f.pos = base + o;
    return BigInt(f.pos);
  },
  exit(_ctx, [code]) {
    return { kind: 'exit', code: Number(code! & 0xffn), group: false };
  },
  exit_group(_ctx, [code]) {
    return { kind: 'exit', code: Number(code! & 0xffn), group: true };
  },
  brk(ctx, [addr]) {
    return mmOf(ctx).setBrk(addr!);
  },
  mmap(ctx, a) {
    return doMmap(ctx, a[0]!, a[1]!, s32(a[2]!), s32(a[3]!), s32(a[4]!), a[5]!);
  },
  mmap2(ctx, a) {
    // mmap2's offset is in 4096-byte units on every 32-bit target.
    return doMmap(ctx, a[0]!, a[1]!, s32(a[2]!), s32(a[3]!), s32(a[4]!), a[5]! * 4096n);
  },
  munmap(ctx, [addr, len]) {
    return BigInt(mmOf(ctx).munmap(addr!, len!));
  },
  mprotect(ctx, [addr, len, prot]) {
    return BigInt(mmOf(ctx).mprotect(addr!, len!, Number(prot!) & 7));
  },
  madvise: () => 0n,
  mremap: () => err(E.ENOMEM),
  getpid: (ctx) => BigInt(ctx.task.process.pid),
  gettid: (ctx) => BigInt(ctx.task.tid),
  getppid: (ctx) => BigInt(ctx.task.process.parent?.pid ?? 0),
  getuid: () => 0n,
  geteuid: () => 0n,
  getgid: () => 0n,
  getegid: () => 0n,
  getuid32: () => 0n,
  geteuid32: () => 0n,
  getgid32: () => 0n,
  getegid32: () => 0n,
  uname(ctx, [buf]) {
    const u = ctx.host.uname;
    const fields = [u.sysname, u.nodename, u.release, u.version, u.machine, '(none)'];
    const out = new Uint8Array(65 * 6);
    fields.forEach((f, i) => out.set(Buffer.from(f.slice(0, 64)), i * 65));
    const r = user(() => mmOf(ctx).write(buf!, out));
    return typeof r === 'bigint' ? r : 0n;
  },
  set_tid_address(ctx, [ptr]) {
    ctx.task.clearChildTid = ptr!;
    return BigInt(ctx.task.tid);
  },
  set_robust_list: () => 0n,
  rseq: () => err(E.ENOSYS),
  prlimit64(ctx, [pid, resource, _newp, oldp]) {
    if (pid !== 0n && Number(pid) !== ctx.task.process.pid) return err(E.ESRCH);
    if (oldp !== 0n) {
      const cur = rlimit(ctx, Number(resource!));
      const r = user(() => writeWords(mmOf(ctx), oldp!, [cur, cur], 8));
      if (typeof r === 'bigint') return r;
    }
    return 0n;
  },
  ugetrlimit: (ctx, [resource, rl]) => getrlimitWords(ctx, Number(resource!), rl!),
  getrlimit: (ctx, [resource, rl]) => getrlimitWords(ctx, Number(resource!), rl!),
  readlink: (ctx, [path, buf, size]) => readlinkSelf(ctx, path!, buf!, size!),
  readlinkat: (ctx, [_dfd, path, buf, size]) => readlinkSelf(ctx, path!, buf!, size!),
  getrandom(ctx, [buf, len]) {
    // At most 33554431 bytes per call from the urandom source (getrandom(2), as Linux caps it).
    const cap = (1n << 25n) - 1n;
    const n = Number(len! > cap ? cap : len!);
    const r = user(() => mmOf(ctx).write(buf!, ctx.host.rng.bytes(n)));
    return typeof r === 'bigint' ? r : BigInt(n);
  },
  ioctl: () => err(E.ENOTTY),
  fcntl: (ctx, [fd, cmd, arg]) => doFcntl(ctx, s32(fd!), Number(cmd!), arg!),
  fcntl64: (ctx, [fd, cmd, arg]) => doFcntl(ctx, s32(fd!), Number(cmd!), arg!),
  dup: (ctx, [fd]) => dupFd(ctx, s32(fd!), 0),
  dup2: (ctx, [fd, to]) => dup2(ctx, s32(fd!), s32(to!)),
  dup3: (ctx, [fd, to]) => (s32(fd!) === s32(to!) ? err(E.EINVAL) : dup2(ctx, s32(fd!), s32(to!))),
  rt_sigaction: () => 0n,
  rt_sigprocmask: () => 0n,
  sigaltstack: () => 0n,
  sched_yield: () => ({ kind: 'yield' }),
  futex: () => 0n,
  nanosleep: () => ({ kind: 'yield' }),
  clock_nanosleep: () => ({ kind: 'yield' }),
  clock_gettime(ctx, [_clk, ts]) {
    const ns = ctx.host.clockNs();
    const w = ctx.host.arch.wordSize;
    const r = user(() => writeWords(mmOf(ctx), ts!, [ns / 1_000_000_000n, ns % 1_000_000_000n], w));
    return typeof r === 'bigint' ? r : 0n;
  },
  clock_gettime64(ctx, [_clk, ts]) {
    const ns = ctx.host.clockNs();
    const r = user(() => writeWords(mmOf(ctx), ts!, [ns / 1_000_000_000n, ns % 1_000_000_000n], 8));
    return typeof r === 'bigint' ? r : 0n;
  },
  gettimeofday(ctx, [tv]) {
    if (tv === 0n) return 0n;
    const ns = ctx.host.clockNs();
    const r = user(() => writeWords(mmOf(ctx), tv!, [ns / 1_000_000_000n, (ns / 1000n) % 1_000_000n], ctx.host.arch.wordSize));
    return typeof r === 'bigint' ? r : 0n;
  },
  time(ctx, [t]) {
    const s = ctx.host.clockNs() / 1_000_000_000n;
    if (t !== 0n) {
      const r = user(() => mmOf(ctx).writeWord(t!, s));
      if (typeof r === 'bigint') return r;
    }
    return s;
  },
  clone(ctx, a) {
    const c = ctx.host.arch.cloneArgs(a);
    return ctx.host.clone(ctx.task, c.flags, c.stack, c.parentTid, c.childTid, c.tls);
  },
  fork(ctx) {
    return ctx.host.clone(ctx.task, 17n /* SIGCHLD */, 0n, 0n, 0n, 0n);
  },
  vfork(ctx) {
    // vfork's sharing is an optimisation; a copy behaves the same for a well-behaved child.
    return ctx.host.clone(ctx.task, 17n, 0n, 0n, 0n, 0n);
  },
  wait4(ctx, [pid, status, options]) {
    return ctx.host.wait4(ctx.task, s32(pid!), status!, Number(options!));
  },
  kill: (ctx, [pid, sig]) => ctx.host.kill(ctx.task, s32(pid!), Number(sig!)),
  tgkill: (ctx, [_tgid, tid, sig]) => ctx.host.kill(ctx.task, s32(tid!), Number(sig!)),
  tkill: (ctx, [tid, sig]) => ctx.host.kill(ctx.task, s32(tid!), Number(sig!)),
  getcwd(ctx, [buf, size]) {
    if (size! < 2n) return err(E.ERANGE);
    const r = user(() => mmOf(ctx).write(buf!, Uint8Array.of(0x2f, 0)));
    return typeof r === 'bigint' ? r : 2n;
  },
};

const F_DUPFD = 0;
const F_GETFD = 1;
const F_SETFD = 2;
const F_GETFL = 3;
const F_SETFL = 4;
const F_DUPFD_CLOEXEC = 1030;

/** dup / F_DUPFD: the lowest free descriptor ≥ min (alloc_fd), EMFILE when none is left. */
function dupFd(ctx: SyscallCtx, fd: number, min: number): bigint {
  const p = ctx.task.process;
  const f = p.fds.get(fd);
  if (!f) return err(E.EBADF);
  const n = p.fds.install(f, min);
  return n < 0 ? err(E.EMFILE) : BigInt(n);
}

function dup2(ctx: SyscallCtx, fd: number, to: number): bigint {
  const p = ctx.task.process;
  const f = p.fds.get(fd);
  if (!f) return err(E.EBADF);
  // ksys_dup3: newfd at or past RLIMIT_NOFILE is EBADF.
  if (to < 0 || to >= p.fds.limit) return err(E.EBADF);
  p.fds.set(to, f);
  return BigInt(to);
}

/** fcntl: the status flags a program checks (stdout must look writable), dup, and no-ops. */
function doFcntl(ctx: SyscallCtx, fd: number, cmd: number, arg: bigint): bigint {
  const f = fdFile(ctx.task.process, fd);
  if (!f) return err(E.EBADF);
  switch (cmd) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
      // f_dupfd: an unsigned long at or past RLIMIT_NOFILE is EINVAL (2^62 included).
      if (BigInt.asUintN(ctx.host.arch.wordSize * 8, arg) >= BigInt(ctx.task.process.fds.limit)) return err(E.EINVAL);
      return dupFd(ctx, fd, Number(arg));
    case F_GETFD:
    case F_SETFD:
    case F_SETFL:
      return 0n;
    case F_GETFL:
      // Access mode as for a process whose stdin is read and stdout/stderr written (pipes).
      return f.kind === 'stdio' ? (f.hostFd === 0 ? 0n : 1n) : BigInt(f.flags);
    default:
      return err(E.EINVAL);
  }
}

const RLIMIT_NPROC_GENERIC = 6; // asm-generic numbering: x86 and ppc
const RLIMIT_AS_GENERIC = 9;

/** What getrlimit reports: the limits the machine enforces (nproc, nofile, address space). */
function rlimit(ctx: SyscallCtx, resource: number): bigint {
  const l = ctx.host.limits;
  if (resource === RLIMIT_STACK) return 8n << 20n;
  const map = ctx.host.arch.rlimitResource?.(resource) ?? resource;
  if (map === RLIMIT_NOFILE) return BigInt(l.maxFiles);
  if (map === RLIMIT_NPROC_GENERIC) return BigInt(l.maxTasks);
  if (map === RLIMIT_AS_GENERIC) return BigInt(l.maxMemory);
  return RLIM_INFINITY;
}

function getrlimitWords(ctx: SyscallCtx, resource: number, rl: bigint): bigint {
  const w = ctx.host.arch.wordSize;
  const v = BigInt.asUintN(w * 8, rlimit(ctx, resource));
  const r = user(() => writeWords(mmOf(ctx), rl, [v, v], w));
  return typeof r === 'bigint' ? r : 0n;
}

function readlinkSelf(ctx: SyscallCtx, pathPtr: bigint, buf: bigint, size: bigint): bigint {
  const path = user(() => mmOf(ctx).readCString(pathPtr));
  if (typeof path === 'bigint') return path;
  if (path !== '/proc/self/exe') return err(E.ENOENT);
  const target = Buffer.from(ctx.task.process.exePath);
  const n = Math.min(target.length, Number(size));
  const r = user(() => mmOf(ctx).write(buf, new Uint8Array(target.subarray(0, n))));
  return typeof r === 'bigint' ? r : BigInt(n);
}

function doMmap(ctx: SyscallCtx, addr: bigint, len: bigint, prot: number, flags: number, fd: number, off: bigint): bigint {
  const mm = mmOf(ctx);
  const shared = (flags & 3) === MAP_SHARED;
  if (!shared && (flags & 3) !== MAP_PRIVATE) return err(E.EINVAL);
  const anon = (flags & MAP_ANONYMOUS) !== 0;
  const fixed = (flags & MAP_FIXED) !== 0;
  if (anon) return mm.mmap({ addr, len, prot: prot & 7, fixed, shared });
  const f = fdFile(ctx.task.process, fd);
  if (!f) return err(E.EBADF);
  if (f.kind !== 'file') return err(E.EACCES);
  if (off % BigInt(mm.pageSize) !== 0n) return err(E.EINVAL);
  if (shared && prot & PROT.WRITE) return err(E.EACCES); // the file is open read-only
  return mm.mmap({ addr, len, prot: prot & 7, fixed, shared, file: { inode: f.inode, pgoff: Number(off / BigInt(mm.pageSize)) } });
}

/** Names whose calls go through the guest kernel's own functions (fixtures/kernel/ABI.md KSYS_*). */
export function normaliseSyscall(name: string, args: bigint[]): { name: string; args: bigint[] } {
  switch (name) {
    case 'open':
      return { name: 'openat', args: [BigInt.asUintN(64, -100n), args[0]!, args[1]!, args[2]!, 0n, 0n] };
    default:
      return { name, args };
  }
}
