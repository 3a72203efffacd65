/**
 * sparc64's setcontext trap (`ta 0x6f`, arch/sparc/setcontext.ts) and getcontext's mask, against
 * what Linux's sparc64_set_context/sparc64_get_context (arch/sparc/kernel/signal_64.c) do with
 * the uapi asm/uctx.h layout: a hand-encoded program fills a ucontext with getcontext, overwrites
 * its fields with known values, setcontexts into it and writes out what it lands with.
 * Signal numbers are sparc's (uapi asm/signal.h: SIGKILL 9, SIGUSR1 30, SIGUSR2 31); sparc's
 * rt_sigprocmask is system call 103 with SIG_BLOCK 1 and SIG_SETMASK 4.
 */
import { describe, expect, it } from 'vitest';
import { encSetx, encTa } from '../../arch/sparc/isa.js';
import { runProgram } from '../helpers.js';
import { words, writeTempElf } from './mini-elf.js';

const BASE = 0x100000n;
const DATA = 0x101000n; // values the program copies into the ucontext
const UC = 0x104000n; // the ucontext (bss)
const OUT = 0x105000n; // what the program writes out

const f3 = (op: number, op3: number, rd: number, rs1: number, simm13: number): number =>
  ((op << 30) | (rd << 25) | (op3 << 19) | (rs1 << 14) | (1 << 13) | (simm13 & 0x1fff)) >>> 0;
const stx = (r: number, rs1: number, off: number): number => f3(3, 0x0e, r, rs1, off);
const ldx = (r: number, rs1: number, off: number): number => f3(3, 0x0b, r, rs1, off);
const mov = (imm: number, r: number): number => f3(2, 0x02, r, 0, imm);
/** rd %asr: rs1 0 %y, 2 %ccr, 3 %asi. */
const rdasr = (asr: number, r: number): number => ((2 << 30) | (r << 25) | (0x28 << 19) | (asr << 14)) >>> 0;
const [G1, G2, G7, O0, O1, O2, O3, O7, L0, I6, I7] = [1, 2, 7, 8, 9, 10, 11, 15, 16, 30, 31];
const SYSCALL = encTa(0x6d);
const GETCONTEXT = encTa(0x6e);
const SETCONTEXT = encTa(0x6f);
const bit = (sig: number): bigint => 1n << BigInt(sig - 1);
const [SIGKILL, SIGUSR1, SIGUSR2] = [9, 30, 31];

/** uapi uctx.h: uc_sigmask at 16, mc_gregs at 32 (the mcontext is 16-aligned), mc_fp/mc_i7 after them. */
const SIGMASK = 16;
const greg = (k: number): number => 32 + 8 * k;
const MC_FP = greg(19);
const MC_I7 = greg(20);

interface Ctx {
  tstate: bigint;
  y: bigint;
  g: bigint[]; // %g1..%g7 as stored in the ucontext
  o: bigint[]; // %o0..%o5, %o7 (%o6 keeps getcontext's %sp)
  sigmask: bigint;
  fp: bigint;
  i7: bigint;
}

const CTX: Ctx = {
  tstate: (0x95n << 32n) | (0x80n << 24n) | 0x1602n, // CCR 0x95, ASI 0x80; the PSTATE bits are not the user's to set
  y: 0x1234_5678n,
  g: [1, 2, 3, 4, 5, 6, 7].map((k) => 0xa000_0000_0000_0000n + BigInt(k)),
  o: [0, 1, 2, 3, 4, 5, 7].map((k) => 0xb000_0000_0000_0000n + BigInt(k)),
  sigmask: bit(SIGUSR1) | bit(SIGKILL),
  fp: 0xc000_0000_0000_00f0n,
  i7: 0xc000_0000_0000_0017n,
};

/**
 * Block SIGUSR2, getcontext into UC, copy CTX's fields over it (pc/npc = the landing point),
 * then `ta 0x6f` with %o0 = `ucp` and %o1 = `setmask`. Landing: the registers, %y, %ccr, %asi,
 * %i6/%i7 and the blocked mask go to OUT; getcontext's stored mask is OUT + 160.
 */
function program(ucp: bigint, setmask: number, pcOverride?: bigint): { code: number[]; data: bigint[] } {
  const data: bigint[] = [bit(SIGUSR2), CTX.tstate, 0n, 0n, CTX.y, ...CTX.g, ...CTX.o, CTX.sigmask, CTX.fp, CTX.i7];
  const D = { set: 0, tstate: 8, pc: 16, npc: 24, y: 32, g: 40, o: 40 + 56, sigmask: 40 + 112, fp: 40 + 120, i7: 40 + 128 };
  const head = (landing: bigint): number[] => {
    data[2] = pcOverride ?? landing;
    data[3] = (pcOverride ?? landing) + 4n;
    const copy = (from: number, to: number): number[] => [ldx(G2, O1, from), stx(G2, O0, to)];
    return [
      ...encSetx(OUT, G7, G1),
      // rt_sigprocmask(SIG_SETMASK, {SIGUSR2}, NULL, 8)
      mov(4, O0), ...encSetx(DATA, O1, G1), mov(0, O2), mov(8, O3), mov(103, G1), SYSCALL,
      ...encSetx(UC, O0, G1),
      GETCONTEXT,
      ldx(G2, O0, SIGMASK), stx(G2, G7, 160),
      ...encSetx(DATA, O1, G1),
      ...copy(D.tstate, greg(0)), ...copy(D.pc, greg(1)), ...copy(D.npc, greg(2)), ...copy(D.y, greg(3)),
      ...[0, 1, 2, 3, 4, 5, 6].flatMap((k) => copy(D.g + 8 * k, greg(4 + k))),
      ...[0, 1, 2, 3, 4, 5].flatMap((k) => copy(D.o + 8 * k, greg(11 + k))),
      ...copy(D.o + 48, greg(18)),
      ...copy(D.sigmask, SIGMASK), ...copy(D.fp, MC_FP), ...copy(D.i7, MC_I7),
      ...encSetx(ucp, O0, G1),
      mov(setmask, O1),
      SETCONTEXT,
      ...encSetx(0x7a11n, O0, G1), mov(1, G1), SYSCALL, // not reached: exit(0x11)
    ];
  };
  const tail = [
    ...[1, 2, 3, 4, 5, 6].map((k) => stx(k, G7, 8 * (k - 1))),
    ...[0, 1, 2, 3, 4, 5].map((k) => stx(O0 + k, G7, 48 + 8 * k)),
    stx(O7, G7, 96), stx(I6, G7, 104), stx(I7, G7, 112),
    rdasr(0, L0), stx(L0, G7, 120), rdasr(2, L0), stx(L0, G7, 128), rdasr(3, L0), stx(L0, G7, 136), stx(G7, G7, 144),
    // rt_sigprocmask(SIG_BLOCK, NULL, OUT + 152, 8)
    mov(1, O0), mov(0, O1), ...encSetx(OUT + 152n, O2, G1), mov(8, O3), mov(103, G1), SYSCALL,
    // write(1, OUT, 168); exit_group(0)
    mov(1, O0), ...encSetx(OUT, O1, G1), mov(168, O2), mov(4, G1), SYSCALL,
    mov(0, O0), mov(188, G1), SYSCALL,
  ];
  const n = head(0n).length;
  return { code: [...head(BASE + BigInt(4 * n)), ...tail], data };
}

function run(name: string, ucp: bigint, setmask: number, pcOverride?: bigint) {
  const { code, data } = program(ucp, setmask, pcOverride);
  const image = new Uint8Array(0x2000);
  image.set(words(...code));
  const v = new DataView(image.buffer);
  data.forEach((x, k) => v.setBigUint64(Number(DATA - BASE) + 8 * k, BigInt.asUintN(64, x)));
  const path = writeTempElf(name, { machine: 43, base: BASE, image, memsz: 0x6000, entry: BASE, align: 0x2000 });
  const chunks: Buffer[] = [];
  const r = runProgram('sparc64', path, [], { stdout: (b) => chunks.push(Buffer.from(b)) });
  return { ...r, out: Buffer.concat(chunks) };
}

describe('sparc64 setcontext (ta 0x6f from user code)', () => {
  it('restores pc/npc, %g1–%g6 (not %g7), %o0–%o7, %y, CCR and ASI, %fp/%i7 through the save area, and the mask', () => {
    const r = run('setctx', UC, 1);
    expect(r.reports).toEqual([]);
    const out = r.out;
    expect(out.length).toBe(168);
    const q = (off: number): bigint => out.readBigUInt64BE(off);
    // getcontext stored the blocked mask (SIGUSR2), one word in sparc numbering.
    expect(q(160)).toBe(bit(SIGUSR2));
    for (let k = 0; k < 6; k++) expect(q(8 * k)).toBe(CTX.g[k]);
    for (let k = 0; k < 6; k++) expect(q(48 + 8 * k)).toBe(CTX.o[k]);
    expect(q(96)).toBe(CTX.o[6]); // %o7
    expect(q(104)).toBe(CTX.fp); // %i6 from mc_fp
    expect(q(112)).toBe(CTX.i7); // %i7 from mc_i7
    expect(q(120) & 0xffff_ffffn).toBe(CTX.y);
    expect(q(128) & 0xffn).toBe(0x95n); // %ccr
    expect(q(136) & 0xffn).toBe(0x80n); // %asi
    expect(q(144)).toBe(OUT); // %g7 is the thread pointer: Linux leaves it
    // %o1 != 0: the mask is uc_sigmask, without SIGKILL (set_current_blocked).
    expect(q(152)).toBe(bit(SIGUSR1));
  });

  it('leaves the mask alone when %o1 is 0', () => {
    const r = run('setctx-nomask', UC, 0);
    expect(r.reports).toEqual([]);
    expect(r.out.readBigUInt64BE(152)).toBe(bit(SIGUSR2));
    expect(r.out.readBigUInt64BE(0)).toBe(CTX.g[0]);
  });

  it.each([
    ['an unmapped ucontext', 0x10n, undefined],
    ['a misaligned ucontext', UC + 4n, undefined],
    ['a kernel-space ucontext', 0xffff_f800_0000_0000n, undefined],
    ['a misaligned pc', UC, BASE + 2n],
  ])('is SIGSEGV for %s, as force_sig in sparc64_set_context', (_, ucp, pc) => {
    const r = run('setctx-bad', ucp, 1, pc);
    expect(r.out.length).toBe(0);
    expect(r.signal).toBe(11);
    expect(r.reports.join('\n')).toMatch(/SIGSEGV.*setcontext/);
  });
});
