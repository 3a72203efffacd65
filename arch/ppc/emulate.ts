/**
 * Instructions Linux's powerpc program-check handler emulates for user code
 * (arch/powerpc/kernel/traps.c, emulate_instruction): the ones the engine meets now that user
 * code runs with MSR[PR] set. `mfpvr` (mfspr rD, PVR) is privileged on the CPU, yet Linux gives
 * user space the processor version, and glibc's ppc32 start-up reads it.
 */
import { Engine, UC_PROT } from '../../src/emu/unicorn.js';
import { UC_PPC_REG as R } from './ucregs.js';

/** mfspr rD, 287 (PVR), rD in bits 21–25. */
const MFPVR_MASK = 0xfc1fffff;
const MFPVR = 0x7c1f42a6;

const pvrs = new Map<string, bigint | null>();

/**
 * The PVR of the CPU model Unicorn runs for (arch, mode): read once per process by a throwaway
 * engine running `mfpvr r3` in supervisor mode (Unicorn's ppc CPU starts there). Undefined when
 * that cannot be done; the instruction then stays a SIGILL.
 */
function cpuPvr(arch: number, mode: number): bigint | undefined {
  const key = `${arch}:${mode}`;
  if (!pvrs.has(key)) {
    let value: bigint | null = null;
    const e = new Engine(arch, mode);
    try {
      e.memMap(0x10000n, 0x1000, UC_PROT.ALL);
      e.memWrite(0x10000n, new Uint8Array([0x7c, 0x7f, 0x42, 0xa6]));
      e.regWrite(R.R3, 0n);
      if (e.start(0x10000n, 0x10004n, 1).err === 0) value = e.regRead(R.R3);
    } catch {
      value = null;
    } finally {
      e.close();
    }
    pvrs.set(key, value);
  }
  return pvrs.get(key) ?? undefined;
}

/**
 * A privileged-instruction program check at `at` that Linux emulates: carry it out and return
 * the PC to resume at; undefined when Linux would send SIGILL.
 */
export function emulatePrivileged(e: Engine, insn: number, at: bigint): bigint | undefined {
  if (((insn & MFPVR_MASK) >>> 0) === MFPVR) {
    const pvr = cpuPvr(e.arch, e.mode);
    if (pvr === undefined) return undefined;
    e.regWrite(R.R0 + ((insn >>> 21) & 31), pvr);
    return at + 4n;
  }
  return undefined;
}
