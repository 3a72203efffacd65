/**
 * Instruction facts the x86 kprobes back-end acts on (reference/linux-kprobes.md §4.2, §4.5, §4.6):
 * which instructions Linux refuses, which it emulates in the int3 handler, and which it may run
 * "boosted" (slot = copy + jmp back, no second trap).
 */
import { E } from '../../../src/kernel/errno.js';
import { modrmOf, type X86Insn } from './decode.js';

export const { EINVAL, EILSEQ, EOPNOTSUPP, ENOSPC } = E;

export const INT3 = 0xcc;
export const JMP32_LEN = 5;
/** MAX_INSN_SIZE: bytes per kprobe instruction slot. */
export const SLOT_SIZE = 16;

function bitmap(ranges: Array<number | [number, number]>): Uint8Array {
  const m = new Uint8Array(256);
  for (const r of ranges) {
    const [lo, hi] = typeof r === 'number' ? [r, r] : r;
    for (let b = lo; b <= hi; b++) m[b] = 1;
  }
  return m;
}

/** Second bytes of 0F xx opcodes that may be boosted (twobyte_is_boostable). */
const TWOBYTE_BOOSTABLE = bitmap([
  0x02, 0x03, 0x06, 0x08, 0x09, 0x1f, [0x20, 0x23], 0x31, [0x40, 0x4f], [0x60, 0x6b], 0x6e, 0x6f,
  [0x74, 0x77], 0x7e, 0x7f, [0x90, 0x9f], 0xa0, 0xa1, [0xa3, 0xa5], 0xa8, 0xa9, [0xab, 0xad], 0xaf,
  [0xb0, 0xb7], [0xbb, 0xbf], 0xc0, 0xc1, [0xc8, 0xcf], [0xd1, 0xd3], 0xd5, 0xd8, 0xd9, [0xdb, 0xdd],
  0xdf, 0xe1, 0xe2, 0xe5, 0xe8, 0xe9, [0xeb, 0xed], 0xef, [0xf1, 0xf3], 0xf5, [0xf8, 0xfa], [0xfc, 0xfe],
]);

/** One-byte opcodes that may not be boosted: they branch, trap, or depend on where they run. */
const ONEBYTE_NOT_BOOSTABLE = bitmap([
  0x62, [0x70, 0x7f], 0x9a, 0xc0, 0xc1, [0xcc, 0xce], [0xd0, 0xd3], 0xd6, [0xd8, 0xdf], [0xe0, 0xe3],
  0xe8, 0xe9, 0xeb, [0xf0, 0xf4], 0xf6, 0xf7, 0xfe,
]);

/**
 * can_boost: may the copy run from a slot that jumps straight back (no second trap)? The generic
 * conditions (no post handler, room for the jump, non-preemptible kernel) are checked by the caller.
 */
export function canBoost(insn: X86Insn): boolean {
  // Linux: an address with an exception-table entry is never boosted; the guest kernel image has
  // no exception table, so that check has nothing to find here.
  // Prefixes CS (0x2E, also the "not taken" branch hint) and address-size are never boosted.
  if (insn.prefixes.some((p) => p === 0x2e || p === 0x67)) return false;
  switch (insn.map) {
    case '0f':
      return TWOBYTE_BOOSTABLE[insn.opcode] === 1;
    case 'one':
      if (insn.opcode === 0xff) return modrmOf(insn).reg === 4; // only jmp * (Grp5 /4)
      return ONEBYTE_NOT_BOOSTABLE[insn.opcode] !== 1;
    default:
      // Three-byte opcodes, and VEX/EVEX/XOP encodings (whose opcode byte Linux's decoder would
      // read as a one-byte opcode: uniprobe keeps them stepping instead).
      return false;
  }
}

/** Instruction classes emulated in the int3 handler (prepare_emulation) instead of stepped. */
export type EmulateKind =
  | { kind: 'ifmod'; op: 'cli' | 'sti' | 'pushf' | 'popf' }
  | { kind: 'ret'; far: boolean; imm: number }
  | { kind: 'call'; rel: bigint }
  | { kind: 'jmp'; rel: bigint }
  | { kind: 'jcc'; cc: number; rel: bigint }
  | { kind: 'loop'; type: 0 | 1 | 2 | 3; rel: bigint }
  | { kind: 'callIndirect'; reg: number }
  | { kind: 'jmpIndirect'; reg: number };

export type Classification =
  | { kind: 'refuse'; errno: number; reason: string }
  | { kind: 'emulate'; op: EmulateKind }
  | { kind: 'step' };

/** The branch displacement: the instruction's trailing bytes after the opcode (rel8/16/32). */
function relOf(insn: X86Insn): bigint {
  const size = insn.length - (insn.opcodeOffset + 1);
  let v = 0n;
  for (let k = size - 1; k >= 0; k--) v = (v << 8n) | BigInt(insn.bytes[insn.opcodeOffset + 1 + k]!);
  return BigInt.asIntN(size * 8, v);
}

/**
 * prepare_emulation: the emulated classes, and the -EOPNOTSUPP refusals (far transfers, iret,
 * int3, VMX calls, memory-indirect or far indirect call/jmp).
 */
export function classify(insn: X86Insn): Classification {
  const notsupp = (reason: string): Classification => ({ kind: 'refuse', errno: EOPNOTSUPP, reason });
  if (insn.map === '0f') {
    if (insn.opcode >= 0x80 && insn.opcode <= 0x8f) return { kind: 'emulate', op: { kind: 'jcc', cc: insn.opcode & 0xf, rel: relOf(insn) } };
    if (insn.opcode === 0x01) {
      const { mod, reg } = modrmOf(insn);
      if (reg === 0 && mod === 3) return notsupp('VMX instruction (vmcall/vmlaunch/vmresume/vmxoff) cannot be probed');
    }
    return { kind: 'step' };
  }
  if (insn.map !== 'one') return { kind: 'step' };
  const op = insn.opcode;
  switch (op) {
    case 0xfa:
      return { kind: 'emulate', op: { kind: 'ifmod', op: 'cli' } };
    case 0xfb:
      return { kind: 'emulate', op: { kind: 'ifmod', op: 'sti' } };
    case 0x9c:
      return { kind: 'emulate', op: { kind: 'ifmod', op: 'pushf' } };
    case 0x9d:
      return { kind: 'emulate', op: { kind: 'ifmod', op: 'popf' } };
    case 0xc2:
    case 0xca: {
      const imm = insn.bytes[insn.opcodeOffset + 1]! | (insn.bytes[insn.opcodeOffset + 2]! << 8);
      return { kind: 'emulate', op: { kind: 'ret', far: op === 0xca, imm } };
    }
    case 0xc3:
    case 0xcb:
      return { kind: 'emulate', op: { kind: 'ret', far: op === 0xcb, imm: 0 } };
    case 0xe8:
      return { kind: 'emulate', op: { kind: 'call', rel: relOf(insn) } };
    case 0xe9:
    case 0xeb:
      return { kind: 'emulate', op: { kind: 'jmp', rel: relOf(insn) } };
    case 0xe0:
    case 0xe1:
    case 0xe2:
    case 0xe3:
      return { kind: 'emulate', op: { kind: 'loop', type: (op & 3) as 0 | 1 | 2 | 3, rel: relOf(insn) } };
    case 0x9a:
      return notsupp('far call cannot be probed');
    case 0xea:
      return notsupp('far jmp cannot be probed');
    case 0xcc:
      return notsupp('int3 cannot be probed');
    case 0xcf:
      return notsupp('iret cannot be probed');
    case 0xff: {
      const { mod, reg, rm } = modrmOf(insn);
      if (reg === 3 || reg === 5) return notsupp('far indirect call/jmp cannot be probed');
      if (reg === 2 || reg === 4) {
        if (mod !== 3) return notsupp('indirect call/jmp through memory cannot be probed');
        // Linux emulates only native-address-size forms.
        if (insn.prefixes.includes(0x67)) return notsupp('indirect call/jmp with a non-native address size cannot be probed');
        const r = rm + ((insn.rex & 1) !== 0 ? 8 : 0);
        return { kind: 'emulate', op: reg === 2 ? { kind: 'callIndirect', reg: r } : { kind: 'jmpIndirect', reg: r } };
      }
      return { kind: 'step' };
    }
    default:
      if (op >= 0x70 && op <= 0x7f) return { kind: 'emulate', op: { kind: 'jcc', cc: op & 0xf, rel: relOf(insn) } };
      return { kind: 'step' };
  }
}
