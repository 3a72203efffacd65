/**
 * futex(2) and the sleeps (nanosleep, clock_nanosleep) on the guest clock (src/kernel/futex.ts,
 * src/kernel/timers.ts). A waiting call returns the `wait` directive; when its task is woken
 * (FUTEX_WAKE, a timeout) the same call runs again and finds its waiter's outcome on the task.
 *
 * Linux's answers: a misaligned address EINVAL; a value that changed before the wait EAGAIN;
 * a timeout ETIMEDOUT; a bad timespec EINVAL; FUTEX_CLOCK_REALTIME only with the bitset/PI
 * waits (ENOSYS otherwise); priority-inheritance futexes are not modelled (ENOSYS).
 */
import { E, err } from '../errno.js';
import type { FutexWaiter } from '../futex.js';
import { user, s32, type Handler, type SyscallCtx, type SyscallResult } from './common.js';

const FUTEX_WAIT = 0;
const FUTEX_WAKE = 1;
const FUTEX_REQUEUE = 3;
const FUTEX_CMP_REQUEUE = 4;
const FUTEX_WAKE_OP = 5;
const FUTEX_WAIT_BITSET = 9;
const FUTEX_WAKE_BITSET = 10;
const FUTEX_WAIT_REQUEUE_PI = 11;
const FUTEX_LOCK_PI2 = 13;
const FUTEX_PRIVATE_FLAG = 128;
const FUTEX_CLOCK_REALTIME = 256;
const BITSET_MATCH_ANY = 0xffffffff;
const TIMER_ABSTIME = 1;
const NS = 1_000_000_000n;

/** A struct timespec (word-sized fields, or 64-bit for the *_time64 calls) as nanoseconds, or -errno. */
function readTimespec(ctx: SyscallCtx, ptr: bigint, word: 4 | 8): bigint | { ns: bigint } {
  const r = user(() => ctx.task.mm.read(ptr, word * 2));
  if (typeof r === 'bigint') return r;
  const v = new DataView(r.buffer, r.byteOffset);
  const le = ctx.host.arch.endian === 'little';
  const sec = word === 8 ? v.getBigInt64(0, le) : BigInt(v.getInt32(0, le));
  const nsec = word === 8 ? v.getBigInt64(8, le) : BigInt(v.getInt32(4, le));
  if (sec < 0n || nsec < 0n || nsec >= NS) return err(E.EINVAL);
  return { ns: sec * NS + nsec };
}

function readU32(ctx: SyscallCtx, addr: bigint): number | bigint {
  const r = user(() => ctx.task.mm.read(addr, 4));
  if (typeof r === 'bigint') return r;
  return new DataView(r.buffer, r.byteOffset).getUint32(0, ctx.host.arch.endian === 'little');
}

function sleepOn(w: FutexWaiter): SyscallResult {
  return {
    kind: 'wait',
    subscribe: (wake) => {
      w.wake = wake;
      return () => {
        w.wake = undefined;
      };
    },
  };
}

/** The second visit of a waiting call: how its wait ended. */
function outcome(ctx: SyscallCtx, w: FutexWaiter): SyscallResult {
  if (w.woken) {
    ctx.task.futexWaiter = undefined;
    return 0n;
  }
  if (w.timedOut) {
    ctx.task.futexWaiter = undefined;
    return err(E.ETIMEDOUT);
  }
  return sleepOn(w); // woken for nothing: sleep on
}

function futexWait(ctx: SyscallCtx, uaddr: bigint, val: number, timeout: bigint, bitset: number, absolute: boolean, word: 4 | 8): SyscallResult {
  const pending = ctx.task.futexWaiter;
  if (pending) return outcome(ctx, pending);
  if (bitset === 0) return err(E.EINVAL);
  let deadline: bigint | undefined;
  const timers = ctx.host.timers;
  if (timeout !== 0n) {
    const t = readTimespec(ctx, timeout, word);
    if (typeof t === 'bigint') return t;
    deadline = absolute ? t.ns : timers.now() + t.ns;
  }
  const cur = readU32(ctx, uaddr);
  if (typeof cur === 'bigint') return cur;
  if (cur !== val >>> 0) return err(E.EAGAIN);
  if (deadline !== undefined && deadline <= timers.now()) return err(E.ETIMEDOUT);
  const futex = ctx.host.futex;
  const w: FutexWaiter = { task: ctx.task, mm: ctx.task.mm, addr: uaddr, bitset, woken: false, timedOut: false, wake: undefined, cancelTimer: undefined };
  futex.enqueue(w);
  if (deadline !== undefined) {
    w.cancelTimer = timers.add(deadline, () => {
      futex.remove(w);
      w.timedOut = true;
      w.wake?.();
    });
  }
  ctx.task.futexWaiter = w;
  return sleepOn(w);
}

const signExtend12 = (v: number): number => (v << 20) >> 20;

/** FUTEX_WAKE_OP: *uaddr2 = op(*uaddr2, oparg); wake uaddr; and uaddr2 too when cmp(old, cmparg). */
function wakeOp(ctx: SyscallCtx, uaddr: bigint, nr1: number, nr2: number, uaddr2: bigint, encoded: number): bigint {
  let op = (encoded >>> 28) & 0xf;
  const cmp = (encoded >>> 24) & 0xf;
  let oparg = signExtend12((encoded >>> 12) & 0xfff);
  const cmparg = signExtend12(encoded & 0xfff);
  if (op & 8) {
    op &= 7;
    if (oparg < 0 || oparg > 31) return err(E.EINVAL);
    oparg = 1 << oparg;
  }
  const old = readU32(ctx, uaddr2);
  if (typeof old === 'bigint') return old;
  const ops = [(_a: number, b: number) => b, (a: number, b: number) => a + b, (a: number, b: number) => a | b, (a: number, b: number) => a & ~b, (a: number, b: number) => a ^ b];
  const f = ops[op];
  if (!f) return err(E.ENOSYS);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, f(old, oparg) >>> 0, ctx.host.arch.endian === 'little');
  const w = user(() => ctx.task.mm.write(uaddr2, out));
  if (typeof w === 'bigint') return w;
  const o = old | 0;
  const cmps = [o === cmparg, o !== cmparg, o < cmparg, o <= cmparg, o > cmparg, o >= cmparg];
  if (cmp >= cmps.length) return err(E.ENOSYS);
  const mm = ctx.task.mm;
  let woken = ctx.host.futex.wake(mm, uaddr, nr1);
  if (cmps[cmp]) woken += ctx.host.futex.wake(mm, uaddr2, nr2);
  return BigInt(woken);
}

function futex(ctx: SyscallCtx, a: bigint[], word: 4 | 8): SyscallResult {
  const [uaddr, opRaw, valRaw, utime, uaddr2, val3Raw] = a as [bigint, bigint, bigint, bigint, bigint, bigint];
  const op = s32(opRaw);
  const cmd = op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
  const val = s32(valRaw);
  const val3 = Number(BigInt.asUintN(32, val3Raw));
  if (op & FUTEX_CLOCK_REALTIME && cmd !== FUTEX_WAIT_BITSET && cmd !== FUTEX_WAIT_REQUEUE_PI && cmd !== FUTEX_LOCK_PI2) return err(E.ENOSYS);
  if (uaddr % 4n !== 0n) return err(E.EINVAL);
  const mm = ctx.task.mm;
  const futexes = ctx.host.futex;
  switch (cmd) {
    case FUTEX_WAIT:
      return futexWait(ctx, uaddr, val, utime, BITSET_MATCH_ANY, false, word);
    case FUTEX_WAIT_BITSET:
      return futexWait(ctx, uaddr, val, utime, val3, true, word);
    case FUTEX_WAKE:
      return BigInt(futexes.wake(mm, uaddr, Math.max(0, val)));
    case FUTEX_WAKE_BITSET:
      if (val3 === 0) return err(E.EINVAL);
      return BigInt(futexes.wake(mm, uaddr, Math.max(0, val), val3));
    case FUTEX_REQUEUE:
    case FUTEX_CMP_REQUEUE: {
      // The requeue count travels in the timeout argument (val2).
      const nr2 = s32(utime);
      if (val < 0 || nr2 < 0) return err(E.EINVAL);
      if (uaddr2 % 4n !== 0n) return err(E.EINVAL);
      if (cmd === FUTEX_CMP_REQUEUE) {
        const cur = readU32(ctx, uaddr);
        if (typeof cur === 'bigint') return cur;
        if (cur !== val3) return err(E.EAGAIN);
      }
      const woken = futexes.wake(mm, uaddr, val);
      return BigInt(woken + futexes.requeue(mm, uaddr, uaddr2, nr2));
    }
    case FUTEX_WAKE_OP:
      if (uaddr2 % 4n !== 0n) return err(E.EINVAL);
      return wakeOp(ctx, uaddr, Math.max(0, val), Math.max(0, s32(utime)), uaddr2, val3);
    default:
      return err(E.ENOSYS); // the PI and requeue-PI operations are not modelled
  }
}

/** nanosleep / clock_nanosleep: sleep on the guest clock (TIMER_ABSTIME: until an absolute time). */
function sleep(ctx: SyscallCtx, req: bigint, absolute: boolean, word: 4 | 8): SyscallResult {
  const task = ctx.task;
  const timers = ctx.host.timers;
  if (task.sleepUntil !== undefined) {
    if (timers.now() >= task.sleepUntil) {
      task.sleepUntil = undefined;
      return 0n;
    }
  } else {
    const t = readTimespec(ctx, req, word);
    if (typeof t === 'bigint') return t;
    const deadline = absolute ? t.ns : timers.now() + t.ns;
    if (deadline <= timers.now()) return 0n;
    task.sleepUntil = deadline;
  }
  const until = task.sleepUntil;
  return {
    kind: 'wait',
    subscribe: (wake) => timers.add(until, wake),
  };
}

export const futexHandlers: Record<string, Handler> = {
  futex: (ctx, a) => futex(ctx, a, ctx.host.arch.wordSize),
  futex_time64: (ctx, a) => futex(ctx, a, 8),
  nanosleep: (ctx, [req]) => sleep(ctx, req!, false, ctx.host.arch.wordSize),
  nanosleep_time64: (ctx, [req]) => sleep(ctx, req!, false, 8),
  clock_nanosleep: (ctx, [_clk, flags, req]) => sleep(ctx, req!, (Number(flags!) & TIMER_ABSTIME) !== 0, ctx.host.arch.wordSize),
  clock_nanosleep_time64: (ctx, [_clk, flags, req]) => sleep(ctx, req!, (Number(flags!) & TIMER_ABSTIME) !== 0, 8),
};
