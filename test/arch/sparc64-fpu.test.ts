/**
 * sparc64's FPU, enabled by the host in QEMU's CPU state (arch/sparc/cpu-state.ts, cpu-traps.ts),
 * and the traps Linux services for it: fp_disabled (do_fpdis), the data-TLB miss of explicit-ASI
 * loads, getcontext (`ta 0x6e`).
 *
 * The guest programs are hand-encoded (SPARC V9 manual, A.24/A.25/A.26/A.33 formats) and their
 * results are checked against IEEE 754 binary64 as the host computes it (JavaScript numbers,
 * round-to-nearest-even: the FSR's reset rounding mode), and against the ucontext layout of
 * Linux's uapi asm/uctx.h. The static glibc fixtures (test/kernel/fixtures.test.ts) compare whole
 * programs with qemu-user byte for byte.
 */
import { describe, expect, it } from 'vitest';
import { Engine, UC_ARCH, UC_MODE, UC_PROT } from '../../src/emu/unicorn.js';
import { SparcCpuState, PSTATE_PEF, FPRS_FEF } from '../../arch/sparc/cpu-state.js';
import { encSetx, encTa } from '../../arch/sparc/isa.js';
import { UCONTEXT } from '../../arch/sparc/ucontext.js';
import type { MachineOptions } from '../../src/kernel/machine.js';
import { runProgram } from '../helpers.js';
import { words, writeTempElf } from './mini-elf.js';

const BASE = 0x100000n;
const DATA = 0x101000n; // inputs, inside the loaded image
const BSS = 0x104000n; // outputs

// --- hand encoders (format 3 and FPop) ---------------------------------------------------------
const f3 = (op: number, op3: number, rd: number, rs1: number, simm13: number): number =>
  ((op << 30) | (rd << 25) | (op3 << 19) | (rs1 << 14) | (1 << 13) | (simm13 & 0x1fff)) >>> 0;
const fpop1 = (opf: number, rd: number, rs1: number, rs2: number): number =>
  ((2 << 30) | (rd << 25) | (0x34 << 19) | (rs1 << 14) | (opf << 5) | rs2) >>> 0;
const lddf = (fd: number, rs1: number, off: number): number => f3(3, 0x23, fd, rs1, off);
const stdf = (fd: number, rs1: number, off: number): number => f3(3, 0x27, fd, rs1, off);
const stx = (r: number, rs1: number, off: number): number => f3(3, 0x0e, r, rs1, off);
const mov = (imm: number, r: number): number => f3(2, 0x02, r, 0, imm); // or %g0, imm, r
const fcmpd = (rs1: number, rs2: number): number => ((2 << 30) | (0x35 << 19) | (rs1 << 14) | (0x52 << 5) | rs2) >>> 0;
/** FBfcc (V8 form, %fcc0) with a displacement in words. */
const fb = (cond: number, disp: number): number => ((cond << 25) | (6 << 22) | (disp & 0x3fffff)) >>> 0;
const NOP = 0x01000000;
const [G1, G2, G3, O0, O1, O2, O3] = [1, 2, 3, 8, 9, 10, 11];
const TA_SYSCALL = encTa(0x6d);
const write = (buf: bigint, len: number): number[] => [mov(1, O0), ...encSetx(buf, O1, G1), mov(len, O2), mov(4, G1), TA_SYSCALL];
const exitGroup = [mov(0, O0), mov(188, G1), TA_SYSCALL];

function elf(name: string, code: number[], data: number[] = []): string {
  const image = new Uint8Array(0x2000);
  image.set(words(...code));
  const v = new DataView(image.buffer);
  data.forEach((x, k) => v.setFloat64(Number(DATA - BASE) + 8 * k, x));
  return writeTempElf(name, { machine: 43, base: BASE, image, memsz: 0x6000, entry: BASE, align: 0x2000 });
}

/** Run it; `out` is stdout as raw bytes (runProgram's own copy is decoded as UTF-8). */
function run(name: string, code: number[], data: number[] = [], opts: Partial<MachineOptions> = {}) {
  const chunks: Buffer[] = [];
  const r = runProgram('sparc64', elf(name, code, data), [], { ...opts, stdout: (b) => chunks.push(Buffer.from(b)) });
  return { ...r, out: Buffer.concat(chunks) };
}

const be64 = (x: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(x);
  return b;
};
const beU64 = (x: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, x));
  return b;
};

describe('sparc64 FPU through the CPU state', () => {
  it('the CPU state is found on a bare engine, and PEF + FEF let the CPU run FP instructions itself', () => {
    const e = new Engine(UC_ARCH.SPARC, UC_MODE.SPARC64 | UC_MODE.BIG_ENDIAN);
    try {
      e.memMap(0x10000n, 0x2000, UC_PROT.ALL);
      e.memWrite(0x10000n, words(0x87802082, 0x8d802004)); // wr %g0,0x82,%asi ; wr %g0,FEF,%fprs
      const st = SparcCpuState.locate(e, () => void e.start(0x10000n, 0n, 2));
      if (typeof st === 'string') throw new Error(st);
      expect(st.pstate & PSTATE_PEF).toBe(PSTATE_PEF);
      expect(st.fprs).toBe(0n); // Linux: off until the first FP instruction
      // %d0 = 1.5 written by the host; the CPU adds it to itself into %d2 once FEF is on.
      const fp = [FPRS_FEF, 0n, 0n, 0x82n, ...Array.from({ length: 32 }, () => 0n)];
      fp[4] = be64(1.5).readBigUInt64BE(0);
      st.restoreFp(fp);
      e.memWrite(0x10000n, words(fpop1(0x42, 2, 0, 0), NOP)); // faddd %f0,%f0,%f2
      const traps: number[] = [];
      e.hookIntr((n) => {
        traps.push(n);
        e.stop();
      });
      e.start(0x10000n, 0n, 1);
      expect(traps).toEqual([]);
      const after = st.saveFp();
      expect(after[4 + 1]).toBe(be64(3.0).readBigUInt64BE(0));
      expect(after[3]).toBe(0x82n); // %asi
      expect(after[0]! & FPRS_FEF).toBe(FPRS_FEF);
    } finally {
      e.close();
    }
  });

  const a = 12345.678;
  const b = 0.1;
  const arith = [
    ...encSetx(DATA, G2, G1),
    ...encSetx(BSS, G3, G1),
    lddf(0, G2, 0),
    lddf(2, G2, 8),
    fpop1(0x42, 4, 0, 2), stdf(4, G3, 0), // faddd
    fpop1(0x46, 4, 0, 2), stdf(4, G3, 8), // fsubd
    fpop1(0x4a, 4, 0, 2), stdf(4, G3, 16), // fmuld
    fpop1(0x4e, 4, 0, 2), stdf(4, G3, 24), // fdivd
    fpop1(0x2a, 4, 0, 0), stdf(4, G3, 32), // fsqrtd %f0
    fpop1(0x82, 4, 0, 0), stdf(4, G3, 40), // fdtox %f0: truncated to an integer
    mov(2, O3),
    fcmpd(2, 0), // %fcc0 = compare(b, a)
    fb(4, 3), // fbl: b < a → over the delay slot and the `mov 1`
    NOP,
    mov(1, O3),
    stx(O3, G3, 48),
    ...write(BSS, 56),
    ...exitGroup,
  ];
  const expected = Buffer.concat([be64(a + b), be64(a - b), be64(a * b), be64(a / b), be64(Math.sqrt(a)), beU64(BigInt(Math.trunc(a))), beU64(2n)]);

  it('IEEE double arithmetic, conversion and an FP branch give the host IEEE results', () => {
    const r = run('fparith', arith, [a, b]);
    expect(r.reports).toEqual([]);
    expect(r.out.toString('hex')).toBe(expected.toString('hex'));
    expect(r.status).toBe(0);
  });

  it('the same with runs stopping every 1–3 instructions (the FPU state survives every restart)', () => {
    for (const q of [1, 2, 3]) {
      const r = run('fparith-q', arith, [a, b], { quantum: q, seed: q });
      expect(r.out.toString('hex')).toBe(expected.toString('hex'));
    }
  });

  it('fork copies the FP registers and the enabled FPU into the child (Linux copy_thread)', () => {
    // %d0 = a in the parent before fork; both processes then double it and print it.
    const prog = [
      ...encSetx(DATA, G2, G1),
      lddf(0, G2, 0),
      mov(2, G1), TA_SYSCALL, // fork
      ...encSetx(BSS, G3, G1),
      fpop1(0x42, 4, 0, 0),
      stdf(4, G3, 0),
      ...write(BSS, 8),
      ...exitGroup,
    ];
    const r = run('fpfork', prog, [a]);
    expect(r.reports).toEqual([]);
    expect(r.out.toString('hex')).toBe(Buffer.concat([be64(2 * a), be64(2 * a)]).toString('hex'));
  });
});

describe('sparc64 getcontext (ta 0x6e from user code)', () => {
  it("stores the registers where Linux's struct ucontext has them, and continues after the trap", () => {
    const prog = [
      ...encSetx(BSS, O0, G1),
      mov(0x123, 4), // %g4
      mov(0x55, 13), // %o5
      encTa(0x6e),
      ...write(BSS, 192),
      ...exitGroup,
    ];
    const taAt = BASE + BigInt(4 * (prog.indexOf(encTa(0x6e))));
    const r = run('getctx', prog);
    expect(r.reports).toEqual([]);
    const out = r.out;
    expect(out.length).toBe(192);
    const greg = (k: number): bigint => out.readBigUInt64BE(UCONTEXT.gregs + 8 * k);
    expect(out.readBigUInt64BE(UCONTEXT.sigmask)).toBe(0n);
    expect(greg(1)).toBe(taAt + 4n); // MC_PC: after the trap
    expect(greg(2)).toBe(taAt + 8n); // MC_NPC
    expect(greg(4 + 3)).toBe(0x123n); // %g4
    expect(greg(11)).toBe(BSS); // %o0
    expect(greg(11 + 5)).toBe(0x55n); // %o5
    expect(greg(11 + 6)).toBeGreaterThan(0n); // %o6 = %sp
  });
});
