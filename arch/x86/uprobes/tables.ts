/**
 * Instruction facts the x86 uprobe back-end acts on (reference/linux-uprobes-arch.md §1.12, §4):
 * which opcodes Linux's good-instruction tables refuse in a 32-bit and a 64-bit task, the
 * prefixes it refuses, and the NOP byte sequences it emulates instead of stepping.
 *
 * The tables are kept as "refused opcode → why" lists rather than Linux's bitmaps, so a refusal
 * can say what the instruction is. They follow the current arch/x86/kernel/uprobes.c: there the
 * 0x0F escape is marked good in both one-byte tables, so its two-byte table is never consulted —
 * every 0F-map instruction (the 0F 38 / 0F 3A maps too) passes this check. Opcode bytes of
 * VEX/EVEX/XOP instructions are looked up in the one-byte table, as Linux's decoder hands them over.
 */

/** Linux errno values (include/uapi/asm-generic/errno-base.h and the kernel-internal 524). */
export const ERRNO = { ENOEXEC: 8, EINVAL: 22, ENOTSUPP: 524 } as const;

export const INT3 = 0xcc;
/** UPROBE_XOL_SLOT_BYTES and MAX_UINSN_BYTES on x86. */
export const XOL_SLOT_BYTES = 128;
export const MAX_UINSN_BYTES = 16;

const NEVER_IN_USER_MODE = 'SIGSEGVs from user mode';

/** One-byte opcodes refused in both modes. */
const REFUSED_BOTH: ReadonlyArray<[number, string]> = [
  [0x6c, `insb (port I/O; ${NEVER_IN_USER_MODE})`],
  [0x6d, `insw/insd (port I/O; ${NEVER_IN_USER_MODE})`],
  [0x6e, `outsb (port I/O; ${NEVER_IN_USER_MODE})`],
  [0x6f, `outsw/outsd (port I/O; ${NEVER_IN_USER_MODE})`],
  [0xcc, 'int3 (raises SIGTRAP in user mode)'],
  [0xcd, 'int N (the kernel does not single-step a software interrupt)'],
  [0xce, 'into (no kernel support in user mode)'],
  [0xcf, 'iret'],
  [0xe4, `in imm8 (port I/O; ${NEVER_IN_USER_MODE})`],
  [0xe5, `in imm8 (port I/O; ${NEVER_IN_USER_MODE})`],
  [0xe6, `out imm8 (port I/O; ${NEVER_IN_USER_MODE})`],
  [0xe7, `out imm8 (port I/O; ${NEVER_IN_USER_MODE})`],
  [0xec, `in dx (port I/O; ${NEVER_IN_USER_MODE})`],
  [0xed, `in dx (port I/O; ${NEVER_IN_USER_MODE})`],
  [0xee, `out dx (port I/O; ${NEVER_IN_USER_MODE})`],
  [0xef, `out dx (port I/O; ${NEVER_IN_USER_MODE})`],
  [0xf1, 'int1/icebp (raises SIGTRAP in user mode)'],
  [0xf4, `hlt (${NEVER_IN_USER_MODE})`],
  [0xfa, `cli (${NEVER_IN_USER_MODE})`],
  [0xfb, `sti (${NEVER_IN_USER_MODE})`],
];

/** Only in a 32-bit task: segment pops Linux does not want to single-step. */
const REFUSED_32: ReadonlyArray<[number, string]> = [
  [0x07, 'pop es (a segment load the kernel does not single-step)'],
  [0x17, 'pop ss (a segment load the kernel does not single-step)'],
  [0x1f, 'pop ds (a segment load the kernel does not single-step)'],
];

/** Only in a 64-bit task: opcodes that are invalid there (most do not even decode). */
const REFUSED_64: ReadonlyArray<[number, string]> = [
  [0x06, 'push es (invalid in 64-bit mode)'],
  [0x07, 'pop es (invalid in 64-bit mode)'],
  [0x0e, 'push cs (invalid in 64-bit mode)'],
  [0x16, 'push ss (invalid in 64-bit mode)'],
  [0x17, 'pop ss (invalid in 64-bit mode)'],
  [0x1e, 'push ds (invalid in 64-bit mode)'],
  [0x1f, 'pop ds (invalid in 64-bit mode)'],
  [0x27, 'daa (invalid in 64-bit mode)'],
  [0x2f, 'das (invalid in 64-bit mode)'],
  [0x37, 'aaa (invalid in 64-bit mode)'],
  [0x3f, 'aas (invalid in 64-bit mode)'],
  [0x60, 'pusha (invalid in 64-bit mode)'],
  [0x61, 'popa (invalid in 64-bit mode)'],
  [0x62, 'bound / EVEX (not accepted in 64-bit mode)'],
  [0x82, 'redundant Group 1 encoding (invalid in 64-bit mode)'],
  [0x9a, 'far call ptr16:32 (invalid in 64-bit mode)'],
  [0xd4, 'aam (invalid in 64-bit mode)'],
  [0xd5, 'aad (invalid in 64-bit mode)'],
  [0xd6, 'salc (invalid in 64-bit mode)'],
  [0xea, 'far jmp ptr16:32 (invalid in 64-bit mode)'],
];

const TABLE_32 = new Map<number, string>([...REFUSED_BOTH, ...REFUSED_32]);
const TABLE_64 = new Map<number, string>([...REFUSED_BOTH, ...REFUSED_64]);

/** Why the good-instruction table of a 64-bit (`long`) or 32-bit task refuses `opcode`, if it does. */
export function refusedOpcode(opcode: number, long: boolean): string | undefined {
  return (long ? TABLE_64 : TABLE_32).get(opcode);
}

/** is_prefix_bad: ES/CS/SS/DS overrides and LOCK (FS/GS overrides are used by TLS code: allowed). */
export const BAD_PREFIXES: ReadonlyMap<number, string> = new Map([
  [0x26, 'ES segment override prefix'],
  [0x2e, 'CS segment override prefix'],
  [0x36, 'SS segment override prefix'],
  [0x3e, 'DS segment override prefix'],
  [0xf0, 'LOCK prefix'],
]);

/**
 * x86_nops[len]: the NOPs the kernel itself patches in, which branch_setup_xol_ops emulates as a
 * jump by zero. They are the kernel's own table, so they depend on how the kernel was built, not
 * on the task: a 64-bit kernel has the P6 `nopl` family, a 32-bit one GAS's `lea`/`mov` forms.
 * The x86_64 target models a 64-bit kernel, i386 a 32-bit one (ASM_NOP_MAX = 8 in both).
 */
const NOPS_64: readonly number[][] = [
  [0x90],
  [0x66, 0x90],
  [0x0f, 0x1f, 0x00],
  [0x0f, 0x1f, 0x40, 0x00],
  [0x0f, 0x1f, 0x44, 0x00, 0x00],
  [0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
  [0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00],
  [0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
];
const NOPS_32: readonly number[][] = [
  [0x90],
  [0x89, 0xf6], // mov %esi,%esi
  [0x8d, 0x76, 0x00], // lea 0x0(%esi),%esi
  [0x8d, 0x74, 0x26, 0x00], // lea 0x0(%esi,%eiz,1),%esi
  [0x3e, 0x8d, 0x74, 0x26, 0x00],
  [0x8d, 0xb6, 0x00, 0x00, 0x00, 0x00],
  [0x8d, 0xb4, 0x26, 0x00, 0x00, 0x00, 0x00],
  [0x3e, 0x8d, 0xb4, 0x26, 0x00, 0x00, 0x00, 0x00],
];

/** Is `bytes` (exactly one instruction) the kernel's NOP of that length? */
export function isKernelNop(bytes: Uint8Array, long: boolean): boolean {
  const n = (long ? NOPS_64 : NOPS_32)[bytes.length - 1];
  return n !== undefined && n.every((b, i) => bytes[i] === b);
}

/** The string instructions a rep prefix repeats; cmps/scas also stop on ZF. */
export function repString(opcode: number): 'plain' | 'zf' | undefined {
  if (opcode === 0xa6 || opcode === 0xa7 || opcode === 0xae || opcode === 0xaf) return 'zf';
  if ((opcode >= 0xa4 && opcode <= 0xa5) || (opcode >= 0xaa && opcode <= 0xad)) return 'plain';
  return undefined;
}
