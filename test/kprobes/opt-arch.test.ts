/**
 * The arch halves of optprobes on hand-assembled functions (encodings from the Intel SDM and the
 * Power ISA), each rule of Linux's can_optimize / copy_optimized_instructions on its own:
 * x86 refuses an indirect jump anywhere in the function, a jump into the 4 bytes after the probe,
 * fewer than 5 bytes to the function's end and a copied instruction that is not boostable; it
 * copies whole instructions until 5 bytes are covered, rebases a RIP-relative displacement and
 * jumps back after them. ppc64 replaces one word, refuses conditional branches and memory
 * accesses, and checks the branch range both ways.
 */
import '../../arch/decoders-ready.js'; // the back-ends decode with Capstone
import { describe, expect, it } from 'vitest';
import { x86OptProbeArch } from '../../arch/x86/kprobes/optimize.js';
import { ppcOptProbeArch } from '../../arch/ppc/kprobes/optimize.js';
import { isRefusal, type OptimizedInsn, type ProbeRefusal } from '../../arch/probes.js';

const BASE = 0xffffffff81000000n;

function fnOf(bytes: number[], base = BASE) {
  const buf = Uint8Array.from(bytes);
  const read = (a: bigint, n: number) => buf.slice(Number(a - base), Number(a - base) + n);
  return { read, fn: { start: base, end: base + BigInt(buf.length) } };
}

const refused = (r: OptimizedInsn | ProbeRefusal): ProbeRefusal => {
  if (!isRefusal(r)) throw new Error('expected a refusal');
  return r;
};
const accepted = (r: OptimizedInsn | ProbeRefusal): OptimizedInsn => {
  if (isRefusal(r)) throw new Error(`refused: ${r.reason}`);
  return r;
};

// push rbp; mov rbp,rsp; sub rsp,0x10; mov eax,1; leave; ret
const PROLOGUE = [0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x10, 0xb8, 1, 0, 0, 0, 0xc9, 0xc3];

describe('x86 can_optimize', () => {
  const x64 = x86OptProbeArch(true);

  it('copies whole boostable instructions until 5 bytes, jumps back after them, and the jump lands on the entry', () => {
    const { read, fn } = fnOf(PROLOGUE);
    const op = accepted(x64.prepareOptimized(read, fn, BASE));
    expect(op.size).toBe(8); // push (1) + mov (3) + sub (4)
    const body = BASE + 0x100000n;
    const b = op.bodyBytes(body);
    expect([...b.subarray(0, 8)]).toEqual(PROLOGUE.slice(0, 8));
    // jmp rel32 from body+8 to BASE+8
    expect(b[8]).toBe(0xe9);
    expect(new DataView(b.buffer).getInt32(9, true)).toBe(Number(BASE + 8n - (body + 13n)));
    const entry = BASE + 0x80000n;
    const j = op.jumpBytes(entry);
    expect(j[0]).toBe(0xe9);
    expect(new DataView(j.buffer).getInt32(1, true)).toBe(Number(entry - (BASE + 5n)));
    expect(op.placementRefusal(entry, body)).toBeUndefined();
    expect(refused({ ...op.placementRefusal(BASE + (1n << 32n), body)! }).errno).toBe(34); // ERANGE
  });

  it('refuses fewer than 5 bytes to the end of the function (-EILSEQ)', () => {
    const { read, fn } = fnOf(PROLOGUE);
    expect(refused(x64.prepareOptimized(read, fn, BASE + 13n)).errno).toBe(84);
  });

  it('refuses an indirect jump anywhere in the function (-EILSEQ), even far from the probe', () => {
    const { read, fn } = fnOf([...PROLOGUE.slice(0, 13), 0xff, 0xe0, 0xc3]); // … jmp rax; ret
    const r = refused(x64.prepareOptimized(read, fn, BASE));
    expect(r.errno).toBe(84);
    expect(r.reason).toMatch(/indirect jump/);
  });

  it('refuses a relative jump into the 4 bytes after the probe, accepts one to the probe itself or past them', () => {
    // 0: push rbp; 1: mov rbp,rsp; 4: sub rsp,0x10; 8: jz rel8 → target
    const withJz = (target: number) => fnOf([...PROLOGUE.slice(0, 8), 0x74, (target - 10) & 0xff, ...PROLOGUE.slice(8)]);
    const into = withJz(1); // mov rbp,rsp at BASE+1 is inside [BASE+1, BASE+5)
    expect(refused(x64.prepareOptimized(into.read, into.fn, BASE)).reason).toMatch(/inside the 5 bytes/);
    const toProbe = withJz(0);
    expect(isRefusal(x64.prepareOptimized(toProbe.read, toProbe.fn, BASE))).toBe(false);
    const past = withJz(8);
    expect(isRefusal(x64.prepareOptimized(past.read, past.fn, BASE))).toBe(false);
  });

  it('refuses a copied instruction that is not boostable (a call: -EINVAL)', () => {
    const { read, fn } = fnOf([0x55, 0xe8, 0, 0, 0, 0, ...PROLOGUE.slice(1)]); // push rbp; call +0; …
    const r = refused(x64.prepareOptimized(read, fn, BASE));
    expect(r.errno).toBe(22);
    expect(r.reason).toMatch(/not boostable/);
  });

  it('rebases a RIP-relative displacement against the body, and refuses a body it cannot reach from', () => {
    // mov rax, [rip+0x100]; ret; padding
    const { read, fn } = fnOf([0x48, 0x8b, 0x05, 0x00, 0x01, 0x00, 0x00, 0xc3, 0x90, 0x90]);
    const op = accepted(x64.prepareOptimized(read, fn, BASE));
    expect(op.size).toBe(7);
    const body = BASE + 0x200000n;
    const b = op.bodyBytes(body);
    // target = BASE + 7 + 0x100; from the body: body + 7 + disp
    expect(BigInt(new DataView(b.buffer).getInt32(3, true))).toBe(BASE + 7n + 0x100n - (body + 7n));
    expect(op.placementRefusal(BASE + 0x1000n, BASE - (1n << 32n))!.errno).toBe(34);
  });

  it('i386: the same rules, and every placement reaches (addresses wrap)', () => {
    const x32 = x86OptProbeArch(false);
    const base = 0xc1000000n;
    const { read, fn } = fnOf([0x55, 0x89, 0xe5, 0x83, 0xec, 0x10, 0xb8, 1, 0, 0, 0, 0xc9, 0xc3], base);
    const op = accepted(x32.prepareOptimized(read, fn, base));
    expect(op.size).toBe(6);
    expect(op.placementRefusal(0x100n, 0x200n)).toBeUndefined();
  });
});

describe('ppc64 can_optimize', () => {
  const ppc = ppcOptProbeArch(64);
  const words = (...ws: number[]) => {
    const b = new Uint8Array(ws.length * 4);
    ws.forEach((w, i) => new DataView(b.buffer).setUint32(i * 4, w >>> 0));
    return [...b];
  };
  const KBASE = 0xc000000000001000n;

  it('one word: mflr r0 and addi are emulated from registers; the body is the copy and `b` to the next word', () => {
    const { read, fn } = fnOf(words(0x7c0802a6, 0x38210010, 0x4e800020), KBASE); // mflr r0; addi r1,r1,16; blr
    const op = accepted(ppc.prepareOptimized(read, fn, KBASE));
    expect(op.size).toBe(4);
    const body = KBASE + 0x10000n;
    const b = new DataView(op.bodyBytes(body).buffer);
    expect(b.getUint32(0) >>> 0).toBe(0x7c0802a6);
    // b (op 18) from body+4 to KBASE+4
    const br = b.getUint32(4) >>> 0;
    expect(br >>> 26).toBe(18);
    expect(BigInt(((br & 0x03fffffc) << 6) >> 6)).toBe(KBASE + 4n - (body + 4n));
    expect(accepted(ppc.prepareOptimized(read, fn, KBASE + 4n)).size).toBe(4);
  });

  it('refuses conditional branches (blr is bclr with BO=20) and memory accesses (-EILSEQ)', () => {
    const { read, fn } = fnOf(words(0xf8010010, 0x4e800020, 0x4182000c, 0x7c0802a6), KBASE); // std r0,16(r1); blr; beq +12; mflr r0
    expect(refused(ppc.prepareOptimized(read, fn, KBASE)).reason).toMatch(/analyse_instr/);
    expect(refused(ppc.prepareOptimized(read, fn, KBASE + 4n)).reason).toMatch(/conditional branch/);
    expect(refused(ppc.prepareOptimized(read, fn, KBASE + 8n)).reason).toMatch(/conditional branch/);
  });

  it('an unconditional branch is emulated on the host; the detour must be within the 32 MiB of a b both ways (-ERANGE)', () => {
    const { read, fn } = fnOf(words(0x48000011, 0x60000000, 0x60000000, 0x60000000, 0x60000000), KBASE); // bl +16
    const op = accepted(ppc.prepareOptimized(read, fn, KBASE));
    expect(op.emulate).toBeDefined();
    expect(op.placementRefusal(KBASE + (1n << 25n) + 4n, KBASE)?.errno).toBe(34);
    const nop = accepted(ppc.prepareOptimized(read, fn, KBASE + 4n));
    expect(nop.emulate).toBeUndefined();
    expect(nop.placementRefusal(KBASE + 0x1000n, KBASE + (1n << 26n))?.errno).toBe(34); // the way back is out of reach
    expect(nop.placementRefusal(KBASE + 0x1000n, KBASE + 0x2000n)).toBeUndefined();
  });
});
