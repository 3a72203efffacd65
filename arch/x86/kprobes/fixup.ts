/**
 * Slot contents and the fix-ups around running a copy out of line:
 * - x86-64 RIP-relative operands get their disp32 rewritten against the slot at prepare time
 *   (newdisp = addr + olddisp - slot), which must still fit in 32 signed bits;
 * - a boosted slot ends in `jmp rel32` back to addr + len; a stepped one in int3;
 * - after the trailing int3 the IP that followed the copy (slot + len) maps back to addr + len.
 */
import type { ProbeRefusal } from '../../probes.js';
import { readSigned, writeLe, type X86Insn } from './decode.js';
import { EINVAL, INT3, JMP32_LEN } from './tables.js';

const fitsS32 = (v: bigint): boolean => v >= -(1n << 31n) && v < 1n << 31n;

/** The copy's rewritten displacement for a slot at `slot`, or undefined when out of reach. */
function ripDisp(insn: X86Insn, slot: bigint): bigint | undefined {
  const old = readSigned(insn.bytes, insn.dispOffset, 4);
  const v = insn.addr + old - slot;
  return fitsS32(v) ? v : undefined;
}

function jmpBackRel(insn: X86Insn, slot: bigint): bigint {
  // jmp at slot+len, 5 bytes long, lands on addr+len.
  return insn.addr + BigInt(insn.length) - (slot + BigInt(insn.length) + BigInt(JMP32_LEN));
}

/** Can the copy run from `slot`? (Linux's copy fails with -EINVAL when the disp32 cannot reach.) */
export function slotRefusal(insn: X86Insn, slot: bigint, boosted: boolean): ProbeRefusal | undefined {
  if (!insn.long) return undefined; // 32-bit addresses wrap: every slot reaches every target
  if (insn.ripRelative && ripDisp(insn, slot) === undefined) {
    return { refused: true, errno: EINVAL, reason: 'RIP-relative displacement does not reach the target from the instruction slot' };
  }
  if (boosted && !fitsS32(jmpBackRel(insn, slot))) {
    return { refused: true, errno: EINVAL, reason: 'the boost jump cannot reach the probed address from the instruction slot' };
  }
  return undefined;
}

/** [copy][CC] for a stepped probe, [copy][E9 rel32] for a boosted one. */
export function buildSlot(insn: X86Insn, slot: bigint, boosted: boolean): Uint8Array {
  const refusal = slotRefusal(insn, slot, boosted);
  if (refusal !== undefined) throw new RangeError(`kprobe slot at 0x${slot.toString(16)}: ${refusal.reason}`);
  const len = insn.length;
  const out = new Uint8Array(len + (boosted ? JMP32_LEN : 1));
  out.set(insn.bytes.subarray(0, len));
  if (insn.ripRelative) writeLe(out, insn.dispOffset, 4, ripDisp(insn, slot)!);
  if (boosted) {
    out[len] = 0xe9;
    writeLe(out, len + 1, 4, jmpBackRel(insn, slot));
  } else {
    out[len] = INT3;
  }
  return out;
}
