/**
 * ppc64 back-end: the MSR[HV] fix-up found by marker, ELFv1 and ELFv2 process entry, the cache
 * block size the auxv reports, and the kernel-alias mapping.
 *
 * Expected values are derived independently: the entry programs below were run under
 * `qemu-ppc64` (qemu 7.2), which printed exactly the bytes asserted here; instruction words are
 * hand-encoded and were checked with `powerpc64-linux-gnu-as -a64 -mbig`.
 */
import { describe, expect, it } from 'vitest';
import { Engine, UC_ARCH, UC_MODE, UC_PROT } from '../../src/emu/unicorn.js';
import { UC_PPC_REG as R } from '../../arch/ppc/ucregs.js';
import { MSR_HV, MSR_SF, PPC64_CACHE_BLOCK, enableHypervisorMode, locateMsrInContext, ppc64 } from '../../arch/ppc/ppc64.js';
import { runProgram } from '../helpers.js';
import { words, writeTempElf } from './mini-elf.js';

const LI_R3_5 = 0x38600005; // li r3,5
const SC = 0x44000002; // sc
const DCBZ_0_R4 = 0x7c0027ec; // dcbz 0,r4

function newEngine(): Engine {
  return new Engine(UC_ARCH.PPC, UC_MODE.PPC64 | UC_MODE.BIG_ENDIAN);
}

/** Run `code` at 0x10000000 until the first exception; returns its intno and the PC then. */
function runUntilTrap(e: Engine, code: number[]): { intno: number; pc: bigint } {
  e.memMap(0x10000000n, 0x1000, UC_PROT.ALL);
  e.memWrite(0x10000000n, words(...code));
  let seen = { intno: -1, pc: 0n };
  const h = e.hookIntr((intno) => {
    seen = { intno, pc: e.regRead(R.PC) };
    e.stop();
  });
  e.start(0x10000000n, 0n, 100);
  e.hookDel(h);
  return seen;
}

describe('ppc64 MSR[HV] through the context blob', () => {
  it('without the fix-up the first fetch raises intno 70 (the quirk this works around)', () => {
    const e = newEngine();
    try {
      expect(e.regRead(R.MSR) & MSR_HV).toBe(0n);
      expect(runUntilTrap(e, [LI_R3_5, SC]).intno).toBe(70);
    } finally {
      e.close();
    }
  });

  it('finds the MSR by its marker exactly once, sets HV, and the CPU then runs', () => {
    const e = newEngine();
    try {
      const off = enableHypervisorMode(e, e.regRead(R.MSR) | MSR_SF);
      expect(off).toBeGreaterThanOrEqual(16); // past uc_context's 16-byte header
      const msr = e.regRead(R.MSR);
      expect(msr & MSR_HV).toBe(MSR_HV);
      expect(msr & MSR_SF).toBe(MSR_SF);
      // li r3,5; sc → the system-call exception (8) with the PC after the sc, r3 = 5.
      expect(runUntilTrap(e, [LI_R3_5, SC])).toEqual({ intno: 8, pc: 0x10000008n });
      expect(e.regRead(R.R3)).toBe(5n);
    } finally {
      e.close();
    }
  });

  it('refuses with a clear error when the marker is missing or ambiguous', () => {
    const marker = 0x800000010280ff37n;
    const blob = new Uint8Array(64);
    expect(() => locateMsrInContext(blob, marker)).toThrow(/occurs 0 times in Unicorn's 64-byte CPU context/);
    const v = new DataView(blob.buffer);
    v.setBigUint64(16, marker, true);
    expect(locateMsrInContext(blob, marker)).toBe(16);
    v.setBigUint64(40, marker, true);
    expect(() => locateMsrInContext(blob, marker)).toThrow(/occurs 2 times/);
  });

  it('dcbz clears the block size the auxv announces (glibc memset relies on it)', () => {
    const e = newEngine();
    try {
      enableHypervisorMode(e, e.regRead(R.MSR) | MSR_SF);
      e.memMap(0x20000000n, 0x1000, UC_PROT.ALL);
      e.memWrite(0x20000000n, new Uint8Array(0x1000).fill(0xff));
      e.regWrite(R.R4, 0x20000100n);
      runUntilTrap(e, [DCBZ_0_R4, SC]);
      const after = e.memRead(0x20000000n, 0x1000);
      const zeroed = after.filter((b) => b === 0).length;
      expect(zeroed).toBe(Number(PPC64_CACHE_BLOCK));
      expect(after.indexOf(0)).toBe(0x100);
      expect(ppc64.auxv().extra).toContainEqual([19, PPC64_CACHE_BLOCK]); // AT_DCACHEBSIZE
    } finally {
      e.close();
    }
  });
});

describe('ppc64 process entry', () => {
  // At the entry: store r2, r12 and the word at 0(r1) (argc) at 0x10000300, write those 24 bytes
  // to stdout, exit_group(0).
  const probe = [
    0x3c801000, // lis   r4,0x1000
    0xf8440300, // std   r2,0x300(r4)
    0xf9840308, // std   r12,0x308(r4)
    0xe8c10000, // ld    r6,0(r1)
    0xf8c40310, // std   r6,0x310(r4)
    0x38000004, // li    r0,4        (write)
    0x38600001, // li    r3,1
    0x38840300, // addi  r4,r4,0x300
    0x38a00018, // li    r5,24
    SC,
    0x380000ea, // li    r0,234      (exit_group)
    0x38600000, // li    r3,0
    SC,
  ];
  const image = (): Uint8Array => {
    const img = new Uint8Array(0x400);
    img.set(words(...probe), 0x100);
    const v = new DataView(img.buffer);
    v.setBigUint64(0x200, 0x10000100n); // .opd-style descriptor {entry, TOC, env}
    v.setBigUint64(0x208, 0x123456780a0b0c0dn);
    return img;
  };
  const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

  it('ELFv1: PC and r2 come from the descriptor e_entry points at (r12 stays 0)', () => {
    const path = writeTempElf('v1', { machine: 21, flags: 1, base: 0x10000000n, image: image(), entry: 0x10000200n });
    const r = runProgram('ppc64', path, ['a', 'b']);
    expect(r.reports).toEqual([]);
    expect(r.status).toBe(0);
    // qemu-ppc64 printed: 123456780a0b0c0d 0000000000000000 0000000000000003
    expect(hex(r.stdout)).toBe('123456780a0b0c0d' + '0000000000000000' + '0000000000000003');
  });

  it('ELFv2: PC = e_entry, r12 = e_entry (global entry point), r2 left 0', () => {
    const path = writeTempElf('v2', { machine: 21, flags: 2, base: 0x10000000n, image: image(), entry: 0x10000100n });
    const r = runProgram('ppc64', path, ['a', 'b']);
    expect(r.reports).toEqual([]);
    expect(r.status).toBe(0);
    // qemu-ppc64 printed: 0000000000000000 0000000010000100 0000000000000003
    expect(hex(r.stdout)).toBe('0000000000000000' + '0000000010000100' + '0000000000000003');
  });
});

describe('ppc64 kernel alias', () => {
  it('maps kernel addresses at their 60-bit real address, user ones stay put', () => {
    expect(ppc64.addressAlias!(0xc000000000001000n)).toBe(0x1000n);
    expect(ppc64.addressAlias!(ppc64.layout.kernelStackArena)).toBe(ppc64.layout.taskSize);
    expect(ppc64.addressAlias!(0x10000000n)).toBeUndefined();
  });
});
