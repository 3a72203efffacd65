/**
 * PowerPC optprobes (arch/powerpc/kernel/optprobes.c; Linux builds them for 64-bit only), facts
 * reproduced in this engine's own terms:
 *
 * - one instruction is replaced, by a `b` to the detour (so no other probe can sit inside the
 *   replaced range, and no jump into it needs checking);
 * - can_optimize: a conditional branch (bc, bclr, bcctr, bctar — whatever its BO) is refused,
 *   because the address after it cannot be known when the detour is built; the instruction must
 *   be one analyse_instr() emulates completely from registers (it returns 1): integer
 *   arithmetic, logic, rotates, compares, CR logic, mfspr/mtspr of LR/CTR/XER, and the
 *   unconditional branches. Loads, stores, floating point, vector, barriers and system
 *   instructions are refused. Linux answers -EILSEQ.
 * - the detour must be within a `b`'s ±32 MiB of the probe, and the branch back from the detour
 *   to the next address (NIP after emulation) too: -ERANGE otherwise.
 * - no post_handler (generic: a probe with one is never optimized).
 *
 * Linux's detour saves pt_regs, calls optimized_callback, then emulate_step()s the instruction
 * and branches to the precomputed NIP. Here a register-only instruction runs as a copy in the
 * body followed by `b NIP` (same registers as emulating it), and an unconditional branch is
 * emulated on the host after the handlers (a copied `bl` would link to the wrong address).
 */
import type { OptFunction, OptimizedInsn, OptProbeArch, ProbeCpu, ProbeRefusal } from '../../probes.js';
import { PPC_BREAKPOINT } from '../common.js';
import { be32, wordsBytes } from './disasm.js';
import { branchEmulator } from './emulate.js';
import { aaBit, branchClass, ERRNO, liDisp, primaryOp, xo } from './tables.js';

export const ERANGE = 34;
const BRANCH_RANGE = 1n << 25n; // ±32 MiB: LI is 24 bits of words

const refuse = (errno: number, reason: string): ProbeRefusal => ({ refused: true, errno, reason });
const inBranchRange = (d: bigint): boolean => d >= -BRANCH_RANGE && d < BRANCH_RANGE && (d & 3n) === 0n;

/** `b target` at `from` (no link, relative). */
function branch(from: bigint, to: bigint): number {
  return (18 << 26) | Number(BigInt.asUintN(26, to - from) & 0x03fffffcn);
}

/** D/DS-form primaries analyse_instr computes from registers alone. */
const PRIMARY_REG_OPS = new Set([7, 8, 10, 11, 12, 13, 14, 15, 20, 21, 23, 24, 25, 26, 27, 28, 29, 30]);
/** Op-31 X-form extended opcodes (10 bits) that only read and write registers. */
const OP31_REG_OPS = new Set([0, 32, 19, 144, 28, 60, 444, 412, 124, 476, 316, 284, 24, 536, 792, 824, 27, 539, 794, 826, 827, 26, 58, 954, 922, 986, 122, 378, 506, 508]);
/** Op-31 XO-form arithmetic (9-bit XO: the OE bit ignored). */
const OP31_ARITH = new Set([266, 10, 138, 234, 202, 40, 8, 136, 232, 200, 104, 235, 75, 11, 233, 73, 9, 491, 459, 489, 457]);
/** Op-19 CR logic and mcrf. */
const OP19_REG_OPS = new Set([0, 33, 129, 193, 225, 257, 289, 417, 449]);
/** SPRs mfspr/mtspr are emulated for: XER, LR, CTR. */
const EMULATED_SPRS = new Set([1, 8, 9]);

/** Does analyse_instr emulate this (non-branch) word from registers alone? */
function registerOnly(w: number): boolean {
  const op = primaryOp(w);
  if (PRIMARY_REG_OPS.has(op)) return true;
  if (op === 19) return OP19_REG_OPS.has(xo(w));
  if (op !== 31) return false;
  const x = xo(w);
  if ((x & 0x1f) === 15) return true; // isel
  if (x === 339 || x === 467) return EMULATED_SPRS.has(((w >>> 16) & 0x1f) | (((w >>> 11) & 0x1f) << 5));
  return OP31_REG_OPS.has(x) || OP31_ARITH.has(x & 0x1ff);
}

export function ppcOptProbeArch(bits: 32 | 64): OptProbeArch {
  function prepareOptimized(read: (a: bigint, n: number) => Uint8Array, _fn: OptFunction, addr: bigint): OptimizedInsn | ProbeRefusal {
    const w = be32(read(addr, 4));
    const cls = branchClass(w);
    if (cls !== undefined && cls !== 'b') return refuse(ERRNO.EILSEQ, 'conditional branch: the address after it cannot be known when the detour is built');
    if (cls === undefined && primaryOp(w) === 19 && xo(w) === 560) return refuse(ERRNO.EILSEQ, 'conditional branch (bctar): the address after it cannot be known when the detour is built');
    if (cls === undefined && !registerOnly(w)) {
      return refuse(ERRNO.EILSEQ, 'analyse_instr cannot emulate it from registers alone (a load, store, floating-point, vector, barrier or system instruction)');
    }
    // NIP after emulation: the branch target, or the next word.
    const nip = cls === 'b' ? BigInt.asUintN(bits, (aaBit(w) ? 0n : addr) + liDisp(w)) : BigInt.asUintN(bits, addr + 4n);
    const trapWord = PPC_BREAKPOINT;
    const emulated = cls === 'b';
    return {
      size: 4,
      bodySize: 8,
      detourInsns: emulated ? 0 : 3,
      jumpBytes: (entry) => wordsBytes(branch(addr, entry)),
      // An emulated branch never runs its entry (the host moves the PC): a trap there makes a
      // stray arrival visible.
      entryBytes: (entry, body) => wordsBytes(emulated ? trapWord : branch(entry, body)),
      bodyBytes: (body) => (emulated ? wordsBytes(trapWord, trapWord) : wordsBytes(w, branch(body + 4n, nip))),
      placementRefusal(entry, body) {
        if (!inBranchRange(entry - addr)) return refuse(ERANGE, 'the detour buffer is more than 32 MiB from the probe (out of a `b`\'s reach)');
        if (!emulated && !inBranchRange(nip - (body + 4n))) return refuse(ERANGE, 'the branch back from the detour buffer is out of a `b`\'s 32 MiB reach');
        return undefined;
      },
      ...(emulated ? { emulate: branchEmulator(w, addr, bits) } : {}),
    };
  }
  return { entrySize: 8, prepareOptimized };
}
