/**
 * x86 uprobe back-end (arch/x86/uprobes) on x86-64 and i386 tasks: every refusal with Linux's
 * errno, the choice between emulation and stepping, the slot (copy + int3, the RIP-relative
 * scratch-register rewrite), the return-probe hooks, and differential execution — each
 * instruction of a hand corpus (assembled with Keystone) and every distinct instruction of the
 * freestanding fixture programs runs once natively and once through the probe path with the slot
 * on a page near the top of user space, more than 2 GiB from the text (test/arch/uprobe-harness.ts);
 * registers, flags, XMM, memory, faults and hit counts must agree.
 */
import { openEngine } from '../../arch/engine.js';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { x86_64 } from '../../arch/x86/x86_64.js';
import { i386 } from '../../arch/x86/i386.js';
import type { Arch } from '../../arch/types.js';
import { isRefusal, type PreparedUprobe, type ProbeRefusal, type UprobeArch } from '../../arch/probes.js';
import { uprobeArchFor } from '../../arch/index.js';
import { ERRNO } from '../../arch/x86/uprobes/index.js';
import { REGS_32, REGS_64 } from '../../arch/x86/kprobes/emulate.js';
import { decodeX86 } from '../../arch/x86/kprobes/decode.js';
import { Engine, UC_PROT } from '../../src/emu/unicorn.js';
import { readElfFileSync } from '../../src/elf/index.js';
import { repoRoot, corpusFixture } from '../helpers.js';
import { chunked, elfRegions, memAccess, runUprobeDiff, type Region, type UprobeDiff, type UprobeScenario } from './uprobe-harness.js';

interface KeystoneHandle {
  asm(src: string, addr: bigint | number): { mc: Uint8Array; count: number; failed: boolean };
}
interface KeystoneModule {
  Keystone: new (arch: number, mode: number) => KeystoneHandle;
  ARCH_X86: number;
  MODE_32: number;
  MODE_64: number;
}
const require = createRequire(import.meta.url);
const ks = await (require('@alexaltea/keystone-js') as () => Promise<KeystoneModule>)();
const assemblers = { x86_64: new ks.Keystone(ks.ARCH_X86, ks.MODE_64), i386: new ks.Keystone(ks.ARCH_X86, ks.MODE_32) };

type T = 'x86_64' | 'i386';

function asm(t: T, src: string, addr: bigint): Uint8Array {
  const r = assemblers[t].asm(src, addr);
  if (r.failed || r.mc.length === 0) throw new Error(`keystone cannot assemble "${src}" for ${t}`);
  return r.mc;
}

/**
 * User-space layout: text low, data and stack windows, and the XOL page one page below the top of
 * user space (x86-64: ~128 TiB above the text, far out of a disp32's reach).
 */
const LAYOUT = {
  x86_64: { text: 0x401000n, data: 0x20000000n, stack: 0x7ffffff00000n, xol: 0x7fffffffd000n },
  i386: { text: 0x08049000n, data: 0x20000000n, stack: 0xbff00000n, xol: 0xbfffe000n },
} as const;
const DATA_SIZE = 0x10000;
const STACK_SIZE = 0x4000;

const TARGETS: Array<{ t: T; arch: Arch; ua: UprobeArch }> = [
  { t: 'x86_64', arch: x86_64, ua: uprobeArchFor(x86_64) },
  { t: 'i386', arch: i386, ua: uprobeArchFor(i386) },
];

const pattern = (n: number, mul: number, add: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * mul + add) & 0xff);
const DATA = pattern(DATA_SIZE, 37, 11);
const STACK = pattern(STACK_SIZE, 53, 7);
const spOf = (t: T): bigint => LAYOUT[t].stack + BigInt(STACK_SIZE / 2);

function le(size: number, v: bigint): Uint8Array {
  const b = new Uint8Array(size);
  for (let k = 0; k < size; k++) b[k] = Number((v >> BigInt(8 * k)) & 0xffn);
  return b;
}

const FLAG_SEEDS = [0x202n, 0x202n | 0x8d5n, 0x202n | 0x81n];

/** Registers: every GPR points into the data window (shifted by the seed), sp mid-stack. */
function seeder(t: T, seed: number, overrides: Record<string, bigint> = {}, mem: Array<[bigint, Uint8Array]> = []): (e: Engine) => void {
  const arch = t === 'x86_64' ? x86_64 : i386;
  const r = t === 'x86_64' ? REGS_64 : REGS_32;
  return (e) => {
    const mid = LAYOUT[t].data + BigInt(DATA_SIZE / 2);
    const values = r.gpr.map((_, i) => mid + BigInt(i * 0x400 + seed * 0x28));
    values[4] = spOf(t);
    if (seed % 2 === 1) values[1] = 3n;
    e.regWriteBatch([...r.gpr, r.flags], [...values, FLAG_SEEDS[seed % FLAG_SEEDS.length]!]);
    for (const [name, v] of Object.entries(overrides)) e.regWrite(arch.registers.byName.get(name)!.id, v);
    for (const [a, b] of mem) e.memWrite(a, b);
  };
}

const REG_NAMES = {
  x86_64: ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags', 'fs_base', 'gs_base', 'mxcsr', 'fpcw'],
  i386: ['eax', 'ebx', 'ecx', 'edx', 'esi', 'edi', 'ebp', 'esp', 'eip', 'eflags', 'mxcsr', 'fpcw', 'gs'],
};

function scenario(t: T, text: Region[], vaddr: bigint, seed: number, extra: Partial<UprobeScenario> & { regs?: Record<string, bigint>; mem?: Array<[bigint, Uint8Array]> } = {}): UprobeScenario {
  const { regs, mem, ...rest } = extra;
  const arch = t === 'x86_64' ? x86_64 : i386;
  return {
    arch,
    ua: uprobeArchFor(arch),
    regions: [...text, { base: LAYOUT[t].data, bytes: DATA }, { base: LAYOUT[t].stack, bytes: STACK }],
    xol: LAYOUT[t].xol,
    vaddr,
    seed: seeder(t, seed, regs, mem),
    stopOutside: true,
    maxInsns: 400,
    regNames: REG_NAMES[t],
    ...rest,
  };
}

/** A page of pattern bytes at the text address with `code` at its start. */
function handText(t: T, code: Uint8Array): Region[] {
  const b = pattern(0x2000, 29, 3);
  b.set(code, 0);
  return [{ base: LAYOUT[t].text, bytes: b }];
}

interface HandCase {
  name: string;
  src: string | Uint8Array;
  mode: 'emulate' | 'step';
  regs?: Record<string, bigint>;
  mem?: (t: T) => Array<[bigint, Uint8Array]>;
  /** Expected probe hits (default 1): a TF single-step of `rep` fires once per iteration. */
  hits?: (seed: number) => number;
  seeds?: number[];
  /** Also map [0x1000, 0x3000): 16-bit addressing reaches only the first 64 KiB. */
  lowPage?: boolean;
}

const at = (t: T, off: number): string => '0x' + (LAYOUT[t].text + BigInt(off)).toString(16);
const retTo = (off: number) => (t: T): Array<[bigint, Uint8Array]> => [[spOf(t), le(t === 'x86_64' ? 8 : 4, LAYOUT[t].text + BigInt(off))]];

function commonCases(t: T): HandCase[] {
  const w = t === 'x86_64';
  const a = w ? 'rax' : 'eax';
  const b = w ? 'rbx' : 'ebx';
  const cx = w ? 'rcx' : 'ecx';
  const sp = w ? 'rsp' : 'esp';
  const si = w ? 'rsi' : 'esi';
  const E = 'emulate' as const;
  const S = 'step' as const;
  const cases: HandCase[] = [
    // branch_xol_ops
    { name: 'nop', src: 'nop', mode: E },
    { name: 'pause (f3 90: prefix + nop)', src: Uint8Array.of(0xf3, 0x90), mode: E },
    { name: 'xchg ax,ax (66 90)', src: Uint8Array.of(0x66, 0x90), mode: E },
    { name: 'jmp rel8', src: `jmp ${at(t, 0x20)}`, mode: E },
    { name: 'jmp rel8 backwards', src: Uint8Array.of(0xeb, 0x80), mode: E },
    { name: 'jmp rel32', src: `jmp ${at(t, 0x800)}`, mode: E },
    { name: 'call rel32', src: `call ${at(t, 0x300)}`, mode: E },
    { name: 'call rel32 with the stack unmapped (emulation fails, the mangled call faults from the slot)', src: `call ${at(t, 0x300)}`, mode: E, regs: { sp: 0x1000n } },
    { name: 'bnd jmp (f2 e9: allowed prefix)', src: Uint8Array.of(0xf2, 0xe9, 0x00, 0x01, 0x00, 0x00), mode: E },
    // push_xol_ops
    { name: 'push reg', src: `push ${b}`, mode: E },
    { name: 'push sp pushes the old sp', src: `push ${sp}`, mode: E },
    { name: 'push reg, stack unmapped (falls back to a faulting step)', src: `push ${b}`, mode: E, regs: { sp: 0x1000n } },
    // emulated by this engine: they would leave the slot
    { name: 'ret', src: 'ret', mode: E, mem: retTo(0x40) },
    { name: 'ret imm16', src: 'ret 8', mode: E, mem: retTo(0x40) },
    { name: 'ret with the stack unmapped (push [sp] faults from the slot)', src: 'ret', mode: E, regs: { sp: 0x1000n } },
    { name: 'loop', src: `loop ${at(t, 0x30)}`, mode: E, regs: { cx: 2n } },
    { name: 'loop ends', src: `loop ${at(t, 0x30)}`, mode: E, regs: { cx: 1n } },
    { name: 'loope', src: `loope ${at(t, 0x30)}`, mode: E, regs: { cx: 5n } },
    { name: 'loopne', src: `loopne ${at(t, 0x30)}`, mode: E, regs: { cx: 5n } },
    { name: 'jcxz family taken', src: w ? `jrcxz ${at(t, 0x30)}` : `jecxz ${at(t, 0x30)}`, mode: E, regs: { cx: 0n } },
    { name: 'jcxz family not taken', src: w ? `jrcxz ${at(t, 0x30)}` : `jecxz ${at(t, 0x30)}`, mode: E, regs: { cx: 7n } },
    { name: 'call reg', src: `call ${a}`, mode: E },
    { name: 'jmp reg', src: `jmp ${b}`, mode: E },
    { name: 'call sp (target read before the push)', src: `call ${sp}`, mode: E },
    { name: 'call reg, stack unmapped (push r/m faults from the slot)', src: `call ${a}`, mode: E, regs: { sp: 0x1000n } },
    // stepped, call/jmp through memory as `push r/m`
    { name: 'call [reg]', src: w ? 'call qword ptr [rbx]' : 'call dword ptr [ebx]', mode: S },
    { name: 'jmp [reg+disp]', src: w ? 'jmp qword ptr [rbx + 0x18]' : 'jmp dword ptr [ebx + 0x18]', mode: S },
    { name: 'call [sp+disp] (address taken before the push)', src: w ? 'call qword ptr [rsp + 8]' : 'call dword ptr [esp + 4]', mode: S },
    { name: 'jmp [reg*scale+disp] (jump table)', src: w ? 'jmp qword ptr [rax*8 + 0x20001000]' : 'jmp dword ptr [eax*4 + 0x20001000]', mode: S, regs: { ax: 3n } },
    { name: 'call fs:[abs]', src: w ? Uint8Array.of(0x64, 0xff, 0x14, 0x25, 0x00, 0x10, 0x00, 0x20) : Uint8Array.of(0x64, 0xff, 0x15, 0x00, 0x10, 0x00, 0x20), mode: S },
    { name: 'call [reg] faulting', src: w ? 'call qword ptr [rbx]' : 'call dword ptr [ebx]', mode: S, regs: { bx: 0x10n } },
    // plain steps
    { name: 'mov reg,reg', src: `mov ${a}, ${b}`, mode: S },
    { name: 'mov reg,[reg+disp]', src: `mov eax, dword ptr [${si} + 0x40]`, mode: S },
    { name: 'mov [reg],imm', src: `mov dword ptr [${b} - 8], 0x11223344`, mode: S },
    { name: 'add', src: `add ${a}, ${b}`, mode: S },
    { name: 'imul', src: `imul ${a}, ${b}, 0x33`, mode: S },
    { name: 'shl', src: `shl ${a}, 3`, mode: S },
    { name: 'div by zero faults at the probe', src: `div ${cx}`, mode: S, regs: { cx: 0n, dx: 0n } },
    { name: 'cmpxchg', src: `cmpxchg dword ptr [${b}], ecx`, mode: S },
    { name: 'xadd', src: `xadd dword ptr [${b}], eax`, mode: S },
    { name: 'movzx', src: `movzx eax, byte ptr [${b}]`, mode: S },
    { name: 'cmovne', src: `cmovne ${a}, ${b}`, mode: S },
    { name: 'bsf', src: 'bsf eax, ebx', mode: S },
    { name: 'lea', src: `lea ${a}, [${b} + ${cx}*4 + 0x10]`, mode: S },
    { name: 'leave', src: 'leave', mode: S, regs: { bp: spOf(t) + 0x40n } },
    { name: 'pushf', src: w ? 'pushfq' : 'pushfd', mode: S },
    { name: 'popf (UPROBE_FIX_SETF: nothing to do without TF)', src: w ? 'popfq' : 'popfd', mode: S, mem: (tt) => [[spOf(tt), le(tt === 'x86_64' ? 8 : 4, 0x8d7n)]] },
    { name: 'push imm', src: 'push 0x12345678', mode: S },
    { name: 'pop reg', src: `pop ${cx}`, mode: S },
    { name: 'nopw with a 9-byte form (not the kernel\'s NOP: stepped)', src: Uint8Array.of(0x66, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0), mode: S },
    { name: 'cpuid', src: 'cpuid', mode: S, regs: { ax: 0n } },
    { name: 'ud2 (0F passes the table) faults at the probe', src: 'ud2', mode: S },
    { name: 'fs-prefixed load (FS/GS overrides are allowed)', src: `mov eax, dword ptr fs:[${b}]`, mode: S },
    { name: 'load from unmapped memory faults at the probe', src: `mov eax, dword ptr [${b}]`, mode: S, regs: { bx: 0x1000n } },
    { name: 'movsb (no rep)', src: 'movsb', mode: S },
    { name: 'sse movdqu', src: `movdqu xmm1, xmmword ptr [${si}]`, mode: S },
    { name: 'pshufb (0F 38 map: passes, Linux marks 0F good)', src: 'pshufb xmm1, xmm2', mode: S },
  ];
  // rep string instructions: hit once per iteration (the TF single-step semantics), same state.
  // [insn, count, hits]: the seeded data makes [rsi] and [rdi] equal and al differ from [rdi].
  const reps: Array<[string, number, number]> = [
    ['rep movsb', 0, 1],
    ['rep movsb', 1, 1],
    ['rep movsb', 5, 5],
    ['rep stosd', 4, 4],
    ['rep lodsb', 3, 3],
    ['repe cmpsb', 6, 6],
    ['repne scasb', 6, 6],
    ['repne cmpsb (stops after one: equal)', 6, 1],
  ];
  for (const [src, count, hits] of reps) {
    cases.push({ name: `${src}, count ${count}`, src: src.replace(/ \(.*/, ''), mode: S, regs: { cx: BigInt(count) }, hits: () => hits, seeds: [0, 2] });
  }
  // cmps/scas stop early on ZF: the data makes repe/repne end after a few iterations.
  cases.push({
    name: 'repe cmpsb stopping at a difference',
    src: 'repe cmpsb',
    mode: S,
    regs: { cx: 8n, si: LAYOUT[t].data, di: LAYOUT[t].data + 0x1000n },
    mem: (tt) => [
      [LAYOUT[tt].data, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)],
      [LAYOUT[tt].data + 0x1000n, Uint8Array.of(1, 2, 3, 9, 5, 6, 7, 8)],
    ],
    hits: () => 4,
    seeds: [0],
  });
  cases.push({
    name: 'rep movsb faulting in its third iteration (count restored on abort)',
    src: 'rep movsb',
    mode: S,
    regs: { cx: 5n, si: LAYOUT[t].data + BigInt(DATA_SIZE) - 2n },
    hits: () => 3,
    seeds: [0],
  });
  const conds = ['jo', 'jno', 'jb', 'jae', 'je', 'jne', 'jbe', 'ja', 'js', 'jns', 'jp', 'jnp', 'jl', 'jge', 'jle', 'jg'];
  for (const j of conds) cases.push({ name: `${j} rel8`, src: `${j} ${at(t, 0x40)}`, mode: E });
  for (const j of ['je', 'jl', 'jbe', 'jns']) cases.push({ name: `${j} rel32`, src: `${j} ${at(t, 0x800)}`, mode: E });
  return cases;
}

function x86_64Cases(): HandCase[] {
  const S = 'step' as const;
  const E = 'emulate' as const;
  return [
    { name: 'RIP-relative load', src: 'mov rax, qword ptr [rip + 0x100]', mode: S },
    { name: 'RIP-relative load into rsi (scratch: di)', src: 'mov rsi, qword ptr [rip + 0x100]', mode: S },
    { name: 'RIP-relative load into r14 (modrm.reg 6 without REX.R: scratch di)', src: 'mov r14, qword ptr [rip + 0x100]', mode: S },
    { name: 'RIP-relative store', src: 'mov qword ptr [rip + 0x100], rbx', mode: S },
    { name: 'RIP-relative store of rsi', src: 'mov qword ptr [rip + 0x100], rsi', mode: S },
    { name: 'RIP-relative store with imm after disp', src: 'mov dword ptr [rip + 0x120], 0x55667788', mode: S },
    { name: 'RIP-relative lea', src: 'lea rcx, [rip - 0x80]', mode: S },
    { name: 'RIP-relative add imm32', src: 'add dword ptr [rip + 0x208], 0x12345678', mode: S },
    { name: 'RIP-relative cmp imm8', src: 'cmp qword ptr [rip + 0x200], 5', mode: S },
    { name: 'RIP-relative movzx', src: 'movzx eax, byte ptr [rip + 0x40]', mode: S },
    { name: 'RIP-relative push', src: 'push qword ptr [rip + 0x80]', mode: S },
    { name: 'RIP-relative inc (FF /0)', src: 'inc dword ptr [rip + 0x90]', mode: S },
    { name: 'RIP-relative shl (C1 with disp and imm)', src: 'shl dword ptr [rip + 0x90], 3', mode: S },
    { name: 'RIP-relative with REX.B clear and REX.R set', src: 'mov r10, qword ptr [rip + 0x300]', mode: S },
    { name: 'RIP-relative fs load', src: 'mov rax, qword ptr fs:[rip + 0x100]', mode: S },
    { name: 'RIP-relative cmpxchg16b-family: cmpxchg8b (implicit bx/cx: scratch si)', src: 'cmpxchg8b qword ptr [rip + 0x100]', mode: S },
    { name: 'RIP-relative SSE load', src: 'movdqu xmm3, xmmword ptr [rip + 0x100]', mode: S },
    { name: 'call [rip+disp] (PLT-less call)', src: 'call qword ptr [rip + 0x100]', mode: S, mem: () => [[LAYOUT.x86_64.text + 0x106n, le(8, LAYOUT.x86_64.text + 0x400n)]] },
    { name: 'jmp [rip+disp] (a PLT stub)', src: 'jmp qword ptr [rip + 0x100]', mode: S, mem: () => [[LAYOUT.x86_64.text + 0x106n, le(8, LAYOUT.x86_64.text + 0x400n)]] },
    // Unicorn honours 0x66 on a 64-bit near call/jmp (AMD's behaviour; Intel ignores it): a 16-bit
    // target and a 2-byte return address. The rewritten copy keeps the prefix and does the same.
    { name: 'call [rip+disp] with 0x66 (16-bit, as the CPU does)', src: Uint8Array.of(0x66, 0xff, 0x15, 0x00, 0x01, 0x00, 0x00), mode: S, mem: () => [[LAYOUT.x86_64.text + 0x107n, le(8, LAYOUT.x86_64.text + 0x400n)]] },
    { name: 'jmp [rbx] with 0x66 (16-bit)', src: Uint8Array.of(0x66, 0xff, 0x23), mode: S },
    { name: 'call rax with 0x66 (16-bit)', src: Uint8Array.of(0x66, 0xff, 0xd0), mode: S },
    { name: 'jmp [r12+rax*8] (REX.B and the target into rax)', src: 'jmp qword ptr [r12 + rax*8]', mode: S, regs: { ax: 2n } },
    { name: 'call r11 (REX.B)', src: 'call r11', mode: E },
    { name: 'jmp r12 (REX.B)', src: 'jmp r12', mode: E },
    { name: 'push r15 (41 57)', src: 'push r15', mode: E },
    { name: 'push with REX.W (48 53: not 41, stepped)', src: Uint8Array.of(0x48, 0x53), mode: S },
    { name: 'xchg eax, r8d (41 90) is not a NOP', src: Uint8Array.of(0x41, 0x90), mode: S },
    { name: 'nopl 0(%rax,%rax,1) (the kernel\'s 5-byte NOP)', src: Uint8Array.of(0x0f, 0x1f, 0x44, 0x00, 0x00), mode: E },
    { name: 'nopw 0(%rax,%rax,1) (66-prefixed kernel NOP)', src: Uint8Array.of(0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00), mode: E },
    { name: 'nopl 0x0(%rax) (8-byte kernel NOP)', src: Uint8Array.of(0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0), mode: E },
    { name: 'syscall from the slot returns into it', src: 'syscall', mode: S },
    { name: 'rep stosq', src: 'rep stosq', mode: S, regs: { cx: 3n }, hits: () => 3, seeds: [0] },
    { name: 'rep movsb with a 32-bit count (67 prefix)', src: Uint8Array.of(0x67, 0xf3, 0xa4), mode: S, regs: { cx: 0xffffffff00000003n, si: 0x20001000n, di: 0x20002000n }, hits: () => 3, seeds: [0] },
  ];
}

function i386Cases(): HandCase[] {
  const S = 'step' as const;
  const E = 'emulate' as const;
  return [
    { name: 'absolute disp32 load (no RIP-relative on i386)', src: `mov eax, dword ptr [${at('i386', 0x100)}]`, mode: S },
    { name: 'absolute disp32 store', src: `mov dword ptr [${at('i386', 0x104)}], ebx`, mode: S },
    { name: 'mov %esi,%esi (the 32-bit kernel\'s 2-byte NOP)', src: Uint8Array.of(0x89, 0xf6), mode: E },
    { name: 'lea 0x0(%esi,%eiz,1),%esi (4-byte NOP)', src: Uint8Array.of(0x8d, 0x74, 0x26, 0x00), mode: E },
    { name: 'nopl (0F 1F) is no 32-bit kernel NOP: stepped', src: Uint8Array.of(0x0f, 0x1f, 0x44, 0x00, 0x00), mode: S },
    { name: 'pushad', src: 'pushal', mode: S },
    { name: 'popad', src: 'popal', mode: S },
    { name: 'push es (06: allowed in 32-bit tasks)', src: Uint8Array.of(0x06), mode: S },
    { name: 'salc (d6: allowed in 32-bit tasks)', src: Uint8Array.of(0xd6), mode: S },
    { name: 'call word ptr [ebx] (16-bit: push m16)', src: Uint8Array.of(0x66, 0xff, 0x13), mode: S, regs: { sp: spOf('i386') } },
    { name: 'jcxz with address-size prefix', src: Uint8Array.of(0x67, 0xe3, 0x10), mode: E, regs: { cx: 0xffff0000n } },
    { name: 'rep movsb with 16-bit addressing and count (67 prefix)', src: Uint8Array.of(0x67, 0xf3, 0xa4), mode: S, regs: { cx: 0xabcd0003n, si: 0x12341100n, di: 0x56781800n }, hits: () => 3, seeds: [0], lowPage: true },
  ];
}

describe.each(TARGETS)('$t hand corpus: native vs probed', ({ t, ua }) => {
  const all = [...commonCases(t), ...(t === 'x86_64' ? x86_64Cases() : i386Cases())];
  it.each(all.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    const failures: string[] = [];
    for (const seed of c.seeds ?? [0, 1, 2]) {
      const code = typeof c.src === 'string' ? asm(t, c.src, LAYOUT[t].text) : c.src;
      const text = handText(t, code);
      if (c.lowPage) text.push({ base: 0x1000n, bytes: pattern(0x2000, 41, 5) });
      const s = scenario(t, text, LAYOUT[t].text, seed, { regs: c.regs, mem: c.mem?.(t) });
      const r = runUprobeDiff(s);
      if (r.refusal) {
        failures.push(`refused: ${r.refusal.errno} ${r.refusal.reason}`);
        continue;
      }
      if (r.prepared!.mode !== c.mode) failures.push(`mode ${r.prepared!.mode}, expected ${c.mode}`);
      for (const m of r.mismatches) failures.push(`seed ${seed}: ${m}`);
      const want = c.hits?.(seed) ?? 1;
      if (r.probed!.hits !== want) failures.push(`seed ${seed}: ${r.probed!.hits} hits, expected ${want} (native ran it ${r.native!.hits}×)`);
    }
    // The same analysis run where another mm maps the text (a uprobe is analysed once per file).
    const code = typeof c.src === 'string' ? asm(t, c.src, LAYOUT[t].text) : c.src;
    const text = handText(t, code);
    if (c.lowPage) text.push({ base: 0x1000n, bytes: pattern(0x2000, 41, 5) });
    const seed = (c.seeds ?? [0])[0]!;
    const moved = runUprobeDiff(scenario(t, text, LAYOUT[t].text, seed, { regs: c.regs, mem: c.mem?.(t), analyzeAt: LAYOUT[t].text + 0x1230000n }));
    for (const m of moved.mismatches) failures.push(`analysed elsewhere: ${m}`);
    expect(failures).toEqual([]);
    expect(ua.xolSlotBytes).toBe(128);
  });
});

// --- every distinct instruction of the freestanding fixtures --------------------------------------

interface CorpusInsn {
  file: string;
  fn: string;
  addr: bigint;
  bytes: Uint8Array;
}

/** The first occurrence of every distinct instruction encoding in the -nolibc fixtures. */
function fixtureCorpus(t: T): Map<string, CorpusInsn[]> {
  const byFile = new Map<string, CorpusInsn[]>();
  const seen = new Set<string>();
  const dir = join(repoRoot, 'fixtures', t);
  for (const file of readdirSync(dir).filter(corpusFixture).sort()) {
    const elf = readElfFileSync(join(dir, file));
    const list: CorpusInsn[] = [];
    for (const f of elf.functions()) {
      const bytes = elf.textBytesAt(f.codeAddress, Number(f.size));
      let off = 0;
      while (off < bytes.length) {
        const insn = decodeX86(f.codeAddress + BigInt(off), bytes.subarray(off, off + 15), t === 'x86_64');
        if (!insn) break;
        const key = Buffer.from(insn.bytes).toString('hex');
        if (!seen.has(key)) {
          seen.add(key);
          list.push({ file, fn: f.name, addr: f.codeAddress + BigInt(off), bytes: insn.bytes });
        }
        off += insn.length;
      }
    }
    if (list.length) byFile.set(file, list);
  }
  return byFile;
}

const corpusModes = { x86_64: new Map<string, number>(), i386: new Map<string, number>() };

describe.each(TARGETS)('$t fixtures: every distinct instruction of the freestanding programs', ({ t, ua }) => {
  const corpus = fixtureCorpus(t);
  const images = new Map<string, Region[]>();
  it.each(chunked(corpus, 150))('%s', (_label, chunk) => {
    const failures: string[] = [];
    const modes = corpusModes[t];
    for (const c of chunk) {
      let regions = images.get(c.file);
      if (!regions) images.set(c.file, (regions = elfRegions(join(repoRoot, 'fixtures', t, c.file), 0x1000)));
      const insn = decodeX86(c.addr, c.bytes, t === 'x86_64')!;
      // A branch to itself never ends natively; the probe would fire until its limit.
      if (/^(jmp|loop)/.test(insn.text) && insn.text.endsWith(`0x${c.addr.toString(16)}`)) continue;
      const rep = /^rep/.test(insn.text) && /(movs|stos|lods|cmps|scas)/.test(insn.text);
      for (const seed of [0, 1]) {
        // A rep string instruction gets a small count: one probe hit per iteration.
        const regs = rep ? { cx: BigInt(2 + seed) } : undefined;
        const r: UprobeDiff = runUprobeDiff(scenario(t, regions, c.addr, seed, { regs }));
        const mode = r.refusal ? `refused ${r.refusal.errno}` : r.prepared!.mode;
        modes.set(mode, (modes.get(mode) ?? 0) + 1);
        if (r.refusal) break;
        for (const m of r.mismatches) failures.push(`${c.fn} 0x${c.addr.toString(16)} ${insn.text} seed ${seed}: ${m}`);
        const want = rep ? 2 + seed : 1;
        if (r.probed!.hits !== want && !r.probed!.events.some((e) => e.startsWith('fault') || e.startsWith('err'))) {
          failures.push(`${c.fn} 0x${c.addr.toString(16)} ${insn.text} seed ${seed}: ${r.probed!.hits} hits, expected ${want}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });
  it('the corpus exercised emulation, stepping and refusals', () => {
    const m = corpusModes[t];
    expect(m.get('emulate') ?? 0).toBeGreaterThan(300);
    expect(m.get('step') ?? 0).toBeGreaterThan(1000);
    // i386's system-call stubs use int $0x80, which the table refuses; x86_64's _start has hlt.
    expect(m.get(`refused ${ERRNO.ENOTSUPP}`) ?? 0).toBeGreaterThan(0);
  });
});

// --- refusals -------------------------------------------------------------------------------------

interface RefusalCase {
  name: string;
  bytes: number[];
  errno: number;
  reason: RegExp;
}

const REFUSALS_COMMON: RefusalCase[] = [
  { name: 'undecodable (FF /7)', bytes: [0xff, 0xff], errno: ERRNO.ENOEXEC, reason: /cannot decode/ },
  { name: 'ES override', bytes: [0x26, 0x8b, 0x03], errno: ERRNO.ENOTSUPP, reason: /ES segment override/ },
  { name: 'CS override (also the nopw padding gcc emits)', bytes: [0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0], errno: ERRNO.ENOTSUPP, reason: /CS segment override/ },
  { name: 'SS override', bytes: [0x36, 0x8b, 0x03], errno: ERRNO.ENOTSUPP, reason: /SS segment override/ },
  { name: 'DS override (notrack jmp)', bytes: [0x3e, 0xff, 0xe0], errno: ERRNO.ENOTSUPP, reason: /DS segment override/ },
  { name: 'LOCK prefix', bytes: [0xf0, 0x01, 0x03], errno: ERRNO.ENOTSUPP, reason: /LOCK prefix/ },
  { name: 'the first bad prefix is named', bytes: [0xf0, 0x2e, 0x01, 0x03], errno: ERRNO.ENOTSUPP, reason: /LOCK prefix/ },
  { name: 'mov ss, ax', bytes: [0x8e, 0xd0], errno: ERRNO.ENOTSUPP, reason: /mov to ss/ },
  { name: 'int3', bytes: [0xcc], errno: ERRNO.ENOTSUPP, reason: /int3/ },
  { name: 'int 0x80', bytes: [0xcd, 0x80], errno: ERRNO.ENOTSUPP, reason: /int N/ },
  { name: 'iret', bytes: [0xcf], errno: ERRNO.ENOTSUPP, reason: /iret/ },
  { name: 'int1', bytes: [0xf1], errno: ERRNO.ENOTSUPP, reason: /int1/ },
  { name: 'hlt', bytes: [0xf4], errno: ERRNO.ENOTSUPP, reason: /hlt/ },
  { name: 'cli', bytes: [0xfa], errno: ERRNO.ENOTSUPP, reason: /cli/ },
  { name: 'sti', bytes: [0xfb], errno: ERRNO.ENOTSUPP, reason: /sti/ },
  { name: 'insb', bytes: [0x6c], errno: ERRNO.ENOTSUPP, reason: /port I\/O/ },
  { name: 'outsd', bytes: [0x6f], errno: ERRNO.ENOTSUPP, reason: /port I\/O/ },
  { name: 'in al, imm8', bytes: [0xe4, 0x60], errno: ERRNO.ENOTSUPP, reason: /port I\/O/ },
  { name: 'out dx, al', bytes: [0xee], errno: ERRNO.ENOTSUPP, reason: /port I\/O/ },
  { name: 'jmp rel32 with 0x66', bytes: [0x66, 0xe9, 0x00, 0x01], errno: ERRNO.ENOTSUPP, reason: /0x66/ },
  { name: 'call rel with 0x66', bytes: [0x66, 0xe8, 0x00, 0x01], errno: ERRNO.ENOTSUPP, reason: /0x66/ },
  { name: 'jcc rel8 with 0x66', bytes: [0x66, 0x74, 0x10], errno: ERRNO.ENOTSUPP, reason: /0x66/ },
  { name: 'jcc rel32 with 0x66', bytes: [0x66, 0x0f, 0x84, 0x10, 0x00], errno: ERRNO.ENOTSUPP, reason: /0x66/ },
  { name: 'lret (engine: far transfer)', bytes: [0xcb], errno: ERRNO.ENOTSUPP, reason: /far return/ },
  { name: 'lret imm16 (engine: far transfer)', bytes: [0xca, 0x08, 0x00], errno: ERRNO.ENOTSUPP, reason: /far return/ },
  { name: 'lcall [mem] (engine: far transfer)', bytes: [0xff, 0x18], errno: ERRNO.ENOTSUPP, reason: /far indirect/ },
  { name: 'ljmp [mem] (engine: far transfer)', bytes: [0xff, 0x28], errno: ERRNO.ENOTSUPP, reason: /far indirect/ },
];

const REFUSALS: Record<T, RefusalCase[]> = {
  x86_64: [
    ...REFUSALS_COMMON,
    { name: 'push es (invalid in 64-bit mode: does not decode)', bytes: [0x06], errno: ERRNO.ENOEXEC, reason: /cannot decode/ },
    { name: 'pop ss (invalid in 64-bit mode)', bytes: [0x17], errno: ERRNO.ENOEXEC, reason: /cannot decode/ },
    { name: 'far call ptr16:32 (invalid in 64-bit mode)', bytes: [0x9a, 0, 0, 0, 0, 0x10, 0], errno: ERRNO.ENOEXEC, reason: /cannot decode/ },
    { name: 'mov ss with REX', bytes: [0x48, 0x8e, 0xd0], errno: ERRNO.ENOTSUPP, reason: /mov to ss/ },
    { name: 'into (invalid in 64-bit mode)', bytes: [0xce], errno: ERRNO.ENOEXEC, reason: /cannot decode/ },
  ],
  i386: [
    ...REFUSALS_COMMON,
    { name: 'pop ss', bytes: [0x17], errno: ERRNO.ENOTSUPP, reason: /pop ss/ },
    { name: 'into', bytes: [0xce], errno: ERRNO.ENOTSUPP, reason: /into/ },
    { name: 'pop es', bytes: [0x07], errno: ERRNO.ENOTSUPP, reason: /pop es/ },
    { name: 'pop ds', bytes: [0x1f], errno: ERRNO.ENOTSUPP, reason: /pop ds/ },
    { name: 'far call ptr16:32 (engine: far transfer)', bytes: [0x9a, 0, 0, 0, 0, 0x10, 0], errno: ERRNO.ENOTSUPP, reason: /far call/ },
    { name: 'far jmp ptr16:32 (engine: far transfer)', bytes: [0xea, 0, 0, 0, 0, 0x10, 0], errno: ERRNO.ENOTSUPP, reason: /far call\/jmp/ },
  ],
};

describe.each(TARGETS)('$t refusals (uprobe_init_insn, branch_setup_xol_ops, engine limits)', ({ t, ua }) => {
  it.each(REFUSALS[t].map((r) => [r.name, r] as const))('%s', (_n, r) => {
    const p = ua.analyzeUprobe(LAYOUT[t].text, Uint8Array.from([...r.bytes, ...new Array(16).fill(0x90)]));
    expect(isRefusal(p)).toBe(true);
    expect((p as ProbeRefusal).errno).toBe(r.errno);
    expect((p as ProbeRefusal).reason).toMatch(r.reason);
  });

  it('is_trap_insn is int3 only; the swbp is int3', () => {
    expect([...ua.swbp]).toEqual([0xcc]);
    expect(ua.isTrapInsn(Uint8Array.of(0xcc, 0x90))).toBe(true);
    expect(ua.isTrapInsn(Uint8Array.of(0xcd, 0x03))).toBe(false);
    expect(ua.isTrapInsn(Uint8Array.of(0x90))).toBe(false);
    expect(ua.maxInsnBytes).toBe(16);
  });

  it('an instruction at the end of the text (fewer than 16 bytes readable) is analysed', () => {
    const p = ua.analyzeUprobe(LAYOUT[t].text, Uint8Array.of(0x01, 0xd8)) as PreparedUprobe;
    expect(p.mode).toBe('step');
    expect([...p.slotBytes(LAYOUT[t].xol)]).toEqual([0x01, 0xd8, 0xcc]);
    expect(p.stepTrapOffset).toBe(2);
  });
});

// --- the slot -------------------------------------------------------------------------------------

describe('x86_64 RIP-relative rewrite through a scratch register', () => {
  const ua = uprobeArchFor(x86_64);
  const v = LAYOUT.x86_64.text;
  const prep = (src: string | Uint8Array): PreparedUprobe => {
    const b = typeof src === 'string' ? asm('x86_64', src, v) : src;
    const p = ua.analyzeUprobe(v, b);
    if (isRefusal(p)) throw new Error(p.reason);
    return p;
  };
  const slot = (p: PreparedUprobe): number[] => [...p.slotBytes(LAYOUT.x86_64.xol)];

  it('modrm 00 reg 101 becomes 10 reg si; disp32 and the immediate after it are kept; int3 follows', () => {
    const b = asm('x86_64', 'add dword ptr [rip + 0x208], 0x12345678', v);
    expect([...b]).toEqual([0x81, 0x05, 0x08, 0x02, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12]);
    expect(slot(prep(b))).toEqual([0x81, 0x86, 0x08, 0x02, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12, 0xcc]);
  });
  it('the scratch register avoids the one modrm.reg names: si, else di, else bx (VEX.vvvv too)', () => {
    expect(slot(prep('mov rax, qword ptr [rip + 0x10]')).slice(0, 3)).toEqual([0x48, 0x8b, 0x86]); // [rsi]
    expect(slot(prep('mov rsi, qword ptr [rip + 0x10]')).slice(0, 3)).toEqual([0x48, 0x8b, 0xb7]); // [rdi]
    // mulx rsi(reg=6), rdi(vvvv=7), [rip]: only bx is left.
    const mulx = Uint8Array.of(0xc4, 0xe2, 0xc3, 0xf6, 0x35, 0x10, 0x00, 0x00, 0x00);
    expect(decodeX86(v, mulx, true)!.text).toMatch(/mulx rsi, rdi, qword ptr \[rip/);
    const s = slot(prep(mulx));
    expect(s[4]).toBe(0x80 | (6 << 3) | 3);
    expect(s[1]! & 0x60).toBe(0x60); // VEX3 R̄X̄B̄ byte: B̄ (and X̄) set, i.e. no extension of rm
  });
  it('REX.B is cleared (rm becomes a low register), REX.R/W kept', () => {
    // mov r10, [rip+x] = 4c 8b 15 …: REX.W|R, no B. With a spurious REX.B (4d) it must go.
    const p = prep(Uint8Array.of(0x4d, 0x8b, 0x15, 0x10, 0, 0, 0));
    expect(slot(p).slice(0, 3)).toEqual([0x4c, 0x8b, 0x96]);
  });
  it('call [rip+disp] becomes push [scratch+disp] (FF /6), jmp [rip+disp] mov scratch, [scratch+disp]', () => {
    expect(slot(prep('call qword ptr [rip + 0x100]'))).toEqual([0xff, 0xb6, 0x00, 0x01, 0x00, 0x00, 0xcc]);
    expect(slot(prep('jmp qword ptr [rip + 0x100]'))).toEqual([0x48, 0x8b, 0xb6, 0x00, 0x01, 0x00, 0x00, 0xcc]);
    // jmp [r12+rax*8]: the target goes to rax (REX.B kept for r12), fs override kept.
    expect(slot(prep('jmp qword ptr fs:[r12 + rax*8]'))).toEqual([0x64, 0x49, 0x8b, 0x04, 0xc4, 0xcc]);
    expect(slot(prep(Uint8Array.of(0x66, 0xff, 0x15, 0x00, 0x01, 0x00, 0x00)))).toEqual([0x66, 0xff, 0xb6, 0x00, 0x01, 0x00, 0x00, 0xcc]);
  });
  it('the slot does not depend on where it is: the same bytes at any XOL address', () => {
    const p = prep('mov rax, qword ptr [rip + 0x100]');
    expect([...p.slotBytes(0x1000n)]).toEqual([...p.slotBytes(0x7fffffffe000n)]);
  });
  it('preXol loads vaddr + len into the scratch register, postXol and abortXol restore it', () => {
    const e = openEngine(x86_64);
    try {
      e.memMap(0x1000n, 0x1000, UC_PROT.ALL);
      const cpu = { engine: e, mem: memAccess(e, x86_64) };
      const p = prep('mov rax, qword ptr [rip + 0x100]');
      e.regWrite(REGS_64.gpr[6]!, 0x1234n);
      const st = p.preXol(cpu, LAYOUT.x86_64.xol, v);
      expect(e.regRead(REGS_64.gpr[6]!)).toBe(v + 7n);
      expect(e.regRead(REGS_64.ip)).toBe(LAYOUT.x86_64.xol);
      p.postXol(cpu, LAYOUT.x86_64.xol, v, st);
      expect(e.regRead(REGS_64.gpr[6]!)).toBe(0x1234n);
      expect(e.regRead(REGS_64.ip)).toBe(v + 7n);
      const st2 = p.preXol(cpu, LAYOUT.x86_64.xol, v);
      p.abortXol(cpu, LAYOUT.x86_64.xol, v, st2);
      expect(e.regRead(REGS_64.gpr[6]!)).toBe(0x1234n);
      expect(e.regRead(REGS_64.ip)).toBe(v);
    } finally {
      e.close();
    }
  });
  it('i386 has no RIP-relative form: mod=00 rm=101 is absolute and copied unchanged', () => {
    const u = uprobeArchFor(i386);
    const b = asm('i386', 'mov eax, dword ptr [0x8049100]', LAYOUT.i386.text);
    const p = u.analyzeUprobe(LAYOUT.i386.text, b) as PreparedUprobe;
    expect([...p.slotBytes(LAYOUT.i386.xol)]).toEqual([...b, 0xcc]);
  });
  it('a call whose emulation fails steps as `call +0` (branch_clear_offset)', () => {
    const p = prep(`call 0x${(v + 0x300n).toString(16)}`);
    expect(p.mode).toBe('emulate');
    expect(slot(p)).toEqual([0xe8, 0, 0, 0, 0, 0xcc]);
  });
});

// --- return probes --------------------------------------------------------------------------------

describe.each(TARGETS)('$t uretprobe hooks', ({ t, arch, ua }) => {
  const w = arch.wordSize;
  const withCpu = (fn: (e: Engine, cpu: { engine: Engine; mem: ReturnType<typeof memAccess> }) => void): void => {
    const e = openEngine(arch);
    try {
      e.memMap(LAYOUT[t].stack, STACK_SIZE, UC_PROT.ALL);
      fn(e, { engine: e, mem: memAccess(e, arch) });
    } finally {
      e.close();
    }
  };
  const tramp = LAYOUT[t].xol;
  const ret = LAYOUT[t].text + 0x123n;

  it('hijack swaps the word at sp for the trampoline and gives back the original (4 bytes in a 32-bit task)', () => {
    withCpu((e, cpu) => {
      const sp = spOf(t);
      e.memWrite(sp, le(w, ret));
      e.memWrite(sp + BigInt(w), le(w, 0x5a5a5a5an));
      arch.setSp(e, sp);
      expect(ua.hijackUserReturn(cpu, tramp)).toBe(ret);
      expect([...e.memRead(sp, w)]).toEqual([...le(w, tramp)]);
      expect([...e.memRead(sp + BigInt(w), w)]).toEqual([...le(w, 0x5a5a5a5an)]);
      expect(ua.userSp(cpu)).toBe(sp);
    });
  });
  it('an already hijacked return address (a chained tail call) is given back as is', () => {
    withCpu((e, cpu) => {
      const sp = spOf(t);
      e.memWrite(sp, le(w, tramp));
      arch.setSp(e, sp);
      expect(ua.hijackUserReturn(cpu, tramp)).toBe(tramp);
      expect([...e.memRead(sp, w)]).toEqual([...le(w, tramp)]);
    });
  });
  it('an unreadable or unwritable stack gives undefined (no instance)', () => {
    withCpu((e, cpu) => {
      arch.setSp(e, 0x1000n);
      expect(ua.hijackUserReturn(cpu, tramp)).toBeUndefined();
      // A read-only stack page (the core's guest memory refuses the write).
      const sp = spOf(t);
      e.memWrite(sp, le(w, ret));
      arch.setSp(e, sp);
      const ro = { ...cpu.mem, write: () => { throw new Error('EFAULT'); } };
      expect(ua.hijackUserReturn({ engine: e, mem: ro }, tramp)).toBeUndefined();
      expect([...e.memRead(sp, w)]).toEqual([...le(w, ret)]);
    });
  });
  it('is_alive: sp < stack right after a call, sp <= stack at a chained call and at the trampoline', () => {
    withCpu((e, cpu) => {
      const s = spOf(t);
      for (const [sp, call, chain, retc] of [
        [s - BigInt(w), true, true, true],
        [s, false, true, true],
        [s + BigInt(w), false, false, false],
      ] as const) {
        arch.setSp(e, sp);
        expect(ua.uretprobeIsAlive(cpu, s, 'call'), `call ${sp - s}`).toBe(call);
        expect(ua.uretprobeIsAlive(cpu, s, 'chain-call'), `chain ${sp - s}`).toBe(chain);
        expect(ua.uretprobeIsAlive(cpu, s, 'ret'), `ret ${sp - s}`).toBe(retc);
      }
    });
  });
});

describe('uprobeArchFor', () => {
  it('gives one back-end per arch, of its family', async () => {
    const { ppc32 } = await import('../../arch/ppc/ppc32.js');
    const { sparc64 } = await import('../../arch/sparc/sparc64.js');
    expect(uprobeArchFor(x86_64)).toBe(uprobeArchFor(x86_64));
    expect(uprobeArchFor(i386)).not.toBe(uprobeArchFor(x86_64));
    expect([...uprobeArchFor(i386).swbp]).toEqual([0xcc]);
    expect([...uprobeArchFor(ppc32).swbp]).toEqual([0x7f, 0xe0, 0x00, 0x08]);
    expect([...uprobeArchFor(sparc64).swbp]).toEqual([0x91, 0xd0, 0x20, 0x73]);
  });
});

// --- the comparison can fail ----------------------------------------------------------------------

describe('the uprobe harness detects wrong handling', () => {
  const t: T = 'x86_64';
  const v = LAYOUT[t].text;
  const run = (src: string, tamper: (p: PreparedUprobe) => PreparedUprobe, seed = 0, regs?: Record<string, bigint>): UprobeDiff =>
    runUprobeDiff(scenario(t, handText(t, asm(t, src, v)), v, seed, { tamper, regs }));

  it('a RIP-relative copy run without the rewrite reads from near the slot', () => {
    const r = run('mov rax, qword ptr [rip + 0x100]', (p) => ({ ...p, slotBytes: () => Uint8Array.from([...p.insn.bytes, 0xcc]), preXol: (cpu, slot) => (cpu.engine.regWrite(REGS_64.ip, slot), undefined) }));
    expect(r.mismatches.length).toBeGreaterThan(0);
  });
  it('a scratch register left loaded', () => {
    const r = run('mov rax, qword ptr [rip + 0x100]', (p) => ({ ...p, postXol: (cpu, s, va) => p.postXol(cpu, s, va, {}) }));
    expect(r.mismatches.some((m) => m.startsWith('rsi:'))).toBe(true);
  });
  it('a postXol that leaves the IP in the slot', () => {
    const r = run('add rax, rbx', (p) => ({ ...p, postXol: () => undefined }));
    expect(r.mismatches.some((m) => m.startsWith('rip:'))).toBe(true);
  });
  it('an indirect call whose return address is the slot\'s', () => {
    const r = run('call qword ptr [rbx]', (p) => ({
      ...p,
      postXol: (cpu, s, va, st) => {
        p.postXol(cpu, s, va, st);
        cpu.mem.write(cpu.engine.regRead(REGS_64.sp), le(8, s + 6n));
      },
    }));
    expect(r.mismatches.some((m) => m.startsWith('memory'))).toBe(true);
  });
  it('a rep instruction run whole in one step fires once instead of per iteration', () => {
    const r = run('rep movsb', (p) => ({ ...p, preXol: (cpu, s) => (cpu.engine.regWrite(REGS_64.ip, s), {}) }), 0, { cx: 4n });
    expect(r.mismatches).toEqual([]);
    expect(r.probed!.hits).toBe(1);
  });
  it('a jcc evaluated the other way', () => {
    const found: string[] = [];
    for (const seed of [0, 1, 2]) {
      const r = run(`je 0x${(v + 0x40n).toString(16)}`, (p) => ({
        ...p,
        emulate: (cpu) => {
          const f = cpu.engine.regRead(REGS_64.flags);
          cpu.engine.regWrite(REGS_64.flags, f ^ 0x40n);
          const ok = p.emulate!(cpu);
          cpu.engine.regWrite(REGS_64.flags, f);
          return ok;
        },
      }), seed);
      found.push(...r.mismatches);
    }
    expect(found.some((m) => m.startsWith('rip:'))).toBe(true);
  });
});
