/** The normalised listing (§6), round trips parse → format → parse, and the error_log shape (§8). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { archFor } from '../../arch/index.js';
import { TARGETS, type Target } from '../../arch/types.js';
import type { ProbeEventDefinition } from '../../src/trace/definition.js';
import { formatKernelErrorLog, formatProbeError } from '../../src/trace/errorlog.js';
import { formatProbeDefinition, formatProbeEvent } from '../../src/trace/format.js';
import { parseProbeDefinition } from '../../src/trace/parse.js';
import { ProbeEventRegistry } from '../../src/trace/registry.js';
import { ctxFor, parseError, parseOk } from './helpers.js';

/** What a definition means, without how it was written. */
function meaning(d: ProbeEventDefinition): unknown {
  const loc = d.location.type === 'file' && !d.location.refCtrOffset ? { ...d.location, refCtrOffset: undefined } : d.location;
  return {
    kind: d.kind,
    flavor: d.flavor,
    group: d.group,
    event: d.event,
    location: JSON.parse(JSON.stringify(loc, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))),
    maxactive: d.flavor === 'kprobe' && d.kind === 'r' ? d.maxactive : undefined,
    args: d.args,
  };
}

function roundTrip(line: string, target: Target, kind: 'kprobe' | 'uprobe' | 'auto'): { first: string; second: string } {
  const ctx = ctxFor(kind, target);
  const a = parseOk(line, ctx);
  const first = formatProbeEvent(a);
  const b = parseOk(first, ctx);
  expect(meaning(b)).toEqual(meaning(a));
  const second = formatProbeEvent(b);
  expect(second).toBe(first);
  return { first, second };
}

describe('listing in the kernel\'s normalised form', () => {
  it.each([
    ['x86_64', 'uprobe', 'p /path/fib:0x1136 %di', 'p:uprobes/p_fib_0x1136 /path/fib:0x0000000000001136 arg1=%di'],
    ['i386', 'uprobe', 'p /path/fib:0x1136 %ax', 'p:uprobes/p_fib_0x1136 /path/fib:0x00001136 arg1=%ax'],
    ['x86_64', 'uprobe', 'r:g/e /bin/sh:10%return(0x20) +0(%di):string', 'r:g/e /bin/sh:0x000000000000000a(0x20) arg1=+0(%di):string'],
    ['x86_64', 'uprobe', 'p /bin/sh:10(0)', 'p:uprobes/p_sh_0xa /bin/sh:0x000000000000000a'],
    ['x86_64', 'uprobe', 'p /bin/sh:0x10%return', 'r:uprobes/p_sh_0x10 /bin/sh:0x0000000000000010'],
    ['x86_64', 'kprobe', 'p vfs_read', 'p:kprobes/p_vfs_read_0 vfs_read'],
    ['x86_64', 'kprobe', 'p vfs_read+0x10 a=%di', 'p:kprobes/p_vfs_read_16 vfs_read+16 a=%di'],
    ['x86_64', 'kprobe', 'p vfs_read+0', 'p:kprobes/p_vfs_read_0 vfs_read'],
    ['x86_64', 'kprobe', 'p vfs_read%return $retval:s32', 'r:kprobes/r_vfs_read_0 vfs_read arg1=$retval:s32'],
    ['x86_64', 'kprobe', 'r16:grp/ev vfs_read', 'r16:grp/ev vfs_read'],
    ['x86_64', 'kprobe', 'p:grp.ev mod:func+4', 'p:grp/ev mod:func+4'],
    ['x86_64', 'kprobe', 'p 0xffffffff81000010', 'p:kprobes/p_0xffffffff81000010 0xffffffff81000010'],
    ['ppc32', 'kprobe', 'p 0xc0001000 %gpr3', 'p:kprobes/p_0xc0001000 0xc0001000 arg1=%gpr3'],
    ['sparc64', 'kprobe', 'p do_sys_open name=+0(%o1):string', 'p:kprobes/p_do_sys_open_0 do_sys_open name=+0(%o1):string'],
  ] as const)('%s %s: %s', (target, kind, line, listed) => {
    expect(formatProbeEvent(parseOk(line, ctxFor(kind, target)))).toBe(listed);
    roundTrip(line, target, kind);
  });

  it('deletions list back as written (normalised whitespace)', () => {
    const r = parseProbeDefinition('-:grp/ev   vfs_read  a=%di', ctxFor('kprobe'));
    expect(r.ok && formatProbeDefinition(r.value)).toBe('-:grp/ev vfs_read a=%di');
  });
});

// --- generators of valid definitions -----------------------------------------------------------

const ident = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,20}$/);
const group = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_-]{0,20}$/);
const num = (max: number) => fc.integer({ min: 0, max }).chain((n) => fc.constantFrom(String(n), `0x${n.toString(16)}`));

const fetchMemo = new Map<string, fc.Arbitrary<string>>();
function fetchArb(target: Target, kprobe: boolean, isReturn: boolean, depth: number): fc.Arbitrary<string> {
  const key = `${target}/${kprobe}/${isReturn}/${depth}`;
  let a = fetchMemo.get(key);
  if (!a) fetchMemo.set(key, (a = makeFetchArb(target, kprobe, isReturn, depth)));
  return a;
}

function makeFetchArb(target: Target, kprobe: boolean, isReturn: boolean, depth: number): fc.Arbitrary<string> {
  const regs = [...archFor(target)!.registers.byName.keys()];
  const leaves: fc.Arbitrary<string>[] = [
    fc.constantFrom(...regs).map((r) => `%${r}`),
    fc.constant('$stack'),
    fc.integer({ min: 0, max: 2048 }).map((n) => `$stack${n}`),
    fc.integer({ min: 1, max: 8 }).map((n) => `$arg${n}`),
    num(0xffff).map((n) => `@${n.startsWith('0x') ? n : n.replace(/^0+(?=\d)/, '') || '0'}`),
    fc.integer({ min: -100, max: 100 }).map((n) => `\\${n < 0 ? n : n}`),
  ];
  if (isReturn) leaves.push(fc.constant('$retval'));
  if (kprobe) leaves.push(fc.tuple(ident, fc.integer({ min: -64, max: 64 })).map(([s, o]) => `@${s}${o < 0 ? o : `+${o}`}`));
  else leaves.push(fc.integer({ min: 0, max: 4096 }).map((n) => `@+${n}`));
  const leaf = fc.oneof(...leaves);
  if (depth === 0) return leaf;
  return fc.oneof(
    leaf,
    fc
      .tuple(fc.constantFrom('+', '-', '+u'), fc.integer({ min: 0, max: 512 }), fetchArb(target, kprobe, isReturn, depth - 1))
      .map(([sign, off, inner]) => `${sign}${off}(${inner})`),
  );
}

const intType = fc.constantFrom('', ':u8', ':s16', ':x32', ':u64', ':char', ':b3@2/8', ':b1@31/32');

function argArb(target: Target, kprobe: boolean, isReturn: boolean): fc.Arbitrary<string> {
  return fc.oneof(
    fc.tuple(fetchArb(target, kprobe, isReturn, 3), intType).map(([f, t]) => f + t),
    fetchArb(target, kprobe, isReturn, 2).map((f) => `+0(${f}):${kprobe ? 'string' : 'ustring'}`),
    fetchArb(target, kprobe, isReturn, 1).map((f) => `+8(${f}):u16[3]`),
    fc.constantFrom('$comm', '$comm:string', '\\"text"'),
  );
}

function defArb(target: Target): fc.Arbitrary<{ line: string; kind: 'kprobe' | 'uprobe' }> {
  return fc.boolean().chain((kprobe) =>
    fc.boolean().chain((isReturn) => {
      const head = fc
        .tuple(
          fc.option(fc.tuple(fc.option(group, { nil: undefined }), fc.option(ident, { nil: undefined })), { nil: undefined }),
          kprobe && isReturn ? fc.option(fc.integer({ min: 1, max: 4096 }), { nil: undefined }) : fc.constant(undefined),
        )
        .map(([names, max]) => {
          const letter = (isReturn ? 'r' : 'p') + (max ?? '');
          if (!names) return letter;
          const [g, e] = names;
          if (g === undefined && e === undefined) return letter;
          return `${letter}:${g === undefined ? '' : `${g}/`}${e ?? ''}`;
        });
      const place = kprobe
        ? fc.oneof(
            fc.tuple(ident, isReturn ? fc.constant(0) : fc.integer({ min: 0, max: 4096 })).map(([s, o]) => (o ? `${s}+${o}` : s)),
            fc.bigInt({ min: 0x1000n, max: (1n << BigInt(archFor(target)!.wordSize * 8)) - 1n }).map((a) => `0x${a.toString(16)}`),
          )
        : fc
            .tuple(fc.stringMatching(/^(\/[a-z0-9._-]{1,8}){1,3}$/), fc.bigInt({ min: 0n, max: 0xffffffffn }), fc.option(fc.integer({ min: 1, max: 4096 })))
            .map(([p, o, ref]) => `${p}:0x${o.toString(16)}${ref ? `(${ref})` : ''}`);
      // $argN at an address kprobe is NOFENTRY_ARGS and a symbol+offset too: keep them out.
      const args = fc.uniqueArray(fc.tuple(ident, argArb(target, kprobe, isReturn)), { maxLength: 5, selector: ([n]) => n });
      return fc.tuple(head, place, args).map(([h, p, as]) => {
        const atEntry = !kprobe || (!/^0x/.test(p) && !p.includes('+'));
        const usable = as.filter(([, a]) => atEntry || isReturn || !a.includes('$arg'));
        const named = usable.filter(([n]) => !/^(common_|__probe_)/.test(n));
        return { line: [h, p, ...named.map(([n, a]) => `${n}=${a}`)].join(' '), kind: kprobe ? ('kprobe' as const) : ('uprobe' as const) };
      });
    }),
  );
}

describe('round trips (fast-check)', () => {
  it.each(TARGETS)('%s: parse(format(parse(x))) means the same and formats the same', (target) => {
    let withArgs = 0;
    fc.assert(
      fc.property(defArb(target), ({ line, kind }) => {
        const r = parseProbeDefinition(line, ctxFor(kind, target));
        if (!r.ok) throw new Error(`${line}: ${r.error.code} at ${r.error.position}`);
        if (r.value.kind !== 'delete' && r.value.args.length > 0) withArgs++;
        roundTrip(line, target, kind);
      }),
      { numRuns: 100, seed: 7 },
    );
    expect(withArgs).toBeGreaterThan(30);
  });

  it('never throws on arbitrary text, and every error has a caret inside command.length + 1', () => {
    const pieces = fc.constantFrom('p', 'r', 'r10', ':', '/', '.', '-', '+', '%', '$', '@', '\\', '"', '(', ')', '[', ']', '=', ' ', 'vfs_read', '/bin/sh', '0x10', 'string', 'u8', 'b4@0/8', 'arg1', 'comm', 'stack', 'retval', 'di', 'return', '1');
    const text = fc.array(pieces, { maxLength: 24 }).map((a) => a.join(''));
    fc.assert(
      fc.property(text, fc.constantFrom(...TARGETS), fc.constantFrom('kprobe', 'uprobe', 'auto'), (t, target, kind) => {
        const r = parseProbeDefinition(t, ctxFor(kind as 'kprobe', target));
        if (!r.ok) {
          expect(r.error.position).toBeGreaterThanOrEqual(0);
          expect(r.error.position).toBeLessThanOrEqual(r.error.command.length + 1);
          expect(r.error.message.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 2000, seed: 11 },
    );
  });
});

describe('error_log shape', () => {
  it('uniprobe: error: MESSAGE / Command / caret under the offending character', () => {
    const err = parseError('p vfs_read a=%di  b=%none', ctxFor('kprobe'));
    const text = formatProbeError(err);
    const lines = text.split('\n');
    expect(lines).toEqual(['uniprobe: error: Invalid register name', '  Command: p vfs_read a=%di b=%none', `${' '.repeat(11 + 19)}^`]);
    const col = lines[2]!.indexOf('^');
    expect(lines[1]![col]).toBe('%');
  });

  it('the kernel entry: [secs.usecs] subsystem, and a last line of 13 + pos bytes with its newline', () => {
    const err = parseError('p /bin/sh:10(10)a', ctxFor('uprobe'));
    const entry = formatKernelErrorLog(err, 12_345_678)!;
    const lines = entry.split('\n');
    expect(lines[0]).toBe('[   12.345678] trace_uprobe: error: Reference counter has wrong suffix');
    expect(lines[1]).toBe('  Command: p /bin/sh:10(10)a');
    expect(`${lines[2]}\n`).toHaveLength(13 + err.position);
    expect(formatKernelErrorLog(parseError('a foo', ctxFor('kprobe')))).toBeUndefined();
  });

  it('a caret one past the end (an argument index past the last token)', () => {
    const reg = new ProbeEventRegistry();
    expect(reg.write('p:grp/ev vfs_read a=%di', ctxFor('kprobe')).ok).toBe(true);
    const res = reg.write('p:grp/ev vfs_write', ctxFor('kprobe'));
    expect(res.error).toMatchObject({ code: 'DIFF_ARG_TYPE', position: 'p:grp/ev vfs_write'.length + 1 });
    const lines = formatProbeError(res.error!).split('\n');
    expect(lines[2]).toBe(`${' '.repeat(11 + 'p:grp/ev vfs_write'.length + 1)}^`);
  });
});
