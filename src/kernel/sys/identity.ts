/**
 * Who the process is and what the machine looks like, the calls programs make at start-up:
 * credentials (the host's uid and gid, as qemu-user passes them through and as file ownership in
 * the guest's view shows them), process groups and sessions, getgroups, sysinfo,
 * sched_getaffinity (one bit per vCPU) and the common prctl options.
 */
import { E, err } from '../errno.js';
import { copyOut, procOf, s32, user, type Handler, type SyscallCtx } from './common.js';

const PR_SET_PDEATHSIG = 1;
const PR_GET_PDEATHSIG = 2;
const PR_GET_DUMPABLE = 3;
const PR_SET_DUMPABLE = 4;
const PR_SET_NAME = 15;
const PR_GET_NAME = 16;
const PR_SET_NO_NEW_PRIVS = 38;
const PR_GET_NO_NEW_PRIVS = 39;
/** TASK_COMM_LEN. */
const COMM_LEN = 16;

const uid = (ctx: SyscallCtx): bigint => BigInt(ctx.host.vfs.uid);
const gid = (ctx: SyscallCtx): bigint => BigInt(ctx.host.vfs.gid);

/** getgroups: the supplementary groups (none besides the primary one, as for a plain login). */
function getgroups(ctx: SyscallCtx, size: number, list: bigint, width: 2 | 4): bigint {
  const groups = [Number(gid(ctx))];
  if (size < 0) return err(E.EINVAL);
  if (size === 0) return BigInt(groups.length);
  if (size < groups.length) return err(E.EINVAL);
  const out = new Uint8Array(groups.length * width);
  const v = new DataView(out.buffer);
  const le = ctx.host.arch.endian === 'little';
  groups.forEach((g, i) => (width === 4 ? v.setUint32(i * 4, g, le) : v.setUint16(i * 2, g > 0xffff ? 65534 : g, le)));
  return copyOut(ctx, list, out) ?? BigInt(groups.length);
}

/** struct sysinfo, in the target's word size: uptime, loads, memory (the guest's limit), procs. */
function sysinfo(ctx: SyscallCtx, buf: bigint): bigint {
  const w = ctx.host.arch.wordSize;
  const le = ctx.host.arch.endian === 'little';
  // long uptime; unsigned long loads[3], totalram, freeram, sharedram, bufferram, totalswap,
  // freeswap; unsigned short procs (+pad to a long); unsigned long totalhigh, freehigh;
  // unsigned int mem_unit; char _f[20 - 2·sizeof(long) - sizeof(int)]
  const size = w === 8 ? 112 : 64;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  const put = (i: number, x: bigint): void => (w === 8 ? v.setBigUint64(i * 8, x, le) : v.setUint32(i * 4, Number(x & 0xffffffffn), le));
  const limits = ctx.host.limits;
  put(0, ctx.host.clockNs() / 1_000_000_000n);
  put(4, BigInt(limits.maxMemory));
  put(5, BigInt(Math.max(0, limits.maxMemory - ctx.host.memoryUsed())));
  v.setUint16(10 * w, Math.min(0xffff, ctx.host.liveTasks()), le);
  const memUnitAt = 10 * w + w + 2 * w;
  v.setUint32(memUnitAt, 1, le);
  return copyOut(ctx, buf, out) ?? 0n;
}

/** sched_getaffinity: one bit per vCPU, in a mask of whole longs; the size it wrote. */
function getaffinity(ctx: SyscallCtx, pid: number, len: bigint, mask: bigint): bigint {
  if (pid !== 0 && !ctx.host.hasTask(pid)) return err(E.ESRCH);
  const w = ctx.host.arch.wordSize;
  const cpus = ctx.host.cpuCount();
  const bytes = Math.ceil(cpus / (w * 8)) * w;
  if (len < BigInt(bytes) || len % BigInt(w) !== 0n) return err(E.EINVAL);
  const out = new Uint8Array(bytes);
  // A cpumask is an array of longs: bit n is in long n / bits-per-long, in the target's byte order.
  const v = new DataView(out.buffer);
  const le = ctx.host.arch.endian === 'little';
  for (let c = 0; c < cpus; c++) {
    const word = Math.floor(c / (w * 8));
    const bit = c % (w * 8);
    if (w === 8) v.setBigUint64(word * 8, v.getBigUint64(word * 8, le) | (1n << BigInt(bit)), le);
    else v.setUint32(word * 4, (v.getUint32(word * 4, le) | (1 << bit)) >>> 0, le);
  }
  return copyOut(ctx, mask, out) ?? BigInt(bytes);
}

function prctl(ctx: SyscallCtx, option: number, arg2: bigint): bigint {
  const proc = procOf(ctx);
  switch (option) {
    case PR_SET_NAME: {
      const r = user(() => ctx.task.mm.read(arg2, COMM_LEN));
      if (typeof r === 'bigint') return r;
      const nul = r.indexOf(0);
      proc.comm = Buffer.from(r.subarray(0, nul < 0 ? COMM_LEN - 1 : Math.min(nul, COMM_LEN - 1))).toString('latin1');
      return 0n;
    }
    case PR_GET_NAME: {
      const out = new Uint8Array(COMM_LEN);
      out.set(Buffer.from(proc.comm, 'latin1').subarray(0, COMM_LEN - 1));
      return copyOut(ctx, arg2, out) ?? 0n;
    }
    case PR_GET_DUMPABLE:
      return 1n;
    case PR_SET_DUMPABLE:
      return arg2 === 0n || arg2 === 1n ? 0n : err(E.EINVAL);
    case PR_SET_PDEATHSIG:
      return arg2 < 0n || arg2 > 64n ? err(E.EINVAL) : 0n;
    case PR_GET_PDEATHSIG:
      return copyOut(ctx, arg2, new Uint8Array(4)) ?? 0n;
    case PR_SET_NO_NEW_PRIVS:
      return arg2 === 1n ? 0n : err(E.EINVAL);
    case PR_GET_NO_NEW_PRIVS:
      return 0n;
    default:
      return err(E.EINVAL);
  }
}

/** setsid: a process already leading a group may not start a session (EPERM). */
function setsid(ctx: SyscallCtx): bigint {
  const p = procOf(ctx);
  if (ctx.host.isGroupLeader(p.pid)) return err(E.EPERM);
  p.sid = p.pid;
  p.pgid = p.pid;
  return BigInt(p.pid);
}

/** setpgid: in the caller's session, for itself or a child; pgid 0 means the process's own pid. */
function setpgid(ctx: SyscallCtx, pid: number, pgid: number): bigint {
  if (pgid < 0) return err(E.EINVAL);
  const self = procOf(ctx);
  const target = pid === 0 ? self : ctx.host.processOf(pid);
  if (!target || (target !== self && target.parent !== self)) return err(E.ESRCH);
  if (target.sid !== self.sid) return err(E.EPERM);
  if (target.sid === target.pid) return err(E.EPERM); // a session leader
  const group = pgid === 0 ? target.pid : pgid;
  if (group !== target.pid && !ctx.host.groupInSession(group, self.sid)) return err(E.EPERM);
  target.pgid = group;
  return 0n;
}

function pgidOf(ctx: SyscallCtx, pid: number, pick: 'pgid' | 'sid'): bigint {
  const p = pid === 0 ? procOf(ctx) : ctx.host.processOf(pid);
  return p ? BigInt(p[pick]) : err(E.ESRCH);
}

export const identityHandlers: Record<string, Handler> = {
  getuid: uid,
  geteuid: uid,
  getgid: gid,
  getegid: gid,
  getuid32: uid,
  geteuid32: uid,
  getgid32: gid,
  getegid32: gid,
  // Where the target also has getgroups32, plain getgroups is the old 16-bit-gid call (UID16).
  getgroups: (ctx, [size, list]) => getgroups(ctx, s32(size!), list!, ctx.host.arch.syscallNumber('getgroups32') !== undefined ? 2 : 4),
  getgroups32: (ctx, [size, list]) => getgroups(ctx, s32(size!), list!, 4),
  sysinfo: (ctx, [buf]) => sysinfo(ctx, buf!),
  sched_getaffinity: (ctx, [pid, len, mask]) => getaffinity(ctx, s32(pid!), len!, mask!),
  prctl: (ctx, [option, arg2]) => prctl(ctx, s32(option!), arg2!),
  getpgrp: (ctx) => BigInt(procOf(ctx).pgid),
  getpgid: (ctx, [pid]) => pgidOf(ctx, s32(pid!), 'pgid'),
  getsid: (ctx, [pid]) => pgidOf(ctx, s32(pid!), 'sid'),
  setsid: (ctx) => setsid(ctx),
  setpgid: (ctx, [pid, pgid]) => setpgid(ctx, s32(pid!), s32(pgid!)),
};
