/**
 * What every system-call family shares: the context a handler runs in, the result it returns,
 * and the user-memory helpers (copy_from_user / copy_to_user's EFAULT, access_ok, getname).
 */
import type { Arch } from '../../../arch/types.js';
import { MmFault, type Mm } from '../../mm/mm.js';
import type { Inode } from '../../mm/inode.js';
import type { Vfs } from '../../vfs/vfs.js';
import type { FutexTable } from '../futex.js';
import type { Timers } from '../timers.js';
import { E, err } from '../errno.js';
import type { Limits } from '../limits.js';
import type { Process, Task } from '../task.js';
import { PATH_MAX } from '../../vfs/path.js';

/** What a handler may ask of the scheduler instead of returning a value. */
export type SyscallDirective =
  | { kind: 'exit'; code: number; group: boolean }
  | { kind: 'block' } // wait4 with nothing to reap: retry after a child changes state
  | { kind: 'yield' }
  /**
   * Sleep until `subscribe`'s wake is called (a pipe changed), then run the same call again: the
   * wait inside pipe_read/pipe_write, invisible to the kernel functions above it.
   */
  | { kind: 'wait'; subscribe: (wake: () => void) => () => void }
  /** execve succeeded: install the new image once the engine has stopped (it never returns). */
  | { kind: 'exec'; image: import('./exec.js').ExecImage };

export type SyscallResult = bigint | SyscallDirective;

/** What handlers need from the machine. */
export interface SyscallHost {
  readonly arch: Arch;
  readonly rng: { bytes(n: number): Uint8Array };
  readonly limits: Limits;
  /** The guest's filesystem (src/vfs). */
  readonly vfs: Vfs;
  /** Futex wait queues and the guest-clock timers (src/kernel/futex.ts, timers.ts). */
  readonly futex: FutexTable;
  readonly timers: Timers;
  write(hostFd: 1 | 2, bytes: Uint8Array): void;
  /** The page cache of a host file (shared by every mapping of it, and what uprobes probe). */
  inodeFor(realPath: string, contents?: Uint8Array): Inode;
  clone(task: Task, flags: bigint, stack: bigint, parentTid: bigint, childTid: bigint, tls: bigint): bigint;
  wait4(task: Task, pid: number, statusPtr: bigint, options: number): SyscallResult;
  kill(task: Task, pid: number, sig: number): bigint;
  /** The signal core (src/kernel/signal): actions, masks, sending. */
  readonly signals: import('../signal/core.js').SignalCore;
  clockNs(): bigint;
  /** Guest memory charged now (sysinfo's free memory is the limit minus this). */
  memoryUsed(): number;
  /** Live tasks (sysinfo's procs), vCPUs (sched_getaffinity). */
  liveTasks(): number;
  cpuCount(): number;
  hasTask(tid: number): boolean;
  /** A live process by pid; process groups and sessions (setsid, setpgid). */
  processOf(pid: number): Process | undefined;
  isGroupLeader(pid: number): boolean;
  groupInSession(pgid: number, sid: number): boolean;
  uname: { sysname: string; nodename: string; release: string; version: string; machine: string };
}

export interface SyscallCtx {
  host: SyscallHost;
  task: Task;
}

export type Handler = (ctx: SyscallCtx, a: bigint[]) => SyscallResult;

export const s32 = (v: bigint): number => Number(BigInt.asIntN(32, v));

export function mmOf(ctx: SyscallCtx): Mm {
  return ctx.task.mm;
}

export function procOf(ctx: SyscallCtx): Process {
  return ctx.task.process;
}

/** Run `fn`, turning a guest memory fault into -EFAULT as copy_{from,to}_user would. */
export function user<T>(fn: () => T): T | bigint {
  try {
    return fn();
  } catch (e) {
    if (e instanceof MmFault) return err(E.EFAULT);
    throw e;
  }
}

/**
 * access_ok(addr, len): the range lies in user space. vfs_read/vfs_write and the iovec import
 * check it before anything else touches the buffer, so a count of -1 is -EFAULT, not a 2 GiB
 * transfer; within it, the count is then capped at MAX_RW_COUNT.
 */
export function accessOk(ctx: SyscallCtx, addr: bigint, len: bigint): boolean {
  const top = ctx.host.arch.layout.taskSize;
  return len <= top && addr <= top - len;
}

/** Copy bytes out to user memory: undefined, or -EFAULT. */
export function copyOut(ctx: SyscallCtx, addr: bigint, bytes: Uint8Array): bigint | undefined {
  if (!accessOk(ctx, addr, BigInt(bytes.length))) return err(E.EFAULT);
  const r = user(() => mmOf(ctx).write(addr, bytes));
  return typeof r === 'bigint' ? r : undefined;
}

/**
 * getname(): a path from user memory, read a page at a time up to PATH_MAX; no NUL within it is
 * ENAMETOOLONG, an empty path ENOENT (unless the call allows it: AT_EMPTY_PATH).
 */
export function readPath(ctx: SyscallCtx, ptr: bigint, allowEmpty = false): string | bigint {
  const r = readUserString(ctx, ptr, PATH_MAX);
  if (r === undefined) return err(E.ENAMETOOLONG);
  if (r === '' && !allowEmpty) return err(E.ENOENT);
  return r;
}

/**
 * A NUL-terminated user string of at most `max` bytes counting its NUL (strncpy_from_user /
 * strnlen_user): the string, -EFAULT, or undefined when no NUL comes within `max` bytes. Read a
 * page at a time: only pages the string reaches are touched, as the kernel's word-at-a-time
 * copy faults only where the string goes on.
 */
export function readUserString(ctx: SyscallCtx, ptr: bigint, max: number): string | bigint | undefined {
  const mm = mmOf(ctx);
  const page = BigInt(mm.pageSize);
  const parts: Uint8Array[] = [];
  let got = 0;
  let at = ptr;
  while (got < max) {
    if (!accessOk(ctx, at, 1n)) return err(E.EFAULT);
    const chunk = Number(page - (at % page));
    const n = Math.min(chunk, max - got);
    const bytes = user(() => mm.read(at, n));
    if (typeof bytes === 'bigint') return bytes;
    const nul = bytes.indexOf(0);
    if (nul >= 0) {
      parts.push(bytes.subarray(0, nul));
      return parts.length === 1 ? Buffer.from(parts[0]!.buffer, parts[0]!.byteOffset, parts[0]!.length).toString('utf8') : Buffer.concat(parts).toString('utf8');
    }
    parts.push(bytes);
    got += n;
    at += BigInt(n);
  }
  return undefined;
}

/**
 * Consecutive `wordSize`-byte integers in the target's byte order. The width is the ABI struct's,
 * not the target's word: a 32-bit target's struct __kernel_timespec (clock_gettime64) and struct
 * rlimit64 (prlimit64) hold 64-bit fields.
 */
export function writeWords(mm: Mm, addr: bigint, words: bigint[], wordSize: number): void {
  const b = new Uint8Array(words.length * wordSize);
  const v = new DataView(b.buffer);
  const le = mm.arch.endian === 'little';
  words.forEach((w, i) => {
    if (wordSize === 8) v.setBigUint64(i * 8, BigInt.asUintN(64, w), le);
    else v.setUint32(i * 4, Number(BigInt.asUintN(32, w)), le);
  });
  mm.write(addr, b);
}
