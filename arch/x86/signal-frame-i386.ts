/**
 * i386's rt signal frame (arch/x86/kernel/signal_32.c, struct rt_sigframe), as Linux lays it out:
 *
 *   frame+0    pretcode (sa_restorer with SA_RESTORER, else frame->retcode: there is no vDSO)
 *   frame+4    sig, then pinfo (frame+16) and puc (frame+144): the handler's three arguments
 *   frame+16   struct siginfo (128)
 *   frame+144  struct ucontext: uc_flags, uc_link, uc_stack (12), uc_mcontext (struct
 *              sigcontext, 88), uc_sigmask (8)                                     = 116 bytes
 *   frame+260  retcode: movl $__NR_rt_sigreturn, %eax; int $0x80
 *   above it   the FPU state sigcontext.fpstate points to: struct _fpstate_32's i387 header
 *              (112 bytes, magic 0 = FXSR data follows) then the 64-byte aligned FXSAVE image
 *
 * The frame is placed so that (esp + 4) is 16-byte aligned, as after a call. eax, edx and ecx
 * also carry sig, pinfo and puc (for regparm handlers), as Linux sets them.
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
const FSAVE_HEADER = 112;
const NR_RT_SIGRETURN = 173;
/** sigcontext_32 word slots 4..11: edi esi ebp esp ebx edx ecx eax. */
const SC_GPRS = [R.EDI, R.ESI, R.EBP, R.ESP, R.EBX, R.EDX, R.ECX, R.EAX];

export function setupRtFrame32(e: Engine, mem: GuestMemoryAccess, req: SignalFrameRequest): boolean {
  const gprs = e.regReadBatch(SC_GPRS);
  const [eip, eflags, gs, fs, es, ds, cs, ss, fcw, fsw, ftw] = e.regReadBatch([R.EIP, R.EFLAGS, R.GS, R.FS, R.ES, R.DS, R.CS, R.SS, R.FPCW, R.FPSW, R.FPTAG]);
  const esp = gprs[3]!;
  let sp = req.altStackTop ?? esp;
  sp = (sp - BigInt(FXSAVE_SIZE)) & ~63n;
  const fx = sp;
  sp -= BigInt(FSAVE_HEADER);
  const fpstate = sp;
  const frame = ((sp - BigInt(FRAME_SIZE) + 4n) & ~15n) - 4n;
  const u32 = (x: bigint): number => Number(BigInt.asUintN(32, x));
  const b = new Uint8Array(FRAME_SIZE);
  const v = new DataView(b.buffer);
  const put = (off: number, x: bigint | number): void => v.setUint32(off, typeof x === 'number' ? x >>> 0 : u32(x), true);
  const retcode = frame + BigInt(RETCODE);
  put(0, req.restorer ?? retcode);
  put(4, req.sig);
  put(8, frame + BigInt(INFO));
  put(12, frame + BigInt(UC));
  b.set(req.info, INFO);
  put(UC, 0); // uc_flags: no UC_FP_XSTATE (FXSAVE data)
  put(UC + 8, req.ucStack.sp);
  v.setInt32(UC + 12, req.ucStack.flags, true);
  put(UC + 16, req.ucStack.size);
  [gs, fs, es, ds].forEach((s, i) => put(MCONTEXT + 4 * i, s! & 0xffffn));
  gprs.forEach((r, i) => put(MCONTEXT + 16 + 4 * i, r));
  // trapno, err (MCONTEXT+48, +52): 0, the emulator does not report them.
  put(MCONTEXT + 56, eip!);
  put(MCONTEXT + 60, cs! & 0xffffn);
  put(MCONTEXT + 64, eflags!);
  put(MCONTEXT + 68, esp); // esp_at_signal
  put(MCONTEXT + 72, ss! & 0xffffn);
  put(MCONTEXT + 76, fpstate);
  put(MCONTEXT + 80, req.savedMask & 0xffffffffn); // oldmask
  put(MCONTEXT + 84, req.faultAddr ?? 0n); // cr2
  put(SIGMASK, req.savedMask & 0xffffffffn);
  put(SIGMASK + 4, req.savedMask >> 32n);
  b.set([0xb8, NR_RT_SIGRETURN, 0, 0, 0, 0xcd, 0x80, 0], RETCODE);
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
    mem.write(frame, b);
  } catch {
    return false;
  }
  const info = frame + BigInt(INFO);
  const uc = frame + BigInt(UC);
  e.regWriteBatch([R.EAX, R.EDX, R.ECX, R.ESP, R.EIP, R.EFLAGS], [BigInt(req.sig), info, uc, frame, req.handler, eflags! & ~HANDLER_CLEARS]);
  return true;
}

export function rtSigreturn32(e: Engine, mem: GuestMemoryAccess): SigreturnResult | undefined {
  // The handler's `ret` popped pretcode: the frame starts 4 bytes below the stack pointer.
  const frame = e.regRead(R.ESP) - 4n;
  let b: Uint8Array;
  let fx: Uint8Array | undefined;
  try {
    b = mem.read(frame, FRAME_SIZE);
    const fp = BigInt(new DataView(b.buffer, b.byteOffset).getUint32(MCONTEXT + 76, true));
    if (fp !== 0n) {
      const magic = new DataView(mem.read(fp + 110n, 2).buffer).getUint16(0, true);
      if (magic === 0) fx = mem.read(fp + BigInt(FSAVE_HEADER), FXSAVE_SIZE);
    }
  } catch {
    return undefined;
  }
  const v = new DataView(b.buffer, b.byteOffset, FRAME_SIZE);
  const get = (off: number): bigint => BigInt(v.getUint32(off, true));
  e.regWriteBatch(SC_GPRS, SC_GPRS.map((_, i) => get(MCONTEXT + 16 + 4 * i)));
  const cur = e.regRead(R.EFLAGS);
  e.regWriteBatch([R.EIP, R.EFLAGS], [get(MCONTEXT + 56), (cur & ~FIX_EFLAGS) | (get(MCONTEXT + 64) & FIX_EFLAGS)]);
  const gs = get(MCONTEXT) & 0xffffn;
  if (gs !== (e.regRead(R.GS) & 0xffffn)) e.regWrite(R.GS, gs);
  if (fx) restoreFxsave(e, fx, 8);
  return {
    mask: get(SIGMASK) | (get(SIGMASK + 4) << 32n),
    stack: { sp: get(UC + 8), flags: v.getInt32(UC + 12, true), size: get(UC + 16) },
  };
}

/** int $0x80 (cd 80) is 2 bytes; eax gets the call number back (orig_ax). */
export function restartSyscall32(e: Engine, resumePc: bigint, call: SyscallRequest): void {
  e.regWriteBatch([R.EIP, R.EAX], [resumePc - 2n, BigInt.asUintN(32, BigInt(call.nr))]);
}
