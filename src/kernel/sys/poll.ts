/**
 * poll/ppoll and select/pselect6 (fs/select.c) over the guest's descriptors: a pipe's read end
 * is readable with data and hangs up when no writer is left; its write end is writable while
 * there is room and reports an error when no reader is left (pipe_poll); regular files, /dev
 * nodes and the host's stdio are always ready (DEFAULT_POLLMASK). With nothing ready the task
 * sleeps until a pipe it watches changes or the timeout passes on the guest clock, then the call
 * runs again.
 *
 * The poll bits are the target's (asm-generic/poll.h; sparc's POLLWRNORM is POLLOUT). Not done:
 * select's write-back of the time left (Linux updates the timeval), pselect/ppoll's signal mask
 * (no signal is delivered yet).
 */
import { E, err } from '../errno.js';
import type { Pipe } from '../../vfs/pipe.js';
import { PIPE_BUF } from '../../vfs/pipe.js';
import type { OpenFile } from '../task.js';
import { copyOut, s32, user, type Handler, type SyscallCtx, type SyscallResult } from './common.js';
import { fileOf } from './files.js';

export interface PollBits {
  POLLIN: number;
  POLLPRI: number;
  POLLOUT: number;
  POLLERR: number;
  POLLHUP: number;
  POLLNVAL: number;
  POLLRDNORM: number;
  POLLWRNORM: number;
}

/** asm-generic/poll.h (x86 and powerpc). */
export const GENERIC_POLL: PollBits = { POLLIN: 0x1, POLLPRI: 0x2, POLLOUT: 0x4, POLLERR: 0x8, POLLHUP: 0x10, POLLNVAL: 0x20, POLLRDNORM: 0x40, POLLWRNORM: 0x100 };

const NS = 1_000_000_000n;

/** What a descriptor is ready for right now, in poll bits; the pipe to watch, if any. */
function readiness(f: OpenFile | undefined, b: PollBits): { mask: number; pipe?: Pipe } {
  if (!f) return { mask: b.POLLNVAL };
  const all = b.POLLIN | b.POLLOUT | b.POLLRDNORM | b.POLLWRNORM;
  if (f.kind !== 'pipe') return { mask: all };
  const p = f.pipe;
  let mask = 0;
  if (f.end === 'read') {
    if (p.available > 0) mask |= b.POLLIN | b.POLLRDNORM;
    if (p.writers === 0) mask |= b.POLLHUP;
  } else {
    if (p.capacity - p.available >= PIPE_BUF || p.available === 0) mask |= b.POLLOUT | b.POLLWRNORM;
    if (p.readers === 0) mask |= b.POLLERR;
  }
  return { mask, pipe: p };
}

/** Sleep until one of `pipes` changes or the deadline passes; the call then runs again. */
function sleepOn(ctx: SyscallCtx, pipes: Pipe[], deadline: bigint | undefined): SyscallResult {
  const timers = ctx.host.timers;
  ctx.task.pollDeadline = deadline ?? -1n;
  return {
    kind: 'wait',
    subscribe: (wake) => {
      const offs = pipes.map((p) => p.onChange(wake));
      if (deadline !== undefined) offs.push(timers.add(deadline, wake));
      return () => {
        for (const off of offs) off();
      };
    },
  };
}

/** The deadline of a call: the one kept from its first visit, or now + timeout (undefined = forever). */
function deadlineOf(ctx: SyscallCtx, timeoutNs: bigint | undefined): bigint | undefined {
  const kept = ctx.task.pollDeadline;
  if (kept !== undefined) return kept < 0n ? undefined : kept;
  return timeoutNs === undefined ? undefined : ctx.host.timers.now() + timeoutNs;
}

function done(ctx: SyscallCtx, r: bigint): bigint {
  ctx.task.pollDeadline = undefined;
  return r;
}

// --- poll ----------------------------------------------------------------------------------------

function doPoll(ctx: SyscallCtx, fdsPtr: bigint, nfds: bigint, timeoutNs: bigint | undefined): SyscallResult {
  if (nfds > BigInt(ctx.task.process.fds.limit)) return done(ctx, err(E.EINVAL));
  const n = Number(nfds);
  const raw = n === 0 ? new Uint8Array(0) : user(() => ctx.task.mm.read(fdsPtr, n * 8));
  if (typeof raw === 'bigint') return done(ctx, raw);
  const le = ctx.host.arch.endian === 'little';
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const b = ctx.host.arch.pollBits ?? GENERIC_POLL;
  const always = b.POLLERR | b.POLLHUP | b.POLLNVAL;
  const out = new Uint8Array(raw);
  const ov = new DataView(out.buffer);
  let ready = 0;
  const pipes: Pipe[] = [];
  for (let i = 0; i < n; i++) {
    const fd = v.getInt32(i * 8, le);
    const events = v.getUint16(i * 8 + 4, le);
    let revents = 0;
    if (fd >= 0) {
      const r = readiness(fileOf(ctx, fd), b);
      revents = r.mask & (events | always);
      if (r.pipe) pipes.push(r.pipe);
    }
    ov.setUint16(i * 8 + 6, revents, le);
    if (revents) ready++;
  }
  const deadline = deadlineOf(ctx, timeoutNs);
  if (ready === 0 && (deadline === undefined || deadline > ctx.host.timers.now())) return sleepOn(ctx, pipes, deadline);
  if (n > 0) {
    const bad = copyOut(ctx, fdsPtr, out);
    if (bad !== undefined) return done(ctx, bad);
  }
  return done(ctx, BigInt(ready));
}

// --- select --------------------------------------------------------------------------------------

function doSelect(ctx: SyscallCtx, nfdsArg: number, sets: [bigint, bigint, bigint], timeoutNs: bigint | undefined): SyscallResult {
  if (nfdsArg < 0) return done(ctx, err(E.EINVAL));
  const nfds = Math.min(nfdsArg, ctx.task.process.fds.limit);
  const w = ctx.host.arch.wordSize;
  const le = ctx.host.arch.endian === 'little';
  const bytes = Math.ceil(nfds / (w * 8)) * w;
  const read = (p: bigint): Uint8Array | bigint | undefined => (p === 0n || bytes === 0 ? undefined : user(() => ctx.task.mm.read(p, bytes)));
  const inSets = sets.map(read);
  for (const s of inSets) if (typeof s === 'bigint') return done(ctx, s);
  const isSet = (set: Uint8Array, fd: number): boolean => {
    const word = Math.floor(fd / (w * 8));
    const bit = fd % (w * 8);
    const byte = le ? word * w + (bit >> 3) : word * w + (w - 1 - (bit >> 3));
    return (set[byte]! & (1 << (bit & 7))) !== 0;
  };
  const setBit = (set: Uint8Array, fd: number): void => {
    const word = Math.floor(fd / (w * 8));
    const bit = fd % (w * 8);
    const byte = le ? word * w + (bit >> 3) : word * w + (w - 1 - (bit >> 3));
    set[byte]! |= 1 << (bit & 7);
  };
  const b = ctx.host.arch.pollBits ?? GENERIC_POLL;
  const outs = [new Uint8Array(bytes), new Uint8Array(bytes), new Uint8Array(bytes)];
  // do_select's sets: POLLIN_SET, POLLOUT_SET, POLLEX_SET.
  const want = [b.POLLIN | b.POLLRDNORM | b.POLLHUP | b.POLLERR, b.POLLOUT | b.POLLWRNORM | b.POLLERR, b.POLLPRI];
  let ready = 0;
  const pipes: Pipe[] = [];
  for (let fd = 0; fd < nfds; fd++) {
    const asked = inSets.map((s) => (s instanceof Uint8Array ? isSet(s, fd) : false));
    if (!asked.some(Boolean)) continue;
    const f = fileOf(ctx, fd);
    if (!f) return done(ctx, err(E.EBADF));
    const r = readiness(f, b);
    if (r.pipe) pipes.push(r.pipe);
    for (let k = 0; k < 3; k++) {
      if (asked[k] && r.mask & want[k]!) {
        setBit(outs[k]!, fd);
        ready++;
      }
    }
  }
  const deadline = deadlineOf(ctx, timeoutNs);
  if (ready === 0 && (deadline === undefined || deadline > ctx.host.timers.now())) return sleepOn(ctx, pipes, deadline);
  for (let k = 0; k < 3; k++) {
    if (sets[k] !== 0n && bytes > 0) {
      const bad = copyOut(ctx, sets[k]!, outs[k]!);
      if (bad !== undefined) return done(ctx, bad);
    }
  }
  return done(ctx, BigInt(ready));
}

/** A timespec or timeval argument as nanoseconds (undefined for NULL = no timeout), or -errno. */
function readTimeout(ctx: SyscallCtx, ptr: bigint, word: 4 | 8, subUnit: bigint): bigint | undefined | { err: bigint } {
  if (ptr === 0n) return undefined;
  const r = user(() => ctx.task.mm.read(ptr, word * 2));
  if (typeof r === 'bigint') return { err: r };
  const v = new DataView(r.buffer, r.byteOffset);
  const le = ctx.host.arch.endian === 'little';
  const sec = word === 8 ? v.getBigInt64(0, le) : BigInt(v.getInt32(0, le));
  const frac = word === 8 ? v.getBigInt64(8, le) : BigInt(v.getInt32(4, le));
  if (sec < 0n || frac < 0n || frac >= NS / subUnit) return { err: err(E.EINVAL) };
  return sec * NS + frac * subUnit;
}

function withTimeout(ctx: SyscallCtx, ptr: bigint, word: 4 | 8, subUnit: bigint, run: (t: bigint | undefined) => SyscallResult): SyscallResult {
  if (ctx.task.pollDeadline !== undefined) return run(undefined); // a retry: the deadline is kept
  const t = readTimeout(ctx, ptr, word, subUnit);
  if (t !== undefined && typeof t === 'object') return t.err;
  return run(t);
}

export const pollHandlers: Record<string, Handler> = {
  poll: (ctx, [fds, nfds, timeout]) => {
    const ms = BigInt(s32(timeout!));
    return doPoll(ctx, fds!, nfds! & 0xffffffffn, ms < 0n ? undefined : ms * 1_000_000n);
  },
  ppoll: (ctx, [fds, nfds, ts]) => withTimeout(ctx, ts!, ctx.host.arch.wordSize, 1n, (t) => doPoll(ctx, fds!, nfds! & 0xffffffffn, t)),
  ppoll_time64: (ctx, [fds, nfds, ts]) => withTimeout(ctx, ts!, 8, 1n, (t) => doPoll(ctx, fds!, nfds! & 0xffffffffn, t)),
  select: (ctx, [n, r, w, x, tv]) => withTimeout(ctx, tv!, ctx.host.arch.wordSize, 1000n, (t) => doSelect(ctx, s32(n!), [r!, w!, x!], t)),
  _newselect: (ctx, [n, r, w, x, tv]) => withTimeout(ctx, tv!, ctx.host.arch.wordSize, 1000n, (t) => doSelect(ctx, s32(n!), [r!, w!, x!], t)),
  pselect6: (ctx, [n, r, w, x, ts]) => withTimeout(ctx, ts!, ctx.host.arch.wordSize, 1n, (t) => doSelect(ctx, s32(n!), [r!, w!, x!], t)),
  pselect6_time64: (ctx, [n, r, w, x, ts]) => withTimeout(ctx, ts!, 8, 1n, (t) => doSelect(ctx, s32(n!), [r!, w!, x!], t)),
};
