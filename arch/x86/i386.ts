/**
 * i386 back-end.
 *
 * Thread-local storage is the one thing the emulator makes us build: glibc calls
 * set_thread_area() and then loads %gs with a selector into the GDT, so the engine gets a real GDT
 * (one page, engine-private) whose TLS entries (GDT_ENTRY_TLS_MIN = 6 … 8 as on Linux i386) are
 * written the way Linux's fill_ldt()/set_tls_desc() encode a struct user_desc. The TLS entries are
 * per-task state (Linux keeps them in thread.tls_array), so they travel in the task's snapshot.
 */
import { E, errnoTranslator, GENERIC_ERRNO } from '../../src/kernel/errno.js';
import { singleEntry } from '../entry.js';
import type { Engine } from '../../src/emu/unicorn.js';
import { UC_ARCH, UC_MODE } from '../../src/emu/unicorn.js';
import type { Arch, GuestMemoryAccess, RegSnapshot, TrapSink } from '../types.js';
import { UC_X86_REG as R } from './ucregs.js';
import { SYSCALLS_I386 } from './syscalls-i386.js';
import { BREAKPOINT_VECTOR, EFLAGS_RESERVED1, HYPERCALL_VECTOR, INT80_VECTOR, x86FaultForVector, x86Hypercall, installX86IoHooks } from './common.js';
import { attachX86CpuState, setX86CpuMode, x86ExceptionTaken } from './cpu-state.js';
import { SyscallTable } from '../syscall-table.js';
import { STAT64_I386, STAT_I386 } from './stat.js';
import { GENERIC_OPEN_FLAGS } from '../../src/kernel/abi/open-flags.js';
import { sigactionLayout, X86_MINSIGSTKSZ, X86_SA_FLAGS } from './signal-abi.js';
import { restartSyscall32, rtSigreturn32, setupFrame32, setupRtFrame32, sigreturn32 } from './signal-frame-i386.js';

const GPRS = [R.EAX, R.EBX, R.ECX, R.EDX, R.ESI, R.EDI, R.EBP, R.ESP] as const;
const SYSCALL_REGS = [...GPRS, R.EIP, R.EFLAGS];
const FULL_REGS = [...SYSCALL_REGS, R.MXCSR, R.FPCW];
const XMM = Array.from({ length: 8 }, (_, i) => R.XMM0 + i);
const SYSCALL_ARG_REGS = [R.EBX, R.ECX, R.EDX, R.ESI, R.EDI, R.EBP];
const SYSCALL_READ = [R.EAX, ...SYSCALL_ARG_REGS]; // every system call entry reads these

const GDT_ADDR = 0xff000000n;
const GDT_ENTRIES = 32;
const GDT_ENTRY_TLS_MIN = 6;
const GDT_ENTRY_KERNEL_CS = 12;
const GDT_ENTRY_KERNEL_DS = 13;
// base 0, limit 0xfffff pages, G=1, D/B=1, P=1, DPL 0, S=1; type 0xb (code) / 0x3 (data).
const FLAT_CODE = Uint8Array.of(0xff, 0xff, 0x00, 0x00, 0x00, 0x9b, 0xcf, 0x00);
const FLAT_DATA = Uint8Array.of(0xff, 0xff, 0x00, 0x00, 0x00, 0x93, 0xcf, 0x00);
const GDT_ENTRY_TLS_ENTRIES = 3;
const EINVAL = BigInt(E.EINVAL);
const ESRCH = BigInt(E.ESRCH);
const EFAULT = BigInt(E.EFAULT);

const table = new SyscallTable(SYSCALLS_I386);
const mask32 = (v: bigint): bigint => BigInt.asUintN(32, v);

function writeGdtr(e: Engine): void {
  // struct uc_x86_mmr { u16 selector; u64 base; u32 limit; u32 flags; } (natural alignment)
  const b = new Uint8Array(24);
  const v = new DataView(b.buffer);
  v.setBigUint64(8, GDT_ADDR, true);
  v.setUint32(16, GDT_ENTRIES * 8 - 1, true);
  e.regWriteBytes(R.GDTR, b);
}

/** Encode a struct user_desc as a GDT descriptor (Linux: fill_ldt in asm/desc.h). */
function encodeUserDesc(base: number, limit: number, flags: number): Uint8Array {
  const seg32 = flags & 1;
  const contents = (flags >> 1) & 3;
  const readExecOnly = (flags >> 3) & 1;
  const limitInPages = (flags >> 4) & 1;
  const notPresent = (flags >> 5) & 1;
  const useable = (flags >> 6) & 1;
  const type = ((readExecOnly ^ 1) << 1) | (contents << 2) | 1;
  const lo = ((limit & 0xffff) | ((base & 0xffff) << 16)) >>> 0;
  const hi =
    (((base >>> 16) & 0xff) |
      (type << 8) |
      (1 << 12) | // S: code/data segment
      (3 << 13) | // DPL 3
      ((notPresent ^ 1) << 15) |
      (limit & 0xf0000) |
      (useable << 20) |
      (seg32 << 22) |
      (limitInPages << 23) |
      (base & 0xff000000)) >>>
    0;
  const out = new Uint8Array(8);
  const v = new DataView(out.buffer);
  v.setUint32(0, lo, true);
  v.setUint32(4, hi, true);
  return out;
}

function readTls(e: Engine): Uint8Array {
  return e.memRead(GDT_ADDR + BigInt(GDT_ENTRY_TLS_MIN * 8), GDT_ENTRY_TLS_ENTRIES * 8);
}

const tlsSlot = (entry: number): boolean => entry >= GDT_ENTRY_TLS_MIN && entry < GDT_ENTRY_TLS_MIN + GDT_ENTRY_TLS_ENTRIES;

/** A struct user_desc from user memory: its entry_number and the GDT descriptor it encodes, or -EFAULT. */
function readUserDesc(mem: GuestMemoryAccess, uinfo: bigint): { entry: number; desc: Uint8Array } | bigint {
  let raw: Uint8Array;
  try {
    raw = mem.read(uinfo, 16);
  } catch {
    return -EFAULT;
  }
  const v = new DataView(raw.buffer, raw.byteOffset, 16);
  return { entry: v.getInt32(0, true), desc: encodeUserDesc(v.getUint32(4, true), v.getUint32(8, true), v.getUint32(12, true)) };
}

export const i386: Arch = {
  target: 'i386',
  family: 'x86',
  wordSize: 4,
  endian: 'little',
  ucArch: UC_ARCH.X86,
  ucMode: UC_MODE.MODE_32,
  elfMachine: 3,
  stackBias: 0,
  unameMachine: 'i686',
  fsAbi: { stat: STAT_I386, stat64: STAT64_I386, openFlags: GENERIC_OPEN_FLAGS },
  signals: { saFlags: X86_SA_FLAGS, sigaction: sigactionLayout(4), minSigStkSz: X86_MINSIGSTKSZ, setupRtFrame: setupRtFrame32, rtSigreturn: rtSigreturn32, setupFrame: setupFrame32, sigreturn: sigreturn32, restartSyscall: restartSyscall32 },
  // i386 passes 64-bit offsets as (low, high) in consecutive argument registers.
  fileOffsetArg: (args, at) => BigInt.asIntN(64, ((args[at + 1]! & 0xffffffffn) << 32n) | (args[at]! & 0xffffffffn)),
  layout: {
    pageSize: 0x1000,
    taskSize: 0xc0000000n,
    stackTop: 0xbffff000n,
    stackMax: 8 << 20,
    mmapBase: 0xb7fff000n,
    kernelBase: 0xc1000000n,
    kernelStackArena: 0xd0000000n,
  },
  registers: {
    byName: new Map(
      (
        [
          ['ax', R.EAX], ['bx', R.EBX], ['cx', R.ECX], ['dx', R.EDX], ['si', R.ESI], ['di', R.EDI],
          ['bp', R.EBP], ['sp', R.ESP], ['ip', R.EIP], ['flags', R.EFLAGS],
        ] as Array<[string, number]>
      ).map(([n, id]) => [n, { id, size: 4 }]),
    ),
  },

  setupEngine(e, support): void {
    support.mapPrivate(GDT_ADDR, 0x1000);
    // Flat 4 GiB code and data segments, loaded into CS/SS/DS/ES. Unicorn starts in protected
    // mode with hidden segment caches but no descriptors behind them; the first segment load
    // (glibc's `mov %eax,%gs` after set_thread_area) makes QEMU recompute the stack size from
    // SS's descriptor, which would then be 16-bit. The guest runs at CPL 0 (Unicorn has no
    // user mode here), so these are Linux's kernel selectors: __KERNEL_CS 0x60, __KERNEL_DS 0x68.
    e.memWrite(GDT_ADDR + BigInt(GDT_ENTRY_KERNEL_CS * 8), FLAT_CODE);
    e.memWrite(GDT_ADDR + BigInt(GDT_ENTRY_KERNEL_DS * 8), FLAT_DATA);
    writeGdtr(e);
    const ds = BigInt(GDT_ENTRY_KERNEL_DS * 8);
    e.regWriteBatch([R.SS, R.DS, R.ES], [ds, ds, ds]);
    // After the SS load: QEMU sets the CPL from SS's descriptor (DPL 0); setCpuMode moves it.
    attachX86CpuState(e, false);
  },
  setCpuMode: setX86CpuMode,

  installTrapHooks(engine: Engine, sink: TrapSink): void {
    installX86IoHooks(engine, sink, R.EIP);
    engine.hookIntr((vector) => {
      x86ExceptionTaken(engine, vector);
      const after = engine.regRead(R.EIP);
      let action;
      if (vector === INT80_VECTOR) action = sink.syscall(after);
      else if (vector === HYPERCALL_VECTOR) action = x86Hypercall(sink, after);
      else if (vector === BREAKPOINT_VECTOR) action = sink.breakpoint(after - 1n, after);
      else action = sink.fault(x86FaultForVector(vector), after);
      const pc = action?.pc;
      // Redirect and stop: the PC is written after the run (a PC write here would cancel the stop).
      if (pc !== undefined && action?.stop) engine.stopThen(() => engine.regWrite(R.EIP, pc));
      else if (pc !== undefined) engine.regWrite(R.EIP, pc);
      else if (action?.stop) engine.stop();
    });
  },

  getPc: (e) => e.regRead(R.EIP),
  setPc: (e, pc) => e.regWrite(R.EIP, pc),
  getSp: (e) => e.regRead(R.ESP),
  setSp: (e, sp) => e.regWrite(R.ESP, sp),

  snapshot(e: Engine): RegSnapshot {
    const values = e.regReadBatch(FULL_REGS);
    values.push(e.regRead(R.GS));
    return { values, wide: [readTls(e), ...XMM.map((id) => e.regReadBytes(id, 16))] };
  },
  restore(e: Engine, s: RegSnapshot): void {
    e.regWriteBatch(FULL_REGS, s.values.slice(0, FULL_REGS.length));
    const [tls, ...xmm] = s.wide ?? [];
    if (tls) e.memWrite(GDT_ADDR + BigInt(GDT_ENTRY_TLS_MIN * 8), tls);
    const gs = s.values[FULL_REGS.length] ?? 0n;
    // Reloading %gs makes the CPU re-read the (possibly different) descriptor from the GDT.
    e.regWrite(R.GS, gs);
    xmm.forEach((b, i) => e.regWriteBytes(XMM[i]!, b));
  },
  saveSyscallRegs: (e) => ({ values: e.regReadBatch(SYSCALL_REGS) }),
  restoreSyscallRegs: (e, s) => e.regWriteBatch(SYSCALL_REGS, s.values),

  auxv: () => ({ hwcap: 0x178bfbffn, hwcap2: 0n, extra: [], platform: 'i686' }),

  startRegisters(e, { entry, sp }): void {
    e.regWriteBatch([...GPRS, R.EIP, R.EFLAGS], [...GPRS.map(() => 0n), entry, EFLAGS_RESERVED1]);
    e.regWrite(R.ESP, sp);
  },

  syscallName: (nr) => table.name(nr),
  syscallNumber: (name) => table.number(name),
  readSyscall(e) {
    const v = e.regReadBatch(SYSCALL_READ);
    return { nr: Number(BigInt.asIntN(32, v[0]!)), args: v.slice(1).map(mask32) };
  },
  writeSyscallResult(e, value) {
    e.regWrite(R.EAX, mask32(value));
  },
  setThreadPointer(e, tls, mem) {
    // CLONE_SETTLS on i386 passes a struct user_desc pointer, as set_thread_area does.
    i386.archSyscall('set_thread_area', e, [tls], mem);
  },
  cloneTls(tls, mem) {
    // Linux's copy_thread reads CLONE_SETTLS's struct user_desc during clone (do_set_thread_area
    // with can_allocate 0: entry_number -1 is EINVAL), not when the child first runs: glibc's
    // descriptor lives in pthread_create's frame, which the parent reuses for the next thread.
    const d = readUserDesc(mem, tls);
    if (typeof d === 'bigint') return d;
    if (d.entry === -1 || !tlsSlot(d.entry)) return -EINVAL;
    return (e) => e.memWrite(GDT_ADDR + BigInt(d.entry * 8), d.desc);
  },
  archSyscall(name, e, args, mem) {
    if (name !== 'set_thread_area') return undefined;
    const uinfo = args[0]!;
    const d = readUserDesc(mem, uinfo);
    if (typeof d === 'bigint') return d;
    let entry = d.entry;
    if (entry === -1) {
      // Linux picks the first free TLS slot (get_free_idx).
      const cur = readTls(e);
      for (let i = 0; i < GDT_ENTRY_TLS_ENTRIES; i++) {
        if (cur.subarray(i * 8, i * 8 + 8).every((b) => b === 0)) {
          entry = GDT_ENTRY_TLS_MIN + i;
          break;
        }
      }
      if (entry === -1) return -ESRCH;
      const back = new Uint8Array(4);
      new DataView(back.buffer).setInt32(0, entry, true);
      try {
        mem.write(uinfo, back);
      } catch {
        return -EFAULT;
      }
    }
    if (!tlsSlot(entry)) return -EINVAL;
    e.memWrite(GDT_ADDR + BigInt(entry * 8), d.desc);
    return 0n;
  },
  functionEntry: singleEntry,
  errno: GENERIC_ERRNO,
  userErrno: errnoTranslator(GENERIC_ERRNO),
  // i386 clone(flags, newsp, parent_tidptr, tls, child_tidptr) (CONFIG_CLONE_BACKWARDS)
  cloneArgs: (a) => ({ flags: a[0]!, stack: a[1]!, parentTid: a[2]!, tls: a[3]!, childTid: a[4]! }),
  setupCloneChild(e, childStack) {
    e.regWrite(R.EAX, 0n);
    if (childStack !== 0n) e.regWrite(R.ESP, childStack);
  },

  readCallArg(e, mem, i) {
    // cdecl at function entry: return address at (%esp), arguments above it.
    return mem.readWord(e.regRead(R.ESP) + 4n + BigInt(4 * i));
  },
  readKernelCallArg(e, mem, i) {
    // The kernel is built -mregparm=3: eax, edx, ecx, then the stack above the return address.
    if (i < 3) return e.regRead([R.EAX, R.EDX, R.ECX][i]!);
    return mem.readWord(e.regRead(R.ESP) + 4n + BigInt(4 * (i - 3)));
  },
  readReturnValue: (e) => e.regRead(R.EAX),
  writeReturnValue: (e, v) => e.regWrite(R.EAX, mask32(v)),
  enterKernelFunction(e, mem, { pc, stackTop, args, returnTo }) {
    // (%esp + 4) is 16-byte aligned at function entry, as the i386 SysV ABI requires.
    let sp = (stackTop & ~0xfn) - BigInt(4 * args.length);
    sp &= ~0xfn;
    sp -= 4n;
    args.forEach((a, i) => mem.writeWord(sp + 4n + BigInt(4 * i), a));
    mem.writeWord(sp, returnTo);
    e.regWriteBatch([R.ESP, R.EIP, R.EFLAGS], [sp, pc, EFLAGS_RESERVED1]);
  },
};
