/**
 * x86 optprobes (arch/x86/kernel/kprobes/opt.c), facts reproduced in this engine's own terms:
 *
 * - can_optimize: the probe's function must be known and leave at least RELATIVEJUMP_SIZE (5)
 *   bytes from the probe to its end; the *whole* function is decoded from its start, and it is
 *   refused when an instruction cannot be decoded, is an int3 (someone else's breakpoint), is an
 *   indirect jump (FF /4, FF /5, EA: its target could be inside the replaced bytes), or is a
 *   relative jmp/jcc/loop/jcxz landing in [addr+1, addr+5) — the bytes the jump overwrites.
 *   Linux answers -EILSEQ for all of these.
 * - copy_optimized_instructions: whole instructions from the probe on are copied until at least
 *   5 bytes are covered; each must copy cleanly and be boostable (can_boost), else -EINVAL.
 * - the detour must be reachable by rel32 both ways, and RIP-relative operands must reach their
 *   target from the copy (-ERANGE); i386 addresses wrap, so there every placement reaches.
 *
 * Layout here: the probe's first 5 bytes become `jmp rel32 → entry`; the entry (where the host
 * runs the handlers, like Linux's template calling optimized_callback) is `jmp rel32 → body`; the
 * body holds the relocated copies and `jmp rel32 → addr + size`.
 */
import type { OptFunction, OptimizedInsn, OptProbeArch, ProbeRefusal } from '../../probes.js';
import { decodeX86, EMULATE_PREFIX_LEN, MAX_INSN_LEN, modrmOf, readSigned, writeLe, type X86Insn } from './decode.js';
import { canBoost, EILSEQ, EINVAL, INT3, JMP32_LEN } from './tables.js';

/** ERANGE (asm-generic 34): the detour is out of a rel32's reach. */
export const ERANGE = 34;
/** RELATIVEJUMP_SIZE: `jmp rel32`. */
export const RELATIVEJUMP_SIZE = JMP32_LEN;
/** Entry slot: one `jmp rel32` padded to 8 bytes. */
const ENTRY_SIZE = 8;

const refuse = (errno: number, reason: string): ProbeRefusal => ({ refused: true, errno, reason });
const fitsS32 = (v: bigint): boolean => v >= -(1n << 31n) && v < 1n << 31n;
const hex = (a: bigint): string => `0x${a.toString(16)}`;

/** The target of a relative jump Linux's insn_jump_into_range looks at (not call), or undefined. */
function relJumpTarget(insn: X86Insn): bigint | undefined {
  const op = insn.opcode;
  const isRel = (insn.map === 'one' && (op === 0xe9 || op === 0xeb || (op >= 0x70 && op <= 0x7f) || (op >= 0xe0 && op <= 0xe3))) || (insn.map === '0f' && op >= 0x80 && op <= 0x8f);
  if (!isRel) return undefined;
  const size = insn.length - (insn.opcodeOffset + 1);
  const rel = readSigned(insn.bytes, insn.opcodeOffset + 1, size);
  return insn.addr + BigInt(insn.length) + rel;
}

/** insn_is_indirect_jump: jmp through a register or memory, or a far jmp. */
function isIndirectJump(insn: X86Insn): boolean {
  if (insn.map !== 'one') return false;
  if (insn.opcode === 0xea) return true;
  if (insn.opcode !== 0xff) return false;
  const reg = modrmOf(insn).reg;
  return reg === 4 || reg === 5;
}

function jmp32(from: bigint, to: bigint, bits: number): Uint8Array {
  const out = new Uint8Array(JMP32_LEN);
  out[0] = 0xe9;
  writeLe(out, 1, 4, BigInt.asIntN(bits, to - (from + BigInt(JMP32_LEN))));
  return out;
}

export function x86OptProbeArch(long: boolean): OptProbeArch {
  const bits = long ? 64 : 32;
  const decodeAt = (read: (a: bigint, n: number) => Uint8Array, a: bigint, end: bigint): X86Insn | undefined => {
    const n = Math.min(MAX_INSN_LEN + EMULATE_PREFIX_LEN, Number(end - a));
    if (n <= 0) return undefined;
    return decodeX86(a, read(a, n), long);
  };

  function prepareOptimized(read: (a: bigint, n: number) => Uint8Array, fn: OptFunction, addr: bigint): OptimizedInsn | ProbeRefusal {
    if (fn.end - addr < BigInt(RELATIVEJUMP_SIZE)) {
      return refuse(EILSEQ, `fewer than ${RELATIVEJUMP_SIZE} bytes from the probe to the end of its function: the jump would overwrite the next function`);
    }
    // Decode the whole function (can_optimize).
    for (let a = fn.start; a < fn.end; ) {
      const insn = decodeAt(read, a, fn.end);
      if (insn === undefined) return refuse(EILSEQ, `the function cannot be decoded at ${hex(a)}: a jump into the replaced bytes could not be ruled out`);
      if (insn.map === 'one' && insn.opcode === INT3) return refuse(EILSEQ, `an int3 at ${hex(a)} in the function (another subsystem's breakpoint)`);
      if (isIndirectJump(insn)) return refuse(EILSEQ, `indirect jump \`${insn.text}\` at ${hex(a)} in the function: it might land inside the replaced bytes`);
      const target = relJumpTarget(insn);
      if (target !== undefined && target > addr && target < addr + BigInt(RELATIVEJUMP_SIZE)) {
        return refuse(EILSEQ, `\`${insn.text}\` at ${hex(a)} jumps to ${hex(target)}, inside the ${RELATIVEJUMP_SIZE} bytes the jump replaces`);
      }
      a += BigInt(insn.length);
    }
    // copy_optimized_instructions: whole, boostable instructions until the jump fits.
    const copies: X86Insn[] = [];
    let size = 0;
    while (size < RELATIVEJUMP_SIZE) {
      const at = addr + BigInt(size);
      const insn = decodeAt(read, at, fn.end);
      if (insn === undefined) return refuse(EINVAL, `cannot copy the instruction at ${hex(at)}`);
      if (!canBoost(insn)) return refuse(EINVAL, `\`${insn.text}\` at ${hex(at)} is not boostable: it cannot run from the detour buffer`);
      if (insn.ripRelative) {
        const { mod, rm } = modrmOf(insn);
        if (mod !== 0 || rm !== 5) return refuse(EINVAL, `cannot locate the RIP-relative displacement of \`${insn.text}\``);
      }
      copies.push(insn);
      size += insn.length;
    }
    const resume = addr + BigInt(size);

    /** The copies' RIP-relative displacements against `body` (undefined where out of reach). */
    const relocated = (body: bigint): Array<bigint | undefined> => {
      let off = 0n;
      return copies.map((c) => {
        const at = body + off;
        off += BigInt(c.length);
        if (!c.ripRelative) return 0n;
        const v = c.addr + readSigned(c.bytes, c.dispOffset, 4) - at;
        return fitsS32(v) ? v : undefined;
      });
    };

    return {
      size,
      bodySize: size + JMP32_LEN,
      detourInsns: copies.length + 2,
      jumpBytes: (entry) => jmp32(addr, entry, bits),
      entryBytes: (entry, body) => jmp32(entry, body, bits),
      bodyBytes(body) {
        const out = new Uint8Array(size + JMP32_LEN);
        const disp = relocated(body);
        let off = 0;
        copies.forEach((c, i) => {
          out.set(c.bytes.subarray(0, c.length), off);
          if (c.ripRelative) writeLe(out, off + c.dispOffset, 4, disp[i]!);
          off += c.length;
        });
        out.set(jmp32(body + BigInt(size), resume, bits), size);
        return out;
      },
      placementRefusal(entry, body) {
        if (!long) return undefined;
        if (!fitsS32(entry - (addr + BigInt(JMP32_LEN)))) return refuse(ERANGE, 'the detour buffer is more than 2 GiB away from the probe');
        if (!fitsS32(resume - (body + BigInt(size) + BigInt(JMP32_LEN)))) return refuse(ERANGE, 'the jump back from the detour buffer does not reach');
        if (relocated(body).some((d) => d === undefined)) return refuse(ERANGE, 'a RIP-relative operand does not reach its target from the detour buffer');
        return undefined;
      },
    };
  }

  return { entrySize: ENTRY_SIZE, prepareOptimized };
}
