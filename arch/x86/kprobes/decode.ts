/**
 * x86 instruction decoding for kprobes: Capstone gives validity, length and a listing; the
 * structural facts Linux's own decoder provides (prefixes, REX, opcode bytes, ModRM position) are
 * parsed here, because capstone.js's detail structures do not come through its wasm binding
 * intact.
 *
 * capstone.js is an emscripten module whose factory resolves a promise: it is loaded once
 * (arch/capstone.ts) by whoever imports arch/decoders-ready.ts, after which every call is
 * synchronous. Decoding before that is a programming error, reported as such.
 */
import { capstoneIfLoaded } from '../../capstone.js';
import type { DecodedInsn } from '../../probes.js';

interface CapstoneInsn {
  size: number;
  mnemonic: string;
  op_str: string;
}
interface CapstoneHandle {
  disasm(buffer: Uint8Array, addr: bigint, max?: number): CapstoneInsn[];
  close(): void;
}
interface CapstoneModule {
  Capstone: new (arch: number, mode: number) => CapstoneHandle;
  ARCH_X86: number;
  MODE_32: number;
  MODE_64: number;
}

const handles = new Map<boolean, CapstoneHandle>();

function handle(long: boolean): CapstoneHandle {
  let h = handles.get(long);
  if (h === undefined) {
    const cs = capstoneIfLoaded() as CapstoneModule | undefined;
    if (cs === undefined) throw new Error('x86 decoder used before Capstone was loaded: import arch/decoders-ready.js (or await loadCapstone()) first');
    h = new cs.Capstone(cs.ARCH_X86, long ? cs.MODE_64 : cs.MODE_32);
    handles.set(long, h);
  }
  return h;
}

/** Longest legal x86 instruction. */
export const MAX_INSN_LEN = 15;

/**
 * Xen/KVM "force emulate" marker: `ud2 ; .ascii "xen"` / `"kvm"`. Linux's decoder treats the five
 * bytes as a prefix of the instruction that follows.
 */
const EMULATE_PREFIXES = [Uint8Array.of(0x0f, 0x0b, 0x78, 0x65, 0x6e), Uint8Array.of(0x0f, 0x0b, 0x6b, 0x76, 0x6d)];
export const EMULATE_PREFIX_LEN = 5;

export function hasEmulatePrefix(bytes: Uint8Array): boolean {
  return EMULATE_PREFIXES.some((p) => bytes.length >= p.length && p.every((b, i) => bytes[i] === b));
}

/** Which opcode map the opcode byte belongs to. */
export type OpcodeMap = 'one' | '0f' | '0f38' | '0f3a' | '3dnow' | 'vex' | 'evex' | 'xop';

/** The structure of one instruction, as far as kprobes needs it. */
export interface X86Insn extends DecodedInsn {
  readonly long: boolean;
  /** Legacy prefixes in order (F0 F2 F3 2E 36 3E 26 64 65 66 67). */
  readonly prefixes: readonly number[];
  /** REX byte (64-bit mode), 0 when absent. */
  readonly rex: number;
  readonly map: OpcodeMap;
  /** The opcode byte within its map (for 'one' the first opcode byte). */
  readonly opcode: number;
  /** Offset of the opcode byte (last byte of the opcode escape sequence). */
  readonly opcodeOffset: number;
  /** Offset of the ModRM byte; meaningful only where the opcode has one. */
  readonly modrmOffset: number;
  /** Operand size in bytes of ordinary operations (2 with 66, 8 with REX.W). */
  readonly opSize: 2 | 4 | 8;
  /** Address size in bytes (67 toggles it). */
  readonly addrSize: 2 | 4 | 8;
  /** Capstone found a RIP-relative memory operand. */
  readonly ripRelative: boolean;
  /** Offset of the 32-bit displacement of a RIP-relative operand (when ripRelative). */
  readonly dispOffset: number;
}

const LEGACY_PREFIXES = new Set([0xf0, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65, 0x66, 0x67]);

export function modrmOf(insn: X86Insn): { mod: number; reg: number; rm: number } {
  const m = insn.bytes[insn.modrmOffset] ?? 0;
  return { mod: m >> 6, reg: (m >> 3) & 7, rm: m & 7 };
}

/**
 * Decode the instruction at bytes[0] located at `addr` in 64-bit (`long`) or 32-bit mode, or
 * undefined when it is not a valid instruction.
 */
export function decodeX86(addr: bigint, bytes: Uint8Array, long: boolean): X86Insn | undefined {
  let skip = 0;
  if (hasEmulatePrefix(bytes)) skip = EMULATE_PREFIX_LEN;
  const body = bytes.subarray(skip, skip + MAX_INSN_LEN);
  if (body.length === 0) return undefined;
  let found: CapstoneInsn | undefined;
  const h = handle(long); // outside the try: an unloaded decoder is an error, not an invalid insn
  try {
    found = h.disasm(body, BigInt.asUintN(64, addr + BigInt(skip)), 1)[0];
  } catch {
    return undefined;
  }
  if (found === undefined || found.size <= 0 || found.size > body.length) return undefined;
  const length = skip + found.size;
  const own = bytes.slice(0, length);

  let i = skip;
  const prefixes: number[] = [];
  while (i < length && LEGACY_PREFIXES.has(own[i]!)) prefixes.push(own[i++]!);
  let rex = 0;
  if (long && i < length && (own[i]! & 0xf0) === 0x40) rex = own[i++]!;
  let map: OpcodeMap = 'one';
  let opcodeOffset = i;
  let rexW = (rex & 8) !== 0;
  const b0 = own[i] ?? 0;
  const next = own[i + 1] ?? 0;
  // VEX/EVEX/XOP escape bytes double as LES/LDS/BOUND/POP in 32-bit mode; there the next byte's
  // top bits (a register-form ModRM) tell the two apart, as the hardware does.
  const escapeOk = long || (next & 0xc0) === 0xc0;
  if (b0 === 0x0f) {
    const b1 = own[i + 1] ?? 0;
    if (b1 === 0x38 || b1 === 0x3a) {
      map = b1 === 0x38 ? '0f38' : '0f3a';
      opcodeOffset = i + 2;
    } else if (b1 === 0x0f) {
      map = '3dnow';
      opcodeOffset = i + 1;
    } else {
      map = '0f';
      opcodeOffset = i + 1;
    }
  } else if (b0 === 0xc5 && escapeOk) {
    map = 'vex';
    opcodeOffset = i + 2;
  } else if (b0 === 0xc4 && escapeOk) {
    map = 'vex';
    rexW = ((own[i + 2] ?? 0) & 0x80) !== 0;
    opcodeOffset = i + 3;
  } else if (b0 === 0x62 && escapeOk) {
    map = 'evex';
    rexW = ((own[i + 2] ?? 0) & 0x80) !== 0;
    opcodeOffset = i + 4;
  } else if (b0 === 0x8f && (next & 0x1f) >= 8) {
    map = 'xop';
    opcodeOffset = i + 3;
  }
  const opcode = own[opcodeOffset] ?? 0;
  const modrmOffset = opcodeOffset + 1;
  const has66 = prefixes.includes(0x66);
  const has67 = prefixes.includes(0x67);
  const opSize: 2 | 4 | 8 = long && rexW ? 8 : has66 ? 2 : 4;
  const addrSize: 2 | 4 | 8 = long ? (has67 ? 4 : 8) : has67 ? 2 : 4;
  const ripRelative = long && /\b[re]?ip\b/.test(found.op_str);
  const text = `${found.mnemonic} ${found.op_str}`.trim();
  return {
    addr,
    length,
    bytes: own,
    text,
    long,
    prefixes,
    rex,
    map,
    opcode,
    opcodeOffset,
    modrmOffset,
    opSize,
    addrSize,
    ripRelative,
    dispOffset: modrmOffset + 1,
  };
}

/** Signed little-endian integer of `size` bytes at `off`. */
export function readSigned(bytes: Uint8Array, off: number, size: number): bigint {
  let v = 0n;
  for (let k = size - 1; k >= 0; k--) v = (v << 8n) | BigInt(bytes[off + k] ?? 0);
  return BigInt.asIntN(size * 8, v);
}

export function writeLe(bytes: Uint8Array, off: number, size: number, value: bigint): void {
  let v = BigInt.asUintN(size * 8, value);
  for (let k = 0; k < size; k++) {
    bytes[off + k] = Number(v & 0xffn);
    v >>= 8n;
  }
}
