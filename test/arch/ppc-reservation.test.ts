/**
 * ppc32/ppc64: the lwarx reservation does not survive the scheduler's return to a task
 * (arch/ppc/reservation.ts), as Linux's interrupt return clears it with a store-conditional.
 *
 * The reference is the Power ISA (Book II, "Load And Reserve and Store Conditional"): a stwcx.
 * without a reservation for its address stores nothing and leaves CR0.EQ clear; with one it
 * stores and sets CR0.EQ. Instruction words were checked with `powerpc64-linux-gnu-as -a64 -mbig`.
 * The scenario is the one glibc's mutex hit: task A's lwarx saw the lock free (0) and A was
 * preempted; task B's lwarx then read the same word, now held (2), and B went to sleep without a
 * stwcx.; A resumes and its stwcx. must fail rather than store 1 over a held lock.
 */
import { describe, expect, it } from 'vitest';
import { Engine, UC_ARCH, UC_MODE, UC_PROT } from '../../src/emu/unicorn.js';
import { UC_PPC_REG as R } from '../../arch/ppc/ucregs.js';
import { MSR_SF, enableHypervisorMode, ppc64 } from '../../arch/ppc/ppc64.js';
import { ppc32 } from '../../arch/ppc/ppc32.js';
import { SIGTRAMP_PPC32, SIGTRAMP_PPC64 } from '../../arch/ppc/sigtramp.js';
import { installDropReservation } from '../../arch/ppc/reservation.js';
import { words } from './mini-elf.js';

const LWARX_R5_0_R4 = 0x7ca02028; // lwarx r5,0,r4
const STWCX_R6_0_R4 = 0x7cc0212d; // stwcx. r6,0,r4
const CODE = 0x10000000n;
const LOCK = 0x10001000n;
/** CR0 as Unicorn gives it: LT GT EQ SO, EQ = 2. */
const CR0_EQ = 2n;

const targets = [
  {
    name: 'ppc32',
    arch: ppc32,
    page: SIGTRAMP_PPC32,
    open: () => new Engine(UC_ARCH.PPC, UC_MODE.PPC32 | UC_MODE.BIG_ENDIAN),
  },
  {
    name: 'ppc64',
    arch: ppc64,
    page: SIGTRAMP_PPC64,
    open: () => {
      const e = new Engine(UC_ARCH.PPC, UC_MODE.PPC64 | UC_MODE.BIG_ENDIAN);
      enableHypervisorMode(e, e.regRead(R.MSR) | MSR_SF);
      return e;
    },
  },
] as const;

function lockWord(e: Engine): number {
  return new DataView(e.memRead(LOCK, 4).buffer).getUint32(0);
}

/** A's lwarx (lock free), B's lwarx (lock held), then A's stwcx. — with or without the return hook between. */
function scenario(t: (typeof targets)[number], dropBetween: boolean): { stored: boolean; word: number } {
  const e = t.open();
  try {
    e.memMap(t.page, 0x1000, UC_PROT.READ | UC_PROT.EXEC);
    installDropReservation(e, t.page);
    e.memMap(CODE, 0x2000, UC_PROT.ALL);
    e.memWrite(CODE, words(LWARX_R5_0_R4, STWCX_R6_0_R4));
    e.regWriteBatch([R.R4, R.R6], [LOCK, 1n]);
    e.memWrite(LOCK, words(0));
    expect(e.start(CODE, 0n, 1).err).toBe(0); // A: lwarx sees 0
    e.memWrite(LOCK, words(2)); // the lock is taken meanwhile (by a plain store: no reservation change)
    expect(e.start(CODE, 0n, 1).err).toBe(0); // B: lwarx of the held word (2), no stwcx.
    if (dropBetween) {
      e.regWriteBatch([R.R3, R.PC], [0x1234n, CODE + 4n]);
      t.arch.interruptReturn!(e);
      // The registers the stub used come back as they were.
      expect(e.regReadBatch([R.R3, R.PC])).toEqual([0x1234n, CODE + 4n]);
    }
    e.regWrite(R.CR0, 0n);
    expect(e.start(CODE + 4n, 0n, 1).err).toBe(0); // A: stwcx. r6 (1)
    return { stored: (e.regRead(R.CR0) & CR0_EQ) !== 0n, word: lockWord(e) };
  } finally {
    e.close();
  }
}

describe.each(targets)('the lwarx reservation at a return to a task ($name)', (t) => {
  it('a reservation left by other code lets a stwcx. store over a held lock (what the hook prevents)', () => {
    // Unicorn keeps one reservation per CPU (address and loaded value): without the hook A's
    // stwcx. completes on B's reservation.
    expect(scenario(t, false)).toEqual({ stored: true, word: 1 });
  });

  it('after interruptReturn the stwcx. fails and the held lock keeps its value', () => {
    expect(scenario(t, true)).toEqual({ stored: false, word: 2 });
  });
});
