/**
 * x86 kprobes back-end (arch/x86/kprobes): refusals with Linux's errno and reason, the choice
 * between emulate / boost / step, and differential execution: every instruction of a hand-picked
 * corpus (assembled with Keystone) and every instruction of the guest kernel images runs once
 * natively and once through the probe path on fresh engines; registers, flags, IP, faults and all
 * mapped memory must agree (test/arch/x86-probe-harness.ts).
 */
import { openEngine } from '../../arch/engine.js';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { x86_64 } from '../../arch/x86/x86_64.js';
import { i386 } from '../../arch/x86/i386.js';
import type { Arch } from '../../arch/types.js';
import { isRefusal, type PreparedInsn, type ProbeArch, type ProbeRefusal } from '../../arch/probes.js';
import { x86ProbeArch, EILSEQ, EINVAL, EOPNOTSUPP } from '../../arch/x86/kprobes/index.js';
import { readElfFileSync } from '../../src/elf/index.js';
import { repoRoot, FULL } from '../helpers.js';
import { LAYOUT, runDiff, type DiffCase, type DiffResult } from './x86-probe-harness.js';

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
const ksFactory = require('@alexaltea/keystone-js') as () => Promise<KeystoneModule>;
const ks = await ksFactory();
const assemblers = { x86_64: new ks.Keystone(ks.ARCH_X86, ks.MODE_64), i386: new ks.Keystone(ks.ARCH_X86, ks.MODE_32) };

function asm(target: 'x86_64' | 'i386', src: string, addr: bigint): Uint8Array {
  const r = assemblers[target].asm(src, addr);
  if (r.failed || r.mc.length === 0) throw new Error(`keystone cannot assemble "${src}" for ${target}`);
  return r.mc;
}

const TARGETS: Array<{ arch: Arch; probe: ProbeArch; t: 'x86_64' | 'i386' }> = [
  { arch: x86_64, probe: x86ProbeArch(x86_64), t: 'x86_64' },
  { arch: i386, probe: x86ProbeArch(i386), t: 'i386' },
];

/** Hand-picked code lives here: a page of pattern bytes the code is written over. */
const HP_BASE = { x86_64: 0xffffffff81100000n, i386: 0xc1100000n };
const HP_SIZE = 0x2000;

function patternText(): Uint8Array {
  const b = new Uint8Array(HP_SIZE);
  for (let i = 0; i < b.length; i++) b[i] = (i * 37 + 11) & 0xff;
  return b;
}

function le(size: number, v: bigint): Uint8Array {
  const b = new Uint8Array(size);
  for (let k = 0; k < size; k++) b[k] = Number((v >> BigInt(8 * k)) & 0xffn);
  return b;
}

/** The stack top as the harness seeds it (sp = middle of the stack window). */
const spOf = (t: 'x86_64' | 'i386'): bigint => LAYOUT[t].stack.base + BigInt(LAYOUT[t].stack.size / 2);

interface HandCase {
  name: string;
  /** Assembly of the probed instruction, or raw bytes. */
  src: string | Uint8Array;
  regs?: Record<string, bigint>;
  mem?: (t: 'x86_64' | 'i386', base: bigint) => Array<[bigint, Uint8Array]>;
  /** Expected modes without / with a post handler. */
  modes: [string, string];
}

function handCase(t: 'x86_64' | 'i386', c: HandCase, seed: number, hasPostHandler: boolean): DiffCase {
  const base = HP_BASE[t];
  const text = patternText();
  const code = typeof c.src === 'string' ? asm(t, c.src, base) : c.src;
  text.set(code, 0);
  return { text: { base, bytes: text }, addr: base, seed, hasPostHandler, regs: c.regs, mem: c.mem?.(t, base) };
}

const retTo = (off: number) => (t: 'x86_64' | 'i386', base: bigint): Array<[bigint, Uint8Array]> => [[spOf(t), le(t === 'x86_64' ? 8 : 4, base + BigInt(off))]];
const flagsOnStack = (t: 'x86_64' | 'i386'): Array<[bigint, Uint8Array]> => [[spOf(t), le(t === 'x86_64' ? 8 : 4, 0x8d7n)]];

/** Instructions valid in both modes (register names adapted per mode by `r`). */
function commonCases(t: 'x86_64' | 'i386'): HandCase[] {
  const a = t === 'x86_64' ? 'rax' : 'eax';
  const b = t === 'x86_64' ? 'rbx' : 'ebx';
  const cx = t === 'x86_64' ? 'rcx' : 'ecx';
  const sp = t === 'x86_64' ? 'rsp' : 'esp';
  const si = t === 'x86_64' ? 'rsi' : 'esi';
  const base = HP_BASE[t];
  const at = (off: number): string => '0x' + (base + BigInt(off)).toString(16);
  const E: [string, string] = ['emulate', 'emulate'];
  const B: [string, string] = ['boost', 'step'];
  const S: [string, string] = ['step', 'step'];
  const cases: HandCase[] = [
    { name: 'jmp rel8', src: `jmp ${at(0x20)}`, modes: E },
    { name: 'jmp rel32', src: `jmp ${at(0x400)}`, modes: E },
    { name: 'jmp rel8 backwards', src: Uint8Array.of(0xeb, 0xf0), modes: E },
    { name: 'call rel32', src: `call ${at(0x300)}`, modes: E },
    { name: 'ret', src: 'ret', mem: retTo(0x40), modes: ['boost', 'emulate'] },
    { name: 'ret imm16', src: 'ret 8', mem: retTo(0x40), modes: ['boost', 'emulate'] },
    { name: 'loop', src: `loop ${at(0x30)}`, regs: { cx: 2n }, modes: E },
    { name: 'loop ends', src: `loop ${at(0x30)}`, regs: { cx: 1n }, modes: E },
    { name: 'loope', src: `loope ${at(0x30)}`, regs: { cx: 5n }, modes: E },
    { name: 'loopne', src: `loopne ${at(0x30)}`, regs: { cx: 5n }, modes: E },
    { name: 'jcxz-family taken', src: t === 'x86_64' ? `jrcxz ${at(0x30)}` : `jecxz ${at(0x30)}`, regs: { cx: 0n }, modes: E },
    { name: 'jcxz-family not taken', src: t === 'x86_64' ? `jrcxz ${at(0x30)}` : `jecxz ${at(0x30)}`, regs: { cx: 7n }, modes: E },
    { name: 'jecxz/jcxz with address-size prefix', src: t === 'x86_64' ? `jecxz ${at(0x30)}` : Uint8Array.of(0x67, 0xe3, 0x10), regs: { cx: 0x10000n }, modes: E },
    { name: 'loop with address-size prefix', src: Uint8Array.of(0x67, 0xe2, 0x10), regs: { cx: 0x100000001n & (t === 'x86_64' ? ~0n : 0xffffffffn) }, modes: E },
    { name: 'call reg', src: `call ${a}`, modes: E },
    { name: 'jmp reg', src: `jmp ${b}`, modes: ['boost', 'emulate'] },
    { name: 'call sp', src: `call ${sp}`, modes: E },
    { name: 'cli', src: 'cli', modes: ['boost', 'emulate'] },
    { name: 'sti', src: 'sti', regs: { flags: 0x2n }, modes: ['boost', 'emulate'] },
    { name: 'pushf', src: t === 'x86_64' ? 'pushfq' : 'pushfd', modes: ['boost', 'emulate'] },
    { name: 'popf', src: t === 'x86_64' ? 'popfq' : 'popfd', mem: flagsOnStack, modes: ['boost', 'emulate'] },
    { name: 'pushf 16-bit', src: Uint8Array.of(0x66, 0x9c), modes: ['boost', 'emulate'] },
    { name: 'push reg', src: `push ${b}`, modes: B },
    { name: 'pop reg', src: `pop ${cx}`, modes: B },
    { name: 'push imm32', src: 'push 0x12345678', modes: B },
    { name: 'mov reg,reg', src: `mov ${a}, ${b}`, modes: B },
    { name: 'mov reg,[reg+disp]', src: `mov eax, dword ptr [${si} + 0x40]`, modes: B },
    { name: 'mov [reg],imm', src: `mov dword ptr [${b} - 8], 0x11223344`, modes: B },
    { name: 'add', src: `add ${a}, ${b}`, modes: B },
    { name: 'sub imm8', src: `sub ${a}, 0x7f`, modes: B },
    { name: 'adc', src: `adc ${a}, ${b}`, modes: B },
    { name: 'imul', src: `imul ${a}, ${b}, 0x33`, modes: B },
    { name: 'xor', src: `xor ${a}, ${a}`, modes: B },
    { name: 'shl imm (C1: not boostable)', src: `shl ${a}, 3`, modes: S },
    { name: 'sar 1 (D1: not boostable)', src: `sar ${b}, 1`, modes: S },
    { name: 'neg (F7: not boostable)', src: `neg ${a}`, modes: S },
    { name: 'mul (F7)', src: `mul ${b}`, modes: S },
    { name: 'div faults or not (F7)', src: `div ${cx}`, regs: { dx: 0n }, modes: S },
    { name: 'div by zero faults', src: `div ${cx}`, regs: { cx: 0n, dx: 0n }, modes: S },
    { name: 'inc (FF /0: not boostable)', src: `inc dword ptr [${b}]`, modes: S },
    { name: 'inc byte (FE)', src: `inc byte ptr [${b}]`, modes: S },
    { name: 'lock xadd (0F C1)', src: `lock xadd dword ptr [${b}], eax`, modes: B },
    { name: 'cmpxchg (0F B1)', src: `cmpxchg dword ptr [${b}], ecx`, modes: B },
    { name: 'xchg mem', src: t === 'x86_64' ? 'xchg rax, qword ptr [rbx]' : 'xchg eax, dword ptr [ebx]', modes: B },
    { name: 'bt (0F A3)', src: 'bt eax, ecx', modes: B },
    { name: 'sete (0F 94)', src: 'sete al', modes: B },
    { name: 'cmovne (0F 45)', src: `cmovne ${a}, ${b}`, modes: B },
    { name: 'movzx (0F B6)', src: 'movzx eax, byte ptr [ebx]'.replace(/ebx/, b), modes: B },
    { name: 'movsx (0F BE)', src: 'movsx ecx, byte ptr [esi]'.replace(/esi/, si), modes: B },
    { name: 'bswap (0F C8)', src: 'bswap eax', modes: B },
    { name: 'bsf (0F BC)', src: 'bsf eax, ebx', modes: B },
    { name: 'rep movsb (prefix F3 + A4)', src: 'rep movsb', regs: { cx: 9n }, modes: B },
    { name: 'rep stosd', src: 'rep stosd', regs: { cx: 5n }, modes: B },
    { name: 'movsb', src: 'movsb', modes: B },
    { name: 'lodsb', src: 'lodsb', modes: B },
    { name: 'repne scasb', src: 'repne scasb', regs: { cx: 40n }, modes: B },
    { name: 'std', src: 'std', modes: B },
    { name: 'cld', src: 'cld', modes: B },
    { name: 'lahf', src: 'lahf', modes: B },
    { name: 'sahf', src: 'sahf', modes: B },
    { name: 'cdq', src: 'cdq', modes: B },
    { name: 'leave', src: 'leave', regs: { bp: spOf(t) + 0x40n }, modes: B },
    { name: 'nop', src: 'nop', modes: B },
    { name: 'nopl (0F 1F 44 00 00, the ftrace nop)', src: Uint8Array.of(0x0f, 0x1f, 0x44, 0x00, 0x00), modes: B },
    { name: 'lea', src: `lea ${a}, [${b} + ${cx}*4 + 0x10]`, modes: B },
    { name: 'cs-prefixed mov (not boostable)', src: Uint8Array.of(0x2e, 0x89, 0xd8), modes: S },
    { name: 'address-size mov (not boostable)', src: t === 'x86_64' ? Uint8Array.of(0x67, 0x8b, 0x03) : Uint8Array.of(0x67, 0x8b, 0x07), modes: S },
    { name: 'fault: load from unmapped', src: `mov eax, dword ptr [${b}]`, regs: { bx: 0x1000n }, modes: B },
    { name: 'ud2 faults', src: 'ud2', modes: S },
  ];
  const conds = ['jo', 'jno', 'jb', 'jae', 'je', 'jne', 'jbe', 'ja', 'js', 'jns', 'jp', 'jnp', 'jl', 'jge', 'jle', 'jg'];
  for (const j of conds) cases.push({ name: `${j} rel8`, src: `${j} ${at(0x40)}`, modes: E });
  for (const j of ['je', 'jl', 'jbe', 'jns']) cases.push({ name: `${j} rel32`, src: `${j} ${at(0x800)}`, modes: E });
  return cases;
}

function x86_64Cases(): HandCase[] {
  const B: [string, string] = ['boost', 'step'];
  return [
    { name: 'RIP-relative load', src: 'mov rax, qword ptr [rip + 0x100]', modes: B },
    { name: 'RIP-relative store', src: 'mov qword ptr [rip + 0x100], rbx', modes: B },
    { name: 'RIP-relative store with imm after disp', src: 'mov dword ptr [rip + 0x120], 0x55667788', modes: B },
    { name: 'RIP-relative lea', src: 'lea rcx, [rip - 0x80]', modes: B },
    { name: 'RIP-relative cmp imm8', src: 'cmp qword ptr [rip + 0x200], 5', modes: B },
    { name: 'RIP-relative add imm32', src: 'add dword ptr [rip + 0x208], 0x12345678', modes: B },
    { name: 'RIP-relative movzx', src: 'movzx eax, byte ptr [rip + 0x40]', modes: B },
    { name: 'RIP-relative push', src: 'push qword ptr [rip + 0x80]', modes: ['step', 'step'] },
    { name: 'RIP-relative shl (C1 with disp and imm)', src: 'shl dword ptr [rip + 0x90], 3', modes: ['step', 'step'] },
    { name: 'RIP-relative with REX.R register', src: 'mov r10, qword ptr [rip + 0x300]', modes: B },
    { name: 'call r11 (REX.B)', src: 'call r11', modes: ['emulate', 'emulate'] },
    { name: 'jmp r12 (REX.B)', src: 'jmp r12', modes: ['boost', 'emulate'] },
    { name: 'push r15', src: 'push r15', modes: B },
    { name: 'mov r8,imm64', src: 'movabs r8, 0x1122334455667788', modes: B },
    { name: 'cqo', src: 'cqo', modes: B },
    { name: 'rep stosq', src: 'rep stosq', regs: { cx: 4n }, modes: B },
    { name: 'lret-free 64-bit push/pop pair: pop r9', src: 'pop r9', modes: B },
  ];
}

function i386Cases(): HandCase[] {
  const B: [string, string] = ['boost', 'step'];
  return [
    { name: 'absolute disp32 load (no RIP-relative on i386)', src: 'mov eax, dword ptr [0xc1100100]', modes: B },
    { name: 'absolute disp32 store', src: 'mov dword ptr [0xc1100104], ebx', modes: B },
    { name: 'ret imm16 (regparm callee-pops)', src: 'ret 4', mem: retTo(0x40), modes: ['boost', 'emulate'] },
    { name: 'pushad', src: 'pushal', modes: B },
    { name: 'popad', src: 'popal', modes: B },
    { name: 'jcxz (address-size 16)', src: Uint8Array.of(0x67, 0xe3, 0x10), regs: { cx: 0xffff0000n }, modes: ['emulate', 'emulate'] },
  ];
}

const SEEDS = [0, 1, 2];

describe.each(TARGETS)('$t hand-picked corpus: native vs probed', ({ arch, probe, t }) => {
  const all = [...commonCases(t), ...(t === 'x86_64' ? x86_64Cases() : i386Cases())];
  it.each(all.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const failures: string[] = [];
    for (const [i, post] of [false, true].entries()) {
      for (const seed of SEEDS) {
        const r = runDiff(arch, probe, handCase(t, c, seed, post));
        if (r.mode !== c.modes[i]) failures.push(`post=${post}: mode ${r.mode}${r.refusal ? ` (${r.refusal.reason})` : ''}, expected ${c.modes[i]}`);
        for (const m of r.mismatches) failures.push(`post=${post} seed=${seed}: ${m}`);
      }
    }
    expect(failures).toEqual([]);
  });
});

/** The loaded image of a guest kernel and its functions. */
function kernelImage(t: 'x86_64' | 'i386'): { base: bigint; bytes: Uint8Array; funcs: Array<{ name: string; start: bigint; size: bigint }> } {
  const elf = readElfFileSync(join(repoRoot, 'fixtures', 'kernel', t, 'vmlinux'));
  const loads = elf.loadSegments();
  const base = loads[0]!.vaddr;
  const end = loads.reduce((m, s) => (s.vaddr + s.memsz > m ? s.vaddr + s.memsz : m), 0n);
  const bytes = new Uint8Array(Number(end - base));
  for (const s of loads) bytes.set(elf.textBytesAt(s.vaddr, Number(s.memsz)), Number(s.vaddr - base));
  // fixtures/kernel/bench_pad.c adds 192 identical padding functions (probe targets for the kprobes
  // benchmark); one of them stands for all, or this walk would take minutes.
  const funcs = elf.functions()
    .filter((f) => !f.name.startsWith('bench_pad_') || f.name === 'bench_pad_00')
    .map((f) => ({ name: f.name, start: f.codeAddress, size: f.size }));
  return { base, bytes, funcs };
}

const kernelModes = { x86_64: new Map<string, number>(), i386: new Map<string, number>() };

describe.each(TARGETS)('$t guest kernel: every instruction, native vs probed', ({ arch, probe, t }) => {
  const img = kernelImage(t);
  const read = (a: bigint, n: number): Uint8Array => {
    const off = Number(a - img.base);
    if (off < 0 || off + n > img.bytes.length) throw new RangeError('outside the image');
    return img.bytes.slice(off, off + n);
  };
  it.each(img.funcs.map((f) => [f.name, f] as const))('%s', (_name, f) => {
    const failures: string[] = [];
    let pc = f.start;
    let count = 0;
    while (pc < f.start + f.size) {
      const insn = probe.decode(pc, read(pc, Math.min(15, Number(f.start + f.size - pc))));
      expect(insn, `decode at 0x${pc.toString(16)}`).toBeDefined();
      expect(probe.isInsnBoundary(read, f.start, pc)).toBe(true);
      if (insn!.length > 1) expect(probe.isInsnBoundary(read, f.start, pc + 1n)).toBe(false);
      // Without a post handler under two seeds (flags, counts) — under npm run test:full; by default
      // the seeds alternate from one instruction to the next — and with one only where that
      // changes the mode (a boostable instruction is then stepped or emulated instead).
      const runs: Array<[boolean, number]> = FULL ? [[false, 0], [false, 1]] : [[false, count % 2]];
      const withPost = probe.prepareKprobe(pc, read(pc, 15), { hasPostHandler: true });
      const withoutPost = probe.prepareKprobe(pc, read(pc, 15), { hasPostHandler: false });
      if (!isRefusal(withPost) && !isRefusal(withoutPost) && withPost.mode !== withoutPost.mode) runs.push([true, 0]);
      for (const [post, seed] of runs) {
        const r: DiffResult = runDiff(arch, probe, { text: { base: img.base, bytes: img.bytes }, addr: pc, seed, hasPostHandler: post });
        kernelModes[t].set(r.mode, (kernelModes[t].get(r.mode) ?? 0) + 1);
        for (const m of r.mismatches) failures.push(`0x${pc.toString(16)} ${insn!.text} post=${post} seed=${seed}: ${m}`);
      }
      count++;
      pc += BigInt(insn!.length);
    }
    expect(pc).toBe(f.start + f.size);
    expect(count).toBeGreaterThan(0);
    expect(failures).toEqual([]);
  });
  it('the arch blacklist brackets the entry text of the guest kernel; kretprobes avoid __switch_to', () => {
    const elf = readElfFileSync(join(repoRoot, 'fixtures', 'kernel', t, 'vmlinux'));
    expect(probe.kretprobeBlacklist).toEqual(['__switch_to']);
    for (const [start, end] of probe.blacklistRanges ?? []) {
      const s = elf.symbolByName(start);
      const e = elf.symbolByName(end);
      expect(s && e && e.value > s.value).toBe(true);
      expect(elf.symbolAt(s!.value)?.symbol.name).toBe('entry_syscall');
    }
    expect(probe.blacklistRanges?.length).toBe(1);
  });
  it('the kernel corpus exercised emulation, boosting and stepping', () => {
    const m = kernelModes[t];
    expect(m.get('emulate') ?? 0).toBeGreaterThan(50);
    expect(m.get('boost') ?? 0).toBeGreaterThan(200);
    expect(m.get('step') ?? 0).toBeGreaterThan(200);
  });
});

// --- refusals ---------------------------------------------------------------------------------

interface RefusalCase {
  name: string;
  bytes: number[];
  errno: number;
  reason: RegExp;
}

const REFUSALS_COMMON: RefusalCase[] = [
  { name: 'int3', bytes: [0xcc], errno: EINVAL, reason: /already a breakpoint/ },
  { name: 'Xen emulate prefix (ud2; "xen"; nop)', bytes: [0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x90], errno: EINVAL, reason: /emulate prefix/ },
  { name: 'KVM emulate prefix (ud2; "kvm"; nop)', bytes: [0x0f, 0x0b, 0x6b, 0x76, 0x6d, 0x90], errno: EINVAL, reason: /emulate prefix/ },
  { name: 'emulate prefix is checked before int3', bytes: [0x0f, 0x0b, 0x78, 0x65, 0x6e, 0xcc], errno: EINVAL, reason: /emulate prefix/ },
  { name: 'mov ss, ax', bytes: [0x8e, 0xd0], errno: EINVAL, reason: /mov to ss/ },
  { name: 'mov ss, [mem]', bytes: [0x8e, 0x10], errno: EINVAL, reason: /mov to ss/ },
  { name: 'undecodable (FF /7)', bytes: [0xff, 0xff], errno: EINVAL, reason: /cannot decode/ },
  { name: 'iret', bytes: [0xcf], errno: EOPNOTSUPP, reason: /iret/ },
  { name: 'vmcall', bytes: [0x0f, 0x01, 0xc1], errno: EOPNOTSUPP, reason: /VMX/ },
  { name: 'vmlaunch', bytes: [0x0f, 0x01, 0xc2], errno: EOPNOTSUPP, reason: /VMX/ },
  { name: 'vmresume', bytes: [0x0f, 0x01, 0xc3], errno: EOPNOTSUPP, reason: /VMX/ },
  { name: 'vmxoff', bytes: [0x0f, 0x01, 0xc4], errno: EOPNOTSUPP, reason: /VMX/ },
  { name: 'lcall *(mem) (FF /3)', bytes: [0xff, 0x18], errno: EOPNOTSUPP, reason: /far indirect/ },
  { name: 'ljmp *(mem) (FF /5)', bytes: [0xff, 0x28], errno: EOPNOTSUPP, reason: /far indirect/ },
  { name: 'call *(mem) (FF /2)', bytes: [0xff, 0x10], errno: EOPNOTSUPP, reason: /through memory/ },
  { name: 'jmp *(mem) (FF /4)', bytes: [0xff, 0x20], errno: EOPNOTSUPP, reason: /through memory/ },
  { name: 'call *reg with address-size prefix', bytes: [0x67, 0xff, 0xd0], errno: EOPNOTSUPP, reason: /non-native address size/ },
];

const REFUSALS: Record<'x86_64' | 'i386', RefusalCase[]> = {
  x86_64: [
    ...REFUSALS_COMMON,
    { name: 'iretq', bytes: [0x48, 0xcf], errno: EOPNOTSUPP, reason: /iret/ },
    { name: 'call *[rip+disp]', bytes: [0xff, 0x15, 0x00, 0x01, 0x00, 0x00], errno: EOPNOTSUPP, reason: /through memory/ },
    { name: 'jmp *[rip+disp]', bytes: [0xff, 0x25, 0x00, 0x01, 0x00, 0x00], errno: EOPNOTSUPP, reason: /through memory/ },
    // Invalid in 64-bit mode, so the copy cannot decode them (before prepare_emulation sees them).
    { name: 'pop ss (invalid in 64-bit mode)', bytes: [0x17], errno: EINVAL, reason: /cannot decode/ },
    { name: 'far call ptr16:32 (invalid in 64-bit mode)', bytes: [0x9a, 0, 0, 0, 0, 0x10, 0], errno: EINVAL, reason: /cannot decode/ },
    { name: 'far jmp ptr16:32 (invalid in 64-bit mode)', bytes: [0xea, 0, 0, 0, 0, 0x10, 0], errno: EINVAL, reason: /cannot decode/ },
  ],
  i386: [
    ...REFUSALS_COMMON,
    { name: 'pop ss', bytes: [0x17], errno: EINVAL, reason: /pop ss/ },
    { name: 'far call ptr16:32', bytes: [0x9a, 0, 0, 0, 0, 0x10, 0], errno: EOPNOTSUPP, reason: /far call/ },
    { name: 'far jmp ptr16:32', bytes: [0xea, 0, 0, 0, 0, 0x10, 0], errno: EOPNOTSUPP, reason: /far jmp/ },
    { name: 'call *[abs32]', bytes: [0xff, 0x15, 0x00, 0x01, 0x10, 0xc1], errno: EOPNOTSUPP, reason: /through memory/ },
  ],
};

describe.each(TARGETS)('$t refusals (arch_prepare_kprobe order and errnos)', ({ probe, t }) => {
  it.each(REFUSALS[t].map((r) => [r.name, r] as const))('%s', (_n, r) => {
    for (const hasPostHandler of [false, true]) {
      const p = probe.prepareKprobe(HP_BASE[t], Uint8Array.from([...r.bytes, ...new Array(16).fill(0x90)]), { hasPostHandler });
      expect(isRefusal(p)).toBe(true);
      const refusal = p as ProbeRefusal;
      expect(refusal.errno).toBe(r.errno);
      expect(refusal.reason).toMatch(r.reason);
    }
  });

  it('-EILSEQ: a probe address inside an instruction is not a boundary (decoding from the function start)', () => {
    // push rbp/ebp; mov eax, 0x11223344; ud2;"xen";nop; ret
    const code = Uint8Array.of(0x55, 0xb8, 0x44, 0x33, 0x22, 0x11, 0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x90, 0xc3);
    const f = HP_BASE[t];
    const read = (a: bigint, n: number): Uint8Array => {
      const off = Number(a - f);
      if (off + n > code.length + 16) throw new RangeError('past the text');
      return Uint8Array.from([...code, ...new Array(16).fill(0xcc)]).slice(off, off + n);
    };
    const boundaries = [0, 1, 6, 12, 13];
    for (let off = 0; off <= 13; off++) {
      expect(probe.isInsnBoundary(read, f, f + BigInt(off)), `offset ${off}`).toBe(boundaries.includes(off));
    }
    // Before the function start, and a walk that meets undecodable bytes, are not boundaries.
    expect(probe.isInsnBoundary(read, f + 1n, f)).toBe(false);
    const bad = (a: bigint, n: number): Uint8Array => Uint8Array.from([0xff, 0xff, ...new Array(20).fill(0x90)]).slice(Number(a - f), Number(a - f) + n);
    expect(probe.isInsnBoundary(bad, f, f + 2n)).toBe(false);
  });

  it('an instruction too long for a boost jump in the 16-byte slot is stepped (needs 5 spare bytes)', () => {
    const long = t === 'x86_64' ? 'mov qword ptr [rax + rbx*8 + 0x12345678], 0x11223344' : 'mov dword ptr fs:[eax + ebx*8 + 0x12345678], 0x11223344';
    const bytes = asm(t, long, HP_BASE[t]);
    expect(bytes.length).toBeGreaterThan(11);
    const p = probe.prepareKprobe(HP_BASE[t], bytes, { hasPostHandler: false }) as PreparedInsn;
    expect(p.mode).toBe('step');
    const short = asm(t, t === 'x86_64' ? 'mov dword ptr [rax], 0x11223344' : 'mov dword ptr [eax], 0x11223344', HP_BASE[t]);
    expect((probe.prepareKprobe(HP_BASE[t], short, { hasPostHandler: false }) as PreparedInsn).mode).toBe('boost');
  });

  it('slot layout: [copy][CC] when stepped, [copy][E9 rel32 → addr+len] when boosted', () => {
    const addr = HP_BASE[t];
    const slot = LAYOUT[t].slot;
    const bytes = asm(t, 'add eax, ebx', addr);
    const stepped = probe.prepareKprobe(addr, bytes, { hasPostHandler: true }) as PreparedInsn;
    expect(stepped.mode).toBe('step');
    expect(stepped.stepTrapOffset).toBe(2);
    expect([...stepped.slotBytes(slot)]).toEqual([...bytes, 0xcc]);
    const boosted = probe.prepareKprobe(addr, bytes, { hasPostHandler: false }) as PreparedInsn;
    expect(boosted.mode).toBe('boost');
    expect(boosted.stepTrapOffset).toBeUndefined();
    const rel = BigInt.asUintN(32, addr + 2n - (slot + 2n + 5n));
    expect([...boosted.slotBytes(slot)]).toEqual([...bytes, 0xe9, ...le(4, rel)]);
    const emulated = probe.prepareKprobe(addr, asm(t, `call 0x${(addr + 0x100n).toString(16)}`, addr), { hasPostHandler: false }) as PreparedInsn;
    expect(emulated.mode).toBe('emulate');
    expect(typeof emulated.emulate).toBe('function');
  });

  it('hijackReturn swaps the return address on the stack top for the trampoline; frameSp is sp', async () => {
    const { Engine, UC_PROT } = await import('../../src/emu/unicorn.js');
    const arch = t === 'x86_64' ? x86_64 : i386;
    const e = openEngine(arch);
    try {
      const sp = LAYOUT[t].stack.base + 0x800n;
      e.memMap(LAYOUT[t].stack.base, LAYOUT[t].stack.size, UC_PROT.ALL);
      const w = arch.wordSize;
      const ret = t === 'x86_64' ? 0xffffffff81000123n : 0xc1000123n;
      const tramp = t === 'x86_64' ? 0xffffffff81000fffn : 0xc1000fffn;
      e.memWrite(sp, le(w, ret));
      e.memWrite(sp + BigInt(w), le(w, 0x5a5a5a5an));
      arch.setSp(e, sp);
      const mem = {
        read: (a: bigint, n: number) => e.memRead(a, n),
        write: (a: bigint, b: Uint8Array) => e.memWrite(a, b),
        readWord: () => 0n,
        writeWord: () => undefined,
      };
      const cpu = { engine: e, mem };
      expect(probe.frameSp(cpu)).toBe(sp);
      expect(probe.hijackReturn(cpu, tramp)).toBe(ret);
      expect([...e.memRead(sp, w)]).toEqual([...le(w, tramp)]);
      expect([...e.memRead(sp + BigInt(w), w)]).toEqual([...le(w, 0x5a5a5a5an)]); // only the one word
      expect(probe.frameSp(cpu)).toBe(sp);
    } finally {
      e.close();
    }
  });
});

describe('x86_64 RIP-relative rewrite against the slot', () => {
  const probe = x86ProbeArch(x86_64);
  const addr = HP_BASE.x86_64;
  it('disp32 becomes addr + disp - slot, immediates after it untouched', () => {
    const bytes = asm('x86_64', 'add dword ptr [rip + 0x208], 0x12345678', addr);
    const p = probe.prepareKprobe(addr, bytes, { hasPostHandler: true }) as PreparedInsn;
    const slot = LAYOUT.x86_64.slot;
    const out = p.slotBytes(slot);
    const disp = out[2]! | (out[3]! << 8) | (out[4]! << 16) | (out[5]! << 24);
    expect(BigInt(disp)).toBe(addr + 0x208n - slot);
    expect([...out.subarray(6, 10)]).toEqual([0x78, 0x56, 0x34, 0x12]);
    expect(out[bytes.length]).toBe(0xcc);
  });
  it('a slot more than 2 GiB away is refused with -EINVAL (and slotBytes throws)', () => {
    const bytes = asm('x86_64', 'mov rax, qword ptr [rip + 0x100]', addr);
    for (const hasPostHandler of [false, true]) {
      const p = probe.prepareKprobe(addr, bytes, { hasPostHandler }) as PreparedInsn;
      const far = addr - 0x100000000n;
      const r = p.slotRefusal?.(far);
      expect(r?.errno).toBe(EINVAL);
      expect(r?.reason).toMatch(/RIP-relative/);
      expect(() => p.slotBytes(far)).toThrow(RangeError);
      expect(p.slotRefusal?.(LAYOUT.x86_64.slot)).toBeUndefined();
    }
    // A boosted non-RIP-relative copy still needs its jump back to reach.
    const nop = probe.prepareKprobe(addr, Uint8Array.of(0x90), { hasPostHandler: false }) as PreparedInsn;
    expect(nop.mode).toBe('boost');
    expect(nop.slotRefusal?.(addr - 0x100000000n)?.errno).toBe(EINVAL);
  });
  it('i386 has no RIP-relative operands: mod=00 rm=101 is absolute and copied unchanged', () => {
    const p386 = x86ProbeArch(i386);
    const a = HP_BASE.i386;
    const bytes = asm('i386', 'mov eax, dword ptr [0xc1100100]', a);
    const p = p386.prepareKprobe(a, bytes, { hasPostHandler: true }) as PreparedInsn;
    expect([...p.slotBytes(0x10000000n)]).toEqual([...bytes, 0xcc]);
    expect(p.slotRefusal?.(0x10000000n)).toBeUndefined();
  });
});

// --- the comparison can fail ------------------------------------------------------------------

describe('the differential harness detects wrong probe handling', () => {
  const arch = x86_64;
  const probe = x86ProbeArch(arch);
  const c = (src: string, post: boolean, seed = 0): DiffCase => handCase('x86_64', { name: src, src, modes: ['', ''] }, seed, post);
  const base = HP_BASE.x86_64;

  it('a call that pushes the slot-relative return address', () => {
    const r = runDiff(arch, probe, c(`call 0x${(base + 0x300n).toString(16)}`, false), (p) => ({
      ...p,
      emulate: (cpu) => {
        p.emulate!(cpu);
        const sp = cpu.engine.regRead(0 + arch.registers.byName.get('sp')!.id);
        cpu.mem.write(sp, le(8, LAYOUT.x86_64.slot + 5n));
      },
    }));
    expect(r.mismatches.some((m) => m.startsWith('stack byte'))).toBe(true);
  });

  it('a step whose postStep leaves the IP in the slot', () => {
    const r = runDiff(arch, probe, c('add rax, rbx', true), (p) => ({ ...p, postStep: () => undefined }));
    expect(r.mismatches.some((m) => m.startsWith('rip:'))).toBe(true);
  });

  it('a RIP-relative copy whose displacement was not rewritten', () => {
    const r = runDiff(arch, probe, c('mov rax, qword ptr [rip + 0x100]', true), (p) => ({
      ...p,
      slotBytes: () => Uint8Array.from([...p.insn.bytes, 0xcc]),
    }));
    expect(r.mismatches.length).toBeGreaterThan(0);
  });

  it('a jcc evaluated with the wrong condition', () => {
    const found: string[] = [];
    for (const seed of [0, 1]) {
      const r = runDiff(arch, probe, c(`je 0x${(base + 0x40n).toString(16)}`, false, seed), (p) => ({
        ...p,
        emulate: (cpu) => {
          const fl = arch.registers.byName.get('flags')!.id;
          const f = cpu.engine.regRead(fl);
          cpu.engine.regWrite(fl, f ^ 0x40n);
          p.emulate!(cpu);
          cpu.engine.regWrite(fl, f);
        },
      }));
      found.push(...r.mismatches);
    }
    expect(found.some((m) => m.startsWith('rip:'))).toBe(true);
  });

  it('a boost jump that lands one byte late', () => {
    const r = runDiff(arch, probe, c('add rax, rbx', false), (p) => ({
      ...p,
      slotBytes: (slot) => {
        const b = p.slotBytes(slot);
        b[b.length - 4]! += 1;
        return b;
      },
    }));
    expect(r.mode).toBe('boost');
    expect(r.mismatches.length).toBeGreaterThan(0);
  });
});
