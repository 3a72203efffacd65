/**
 * Fetch-argument evaluation, table-driven per type, against a hand-built machine state: registers,
 * kernel and user memory (with the TASK_SIZE split), both byte orders and both word sizes. Each
 * row is a definition's argument as a user writes it, and what ftrace and the JSON output print.
 */
import { describe, expect, it } from 'vitest';
import type { Target } from '../../arch/types.js';
import { decodeUnsigned, evaluateArg, formatValueJson, formatValueText, MAX_STRING_SIZE, type FetchEnv } from '../../src/trace/fetch-eval.js';
import { ctxFor, parseOk } from './helpers.js';

interface Region {
  addr: bigint;
  bytes: Uint8Array;
}

interface FakeState {
  target: Target;
  wordSize: 4 | 8;
  endian: 'little' | 'big';
  taskSize: bigint;
  regs: Record<string, bigint>;
  sp: bigint;
  stackAddress?: bigint;
  args?: bigint[];
  retval?: bigint;
  comm?: string;
  symbols?: Record<string, bigint>;
  regions: Region[];
  fileBase?: bigint;
}

function env(s: FakeState): FetchEnv {
  const find = (addr: bigint, len: number): Uint8Array | undefined => {
    for (const r of s.regions) {
      if (addr >= r.addr && addr + BigInt(len) <= r.addr + BigInt(r.bytes.length)) {
        const off = Number(addr - r.addr);
        return r.bytes.slice(off, off + len);
      }
    }
    return undefined;
  };
  return {
    wordSize: s.wordSize,
    endian: s.endian,
    register: (n) => {
      const v = s.regs[n];
      if (v === undefined) throw new Error(`test: no register ${n}`);
      return v;
    },
    stackPointer: () => s.sp,
    stackAddress: () => s.stackAddress ?? s.sp,
    arg: (n) => s.args?.[n - 1],
    retval: () => s.retval,
    comm: () => s.comm ?? 'prog',
    readKernel: (a, len) => (a < s.taskSize ? undefined : find(a, len)),
    readUser: (a, len) => (a + BigInt(len) > s.taskSize ? undefined : find(a, len)),
    symbolAddress: (n) => s.symbols?.[n],
    fileOffsetAddress: s.fileBase === undefined ? undefined : (off) => s.fileBase! + off,
    symbolize: (a) => (a === 0xffffffff81000290n ? 'ksys_write+0x0/0x29' : a === 0xffffffff81000295n ? 'ksys_write+0x5/0x29' : `0x${a.toString(16)}`),
  };
}

const bytes = (...b: number[]) => Uint8Array.from(b);
const cstr = (s: string) => Uint8Array.from([...Buffer.from(s, 'utf8'), 0]);
function words(ws: 4 | 8, endian: 'little' | 'big', ...vals: bigint[]): Uint8Array {
  const out = new Uint8Array(vals.length * ws);
  const dv = new DataView(out.buffer);
  vals.forEach((v, i) => (ws === 8 ? dv.setBigUint64(i * 8, v, endian === 'little') : dv.setUint32(i * 4, Number(v), endian === 'little')));
  return out;
}

// x86-64: user data at 0x600000, a kernel object at 0xffff888000001000, kernel stack at 0xffffc90000004000.
const USER = 0x600000n;
const KOBJ = 0xffff888000001000n;
const KSTACK = 0xffffc90000004000n;
const x86: FakeState = {
  target: 'x86_64',
  wordSize: 8,
  endian: 'little',
  taskSize: 0x7ffffffff000n,
  regs: { di: 0xfffffffffffffffen, si: USER, dx: KOBJ, ax: 0x1234_5678_9abc_def0n, ip: 0xffffffff81000295n, cx: 0xffffffff81000290n },
  sp: KSTACK,
  args: [1n, USER, 11n],
  retval: 0xfffffffffffffff2n, // -14, -EFAULT
  comm: 'fib',
  symbols: { jiffies: KOBJ + 0x40n },
  regions: [
    // user: "hello\n" at USER, then an array of two string pointers at USER+0x20, then 4 bytes.
    { addr: USER, bytes: cstr('hello\n') },
    { addr: USER + 0x20n, bytes: words(8, 'little', USER, USER + 0x40n) },
    { addr: USER + 0x40n, bytes: cstr('wörld') },
    { addr: USER + 0x60n, bytes: bytes(0x01, 0x02, 0x03, 0x04, 0xa5, 0x7f) },
    // kernel: a struct whose first word points at a second one, and a string.
    { addr: KOBJ, bytes: words(8, 'little', KOBJ + 0x10n, 0n, 0xdead_beefn, 0x1122_3344_5566_7788n) },
    { addr: KOBJ + 0x40n, bytes: words(8, 'little', 0x1_0000_00fan) },
    { addr: KOBJ + 0x80n, bytes: cstr('kernel string') },
    { addr: KOBJ + 0x100n, bytes: words(8, 'little', KOBJ, KOBJ + 0x20n) },
    { addr: KSTACK, bytes: words(8, 'little', 0xffffffff810001ffn, 42n, 0xffffffff81000290n) },
  ],
};

/** Evaluate the argument of `p:ev PLACE ARG` (or r:) and give [text, json]. */
function run(state: FakeState, arg: string, opts: { ret?: boolean; uprobe?: boolean } = {}): [string, unknown] {
  const line = opts.uprobe ? `${opts.ret ? 'r' : 'p'}:ev /bin/prog:0x1000 ${arg}` : `${opts.ret ? 'r' : 'p'}:ev ksys_write ${arg}`;
  const def = parseOk(line, ctxFor(opts.uprobe ? 'uprobe' : 'kprobe', state.target));
  const a = def.args[0]!;
  const e = env(state);
  const v = evaluateArg(a, e, def.flavor);
  return [formatValueText(a.type, v, e.symbolize), formatValueJson(a.type, v, e.symbolize)];
}

describe('x86-64 kprobe: every type and fetch form', () => {
  it.each<[string, string, unknown]>([
    // Registers: the default type is x64; integer types keep the low bytes.
    ['%di', '0xfffffffffffffffe', '0xfffffffffffffffe'],
    ['%di:u64', '18446744073709551614', '18446744073709551614'],
    ['%di:s64', '-2', '-2'],
    ['%di:s32', '-2', '-2'],
    ['%di:u32', '4294967294', '4294967294'],
    ['%di:x16', '0xfffe', '0xfffe'],
    ['%di:u8', '254', '254'],
    ['%di:s8', '-2', '-2'],
    ['%ax:x8', '0xf0', '0xf0'],
    ['%ax:x32', '0x9abcdef0', '0x9abcdef0'],
    ['%ax:b4@4/8', '15', '15'],
    ['%ax:b12@8/32', '3294', '3294'], // 0x9abcdef0 >> 8 = 0x9abcde, low 12 bits 0xcde
    ['%ip:symbol', 'ksys_write+0x5/0x29', 'ksys_write+0x5/0x29'],
    ['%ip:symstr', '"ksys_write+0x5/0x29"', 'ksys_write+0x5/0x29'],
    ['name=%cx', '0xffffffff81000290', '0xffffffff81000290'],
    // Kernel memory: loads read the type's size in the target's byte order; inner loads a word.
    ['+16(%dx):u32', '3735928559', '3735928559'],
    ['+24(%dx):x64', '0x1122334455667788', '0x1122334455667788'],
    ['+24(%dx):x16', '0x7788', '0x7788'],
    ['+24(%dx):s8', '-120', '-120'],
    ['+0(+0(%dx)):x32', '0xdeadbeef', '0xdeadbeef'],
    ['+8(+0(%dx)):x32', '0x55667788', '0x55667788'],
    ['+0(+0(+0x100(%dx))):x32', '0xdeadbeef', '0xdeadbeef'],
    ['-8(+0x108(%dx)):x32', '0x55667788', '0x55667788'],
    ['+16(+0(%dx)):x32', '(fault)', null], // one past the object
    ['+0(%dx):x8[4]', '{0x10,0x10,0x0,0x0}', ['0x10', '0x10', '0x0', '0x0']],
    ['+16(%dx):u16[2]', '{48879,57005}', ['48879', '57005']],
    ['+128(%dx):string', '"kernel string"', 'kernel string'],
    ['+128(%dx):char', "'k'", 'k'],
    ['@0xffff888000001010:x32', '0xdeadbeef', '0xdeadbeef'],
    ['@0xffff888000001080:string', '"kernel string"', 'kernel string'],
    ['@jiffies:u64', '4294967546', '4294967546'],
    ['@jiffies+4:u32', '1', '1'],
    ['@jiffies-0x40:symbol', '0xffff888000001010', '0xffff888000001010'],
    ['\\0xffff888000001080:string', '"kernel string"', 'kernel string'],
    // The stack: $stack is the stack pointer, $stackN the Nth word on it.
    ['$stack', '0xffffc90000004000', '0xffffc90000004000'],
    ['$stack0:symbol', '0xffffffff810001ff', '0xffffffff810001ff'],
    ['$stack1:u32', '42', '42'],
    ['$stack2:symbol', 'ksys_write+0x0/0x29', 'ksys_write+0x0/0x29'],
    ['+0($stack):x64', '0xffffffff810001ff', '0xffffffff810001ff'],
    // Function arguments at entry, the task, immediates.
    ['$arg1', '0x1', '0x1'],
    ['$arg3:u64', '11', '11'],
    ['$comm', '"fib"', 'fib'],
    ['$COMM:string', '"fib"', 'fib'],
    ['\\"imm_string"', '"imm_string"', 'imm_string'],
    ['\\123', '0x7b', '0x7b'],
    ['\\-1:s16', '-1', '-1'],
    ['\\0x10:u8', '16', '16'],
    // User memory from a kprobe: only through +u / ustring; a plain load of a user address faults.
    ['+0(%si):string', '(fault)', null],
    ['+u0(%si):string', '"hello\n"', 'hello\n'],
    ['+0(%si):ustring', '"hello\n"', 'hello\n'],
    ['+0($arg2):ustring', '"hello\n"', 'hello\n'],
    ['+u0x40(%si):string', '"wörld"', 'wörld'],
    ['+u0x20(%si):string[2]', '{"hello\n","wörld"}', ['hello\n', 'wörld']],
    ['+u0x60(%si):x32', '0x4030201', '0x4030201'],
    ['+u0x64(%si):s8', '-91', '-91'],
    ['+u0x64(%si):b3@5/8', '5', '5'], // 0xa5 = 1010_0101: bits 5..7 = 101
    ['+u0x60(%si):u8[6]', '{1,2,3,4,165,127}', ['1', '2', '3', '4', '165', '127']],
    ['+u0x65(%si):char', "'\x7f'", '\x7f'],
    // Faults: unmapped, kernel read below TASK_SIZE, user read of a kernel address, nested.
    ['+0(%di):x64', '(fault)', null],
    ['+u0(%dx):x64', '(fault)', null],
    ['+0(+0(%si)):u8', '(fault)', null],
    ['@0x10:u32', '(fault)', null],
    ['+0(%di):string', '(fault)', null],
    ['+u0x1000(%si):x8[2]', '(fault)', null],
  ])('%s → %s', (arg, text, json) => {
    expect(run(x86, arg)).toEqual([text, json]);
  });

  it('$retval and $argN on a kretprobe (arguments as captured at entry)', () => {
    expect(run(x86, '$retval', { ret: true })).toEqual(['0xfffffffffffffff2', '0xfffffffffffffff2']);
    expect(run(x86, '$retval:s64', { ret: true })).toEqual(['-14', '-14']);
    expect(run(x86, '$retval:s32', { ret: true })).toEqual(['-14', '-14']);
    expect(run(x86, '$arg3:u32', { ret: true })).toEqual(['11', '11']);
    // Not captured (e.g. the entry ran before the event existed): a fault, not a stale value.
    expect(run({ ...x86, args: [] }, '$arg3:u32', { ret: true })).toEqual(['(fault)', null]);
  });

  it('strings stop at MAX_STRING_SIZE - 1 bytes, as the kernel keeps room for the NUL', () => {
    const long = new Uint8Array(MAX_STRING_SIZE + 100).fill(0x61);
    const st = { ...x86, regions: [{ addr: KOBJ, bytes: long }] };
    const [text] = run(st, '+0(%dx):string');
    expect(text).toBe(`"${'a'.repeat(MAX_STRING_SIZE - 1)}"`);
  });

  it('an empty string is "" and not a fault', () => {
    const st = { ...x86, regions: [{ addr: KOBJ, bytes: bytes(0) }] };
    expect(run(st, '+0(%dx):string')).toEqual(['""', '']);
  });

  it('string[N]: a fault spoils only its element', () => {
    const st = { ...x86, regions: [...x86.regions, { addr: USER + 0x100n, bytes: words(8, 'little', USER, 0x10n) }] };
    expect(run(st, '+u0x100(%si):string[2]')).toEqual(['{"hello\n",(fault)}', ['hello\n', null]]);
  });
});

describe('uprobes: every load is a user read', () => {
  it.each<[string, string, unknown]>([
    ['+0(%si):string', '"hello\n"', 'hello\n'],
    ['+0x60(%si):x32', '0x4030201', '0x4030201'],
    ['@0x600060:u16', '513', '513'],
    ['@+0x60:u8', '1', '1'], // file offset 0x60 mapped at fileBase + 0x60
    ['+0(%dx):x64', '(fault)', null], // a kernel address from user context
    ['$arg2:x64', '0x600000', '0x600000'],
  ])('%s → %s', (arg, text, json) => {
    expect(run({ ...x86, fileBase: USER }, arg, { uprobe: true })).toEqual([text, json]);
  });
});

describe('byte order and word size', () => {
  // ppc64 (big-endian, 64-bit) and i386 (little-endian, 32-bit) read the same bytes differently.
  const data = bytes(0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0, 0, 0, 0x2a);
  const ppc64: FakeState = {
    target: 'ppc64',
    wordSize: 8,
    endian: 'big',
    taskSize: 0x1000_0000_0000n,
    regs: { gpr3: 0xc000000000002000n, gpr4: 0x10000n, gpr1: 0xc000100000003000n },
    sp: 0xc000100000003000n,
    regions: [
      { addr: 0xc000000000002000n, bytes: data },
      { addr: 0xc000100000003000n, bytes: words(8, 'big', 0xc000100000003100n, 7n) },
    ],
  };
  const i386: FakeState = {
    target: 'i386',
    wordSize: 4,
    endian: 'little',
    taskSize: 0xc0000000n,
    regs: { ax: 0xc1002000n, dx: 0x1234_5678n, sp: 0xd0000f00n },
    sp: 0xd0000f00n,
    regions: [
      { addr: 0xc1002000n, bytes: data },
      { addr: 0xd0000f00n, bytes: words(4, 'little', 0xc1000100n, 7n) },
    ],
  };

  it.each<[FakeState, string, string]>([
    [ppc64, '+0(%gpr3):x32', '0x1020304'],
    [ppc64, '+0(%gpr3):x64', '0x102030405060708'],
    [ppc64, '+8(%gpr3):u32', '42'],
    [ppc64, '+0(%gpr3):x16[2]', '{0x102,0x304}'],
    [ppc64, '%gpr4', '0x10000'],
    [ppc64, '$stack1:u8', '7'],
    [ppc64, '+0(%gpr3):b4@0/8', '1'],
    [i386, '+0(%ax):x32', '0x4030201'],
    [i386, '+0(%ax):x64', '0x807060504030201'],
    [i386, '+8(%ax)', '0x2a000000'], // default x32 on a 32-bit target
    [i386, '%dx', '0x12345678'],
    [i386, '$stack1', '0x7'],
    [i386, '+4(+0(%sp)):u8', '(fault)'], // 0xc1000104 is not in this fake memory
  ])('%s %s → %s', (state, arg, text) => {
    expect(run(state, arg)[0]).toBe(text);
  });

  it('decodeUnsigned reads both byte orders', () => {
    expect(decodeUnsigned(bytes(1, 2, 3, 4), 'little')).toBe(0x04030201n);
    expect(decodeUnsigned(bytes(1, 2, 3, 4), 'big')).toBe(0x01020304n);
    expect(decodeUnsigned(bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe), 'big')).toBe(0xfffffffffffffffen);
  });
});
