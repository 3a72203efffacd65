/**
 * Interrupt hooks that move the PC in the CPU state itself (Engine.keepPcAt, native/trap-hook.c):
 * where the arch knows QEMU's PC field, the trampoline writes the PC there instead of through
 * `uc_reg_write_batch`, which would restart Unicorn's CPU loop. The reference is Unicorn's own
 * write (`UNIPROBE_DIRECT_PC=0`): the guest must go exactly where it goes then, with sparc64's NPC
 * following the PC (Unicorn's write sets NPC = PC + 4; a stale NPC would run the skipped word next)
 * and i386's 32-bit EIP zero-extended into QEMU's 64-bit eip.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Engine, UC_ARCH, UC_MODE, UC_PROT } from '../../src/emu/unicorn.js';
import { sparc64 } from '../../arch/sparc/sparc64.js';
import { UC_SPARC_REG as S } from '../../arch/sparc/ucregs.js';
import { UC_X86_REG as X } from '../../arch/x86/ucregs.js';
import { attachX86CpuState } from '../../arch/x86/cpu-state.js';

const CODE = 0x100000n;

afterEach(() => {
  delete process.env.UNIPROBE_DIRECT_PC;
});

function be32(words: number[]): Uint8Array {
  const b = new Uint8Array(4 * words.length);
  const v = new DataView(b.buffer);
  words.forEach((w, i) => v.setUint32(4 * i, w >>> 0));
  return b;
}

/**
 * sparc64: `ta 0x70` moved past three `or`s to two `add`s, then `ta 0x71` stops. The hook sees
 * the trap at its `ta` and writes the PC through the trap register cache, as a probe hit does.
 */
function runSparc(): { g1: bigint; g2: bigint; pcs: bigint[] } {
  const e = new Engine(UC_ARCH.SPARC, UC_MODE.SPARC64 | UC_MODE.BIG_ENDIAN);
  try {
    sparc64.setupEngine(e, { mapPrivate: (a, size) => e.memMap(a, size, UC_PROT.ALL) });
    e.memMap(CODE, 0x2000, UC_PROT.ALL);
    // ta 0x70; or %g0,1,%g1; or %g0,2,%g1; or %g0,3,%g1; add %g2,1,%g2; add %g2,10,%g2; ta 0x71
    e.memWrite(CODE, be32([0x91d02070, 0x82102001, 0x82102002, 0x82102003, 0x8400a001, 0x8400a00a, 0x91d02071]));
    e.cacheTrapRegisters([{ id: S.PC, bits: 64, writeAlways: true }]);
    const pcs: bigint[] = [];
    e.hookIntr(() => {
      const pc = e.regRead(S.PC);
      pcs.push(pc);
      if (pc === CODE) e.regWrite(S.PC, CODE + 16n);
      else e.stop();
    });
    e.regWriteBatch([S.G1, S.G2], [0n, 0n]);
    e.start(CODE, CODE + 0x100n);
    const [g1, g2] = e.regReadBatch([S.G1, S.G2]);
    return { g1: g1!, g2: g2!, pcs };
  } finally {
    e.close();
  }
}

/** x86: int3 moved past `mov eax, 1` to `add eax, 2`, then a second int3 stops. */
function runX86(mode64: boolean): { eax: bigint; pcs: bigint[] } {
  const e = new Engine(UC_ARCH.X86, mode64 ? UC_MODE.MODE_64 : UC_MODE.MODE_32);
  const pcReg = mode64 ? X.RIP : X.EIP;
  try {
    attachX86CpuState(e, mode64);
    e.memMap(CODE, 0x1000, UC_PROT.ALL);
    // int3; mov eax, 1; add eax, 2; int3
    e.memWrite(CODE, Uint8Array.from([0xcc, 0xb8, 1, 0, 0, 0, 0x83, 0xc0, 0x02, 0xcc]));
    e.cacheTrapRegisters([{ id: pcReg, bits: mode64 ? 64 : 32 }]);
    const pcs: bigint[] = [];
    e.hookIntr(() => {
      const pc = e.regRead(pcReg);
      pcs.push(pc);
      if (pc === CODE + 1n) e.regWrite(pcReg, CODE + 6n);
      else e.stop();
    });
    const eaxReg = mode64 ? X.RAX : X.EAX;
    e.regWrite(eaxReg, 5n);
    e.start(CODE, CODE + 0x100n);
    return { eax: e.regRead(eaxReg), pcs };
  } finally {
    e.close();
  }
}

describe('interrupt hooks write the PC into the CPU state (Engine.keepPcAt)', () => {
  it('sparc64: the guest goes where Unicorn’s own PC write sends it, NPC included', () => {
    const direct = runSparc();
    process.env.UNIPROBE_DIRECT_PC = '0';
    const viaApi = runSparc();
    expect(viaApi).toEqual({ g1: 0n, g2: 11n, pcs: [CODE, CODE + 24n] });
    expect(direct).toEqual(viaApi);
  });

  it.each([true, false])('x86 (64-bit mode %s): the same path and registers as through the API', (mode64) => {
    const direct = runX86(mode64);
    process.env.UNIPROBE_DIRECT_PC = '0';
    const viaApi = runX86(mode64);
    expect(viaApi).toEqual({ eax: 7n, pcs: [CODE + 1n, CODE + 10n] });
    expect(direct).toEqual(viaApi);
  });
});
