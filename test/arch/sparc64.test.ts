/**
 * sparc64 back-end: the register windows (the CPU's, served on overflow/underflow), delay slots without an NPC register, the
 * system-call convention, condition codes across thread switches, and the
 * instruction fields the back-end decodes and encodes.
 *
 * The guest programs (sources and words in sparc64-programs.ts) were assembled with GNU as and
 * their expected output recorded under qemu-sparc64; several also run with tiny scheduler quanta,
 * so that runs stop (and restart) inside delay slots over and over.
 */
import { describe, expect, it } from 'vitest';
import { Engine, UC_ARCH, UC_MODE, UC_PROT } from '../../src/emu/unicorn.js';
import { UC_SPARC_REG as R } from '../../arch/sparc/ucregs.js';
import { sparc64 } from '../../arch/sparc/sparc64.js';
import {
  branchDisp,
  callTarget,
  encJmplImm,
  encJmplReg,
  encRdCcr,
  encRdY,
  encSetx,
  encTa,
  encWrCcr,
  encWrY,
  isDcti,
  retargetBranch,
} from '../../arch/sparc/isa.js';
import { sparcErrno } from '../../arch/sparc/errno.js';
import type { MachineOptions } from '../../src/kernel/machine.js';
import { runProgram } from '../helpers.js';
import { words, writeTempElf } from './mini-elf.js';
import * as P from './sparc64-programs.js';

/** Link-time layout of the programs: text at 0x100000, .bss at 0x104000 (up to 0x106000). */
function elfOf(name: string, prog: number[]): string {
  const image = new Uint8Array(0x4000);
  image.set(words(...prog));
  return writeTempElf(name, { machine: 43, base: 0x100000n, image, memsz: 0x6000, entry: 0x100000n, align: 0x2000 });
}

function run(name: string, prog: P.SparcProgram, opts: Partial<MachineOptions> = {}): { hex: string; text: string; status: number; reports: string[] } {
  const r = runProgram('sparc64', elfOf(name, prog.words), [], opts);
  return { hex: Buffer.from(r.stdout, 'latin1').toString('hex'), text: r.stdout, status: r.status, reports: r.reports };
}

/** Scheduler settings that stop runs every 1–3 instructions (in delay slots among others). */
const TINY_QUANTA: Array<Partial<MachineOptions>> = [
  { quantum: 1, seed: 1 },
  { quantum: 2, seed: 2 },
  { quantum: 3, seed: 3 },
  { quantum: 5, seed: 4 },
];

const word = (n: number): string => n.toString(16).padStart(16, '0');

describe('sparc64 register windows (spill and fill as on Linux/qemu)', () => {
  it('recursion deeper than the 8 windows (spills and fills through the stack)', () => {
    for (const opts of [{}, ...TINY_QUANTA]) {
      expect(run('rec', P.recursion, opts)).toMatchObject({ status: 210, reports: [] });
    }
  });

  it('an overflowing save spills the oldest window to its %sp + 2047, as on Linux/qemu (no flushw)', () => {
    const expected = Array.from({ length: 21 }, (_, n) => word(n < 7 ? 0 : n)).join('');
    for (const opts of [{}, ...TINY_QUANTA]) {
      expect(run('spill', P.overflowSpills, opts)).toEqual({ hex: expected, text: expect.any(String), status: 210, reports: [] });
    }
  });

  const flushed = word(0) + [0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66].map(word).join('');

  it('flushw writes every resident window to its save area (and not before)', () => {
    expect(run('flushw', P.flushw)).toMatchObject({ hex: flushed, status: 0, reports: [] });
  });

  it('ta 3 (ST_FLUSH_WINDOWS) flushes like flushw', () => {
    expect(run('ta3', P.ta3)).toMatchObject({ hex: flushed, status: 0, reports: [] });
  });
});

describe('sparc64 delay slots without an NPC register', () => {
  it('traps taken in delay slots resume at the pending branch target', () => {
    for (const opts of [{}, ...TINY_QUANTA]) {
      expect(run('delay', P.delaySlots, opts)).toMatchObject({ text: 'ABCDEFGHI', status: 7, reports: [] });
    }
  });

  it('return with a delay instruction, rd %pc, save under a conditional branch, call+restore', () => {
    for (const opts of [{}, ...TINY_QUANTA]) {
      expect(run('delay2', P.delaySlots2, opts)).toMatchObject({ text: 'abcde', status: 5, reports: [] });
    }
  });
});

describe('sparc64 system calls and threads', () => {
  it('errors set the carry and use Linux/sparc errno numbers (ENOSYS = 90)', () => {
    expect(run('errno', P.enosys)).toMatchObject({ status: 90, reports: [] });
    expect(sparc64.userErrno(38)).toBe(90); // ENOSYS
    expect(sparc64.userErrno(11)).toBe(11); // EAGAIN: the same below 35
    expect(sparcErrno(95)).toBe(45); // EOPNOTSUPP
  });

  it('condition codes survive switches between threads of one address space', () => {
    for (const opts of [{}, ...TINY_QUANTA]) {
      expect(run('thread', P.threadCcr, { ...opts, maxInsns: 5e6 })).toMatchObject({ status: 232, reports: [] });
    }
  });
});

describe('sparc64 instruction fields (checked against GNU as)', () => {
  it('decodes branch and call displacements', () => {
    expect(branchDisp(0x326ffff6)).toBe(-40n); // bne,a,pt %xcc, .-40
    expect(branchDisp(0x12680004)).toBe(16n); // bne,pt %xcc, .+16
    expect(branchDisp(0x32800064)).toBe(400n); // bne,a .+400
    expect(branchDisp(0x2af23ffe)).toBe(-8n); // brnz,a,pn %o0, .-8
    expect(callTarget(0x18n, 0x40000400)).toBe(0x1018n); // call .+0x1000
    expect(callTarget(0x1cn, 0x7ffffc00)).toBe(BigInt.asUintN(64, 0x1cn - 0x1000n)); // call .-0x1000
    for (const w of [0x326ffff6, 0x40000400, 0x81c7e008, 0x9fc04002, 0x81cfe008]) expect(isDcti(w)).toBe(true);
    for (const w of [0x91d0207e, 0x9de3bf50, 0x81e80000, 0x01000000]) expect(isDcti(w)).toBe(false);
  });

  it('retargets branches (annul cleared) and encodes the stub instructions', () => {
    expect(retargetBranch(0x326ffff6, 16)).toBe(0x12680004); // → bne,pt %xcc, .+16
    expect(retargetBranch(0x32800064, 16)).toBe(0x12800004); // → bne .+16
    expect(retargetBranch(0x2af23ffe, 16)).toBe(0x0ac20004); // → brnz,pn %o0, .+16
    expect(encTa(0x7e)).toBe(0x91d0207e);
    expect(encRdCcr(7)).toBe(0x8f408000); // rd %ccr, %g7
    expect(encWrCcr(1)).toBe(0x85806000); // wr %g1, 0, %ccr
    expect(encRdY(2)).toBe(0x85400000); // rd %y, %g2
    expect(encWrY(2)).toBe(0x8180a000); // wr %g2, 0, %y
    expect(encJmplImm(15, 8, 0)).toBe(0x81c3e008); // retl
    expect(encJmplReg(9, 10, 0)).toBe(0x81c2400a); // jmp %o1 + %o2
  });

  it('encSetx loads any 64-bit constant (run on the CPU)', () => {
    const e = new Engine(UC_ARCH.SPARC, UC_MODE.SPARC64 | UC_MODE.BIG_ENDIAN);
    try {
      e.memMap(0x100000n, 0x2000, UC_PROT.ALL);
      for (const v of [0xfffff80000000040n, 0x0000018000000040n, 0x123456789abcdef0n, 0n, 0xffffffffffffffffn]) {
        const code = encSetx(v, 1, 2);
        e.memWrite(0x100000n, words(...code));
        e.flushTranslations(0x100000n, 0x102000n); // the same address, new code
        e.start(0x100000n, 0n, code.length);
        expect(e.regRead(R.G1)).toBe(v);
      }
    } finally {
      e.close();
    }
  });
});
