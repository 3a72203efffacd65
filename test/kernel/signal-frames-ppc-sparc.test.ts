/**
 * The ppc32, ppc64 and sparc64 signal frames against the layouts Linux defines
 * (arch/powerpc/kernel/signal_32.c / signal_64.c, uapi asm/ucontext.h, sigcontext.h, ptrace.h;
 * arch/sparc/kernel/signal_64.c, uapi asm/ptrace.h), on a bare mm: every offset below is one of
 * those headers' (worked out in the comments), the register values are arbitrary distinct
 * patterns, and a round trip through rt_sigreturn must give back every register the frame holds
 * — including what the handler changed in the frame, which is how a handler edits the context it
 * returns to. The whole programs (fixtures/<target>/signals-nolibc against qemu-user) run in the
 * signal tests; these pin what those cannot see.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { archFor } from '../../arch/index.js';
import type { Arch, SignalFrameRequest, TrapSink } from '../../arch/types.js';
import { UC_PPC_REG as P } from '../../arch/ppc/ucregs.js';
import { UC_SPARC_REG as S } from '../../arch/sparc/ucregs.js';
import { PPC_FPRS, PPC_GPRS } from '../../arch/ppc/common.js';
import { SIGTRAMP_PPC32, SIGTRAMP_PPC64 } from '../../arch/ppc/sigtramp.js';
import { cpuOf, readCcrY, writeCcrY, R32 } from '../../arch/sparc/cpu.js';
import { Mm } from '../../src/mm/mm.js';
import { PROT } from '../../src/mm/vma.js';

const RW = PROT.READ | PROT.WRITE;
let mms: Mm[] = [];
beforeEach(() => (mms = []));
afterEach(() => {
  for (const m of mms) m.destroy();
});

function mmFor(target: 'ppc32' | 'ppc64' | 'sparc64', stackBase: bigint, len: bigint): { arch: Arch; mm: Mm } {
  const arch = archFor(target)!;
  const mm = new Mm(arch, []);
  mms.push(mm);
  expect(mm.mmap({ addr: stackBase, len, prot: RW, fixed: true, shared: false })).toBe(stackBase);
  return { arch, mm };
}

const info = (): Uint8Array => Uint8Array.from({ length: 128 }, (_, i) => (i * 7 + 3) & 0xff);
const MASK = 0x8000_0001_0000_4002n;

function request(over: Partial<SignalFrameRequest>): SignalFrameRequest {
  return {
    sig: 10,
    handler: 0x1000_0400n,
    restorer: undefined,
    flags: 0x4,
    info: info(),
    savedMask: MASK,
    ucStack: { sp: 0x5000n, flags: 2, size: 0x4000n },
    altStackTop: undefined,
    ...over,
  };
}

const be32 = (b: Uint8Array, at: number): bigint => BigInt(new DataView(b.buffer, b.byteOffset).getUint32(at));
const be64 = (b: Uint8Array, at: number): bigint => new DataView(b.buffer, b.byteOffset).getBigUint64(at);
const word = (w: 4 | 8) => (b: Uint8Array, at: number): bigint => (w === 8 ? be64(b, at) : be32(b, at));

/** Distinct values for every register a ppc frame saves. */
function fillPpc(mm: Mm, w: 4 | 8, sp: bigint): bigint[] {
  const e = mm.engine;
  const mask = w === 8 ? (1n << 64n) - 1n : 0xffffffffn;
  const gpr = PPC_GPRS.map((_, i) => ((0x1111_0000_0000n * BigInt(i + 1)) | BigInt(0x100 + i)) & mask);
  gpr[1] = sp;
  e.regWriteBatch(PPC_GPRS, gpr);
  e.regWriteBatch(PPC_FPRS, PPC_FPRS.map((_, i) => 0x4000_0000_0000_0000n + BigInt(i)));
  e.regWriteBatch([P.PC, P.CTR, P.LR, P.XER, P.CR, P.FPSCR], [0x1000_0100n, 0x1000_0200n & mask, 0x1000_0300n, 0x2000_0000n, 0x4822_4484n, 0x0000_00f8n]);
  return gpr;
}

describe('ppc32 signal frames (signal_32.c)', () => {
  it('rt_sigframe: siginfo, ucontext with uc_regs → mcontext, handler registers, and back', () => {
    const { arch, mm } = mmFor('ppc32', 0x7000_0000n, 0x10000n);
    const e = mm.engine;
    const sp = 0x7000_f008n;
    const gpr = fillPpc(mm, 4, sp);
    expect(arch.signals.setupRtFrame!(e, mm, request({}))).toBe(true);
    // get_sigframe: (sp − sizeof(rt_sigframe) = 128 + 1184 + 224) & ~15; r1 = frame − (64 + 16).
    const frame = (sp - 1536n) & ~15n;
    const [r1, r3, r4, r5, r6, pc, lr, fpscr] = e.regReadBatch([P.R1, P.R3, P.R4, P.R5, P.R6, P.PC, P.LR, P.FPSCR]);
    expect([r1, r3, r4, r5, r6, pc, fpscr]).toEqual([frame - 80n, 10n, frame, frame + 128n, frame, 0x1000_0400n, 0n]);
    // LR: the vdso-style trampoline, li r0,__NR_rt_sigreturn (172); sc.
    expect(lr).toBe(SIGTRAMP_PPC32);
    expect([...e.memRead(lr!, 8)]).toEqual([0x38, 0x00, 0x00, 0xac, 0x44, 0x00, 0x00, 0x02]);
    const b = mm.read(frame - 80n, 80 + 1536);
    const at = (o: number): number => o + 80;
    expect(be32(b, 0)).toBe(sp); // the back chain
    expect([...b.subarray(at(0), at(128))]).toEqual([...info()]);
    const uc = at(128);
    // uc_flags, uc_link, uc_stack {ss_sp, ss_flags, ss_size}, uc_regs (+48) → uc_mcontext (+192).
    expect([be32(b, uc), be32(b, uc + 4), be32(b, uc + 8), be32(b, uc + 12), be32(b, uc + 16)]).toEqual([0n, 0n, 0x5000n, 2n, 0x4000n]);
    expect(be32(b, uc + 48)).toBe(frame + 128n + 192n);
    // uc_sigmask: sig[0] (signals 1–32) then sig[1].
    expect([be32(b, uc + 52), be32(b, uc + 56)]).toEqual([MASK & 0xffffffffn, MASK >> 32n]);
    const mc = uc + 192;
    // mc_gregs: PT_R0..31, PT_NIP 32, PT_MSR 33, PT_CTR 35, PT_LNK 36, PT_XER 37, PT_CCR 38.
    gpr.forEach((g, i) => expect(be32(b, mc + 4 * i)).toBe(g));
    expect([32, 35, 36, 37, 38].map((i) => be32(b, mc + 4 * i))).toEqual([0x1000_0100n, 0x1000_0200n, 0x1000_0300n, 0x2000_0000n, 0x4822_4484n]);
    expect(be32(b, mc + 4 * 33) & 0x4000n).toBe(0x4000n); // MSR_PR: a user context
    // mc_fregs at +192: fpr0..31, then the FPSCR in the low word of slot 32.
    for (let i = 0; i < 32; i++) expect(be64(b, mc + 192 + 8 * i)).toBe(0x4000_0000_0000_0000n + BigInt(i));
    expect(be64(b, mc + 192 + 256)).toBe(0xf8n);

    // The handler edits the saved r14 and NIP, clobbers registers, returns: r1 back to frame − 80.
    const edit = Uint8Array.of(0xde, 0xad, 0xbe, 0xef);
    mm.write(frame + 128n + 192n + 14n * 4n, edit);
    mm.write(frame + 128n + 192n + 32n * 4n, Uint8Array.of(0x10, 0x00, 0x01, 0x80));
    e.regWriteBatch([...PPC_GPRS, P.CTR, P.LR, P.CR, P.FPR5], [...PPC_GPRS.map(() => 7n), 1n, 2n, 3n, 4n]);
    e.regWrite(P.R1, frame - 80n);
    const r = arch.signals.rtSigreturn!(e, mm)!;
    expect(r.mask).toBe(MASK);
    expect(r.stack).toEqual({ sp: 0x5000n, flags: 2, size: 0x4000n });
    const back = e.regReadBatch(PPC_GPRS);
    gpr.forEach((g, i) => expect(back[i]).toBe(i === 14 ? 0xdeadbeefn : g));
    expect(e.regReadBatch([P.PC, P.CTR, P.LR, P.XER, P.CR, P.FPR5, P.FPSCR])).toEqual([0x1000_0180n, 0x1000_0200n, 0x1000_0300n, 0x2000_0000n, 0x4822_4484n, 0x4000_0000_0000_0005n, 0xf8n]);
  });

  it('without SA_SIGINFO: the older sigframe (sigcontext, mcontext) and sigreturn(119)', () => {
    const { arch, mm } = mmFor('ppc32', 0x7000_0000n, 0x10000n);
    const e = mm.engine;
    const sp = 0x7000_f000n;
    const gpr = fillPpc(mm, 4, sp);
    expect(arch.signals.setupFrame!(e, mm, request({ flags: 0 }))).toBe(true);
    // struct sigframe: sigcontext (32) + mcontext (992) + abigap (224); r1 = frame − 64.
    const frame = (sp - 1248n) & ~15n;
    const [r1, r3, r4, lr] = e.regReadBatch([P.R1, P.R3, P.R4, P.LR]);
    expect([r1, r3, r4, lr]).toEqual([frame - 64n, 10n, frame, SIGTRAMP_PPC32 + 8n]);
    expect([...e.memRead(lr!, 8)]).toEqual([0x38, 0x00, 0x00, 0x77, 0x44, 0x00, 0x00, 0x02]); // li r0,119; sc
    const b = mm.read(frame, 64);
    // sigcontext: _unused[3] = mask's high word, signal, handler, oldmask, regs → mcontext.
    expect([be32(b, 12), be32(b, 16), be32(b, 20), be32(b, 24), be32(b, 28)]).toEqual([MASK >> 32n, 10n, 0x1000_0400n, MASK & 0xffffffffn, frame + 32n]);
    expect(be32(b, 32 + 4 * 3)).toBe(gpr[3]);
    expect(arch.syscallName(119)).toBe('sigreturn');
    e.regWriteBatch(PPC_GPRS, PPC_GPRS.map(() => 9n));
    e.regWrite(P.R1, frame - 64n);
    const r = arch.signals.sigreturn!(e, mm)!;
    expect(r).toEqual({ mask: MASK });
    expect(e.regReadBatch(PPC_GPRS)).toEqual(gpr);
    expect(e.regRead(P.PC)).toBe(0x1000_0100n);
  });

  it('on the alternate stack, and a frame that cannot be written', () => {
    const { arch, mm } = mmFor('ppc32', 0x7000_0000n, 0x10000n);
    const e = mm.engine;
    fillPpc(mm, 4, 0x7000_f000n);
    expect(arch.signals.setupRtFrame!(e, mm, request({ altStackTop: 0x7000_8004n }))).toBe(true);
    expect(e.regRead(P.R1)).toBe(((0x7000_8004n - 1536n) & ~15n) - 80n);
    fillPpc(mm, 4, 0x6000_0000n); // nothing mapped below
    expect(arch.signals.setupRtFrame!(e, mm, request({}))).toBe(false);
  });
});

describe('ppc64 rt signal frame (signal_64.c)', () => {
  const layout = (mm: Mm, frame: bigint): Uint8Array => mm.read(frame - 128n, 128 + 2400);

  it('ELFv2: ucontext/sigcontext, pinfo/puc, the bctrl trampoline, and back', () => {
    const { arch, mm } = mmFor('ppc64', 0x7000_0000n, 0x10000n);
    const e = mm.engine;
    const sp = 0x7000_f008n;
    const gpr = fillPpc(mm, 8, sp);
    expect(arch.signals.setupRtFrame!(e, mm, request({}))).toBe(true);
    // sizeof(rt_sigframe) = 1696 (ucontext) + 16 + 28 → 1744, pinfo, puc, 128 (siginfo), 512.
    const frame = (sp - 2400n) & ~15n;
    const [pc, ctr, r1, r3, r4, r5, r6, r12] = e.regReadBatch([P.PC, P.CTR, P.R1, P.R3, P.R4, P.R5, P.R6, P.R12]);
    expect([pc, ctr, r1, r3, r4, r5, r6, r12]).toEqual([SIGTRAMP_PPC64, 0x1000_0400n, frame - 128n, 10n, frame + 1760n, frame, frame, 0x1000_0400n]);
    // bctrl; addi r1,r1,128; li r0,172; sc
    expect([...e.memRead(pc!, 16)]).toEqual([0x4e, 0x80, 0x04, 0x21, 0x38, 0x21, 0x00, 0x80, 0x38, 0x00, 0x00, 0xac, 0x44, 0x00, 0x00, 0x02]);
    const b = layout(mm, frame);
    const f = 128;
    expect(be64(b, 0)).toBe(sp);
    expect([be64(b, f + 1744), be64(b, f + 1752)]).toEqual([frame + 1760n, frame]);
    expect([...b.subarray(f + 1760, f + 1888)]).toEqual([...info()]);
    // uc_stack at +16 (ss_sp, ss_flags, ss_size), uc_sigmask at +40, sigcontext at +168.
    expect([be64(b, f + 16), be32(b, f + 24), be64(b, f + 32), be64(b, f + 40)]).toEqual([0x5000n, 2n, 0x4000n, MASK]);
    const sc = f + 168;
    // signal (+32), handler (+40), regs (+56) → gp_regs (+64); fp_regs (+448); v_regs (+712).
    expect([be32(b, sc + 32), be64(b, sc + 40), be64(b, sc + 56)]).toEqual([10n, 0x1000_0400n, frame + 168n + 64n]);
    gpr.forEach((g, i) => expect(be64(b, sc + 64 + 8 * i)).toBe(g));
    expect([32, 35, 36, 37, 38, 39].map((i) => be64(b, sc + 64 + 8 * i))).toEqual([0x1000_0100n, 0x1000_0200n, 0x1000_0300n, 0x2000_0000n, 0x4822_4484n, 1n]);
    expect(be64(b, sc + 64 + 8 * 33) >> 63n).toBe(1n); // MSR_SF
    expect(be64(b, sc + 448 + 8 * 31)).toBe(0x4000_0000_0000_001fn);
    expect(be64(b, sc + 712)).toBe((frame + 168n + 720n + 15n) & ~15n);

    // The trampoline's addi has run: r1 = the frame; rt_sigreturn restores, r13 included.
    mm.write(frame + 168n + 64n + 13n * 8n, new Uint8Array([0, 0, 0, 0, 0, 0, 0x12, 0x34]));
    e.regWriteBatch(PPC_GPRS, PPC_GPRS.map(() => 5n));
    e.regWrite(P.R1, frame);
    const r = arch.signals.rtSigreturn!(e, mm)!;
    expect(r.mask).toBe(MASK);
    const back = e.regReadBatch(PPC_GPRS);
    gpr.forEach((g, i) => expect(back[i]).toBe(i === 13 ? 0x1234n : g));
    // (No FPSCR here: Unicorn 2.1.1's ppc64 register API does not write it; see signal-regs.ts.)
    expect(e.regReadBatch([P.PC, P.CTR, P.LR, P.FPR31])).toEqual([0x1000_0100n, 0x1000_0200n, 0x1000_0300n, 0x4000_0000_0000_001fn]);
  });

  it('ELFv1 (recorded at exec, kept by a fork): the handler is a descriptor; without SA_SIGINFO r4 = &uc_mcontext', () => {
    const { arch, mm } = mmFor('ppc64', 0x7000_0000n, 0x10000n);
    const e = mm.engine;
    const desc = 0x7000_0100n;
    mm.writeWord(desc, 0x1000_2000n);
    mm.writeWord(desc + 8n, 0x1008_8000n);
    arch.startRegisters(e, { entry: 0x1000_0000n, sp: 0x7000_f000n, elf: { ppc64Abi: 'elfv1', entryToc: 0x1008_8000n } as never });
    const child = mm.fork();
    mms.push(child);
    arch.restore(child.engine, arch.snapshot(e));
    const ce = child.engine;
    fillPpc(child, 8, 0x7000_f000n);
    expect(arch.signals.setupRtFrame!(ce, child, request({ handler: desc, flags: 0 }))).toBe(true);
    const frame = (0x7000_f000n - 2400n) & ~15n;
    expect(ce.regReadBatch([P.CTR, P.R2, P.R4])).toEqual([0x1000_2000n, 0x1008_8000n, frame + 168n]);
  });
});

describe('sparc64 rt signal frame (signal_64.c)', () => {
  /** A minimal trap sink: the stub traps only need the task's memory. */
  const sinkFor = (mm: Mm): TrapSink => ({ memory: () => mm }) as unknown as TrapSink;

  it('windows flushed, rt_signal_frame, %ccr/%y through the stubs, and back', () => {
    const { arch, mm } = mmFor('sparc64', 0x7000_0000n, 0x10000n);
    const e = mm.engine;
    const cpu = cpuOf(e);
    cpu.sink = sinkFor(mm);
    const bias = 2047n;
    const sp = 0x7000_e000n - bias;
    const callerFp = 0x7000_f000n - bias;
    const r = R32.map((_, i) => (i === 0 ? 0n : 0x0101_0101_0000_0000n * BigInt(i) + BigInt(i)));
    r[14] = sp;
    r[30] = callerFp;
    e.regWriteBatch(R32.slice(1), r.slice(1));
    e.regWrite(S.PC, 0x10_0100n);
    // One caller window still in the register file: setup_rt_frame flushes it to its stack first.
    const caller = Array.from({ length: 16 }, (_, k) => 0x5150_0000n + BigInt(k));
    cpu.windows.resident = [caller];
    writeCcrY(e, 0x99n, 0x1234_5678n);
    expect(arch.signals.setupRtFrame!(e, mm, request({ flags: 0x200, restorer: 0x10_0ff8n }))).toBe(true);
    expect(cpu.windows.resident).toEqual([]);
    const w = mm.read(callerFp + bias, 128);
    caller.forEach((x, k) => expect(be64(w, 8 * k)).toBe(x));
    // sizeof(rt_signal_frame) = 192 + 128 + 160 + 8 + 24 + 8 + 8 = 528, no FPU state (FEF off).
    const sf = (sp + bias - 528n) & ~15n;
    const [o0, o1, o2, o6, o7] = e.regReadBatch([S.O0, S.O1, S.O2, S.O6, S.O7]);
    expect([o0, o1, o2, o6, o7]).toEqual([10n, sf + 192n, sf + 192n, sf - bias, 0x10_0ff8n]);
    // The entry stub stores %ccr/%y into the frame and reloads %g1, then resumes at the handler.
    const stub = e.regRead(S.PC);
    expect(e.start(stub, 0n, 5).err).toBe(0);
    expect(e.regRead(S.G1)).toBe(r[1]);
    const b = mm.read(sf, 528);
    // The interrupted window's save area (%l0..%i7) at sf+0, siginfo at +192, pt_regs at +320.
    for (let k = 0; k < 16; k++) expect(be64(b, 8 * k)).toBe(r[16 + k]);
    expect([...b.subarray(192, 320)]).toEqual([...info()]);
    for (let k = 1; k < 16; k++) expect(be64(b, 320 + 8 * k)).toBe(r[k]);
    // tstate: CCR << 32 | ASI_PNF (0x82) << 24 | PSTATE.IE << 8; tpc, tnpc, y, magic.
    expect(be64(b, 448)).toBe((0x99n << 32n) | (0x82n << 24n) | (0x2n << 8n));
    expect([be64(b, 456), be64(b, 464), be32(b, 472), be32(b, 476)]).toEqual([0x10_0100n, 0x10_0104n, 0x1234_5678n, 0x57ac_6c00n]);
    // fpu_save 0, stack_t, mask, rwin_save 0.
    expect([be64(b, 480), be64(b, 488), be32(b, 496), be64(b, 504), be64(b, 512), be64(b, 520)]).toEqual([0n, 0x5000n, 2n, 0x4000n, MASK, 0n]);

    // The handler returned through the restorer: %sp is the frame's again. Edit %o3 and %ccr.
    const o3 = new Uint8Array(8);
    new DataView(o3.buffer).setBigUint64(0, 0xabcdn);
    mm.write(sf + 320n + 11n * 8n, o3);
    mm.write(sf + 448n + 3n, Uint8Array.of(0x44));
    e.regWriteBatch(R32.slice(1), R32.slice(1).map(() => 3n));
    e.regWrite(S.O6, sf - bias);
    writeCcrY(e, 0n, 0n);
    const res = arch.signals.rtSigreturn!(e, mm)!;
    expect(res.mask).toBe(MASK);
    expect(res.stack).toEqual({ sp: 0x5000n, flags: 2, size: 0x4000n });
    // The exit stub writes %ccr/%y, then its trap restores %g1, %g2, %sp and resumes at tpc.
    const exit = e.regRead(S.PC);
    expect(e.start(exit, 0n, 2).err).toBe(0);
    expect(readCcrY(e)).toEqual([0x44n, 0x1234_5678n]);
    const t = cpu.stubTraps.get(exit + 8n);
    expect(t?.kind).toBe('call');
    if (t?.kind === 'call') t.run(cpu);
    const back = e.regReadBatch(R32.slice(1, 16));
    r.slice(1, 16).forEach((x, k) => expect(back[k]).toBe(k + 1 === 11 ? 0xabcdn : x));
    expect(e.regRead(S.PC)).toBe(0x10_0100n);
  });

  it('a misaligned frame or tpc is a bad frame (SIGSEGV), and -ERESTART* goes back onto the ta', () => {
    const { arch, mm } = mmFor('sparc64', 0x7000_0000n, 0x10000n);
    const e = mm.engine;
    e.regWrite(S.O6, 0x7000_e008n - 2047n);
    expect(arch.signals.rtSigreturn!(e, mm)).toBeUndefined();
    arch.signals.restartSyscall!(e, 0x10_0208n, { nr: 3, args: [7n, 8n, 9n] });
    expect(e.regReadBatch([S.PC, S.O0, S.G6])).toEqual([0x10_0204n, 7n, 7n]);
  });
});
