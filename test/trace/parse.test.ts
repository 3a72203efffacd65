/** Valid definitions: heads, places, names, fetch args and types, per target. */
import { describe, expect, it } from 'vitest';
import { archFor } from '../../arch/index.js';
import { TARGETS } from '../../arch/types.js';
import { parseProbeDefinition } from '../../src/trace/parse.js';
import { ctxFor, parseError, parseOk } from './helpers.js';

const K = ctxFor('kprobe');
const U = ctxFor('uprobe');

describe('heads and places', () => {
  it('kprobe at a symbol: defaults', () => {
    const d = parseOk('p vfs_read', K);
    expect(d).toMatchObject({
      kind: 'p',
      flavor: 'kprobe',
      group: 'kprobes',
      event: 'p_vfs_read_0',
      location: { type: 'symbol', symbol: 'vfs_read', offset: 0 },
      args: [],
      atFunctionEntry: true,
    });
    expect(d.maxactive).toBeUndefined();
  });

  it.each([
    ['p vfs_read', 'p_vfs_read_0'],
    ['r inet_csk_accept', 'r_inet_csk_accept_0'],
    ['p mod:func', 'p_mod_func_0'],
    ['p foo.isra.0', 'p_foo_isra_0_0'],
    ['p vfs_read%return', 'r_vfs_read_0'],
    ['p vfs_read+16', 'p_vfs_read_16'],
    ['p vfs_read+0x10', 'p_vfs_read_16'],
    ['p:grp/ vfs_read', 'p_vfs_read_0'],
    ['r10 vfs_read', 'r_vfs_read_0'],
    ['p 0xffffffff81000000', 'p_0xffffffff81000000'],
    ['r 0x1000', 'r_0x0000000000001000'],
  ])('default kprobe name: %s → %s', (line, event) => {
    expect(parseOk(line, K).event).toBe(event);
  });

  it('default names are cut at 63 characters, like the kernel\'s 64-byte buffer', () => {
    const sym = 's'.repeat(80);
    expect(parseOk(`p ${sym}`, K).event).toBe(`p_${sym}`.slice(0, 63));
    const path = `/opt/${'a'.repeat(70)}.so:0x10`;
    expect(parseOk(`p ${path}`, U).event).toBe(`p_${'a'.repeat(70)}`.slice(0, 63));
  });

  it.each([
    ['p /bin/bash:0x4245c0', 'p_bash_0x4245c0'],
    ['r /bin/bash:0x4245c0', 'p_bash_0x4245c0'],
    ['p /lib/x86_64-linux-gnu/libc-2.31.so:0x10', 'p_libc_0x10'],
    ['p /usr/bin/my_prog:16', 'p_my_0x10'],
    ['p ./fib:010', 'p_fib_0x8'],
    ['p:grp/ /bin/sh:0x10', 'p_sh_0x10'],
  ])('default uprobe name: %s → %s', (line, event) => {
    expect(parseOk(line, U).event).toBe(event);
  });

  it('group and event, with "/" or "." as separator; "-" allowed in groups', () => {
    expect(parseOk('p:my-grp/my_ev vfs_read', K)).toMatchObject({ group: 'my-grp', event: 'my_ev' });
    expect(parseOk('p:grp.ev vfs_read', K)).toMatchObject({ group: 'grp', event: 'ev' });
    expect(parseOk('p:ev vfs_read', K)).toMatchObject({ group: 'kprobes', event: 'ev' });
    expect(parseOk('p:ev /bin/sh:1', U)).toMatchObject({ group: 'uprobes', event: 'ev' });
    expect(parseOk(`p:${'g'.repeat(63)}/${'e'.repeat(63)} vfs_read`, K).event).toHaveLength(63);
  });

  it('maxactive: 1..4096, base auto-detected, only on r', () => {
    expect(parseOk('r10:grp/ev vfs_read', K).maxactive).toBe(10);
    expect(parseOk('r0x10 vfs_read', K).maxactive).toBe(16);
    expect(parseOk('r4096 vfs_read', K).maxactive).toBe(4096);
    expect(parseOk('r1 vfs_read', K)).toMatchObject({ kind: 'r', event: 'r_vfs_read_0' });
  });

  it('quirks: junk after the letter is ignored; uprobes ignore r10 and names unless "p:"', () => {
    expect(parseOk('px vfs_read', K).event).toBe('p_vfs_read_0');
    expect(parseOk('pfoo:grp/ev vfs_read', K)).toMatchObject({ group: 'grp', event: 'ev' });
    expect(parseOk('r10 /bin/sh:0x10', U)).toMatchObject({ kind: 'r', event: 'p_sh_0x10' });
    expect(parseOk('r10:ev /bin/sh:0x10', U)).toMatchObject({ kind: 'r', event: 'p_sh_0x10' });
    expect(parseOk('p vfs_read +0(%ax)+10', K).args[0]!.fetch).toMatchObject({ type: 'deref' });
  });

  it('kprobe places: address, MOD:SYM, %return', () => {
    expect(parseOk('p 0xffffffff81000000', K).location).toEqual({ type: 'address', address: 0xffffffff81000000n });
    expect(parseOk('p 0100', K).location).toEqual({ type: 'address', address: 64n });
    expect(parseOk('p mod:func+8', K).location).toEqual({ type: 'symbol', module: 'mod', symbol: 'func', offset: 8 });
    const r = parseOk('p vfs_read+0%return', K);
    expect(r).toMatchObject({ kind: 'r', location: { symbol: 'vfs_read', offset: 0 } });
    // unsigned long is 32 bits on i386: a bigger number is a (nonexistent) symbol
    expect(parseOk('p 0x100000000', ctxFor('kprobe', 'i386')).location).toMatchObject({ type: 'symbol', symbol: '0x100000000' });
  });

  it('uprobe places: file offset (not address), ref counter, %return before (ref)', () => {
    expect(parseOk('p /bin/fib:0x1136', U).location).toEqual({ type: 'file', path: '/bin/fib', offset: 0x1136n });
    expect(parseOk('p /bin/sh:010', U).location).toMatchObject({ offset: 8n });
    expect(parseOk('p /a:b/c:10', U).location).toMatchObject({ path: '/a:b/c', offset: 10n });
    expect(parseOk('p /bin/sh:10(0x20)', U).location).toEqual({ type: 'file', path: '/bin/sh', offset: 10n, refCtrOffset: 0x20n });
    expect(parseOk('p /bin/sh:10%return(10)', U)).toMatchObject({ kind: 'r', location: { offset: 10n, refCtrOffset: 10n } });
    expect(parseOk('p /bin/sh:0x10%return', U).kind).toBe('r');
  });

  it('comments, tabs and runs of spaces: the command is the tokens joined by single spaces', () => {
    const d = parseOk('  p:grp/ev\t vfs_read    a=%di  # trailing comment', K);
    expect(d.command).toBe('p:grp/ev vfs_read a=%di');
    expect(d.tokens).toEqual(['p:grp/ev', 'vfs_read', 'a=%di']);
  });

  it('auto (dynamic_events): the kprobe parser first, then the uprobe parser', () => {
    const A = ctxFor('auto');
    expect(parseOk('p vfs_read', A).flavor).toBe('kprobe');
    expect(parseOk('p /bin/sh:0x10 %di', A).flavor).toBe('uprobe');
    expect(parseOk('r10:ev /bin/sh:0x10', A)).toMatchObject({ flavor: 'uprobe', event: 'p_sh_0x10' });
    // The kprobe parser reads MAXACTIVE before it looks at the place.
    expect(parseError('p10 /bin/sh:0x10', A).code).toBe('BAD_MAXACT_TYPE');
    expect(parseOk('p10 /bin/sh:0x10', U).kind).toBe('p');
  });

  it('deletions', () => {
    const del = (line: string, kind: 'kprobe' | 'uprobe' | 'auto' = 'kprobe') => {
      const r = parseProbeDefinition(line, ctxFor(kind));
      if (!r.ok || r.value.kind !== 'delete') throw new Error(`not a deletion: ${line}`);
      return r.value;
    };
    expect(del('-:grp/ev')).toMatchObject({ kind: 'delete', flavor: 'kprobe', group: 'grp', event: 'ev', match: [] });
    expect(del('-:ev', 'uprobe')).toMatchObject({ flavor: 'uprobe', event: 'ev' });
    expect(del('-:ev', 'uprobe').group).toBeUndefined();
    expect(del('-:grp.ev', 'auto')).toMatchObject({ flavor: 'any', group: 'grp', event: 'ev' });
    expect(del('-:kprobes/testevent kernel_clone a=%di').match).toEqual(['kernel_clone', 'a=%di']);
  });
});

describe('fetch arguments', () => {
  const arg = (text: string, ctx = K, place = 'vfs_read') => parseOk(`p ${place} ${text}`, ctx).args[0]!;
  const rarg = (text: string, ctx = K, place = 'vfs_read') => parseOk(`r ${place} ${text}`, ctx).args[0]!;

  it('names: NAME= or argN by position', () => {
    const d = parseOk('p vfs_read %di x=%si %dx', K);
    expect(d.args.map((a) => a.name)).toEqual(['arg1', 'x', 'arg3']);
    expect(d.args.map((a) => a.text)).toEqual(['%di', '%si', '%dx']);
    expect(arg(`${'n'.repeat(32)}=%ax`).name).toHaveLength(32);
  });

  it('variables', () => {
    expect(arg('$stack').fetch).toEqual({ type: 'stack-pointer' });
    expect(arg('$stack3').fetch).toEqual({ type: 'stack', index: 3 });
    expect(arg('$stack2048').fetch).toEqual({ type: 'stack', index: 2048 });
    expect(arg('$stack100000', U, '/bin/sh:1').fetch).toEqual({ type: 'stack', index: 100000 });
    expect(arg('$comm')).toMatchObject({ fetch: { type: 'comm' }, type: { name: 'string', kind: 'string' } });
    expect(arg('$COMM:string').fetch).toEqual({ type: 'comm' });
    expect(rarg('$retval').fetch).toEqual({ type: 'retval' });
    expect(rarg('$retval', U, '/bin/sh:1').fetch).toEqual({ type: 'retval' });
    expect(arg('$arg1').fetch).toEqual({ type: 'arg', index: 1 });
    expect(arg('$arg2048').fetch).toEqual({ type: 'arg', index: 2048 });
    // kretprobe: entry arguments saved for the exit (newer kernels)
    expect(rarg('$arg2').fetch).toEqual({ type: 'arg', index: 2 });
  });

  it('our extensions: $argN on uprobes and uretprobes, and on sparc64', () => {
    expect(arg('$arg1', U, '/bin/sh:0x10').fetch).toEqual({ type: 'arg', index: 1 });
    expect(rarg('$arg3', U, '/bin/sh:0x10').fetch).toEqual({ type: 'arg', index: 3 });
    expect(arg('$arg1', ctxFor('kprobe', 'sparc64')).fetch).toEqual({ type: 'arg', index: 1 });
  });

  it('memory, symbols, file offsets, immediates', () => {
    expect(arg('@0x1000').fetch).toEqual({ type: 'memory', address: 0x1000n });
    expect(arg('@jiffies').fetch).toEqual({ type: 'symbol', symbol: 'jiffies', offset: 0n });
    expect(arg('@jiffies+8').fetch).toEqual({ type: 'symbol', symbol: 'jiffies', offset: 8n });
    expect(arg('@jiffies-0x10').fetch).toEqual({ type: 'symbol', symbol: 'jiffies', offset: -16n });
    expect(arg('@+0x10', U, '/bin/sh:1').fetch).toEqual({ type: 'file-offset', offset: 16n });
    expect(arg('@0x1000', U, '/bin/sh:1').fetch).toEqual({ type: 'memory', address: 0x1000n });
    expect(arg('\\123').fetch).toEqual({ type: 'immediate', value: 123n });
    expect(arg('\\0x10').fetch).toEqual({ type: 'immediate', value: 16n });
    expect(arg('\\-1').fetch).toEqual({ type: 'immediate', value: 0xffffffffffffffffn });
    expect(arg('\\-1', ctxFor('kprobe', 'i386')).fetch).toEqual({ type: 'immediate', value: 0xffffffffn });
    expect(arg('\\+5').fetch).toEqual({ type: 'immediate', value: 5n });
    expect(arg('\\"hello"')).toMatchObject({ fetch: { type: 'immediate-string', value: 'hello' }, type: { name: 'string' } });
    expect(arg('\\0x1000:string').fetch).toEqual({ type: 'immediate', value: 0x1000n });
  });

  it('dereferences nest; +u reads user memory; text after the last ")" is ignored', () => {
    expect(arg('+8(%di)').fetch).toEqual({ type: 'deref', offset: 8n, user: false, base: { type: 'register', name: 'di', size: 8 } });
    expect(arg('-0x10(+u4($stack))').fetch).toEqual({
      type: 'deref',
      offset: -16n,
      user: false,
      base: { type: 'deref', offset: 4n, user: true, base: { type: 'stack-pointer' } },
    });
    expect(arg('+0(@0x1000)').fetch).toMatchObject({ type: 'deref', base: { type: 'memory' } });
    expect(rarg('+0($retval):string').fetch).toEqual({ type: 'deref', offset: 0n, user: false, base: { type: 'retval' } });
    expect(arg('+0(%ax)+10').fetch).toEqual({ type: 'deref', offset: 0n, user: false, base: { type: 'register', name: 'ax', size: 8 } });
  });

  it('types: integers, char, strings, symbol, bitfields, arrays; default x64/x32', () => {
    expect(arg('%di').type).toEqual({ name: 'x64', kind: 'hex', size: 8 });
    expect(arg('%ax', ctxFor('kprobe', 'i386')).type).toEqual({ name: 'x32', kind: 'hex', size: 4 });
    for (const t of ['u8', 'u16', 'u32', 'u64', 's8', 's16', 's32', 's64', 'x8', 'x16', 'x32', 'x64']) {
      const ty = arg(`%di:${t}`).type;
      expect(ty.name).toBe(t);
      expect(ty.size).toBe(Number(t.slice(1)) / 8);
      expect(ty.kind).toBe({ u: 'unsigned', s: 'signed', x: 'hex' }[t[0]!]);
    }
    expect(arg('%di:char').type).toEqual({ name: 'char', kind: 'char', size: 1 });
    expect(arg('+0(%di):string').type).toEqual({ name: 'string', kind: 'string', size: 8 });
    expect(arg('+0(%di):ustring').type).toEqual({ name: 'ustring', kind: 'string', size: 8, user: true });
    expect(arg('@0x1000:string').type.name).toBe('string');
    expect(arg('%di:symbol').type).toEqual({ name: 'symbol', kind: 'symbol', size: 8 });
    expect(arg('%di:symstr').type.kind).toBe('symstr');
    expect(arg('+0(%di):b4@2/32').type).toEqual({ name: 'b4@2/32', kind: 'bitfield', size: 4, bitfield: { width: 4, offset: 2, container: 32 } });
    expect(arg('%di:b8@0/8').type.bitfield).toEqual({ width: 8, offset: 0, container: 8 });
    expect(arg('%di:b0x3@0x4/0x10').type.bitfield).toEqual({ width: 3, offset: 4, container: 16 });
    expect(arg('+0(%di):u8[4]').type).toEqual({ name: 'u8', kind: 'unsigned', size: 1, array: 4 });
    expect(arg('+8($stack):x8[64]').type.array).toBe(64);
    expect(arg('+0(%di):string[2]').type).toMatchObject({ name: 'string', array: 2 });
  });
});

describe('registers of every target come from the arch register table', () => {
  // The kernel's names (regs_query_register_offset) that the reference and the brief name.
  const kernelNames: Record<string, string[]> = {
    x86_64: ['ax', 'bx', 'cx', 'dx', 'si', 'di', 'bp', 'sp', 'ip', 'flags', ...Array.from({ length: 8 }, (_, i) => `r${i + 8}`)],
    i386: ['ax', 'bx', 'cx', 'dx', 'si', 'di', 'bp', 'sp', 'ip', 'flags'],
    ppc32: [...Array.from({ length: 32 }, (_, i) => `gpr${i}`), 'nip', 'msr', 'ctr', 'link', 'xer', 'ccr'],
    ppc64: [...Array.from({ length: 32 }, (_, i) => `gpr${i}`), 'nip', 'msr', 'ctr', 'link', 'xer', 'ccr'],
    sparc64: ['g', 'o', 'l', 'i'].flatMap((p) => Array.from({ length: 8 }, (_, i) => `${p}${i}`)),
  };

  it.each(TARGETS)('%s: every byName register parses, with its size; the kernel names are there', (target) => {
    const arch = archFor(target)!;
    const byName = arch.registers.byName;
    for (const name of kernelNames[target]!) expect(byName.has(name), `${target} %${name}`).toBe(true);
    for (const [name, { size }] of byName) {
      for (const kind of ['kprobe', 'uprobe'] as const) {
        const place = kind === 'kprobe' ? 'func' : '/bin/prog:0x100';
        const d = parseOk(`p ${place} v=%${name}`, ctxFor(kind, target));
        expect(d.args[0]!.fetch).toEqual({ type: 'register', name, size });
        expect(d.args[0]!.type.name).toBe(arch.wordSize === 8 ? 'x64' : 'x32');
      }
    }
  });

  it.each([
    ['x86_64', 'p:uprobes/fib /bin/fib:0x1136 n=%di ret=%ax sp=%sp r15=%r15', 'di'],
    ['i386', 'p /bin/fib:0x1136 n=+4(%sp):u32 a=%ax', 'sp'],
    ['ppc32', 'p /bin/fib:0x1136 n=%gpr3 lr=%link', 'gpr3'],
    ['ppc64', 'p /bin/fib:0x1136 n=%gpr3:s64 toc=%gpr2', 'gpr3'],
    ['sparc64', 'p /bin/fib:0x1136 n=%o0 ret=%i0', 'o0'],
  ] as const)('%s: %s', (target, line, first) => {
    const d = parseOk(line, ctxFor('uprobe', target));
    const f = d.args[0]!.fetch;
    expect(f.type === 'deref' ? (f.base as { name: string }).name : (f as { name: string }).name).toBe(first);
  });

  it('a register of another target is BAD_REG_NAME', () => {
    expect(parseError('p func %di', ctxFor('kprobe', 'ppc64')).code).toBe('BAD_REG_NAME');
    expect(parseError('p func %gpr3', ctxFor('kprobe', 'x86_64')).code).toBe('BAD_REG_NAME');
    expect(parseError('p func %r8', ctxFor('kprobe', 'i386')).code).toBe('BAD_REG_NAME');
    expect(parseError('p func %o0', ctxFor('kprobe', 'ppc32')).code).toBe('BAD_REG_NAME');
  });
});
