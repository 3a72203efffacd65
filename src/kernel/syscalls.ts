/**
 * The host half of the system-call layer: what the guest kernel image cannot do itself (I/O,
 * memory maps, processes). Handlers are keyed by the generic Linux name and receive the six
 * argument words; they return the result (or -errno), or a directive for the scheduler.
 *
 * Errors are generic Linux errno values; the arch converts them for the user ABI on return.
 */
import type { Mm } from '../mm/mm.js';
import { PROT } from '../mm/vma.js';
import { RegNode } from '../vfs/node.js';
import { E, err } from './errno.js';
import { s32, user, mmOf, writeWords, type Handler, type SyscallCtx, type SyscallResult } from './sys/common.js';
import { fileOf, pageCacheOf } from './sys/files.js';
import { rwHandlers } from './sys/rw.js';
import { fsHandlers } from './sys/fs.js';
import { fdHandlers } from './sys/fd.js';
import { execHandlers } from './sys/exec.js';
import { futexHandlers } from './sys/futex.js';
import { identityHandlers } from './sys/identity.js';
import { pollHandlers } from './sys/poll.js';
import { signalHandlers } from './signal/syscalls.js';

export type { SyscallCtx, SyscallDirective, SyscallHost, SyscallResult } from './sys/common.js';

const MAP_SHARED = 0x01;
const MAP_PRIVATE = 0x02;
const MAP_FIXED = 0x10;
const MAP_ANONYMOUS = 0x20; // the same on x86, ppc and sparc
const RLIM_INFINITY = -1n;
const RLIMIT_STACK = 3;
const RLIMIT_NOFILE = 7;



export const handlers: Record<string, Handler> = {
  ...rwHandlers,
  ...fsHandlers,
  ...fdHandlers,
  ...execHandlers,
  ...futexHandlers,
  ...identityHandlers,
  ...pollHandlers,
  ...signalHandlers,
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
  getrandom(ctx, [buf, len]) {
    // At most 33554431 bytes per call from the urandom source (getrandom(2), as Linux caps it).
    const cap = (1n << 25n) - 1n;
    const n = Number(len! > cap ? cap : len!);
    const r = user(() => mmOf(ctx).write(buf!, ctx.host.rng.bytes(n)));
    return typeof r === 'bigint' ? r : BigInt(n);
  },
  sched_yield: () => ({ kind: 'yield' }),
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
    return ctx.host.clone(ctx.task, sigchld(ctx), 0n, 0n, 0n, 0n);
  },
  vfork(ctx) {
    // vfork's sharing is an optimisation; a copy behaves the same for a well-behaved child.
    return ctx.host.clone(ctx.task, sigchld(ctx), 0n, 0n, 0n, 0n);
  },
  wait4(ctx, [pid, status, options]) {
    return ctx.host.wait4(ctx.task, s32(pid!), status!, Number(options!));
  },
};

/** fork's exit signal: SIGCHLD in the target's numbering (clone's low byte is a user number). */
const sigchld = (ctx: SyscallCtx): bigint => BigInt(ctx.host.signals.num.fromGeneric(17));

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

function doMmap(ctx: SyscallCtx, addr: bigint, len: bigint, prot: number, flags: number, fd: number, off: bigint): bigint {
  const mm = mmOf(ctx);
  const shared = (flags & 3) === MAP_SHARED;
  if (!shared && (flags & 3) !== MAP_PRIVATE) return err(E.EINVAL);
  const anon = (flags & MAP_ANONYMOUS) !== 0;
  const fixed = (flags & MAP_FIXED) !== 0;
  if (anon) return mm.mmap({ addr, len, prot: prot & 7, fixed, shared });
  const f = fileOf(ctx, fd);
  if (!f) return err(E.EBADF);
  // do_mmap: a file needs read access; a shared writable mapping needs a writable description.
  if (f.kind !== 'vfs' || !(f.file.node instanceof RegNode)) return err(f.kind === 'vfs' ? E.ENODEV : E.EACCES);
  if (!f.file.readable) return err(E.EACCES);
  if (off % BigInt(mm.pageSize) !== 0n) return err(E.EINVAL);
  // Shared writable mappings would have to write back into the file: not modelled (EACCES, the
  // answer for a description that is not writable; see README "The guest's filesystem").
  if (shared && prot & PROT.WRITE) return err(E.EACCES);
  let inode;
  try {
    inode = pageCacheOf(ctx, f.file.node, f.file.path);
  } catch (e) {
    if (e instanceof Error && 'errno' in e && (e as { errno?: number }).errno === E.ENOMEM) return err(E.ENOMEM);
    throw e;
  }
  // VM_MAYWRITE: a shared mapping may become writable only through a writable description (and
  // shared writable mappings are refused above for any description, so mprotect refuses them too).
  const vmFlags = shared ? { mayWrite: false } : {};
  return mm.mmap({ addr, len, prot: prot & 7, fixed, shared, flags: vmFlags, file: { inode, pgoff: Number(off / BigInt(mm.pageSize)) } });
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
