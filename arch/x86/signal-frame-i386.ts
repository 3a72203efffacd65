/**
 * i386's signal frames (arch/x86/kernel/signal_32.c and asm/sigframe.h), as Linux lays them out.
 *
 * rt frame (handlers with SA_SIGINFO; struct rt_sigframe):
 *   frame+0    pretcode (sa_restorer with SA_RESTORER, else frame->retcode: there is no vDSO)
 *   frame+4    sig, then pinfo (frame+16) and puc (frame+144): the handler's three arguments
 *   frame+16   struct siginfo (128)
 *   frame+144  struct ucontext: uc_flags, uc_link, uc_stack (12), uc_mcontext (struct
 *              sigcontext, 88), uc_sigmask (8)                                     = 116 bytes
 *   frame+260  retcode: movl $__NR_rt_sigreturn, %eax; int $0x80
 * old frame (handlers without SA_SIGINFO — glibc gives them __restore, which calls sigreturn;
 * struct sigframe_ia32):
 *   frame+0    pretcode, frame+4 sig, frame+8 struct sigcontext (88), frame+96 the unused
 *   struct _fpstate_32 (624, kept so extramask stays where old programs look), frame+720
 *   extramask (the mask's high word; sigcontext.oldmask has the low one), frame+724 retcode:
 *   popl %eax; movl $__NR_sigreturn, %eax; int $0x80
 * Both: above the frame, the FPU state sigcontext.fpstate points to — struct _fpstate_32's i387
 * header (112 bytes, magic 0 = FXSR data follows) then the 64-byte aligned FXSAVE image. The
 * frame is placed so that (esp + 4) is 16-byte aligned, as after a call. eax (and for the rt
 * frame edx, ecx: pinfo, puc; for the old one 0) carry the arguments for regparm handlers.
 * Segment registers: gs (the TLS selector) is saved and restored; ds, es, fs and ss are
 * recorded with the values user mode has and not reloaded (they never change here).
 */
import type { Engine } from '../../src/emu/unicorn.js';
import type { GuestMemoryAccess, SignalFrameRequest, SigreturnResult, SyscallRequest } from '../types.js';
import { UC_X86_REG as R } from './ucregs.js';
import { FIX_EFLAGS, FXSAVE_SIZE, HANDLER_CLEARS, restoreFxsave, saveFxsave } from './signal-fpu.js';

const INFO = 16;
const UC = 144;
const MCONTEXT = UC + 20;
const SIGMASK = UC + 108;
const RETCODE = UC + 116;
const FRAME_SIZE = RETCODE + 8;
const OLD_SC = 8;
const OLD_EXTRAMASK = OLD_SC + 88 + 624;
const OLD_RETCODE = OLD_EXTRAMASK + 4;
const OLD_FRAME_SIZE = OLD_RETCODE + 8;
const FSAVE_HEADER = 112;
const NR_RT_SIGRETURN = 173;
const NR_SIGRETURN = 119;
/** sigcontext_32 word slots 4..11: edi esi ebp esp ebx edx ecx eax. */
const SC_GPRS = [R.EDI, R.ESI, R.EBP, R.ESP, R.EBX, R.EDX, R.ECX, R.EAX];
const u32 = (x: bigint): number => Number(BigInt.asUintN(32, x));

/**
 * The FPU state above the frame (get_sigframe + fpu__alloc_mathframe), and the frame's address
 * below it. Returns undefined when the state cannot be written.
 */
function placeFrame(e: Engine, mem: GuestMemoryAccess, req: SignalFrameRequest, size: number): { frame: bigint; fpstate: bigint } | undefined {
  const esp = e.regRead(R.ESP);
  let sp = req.altStackTop ?? esp;
  sp = (sp - BigInt(FXSAVE_SIZE)) & ~63n;
  const fx = sp;
  sp -= BigInt(FSAVE_HEADER);
  const fpstate = sp;
  const [fcw, fsw, ftw] = e.regReadBatch([R.FPCW, R.FPSW, R.FPTAG]);
  // struct _fpstate_32's i387 header: cw, sw, tag, then the x87 registers; status, magic 0.
  const h = new Uint8Array(FSAVE_HEADER);
  const hv = new DataView(h.buffer);
  hv.setUint32(0, Number(fcw!) & 0xffff, true);
  hv.setUint32(4, Number(fsw!) & 0xffff, true);
  hv.setUint32(8, Number(ftw!) & 0xffff, true);
  for (let i = 0; i < 8; i++) h.set(e.regReadBytes(R.ST0 + i, 10), 28 + 10 * i);
  hv.setUint16(108, Number(fsw!) & 0xffff, true);
  try {
    mem.write(fpstate, h);
    mem.write(fx, saveFxsave(e, 8));
  } catch {
    return undefined;
  }
  return { frame: ((sp - BigInt(size) + 4n) & ~15n) - 4n, fpstate };
}

/** struct sigcontext_32 at `off` of `v`: the interrupted registers. */
function writeSigcontext(e: Engine, v: DataView, off: number, fpstate: bigint, mask: bigint, cr2: bigint): void {
  const put = (o: number, x: bigint): void => v.setUint32(off + o, u32(x), true);
  const gprs = e.regReadBatch(SC_GPRS);
  const [eip, eflags, gs, fs, es, ds, cs, ss] = e.regReadBatch([R.EIP, R.EFLAGS, R.GS, R.FS, R.ES, R.DS, R.CS, R.SS]);
  [gs, fs, es, ds].forEach((s, i) => put(4 * i, s! & 0xffffn));
  gprs.forEach((r, i) => put(16 + 4 * i, r));
  // trapno, err (+48, +52): 0, the emulator does not report them.
  put(56, eip!);
  put(60, cs! & 0xffffn);
  put(64, eflags!);
  put(68, gprs[3]!); // esp_at_signal
  put(72, ss! & 0xffffn);
  put(76, fpstate);
  put(80, mask & 0xffffffffn); // oldmask
  put(84, cr2);
}

/** restore_sigcontext: registers (EFLAGS through FIX_EFLAGS), gs, and the FPU state. */
function readSigcontext(e: Engine, mem: GuestMemoryAccess, v: DataView, off: number): boolean {
  const get = (o: number): bigint => BigInt(v.getUint32(off + o, true));
  let fx: Uint8Array | undefined;
  const fp = get(76);
  try {
    if (fp !== 0n && new DataView(mem.read(fp + 110n, 2).buffer).getUint16(0, true) === 0) fx = mem.read(fp + BigInt(FSAVE_HEADER), FXSAVE_SIZE);
  } catch {
    return false;
  }
  e.regWriteBatch(SC_GPRS, SC_GPRS.map((_, i) => get(16 + 4 * i)));
  const cur = e.regRead(R.EFLAGS);
  e.regWriteBatch([R.EIP, R.EFLAGS], [get(56), (cur & ~FIX_EFLAGS) | (get(64) & FIX_EFLAGS)]);
  const gs = get(0) & 0xffffn;
  if (gs !== (e.regRead(R.GS) & 0xffffn)) e.regWrite(R.GS, gs);
  if (fx) restoreFxsave(e, fx, 8);
  return true;
}

export function setupRtFrame32(e: Engine, mem: GuestMemoryAccess, req: SignalFrameRequest): boolean {
  const at = placeFrame(e, mem, req, FRAME_SIZE);
  if (!at) return false;
  const { frame, fpstate } = at;
  const b = new Uint8Array(FRAME_SIZE);
  const v = new DataView(b.buffer);
  const put = (off: number, x: bigint | number): void => v.setUint32(off, typeof x === 'number' ? x >>> 0 : u32(x), true);
  put(0, req.restorer ?? frame + BigInt(RETCODE));
  put(4, req.sig);
  put(8, frame + BigInt(INFO));
  put(12, frame + BigInt(UC));
  b.set(req.info, INFO);
  put(UC, 0); // uc_flags: no UC_FP_XSTATE (FXSAVE data)
  put(UC + 8, req.ucStack.sp);
  v.setInt32(UC + 12, req.ucStack.flags, true);
  put(UC + 16, req.ucStack.size);
  writeSigcontext(e, v, MCONTEXT, fpstate, req.savedMask, req.faultAddr ?? 0n);
  put(SIGMASK, req.savedMask & 0xffffffffn);
  put(SIGMASK + 4, req.savedMask >> 32n);
  b.set([0xb8, NR_RT_SIGRETURN, 0, 0, 0, 0xcd, 0x80, 0], RETCODE);
  try {
    mem.write(frame, b);
  } catch {
    return false;
  }
  const flags = e.regRead(R.EFLAGS) & ~HANDLER_CLEARS;
  e.regWriteBatch([R.EAX, R.EDX, R.ECX, R.ESP, R.EIP, R.EFLAGS], [BigInt(req.sig), frame + BigInt(INFO), frame + BigInt(UC), frame, req.handler, flags]);
  return true;
}

export function rtSigreturn32(e: Engine, mem: GuestMemoryAccess): SigreturnResult | undefined {
  // The handler's `ret` popped pretcode: the frame starts 4 bytes below the stack pointer.
  const frame = e.regRead(R.ESP) - 4n;
  let b: Uint8Array;
  try {
    b = mem.read(frame, FRAME_SIZE);
  } catch {
    return undefined;
  }
  const v = new DataView(b.buffer, b.byteOffset, FRAME_SIZE);
  if (!readSigcontext(e, mem, v, MCONTEXT)) return undefined;
  const get = (off: number): bigint => BigInt(v.getUint32(off, true));
  return {
    mask: get(SIGMASK) | (get(SIGMASK + 4) << 32n),
    stack: { sp: get(UC + 8), flags: v.getInt32(UC + 12, true), size: get(UC + 16) },
  };
}

export function setupFrame32(e: Engine, mem: GuestMemoryAccess, req: SignalFrameRequest): boolean {
  const at = placeFrame(e, mem, req, OLD_FRAME_SIZE);
  if (!at) return false;
  const { frame, fpstate } = at;
  const b = new Uint8Array(OLD_FRAME_SIZE);
  const v = new DataView(b.buffer);
  v.setUint32(0, u32(req.restorer ?? frame + BigInt(OLD_RETCODE)), true);
  v.setUint32(4, req.sig, true);
  writeSigcontext(e, v, OLD_SC, fpstate, req.savedMask, req.faultAddr ?? 0n);
  v.setUint32(OLD_EXTRAMASK, u32(req.savedMask >> 32n), true);
  b.set([0x58, 0xb8, NR_SIGRETURN, 0, 0, 0, 0xcd, 0x80], OLD_RETCODE);
  try {
    mem.write(frame, b);
  } catch {
    return false;
  }
  const flags = e.regRead(R.EFLAGS) & ~HANDLER_CLEARS;
  e.regWriteBatch([R.EAX, R.EDX, R.ECX, R.ESP, R.EIP, R.EFLAGS], [BigInt(req.sig), 0n, 0n, frame, req.handler, flags]);
  return true;
}

export function sigreturn32(e: Engine, mem: GuestMemoryAccess): { mask: bigint } | undefined {
  // The handler's `ret` popped pretcode and the return path popped sig: the frame is 8 below.
  const frame = e.regRead(R.ESP) - 8n;
  let b: Uint8Array;
  try {
    b = mem.read(frame, OLD_FRAME_SIZE);
  } catch {
    return undefined;
  }
  const v = new DataView(b.buffer, b.byteOffset, OLD_FRAME_SIZE);
  if (!readSigcontext(e, mem, v, OLD_SC)) return undefined;
  return { mask: BigInt(v.getUint32(OLD_SC + 80, true)) | (BigInt(v.getUint32(OLD_EXTRAMASK, true)) << 32n) };
}

/** int $0x80 (cd 80) is 2 bytes; eax gets the call number back (orig_ax). */
export function restartSyscall32(e: Engine, resumePc: bigint, call: SyscallRequest): void {
  e.regWriteBatch([R.EIP, R.EAX], [resumePc - 2n, BigInt.asUintN(32, BigInt(call.nr))]);
}
