/** Trace lines: ftrace's text layout, DESIGN.md's JSON objects, timestamps and the profile. */
import { describe, expect, it } from 'vitest';
import { formatProfile, formatTimestamp, formatTraceJson, formatTraceText, type Symbolizer, type TraceRecord } from '../../src/trace/output.js';
import { ctxFor, parseOk } from './helpers.js';

const sym: Symbolizer = {
  symbol: (a) => (a === 0xffffffff81000290n ? 'ksys_write+0x0/0x29' : a === 0xffffffff810012f8n ? 'do_syscall+0xf8/0x1c3' : `0x${a.toString(16)}`),
  functionName: (a) => (a === 0xffffffff81000290n ? 'ksys_write' : `0x${a.toString(16)}`),
};

function argsOf(line: string, kind: 'kprobe' | 'uprobe' = 'kprobe') {
  return parseOk(line, ctxFor(kind)).args;
}

const [fd, buf, count] = argsOf('p:myk ksys_write fd=$arg1 buf=+0($arg2):ustring count=$arg3:u64');
const kprobeHit: TraceRecord = {
  group: 'kprobes',
  event: 'myk',
  kind: 'p',
  flavor: 'kprobe',
  pid: 7,
  tid: 9,
  cpu: 1,
  comm: 'fib',
  ip: 0xffffffff81000290n,
  timestamp: 1_234_567_891,
  args: [
    { name: fd!.name, type: fd!.type, value: { kind: 'int', value: 1n } },
    { name: buf!.name, type: buf!.type, value: { kind: 'string', value: 'hi' } },
    { name: count!.name, type: count!.type, value: { kind: 'int', value: 2n } },
  ],
};

describe('text lines (the trace file, irq-info off)', () => {
  it('kprobe: comm right-aligned in 16, tid left-aligned in 7, cpu in 3 digits, %pS of the probed address', () => {
    expect(formatTraceText(kprobeHit, sym)).toBe('             fib-9       [001]     1.234567: myk: (ksys_write+0x0/0x29) fd=0x1 buf="hi" count=2');
  });

  it('kretprobe: (return address <- function)', () => {
    const [ret] = argsOf('r:myr ksys_write ret=$retval:s64');
    const r: TraceRecord = { ...kprobeHit, event: 'myr', kind: 'r', ip: 0xffffffff810012f8n, func: 0xffffffff81000290n, args: [{ name: ret!.name, type: ret!.type, value: { kind: 'int', value: 0xfffffffffffffff2n } }] };
    expect(formatTraceText(r, sym)).toBe('             fib-9       [001]     1.234567: myr: (do_syscall+0xf8/0x1c3 <- ksys_write) ret=-14');
  });

  it('uprobe and uretprobe: raw addresses', () => {
    const u: TraceRecord = { ...kprobeHit, flavor: 'uprobe', event: 'p_fib_0x1136', ip: 0x401136n, args: [] };
    expect(formatTraceText(u, sym)).toBe('             fib-9       [001]     1.234567: p_fib_0x1136: (0x401136)');
    const ur: TraceRecord = { ...u, kind: 'r', ip: 0x401200n, func: 0x401136n };
    expect(formatTraceText(ur, sym)).toBe('             fib-9       [001]     1.234567: p_fib_0x1136: (0x401200 <- 0x401136)');
  });

  it('a long comm is not cut; a fault prints (fault)', () => {
    const r: TraceRecord = { ...kprobeHit, comm: 'a-very-long-comm', args: [{ name: 'buf', type: buf!.type, value: { kind: 'fault' } }] };
    expect(formatTraceText(r, sym)).toBe('a-very-long-comm-9       [001]     1.234567: myk: (ksys_write+0x0/0x29) buf=(fault)');
  });

  it.each([
    [0, '    0.000000'],
    [999, '    0.000000'],
    [1000, '    0.000001'],
    [1_000_000_000, '    1.000000'],
    [123_456_789_012_345, '123456.789012'],
  ])('timestamp %d ns → %s', (ns, text) => {
    expect(formatTimestamp(ns)).toBe(text);
  });
});

describe('JSON lines (DESIGN.md)', () => {
  it('keys in the promised order, integers as strings in their type format', () => {
    const line = formatTraceJson(kprobeHit, sym);
    expect(line).toBe('{"event":"kprobes/myk","kind":"p","pid":7,"tid":9,"cpu":1,"comm":"fib","ip":"0xffffffff81000290","args":{"fd":"0x1","buf":"hi","count":"2"}}');
    expect(Object.keys(JSON.parse(line))).toEqual(['event', 'kind', 'pid', 'tid', 'cpu', 'comm', 'ip', 'args']);
  });

  it('64-bit values survive; a fault is null; arrays are arrays; strings are escaped', () => {
    const [a, b, c] = argsOf('p:e ksys_write a=%di:u64 b=+0(%si):x8[2] c=+0(%dx):string');
    const r: TraceRecord = {
      ...kprobeHit,
      args: [
        { name: 'a', type: a!.type, value: { kind: 'int', value: 0xffffffffffffffffn } },
        { name: 'b', type: b!.type, value: { kind: 'array', items: [{ kind: 'int', value: 1n }, { kind: 'int', value: 255n }] } },
        { name: 'c', type: c!.type, value: { kind: 'string', value: 'say "hi"\n' } },
      ],
    };
    expect(JSON.parse(formatTraceJson(r, sym)).args).toEqual({ a: '18446744073709551615', b: ['0x1', '0xff'], c: 'say "hi"\n' });
    const f: TraceRecord = { ...kprobeHit, args: [{ name: 'c', type: c!.type, value: { kind: 'fault' } }] };
    expect(JSON.parse(formatTraceJson(f, sym)).args).toEqual({ c: null });
  });
});

describe('--stats', () => {
  const rows = [
    { group: 'kprobes', event: 'myk', flavor: 'kprobe' as const, hits: 6, misses: 0 },
    { group: 'kprobes', event: 'myr', flavor: 'kprobe' as const, hits: 6, misses: 2 },
    { group: 'uprobes', event: 'p_fib_0x1136', flavor: 'uprobe' as const, path: '/x/fib', hits: 3, misses: 0 },
  ];

  it("text: kprobe_profile's and uprobe_profile's columns", () => {
    expect(formatProfile(rows, 'text')).toEqual([
      '# kprobe_profile: event, hits, misses',
      `  myk${' '.repeat(41)} ${' '.repeat(14)}6 ${' '.repeat(14)}0`,
      `  myr${' '.repeat(41)} ${' '.repeat(14)}6 ${' '.repeat(14)}2`,
      '# uprobe_profile: file, event, hits',
      `  /x/fib p_fib_0x1136${' '.repeat(32)} ${' '.repeat(14)}3`,
    ]);
  });

  it('json: one object per probe point', () => {
    expect(formatProfile(rows.slice(1, 2), 'json').map((l) => JSON.parse(l))).toEqual([{ stats: 'kprobes/myr', kind: 'kprobe', hits: 6, misses: 2 }]);
  });
});
