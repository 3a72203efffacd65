/**
 * The signal system calls: rt_sigaction, rt_sigprocmask, rt_sigpending, rt_sigsuspend, pause,
 * sigaltstack, kill, tgkill, tkill and rt_sigreturn (whose work is done on the return path, see
 * SignalCore.syscallExit). Errors as Linux gives them: a sigsetsize other than 8 is EINVAL, a bad
 * pointer EFAULT, SIGKILL/SIGSTOP cannot be given an action (EINVAL).
 */
import { E, err } from '../errno.js';
import { accessOk, s32, user, type Handler, type SyscallCtx, type SyscallResult } from '../sys/common.js';
import { NSIG, SA, SIG_DFL, SIG_IGN, DEFAULT_IGNORE, UNBLOCKABLE, sigbit } from './numbers.js';
import type { KSigaction } from './sighand.js';
import { encodeSiginfo } from './siginfo.js';

const SIGSET_SIZE = 8n;

function bytesOf(ctx: SyscallCtx, addr: bigint, n: number): Uint8Array | bigint {
  if (!accessOk(ctx, addr, BigInt(n))) return err(E.EFAULT);
  return user(() => ctx.task.mm.read(addr, n));
}

function putBytes(ctx: SyscallCtx, addr: bigint, b: Uint8Array): bigint | undefined {
  if (!accessOk(ctx, addr, BigInt(b.length))) return err(E.EFAULT);
  const r = user(() => ctx.task.mm.write(addr, b));
  return typeof r === 'bigint' ? r : undefined;
}

const le = (ctx: SyscallCtx): boolean => ctx.host.arch.endian === 'little';

/** A user sigset_t (8 bytes; on 32-bit big-endian targets two 32-bit words, low word first). */
function readSigset(ctx: SyscallCtx, addr: bigint): bigint {
  const b = bytesOf(ctx, addr, 8);
  if (typeof b === 'bigint') return b;
  return decodeSigset(b, ctx.host.arch.wordSize, le(ctx));
}

export function decodeSigset(b: Uint8Array, wordSize: number, little: boolean): bigint {
  const v = new DataView(b.buffer, b.byteOffset, 8);
  if (wordSize === 8) return v.getBigUint64(0, little);
  return BigInt(v.getUint32(0, little)) | (BigInt(v.getUint32(4, little)) << 32n);
}

export function encodeSigset(set: bigint, wordSize: number, little: boolean): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  if (wordSize === 8) v.setBigUint64(0, BigInt.asUintN(64, set), little);
  else {
    v.setUint32(0, Number(set & 0xffffffffn), little);
    v.setUint32(4, Number((set >> 32n) & 0xffffffffn), little);
  }
  return b;
}

function writeSigset(ctx: SyscallCtx, addr: bigint, set: bigint): bigint | undefined {
  return putBytes(ctx, addr, encodeSigset(set, ctx.host.arch.wordSize, le(ctx)));
}

function readField(v: DataView, off: number, size: number, little: boolean): bigint {
  return size === 8 ? v.getBigUint64(off, little) : BigInt(v.getUint32(off, little));
}

function writeField(v: DataView, off: number, size: number, x: bigint, little: boolean): void {
  if (size === 8) v.setBigUint64(off, BigInt.asUintN(64, x), little);
  else v.setUint32(off, Number(BigInt.asUintN(32, x)), little);
}

function rtSigaction(ctx: SyscallCtx, a: bigint[]): SyscallResult {
  const abi = ctx.host.arch.signals;
  const sc = ctx.host.signals;
  const extra = abi.rtSigactionArgs?.(a) ?? { sigsetsize: a[3]! };
  if (extra.sigsetsize !== SIGSET_SIZE) return err(E.EINVAL);
  const userSig = s32(a[0]!);
  const [act, oact] = [a[1]!, a[2]!];
  const L = abi.sigaction;
  const w = ctx.host.arch.wordSize;
  const little = le(ctx);
  let next: KSigaction | undefined;
  if (act !== 0n) {
    const b = bytesOf(ctx, act, L.size);
    if (typeof b === 'bigint') return b;
    const v = new DataView(b.buffer, b.byteOffset, L.size);
    const { flags, unknown } = sc.num.flagsToGeneric(Number(readField(v, L.flags, L.flagsSize, little)));
    next = {
      handler: readField(v, L.handler, w, little),
      flags,
      unknownFlags: unknown,
      restorer: L.restorer !== undefined ? readField(v, L.restorer, w, little) : (extra.restorer ?? 0n),
      mask: sc.num.setToGeneric(decodeSigset(b.subarray(L.mask, L.mask + 8), w, little)) & ~UNBLOCKABLE,
      ...(abi.rtSigactionArgs && { kaRestorer: extra.restorer ?? 0n }),
    };
  }
  // do_sigaction: a valid number, and no action for SIGKILL/SIGSTOP.
  if (userSig < 1 || userSig > NSIG) return err(E.EINVAL);
  const sig = sc.num.toGeneric(userSig);
  if (next && UNBLOCKABLE & sigbit(sig)) return err(E.EINVAL);
  const proc = ctx.task.process;
  const table = proc.signal.sighand.action;
  const old = table[sig]!;
  if (next) {
    table[sig] = next;
    // POSIX: setting a pending signal's action to "ignore" discards it, in every thread.
    if (next.handler === SIG_IGN || (next.handler === SIG_DFL && DEFAULT_IGNORE & sigbit(sig))) {
      proc.signal.shared.flush(sigbit(sig));
      for (const t of proc.tasks) t.signal.pending.flush(sigbit(sig));
    }
  }
  if (oact !== 0n) {
    const b = new Uint8Array(L.size);
    const v = new DataView(b.buffer);
    writeField(v, L.handler, w, old.handler, little);
    writeField(v, L.flags, L.flagsSize, BigInt(sc.num.flagsFromGeneric(old.flags, old.unknownFlags)), little);
    if (L.restorer !== undefined) writeField(v, L.restorer, w, old.restorer, little);
    b.set(encodeSigset(sc.num.setFromGeneric(old.mask), w, little), L.mask);
    const r = putBytes(ctx, oact, b);
    if (r !== undefined) return r;
  }
  return 0n;
}

function rtSigprocmask(ctx: SyscallCtx, [how, set, oset, size]: bigint[]): SyscallResult {
  if (size !== SIGSET_SIZE) return err(E.EINVAL);
  const sc = ctx.host.signals;
  const ts = ctx.task.signal;
  const old = ts.blocked;
  if (set !== 0n) {
    const raw = readSigset(ctx, set!);
    if (raw < 0n) return raw;
    const s = sc.num.setToGeneric(raw) & ~UNBLOCKABLE;
    const H = ctx.host.arch.signals.sigprocmaskHow ?? { BLOCK: 0, UNBLOCK: 1, SETMASK: 2 };
    const h = s32(how!);
    if (h === H.BLOCK) ts.blocked = old | s;
    else if (h === H.UNBLOCK) ts.blocked = old & ~s;
    else if (h === H.SETMASK) ts.blocked = s;
    else return err(E.EINVAL);
  }
  if (oset !== 0n) {
    const r = writeSigset(ctx, oset!, sc.num.setFromGeneric(old));
    if (r !== undefined) {
      ts.blocked = old; // Linux copies oset out before changing anything
      return r;
    }
  }
  return 0n;
}

function rtSigpending(ctx: SyscallCtx, [set, size]: bigint[]): SyscallResult {
  if (size! > SIGSET_SIZE) return err(E.EINVAL);
  const t = ctx.task;
  const pending = (t.signal.pending.set | t.process.signal.shared.set) & t.signal.blocked;
  const b = encodeSigset(ctx.host.signals.num.setFromGeneric(pending), ctx.host.arch.wordSize, le(ctx));
  return putBytes(ctx, set!, b.subarray(0, Number(size!))) ?? 0n;
}

/** Sleep until a signal wakes the task (signal_wake_up ends it; the return path sees the signal). */
const sleepForSignal = (): SyscallResult => ({ kind: 'wait', subscribe: () => () => {} });

function rtSigsuspend(ctx: SyscallCtx, [mask, size]: bigint[]): SyscallResult {
  const ts = ctx.task.signal;
  if (ts.suspended) return sleepForSignal(); // woken for nothing: sleep on
  if (size !== SIGSET_SIZE) return err(E.EINVAL);
  const raw = readSigset(ctx, mask!);
  if (raw < 0n) return raw;
  ts.savedMask = ts.blocked;
  ts.blocked = ctx.host.signals.num.setToGeneric(raw) & ~UNBLOCKABLE;
  ts.suspended = true;
  return sleepForSignal();
}

/** stack_t: ss_sp, ss_flags (an int in a word-sized slot), ss_size. */
function sigaltstack(ctx: SyscallCtx, [uss, uoss]: bigint[]): SyscallResult {
  const arch = ctx.host.arch;
  const w = arch.wordSize;
  const little = le(ctx);
  const alt = ctx.task.signal.altstack;
  const sp = ctx.task.userSp;
  const old = alt.record(sp);
  if (uss !== 0n) {
    const b = bytesOf(ctx, uss!, 3 * w);
    if (typeof b === 'bigint') return b;
    const v = new DataView(b.buffer, b.byteOffset, 3 * w);
    const ss = { sp: readField(v, 0, w, little), flags: v.getInt32(w, little), size: readField(v, 2 * w, w, little) };
    const e = alt.set(ss, sp, arch.signals.minSigStkSz);
    if (e) return err(e);
  }
  if (uoss !== 0n) {
    const b = new Uint8Array(3 * w);
    const v = new DataView(b.buffer);
    writeField(v, 0, w, old.sp, little);
    v.setInt32(w, old.flags, little);
    writeField(v, 2 * w, w, old.size, little);
    const r = putBytes(ctx, uoss!, b);
    if (r !== undefined) return r;
  }
  return 0n;
}

/** struct timespec of the target's word size (sigtimedwait's timeout): EINVAL when out of range. */
function readTimeout(ctx: SyscallCtx, ptr: bigint, w: 4 | 8): bigint | { ns: bigint } {
  const b = bytesOf(ctx, ptr, 2 * w);
  if (typeof b === 'bigint') return b;
  const v = new DataView(b.buffer, b.byteOffset, 2 * w);
  const l = le(ctx);
  const sec = w === 8 ? v.getBigInt64(0, l) : BigInt(v.getInt32(0, l));
  const nsec = w === 8 ? v.getBigInt64(8, l) : BigInt(v.getInt32(4, l));
  if (sec < 0n || nsec < 0n || nsec >= 1_000_000_000n) return err(E.EINVAL);
  return { ns: sec * 1_000_000_000n + nsec };
}

/**
 * rt_sigtimedwait (do_sigtimedwait): take a pending signal of the set without running its
 * handler. While it sleeps the set is unblocked (so sending one wakes the task) and blocked again
 * after; a zero timeout or the deadline passing is EAGAIN; another signal's handler, EINTR.
 */
function rtSigtimedwait(ctx: SyscallCtx, [uthese, uinfo, uts, size]: bigint[], w: 4 | 8): SyscallResult {
  const task = ctx.task;
  const ts = task.signal;
  const sc = ctx.host.signals;
  const timers = ctx.host.timers;
  let set = ts.waitSet;
  if (set === undefined) {
    if (size !== SIGSET_SIZE) return err(E.EINVAL);
    const raw = readSigset(ctx, uthese!);
    if (raw < 0n) return raw;
    set = sc.num.setToGeneric(raw) & ~UNBLOCKABLE;
    let deadline: bigint | undefined;
    if (uts !== 0n) {
      const t = readTimeout(ctx, uts!, w);
      if (typeof t === 'bigint') return t;
      deadline = timers.now() + t.ns;
    }
    const got = sc.take(task, set);
    if (got) return sigwaitDone(ctx, got, uinfo!);
    if (deadline !== undefined && deadline <= timers.now()) return err(E.EAGAIN);
    ts.waitSet = set;
    ts.waitBlocked = ts.blocked;
    ts.blocked &= ~set;
    task.sleepUntil = deadline;
  } else {
    const got = sc.take(task, set);
    const timedOut = task.sleepUntil !== undefined && timers.now() >= task.sleepUntil;
    if (got || timedOut) {
      ts.blocked = ts.waitBlocked;
      ts.waitSet = undefined;
      task.sleepUntil = undefined;
      return got ? sigwaitDone(ctx, got, uinfo!) : err(E.EAGAIN);
    }
  }
  const until = task.sleepUntil;
  return { kind: 'wait', subscribe: (wake) => (until !== undefined ? timers.add(until, wake) : () => {}) };
}

function sigwaitDone(ctx: SyscallCtx, info: import('./pending.js').SigInfo, uinfo: bigint): bigint {
  const arch = ctx.host.arch;
  const userSig = ctx.host.signals.num.fromGeneric(info.signo);
  if (uinfo !== 0n) {
    const r = putBytes(ctx, uinfo, encodeSiginfo(info, userSig, arch.wordSize, arch.endian === 'little'));
    if (r !== undefined) return r;
  }
  return BigInt(userSig);
}

export const signalHandlers: Record<string, Handler> = {
  rt_sigtimedwait: (ctx, a) => rtSigtimedwait(ctx, a, ctx.host.arch.wordSize),
  rt_sigtimedwait_time64: (ctx, a) => rtSigtimedwait(ctx, a, 8),
  rt_sigaction: rtSigaction,
  rt_sigprocmask: rtSigprocmask,
  rt_sigpending: rtSigpending,
  rt_sigsuspend: rtSigsuspend,
  pause: (ctx) => (ctx.task.signal.suspended = true, sleepForSignal()),
  sigaltstack,
  // The frame is read on the return path (SignalCore.syscallExit), with the user registers back.
  rt_sigreturn: () => 0n,
  // The old frame's return (i386, ppc32); ENOSYS where the target has no such frame.
  sigreturn: (ctx) => (ctx.host.arch.signals.sigreturn ? 0n : err(E.ENOSYS)),
  kill: (ctx, [pid, sig]) => ctx.host.signals.kill(ctx.task, s32(pid!), s32(sig!)),
  tgkill: (ctx, [tgid, tid, sig]) => ctx.host.signals.tkill(ctx.task, Math.max(0, s32(tgid!)), s32(tid!), s32(sig!)),
  tkill: (ctx, [tid, sig]) => ctx.host.signals.tkill(ctx.task, -1, s32(tid!), s32(sig!)),
};

/** SA flags the x86 tables and frames need by name (re-exported for arch code's tests). */
export { SA };
