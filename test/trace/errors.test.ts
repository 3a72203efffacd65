/**
 * Every error code of the tracefs reference (§9): code, the kernel's message, the caret position
 * (marked with '^' as in the ftrace selftests) and the errno of the write().
 */
import { describe, expect, it } from 'vitest';
import { E } from '../../src/kernel/errno.js';
import { KERNEL_ERROR_MESSAGES, type KernelErrorCode } from '../../src/trace/errors.js';
import { registrationError, type ParseContext } from '../../src/trace/parse.js';
import { ProbeEventRegistry } from '../../src/trace/registry.js';
import { caret, ctxFor, expectCaret, parseError, parseOk } from './helpers.js';

const K = ctxFor('kprobe');
const U = ctxFor('uprobe');
const D65 = '12345678901234567890123456789012345678901234567890123456789012345';
const nest14 = '+0(^+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(+0(@0))))))))))))))';

type Case = [code: KernelErrorCode, marked: string, ctx?: ParseContext];

const symbolCtx = ctxFor('kprobe', 'x86_64', { countSymbol: (s) => (s === 'dup_sym' ? 2 : s === 'non_exist_func' ? 0 : 1) });
const fileCtx = ctxFor('uprobe', 'x86_64', {
  statPath: (p) => (p === '/non_exist_file' ? { errno: E.ENOENT } : p === '/sys' ? 'not-regular' : 'regular'),
});

const cases: Case[] = [
  // head: maxactive
  ['BAD_MAXACT_TYPE', 'p^100 vfs_read'],
  ['BAD_MAXACT', 'r^1a111 vfs_read'],
  ['BAD_MAXACT', 'r^0 vfs_read'],
  ['BAD_MAXACT', `r^${'1'.repeat(64)} vfs_read`],
  ['MAXACT_TOO_BIG', 'r^100000 vfs_read'],
  ['MAXACT_TOO_BIG', 'r^4097:grp/ev vfs_read'],
  // kprobe place
  ['BAD_PROBE_ADDR', 'p ^non_exist_func', symbolCtx],
  ['BAD_PROBE_ADDR', 'p ^hoge-fuga'],
  ['BAD_PROBE_ADDR', 'p ^hoge+1000-1000'],
  ['BAD_PROBE_ADDR', 'p ^sym-160'],
  ['BAD_PROBE_ADDR', 'p ^sym+0x100000000'],
  ['BAD_PROBE_ADDR', 'p ^+4%return'],
  ['NON_UNIQ_SYMBOL', 'p ^dup_sym', symbolCtx],
  ['BAD_RETPROBE', 'r ^vfs_read+10'],
  ['BAD_RETPROBE', 'p ^vfs_read+4%return'],
  ['BAD_ADDR_SUFFIX', 'p vfs_read^%ret'],
  ['BAD_ADDR_SUFFIX', 'p /bin/sh:10^%foo', U],
  // names
  ['NO_GROUP_NAME', 'p:^/bar vfs_read'],
  ['GROUP_TOO_LONG', `p:^${D65}/bar vfs_read`],
  ['GROUP_TOO_LONG', `r16:^${D65.slice(1)}/bar vfs_read`],
  ['BAD_GROUP_NAME', 'p:^foo.1/bar vfs_read'],
  ['BAD_GROUP_NAME', 'p:^-foo/bar vfs_read'],
  ['NO_EVENT_NAME', 'p:^ vfs_read'],
  ['NO_EVENT_NAME', 'p:^ /bin/sh:10', U],
  ['EVENT_TOO_LONG', `p:foo/^${D65} vfs_read`],
  ['EVENT_TOO_LONG', `p:^${'e'.repeat(64)} vfs_read`],
  ['BAD_EVENT_NAME', 'p:foo/^bar.1 vfs_read'],
  ['BAD_EVENT_NAME', 'p:foo.^1bar vfs_read'],
  ['BAD_EVENT_NAME', 'r:grp/^ev-1 /bin/sh:0x10', U],
  // variables
  ['RETVAL_ON_PROBE', 'p vfs_read ^$retval'],
  ['RETVAL_ON_PROBE', 'p /bin/sh:10 x=+0(^$retval)', U],
  ['BAD_STACK_NUM', 'p vfs_read ^$stack10000'],
  ['BAD_STACK_NUM', 'p vfs_read ^$stack2049'],
  ['BAD_ARG_NUM', 'p vfs_read ^$arg10000'],
  ['BAD_ARG_NUM', 'p vfs_read ^$arg0'],
  ['BAD_VAR', 'p vfs_read ^$none_var'],
  ['BAD_VAR', 'p vfs_read ^$stackp'],
  ['BAD_VAR', 'p vfs_read ^$stack0+10'],
  ['BAD_VAR', 'p vfs_read ^$argX'],
  ['BAD_VAR', 'p vfs_read x=^$arg*'],
  ['BAD_VAR', 'p vfs_read +0(^$arg*)'],
  ['BAD_VAR', 'p /bin/sh:10 ^$retvals', U],
  ['BAD_REG_NAME', 'p vfs_read ^%none_reg'],
  ['BAD_REG_NAME', 'p vfs_read ^%rax'],
  ['BAD_REG_NAME', 'p vfs_read a=+8(^%eax)'],
  ['BAD_MEM_ADDR', 'p vfs_read ^@12345678abcde'],
  ['BAD_MEM_ADDR', 'p vfs_read ^@jiffies+x'],
  ['BAD_IMM', 'p vfs_read arg1=\\^x'],
  ['BAD_IMM', 'p vfs_read \\^'],
  ['IMMSTR_NO_CLOSE', 'p vfs_read arg1=\\"abcd^'],
  ['FILE_ON_KPROBE', 'p vfs_read ^@+10'],
  ['BAD_FILE_OFFS', 'p /bin/sh:10 ^@+ab', U],
  ['SYM_ON_UPROBE', 'p /bin/sh:10 ^@symbol', U],
  // dereferences
  ['TOO_MANY_OPS', `p vfs_read ${nest14}`],
  ['DEREF_NEED_BRACE', 'p vfs_read ^+0@0)'],
  ['BAD_DEREF_OFFS', 'p vfs_read ^+0ab1(@0)'],
  ['BAD_DEREF_OFFS', 'p vfs_read ^-(%ax)'],
  ['BAD_DEREF_OFFS', 'p vfs_read +0(^+(%ax))'],
  ['DEREF_OPEN_BRACE', 'p vfs_read +0(+0(@0^)'],
  ['DEREF_OPEN_BRACE', 'p vfs_read +0(%ax^'],
  ['COMM_CANT_DEREF', 'p vfs_read +0(^$comm)'],
  ['COMM_CANT_DEREF', 'p vfs_read s=+8(^\\"str"):string'],
  ['BAD_FETCH_ARG', 'p vfs_read ^&1'],
  ['BAD_FETCH_ARG', 'p vfs_read ^(%ax)'],
  ['BAD_FETCH_ARG', 'p vfs_read +0(^)'],
  // types and arrays
  ['ARRAY_NO_CLOSE', 'p vfs_read +0(@11):u8[10^'],
  ['BAD_ARRAY_SUFFIX', 'p vfs_read +0(@11):u8[10]^a'],
  ['BAD_ARRAY_NUM', 'p vfs_read +0(@11):u8[^10a]'],
  ['BAD_ARRAY_NUM', 'p vfs_read +0(@11):u8[^0]'],
  ['ARRAY_TOO_BIG', 'p vfs_read +0(@11):u8[^256]'],
  ['ARRAY_TOO_BIG', 'p vfs_read +0(@11):u8[^65]'],
  ['BAD_TYPE', 'p vfs_read @11:^unknown_type'],
  ['BAD_TYPE', 'p vfs_read %ax:^:x16'],
  ['BAD_TYPE', 'p vfs_read x16:^%ax'],
  ['BAD_TYPE', 'p vfs_read @11:^b4@0/12'],
  ['BAD_TYPE', 'p vfs_read %ax:^'],
  ['BAD_TYPE', 'p /bin/sh:10 %ax:^symbol', U],
  ['BAD_TYPE', 'p /bin/sh:10 +0(%ax):^symstr', U],
  ['BAD_STRING', 'p vfs_read $stack0:^string'],
  ['BAD_STRING', 'p vfs_read %di:^string'],
  ['BAD_STRING', 'p vfs_read $stack1:^x8[8]'],
  ['BAD_SYMSTRING', 'p vfs_read \\1:^symstr'],
  ['BAD_BITFIELD', 'p vfs_read @11:^b10@a/16'],
  ['BAD_BITFIELD', 'p vfs_read @11:^b0@0/8'],
  ['BAD_BITFIELD', 'p vfs_read @11:^b5@4/8'],
  ['BAD_BITFIELD', 'p vfs_read @11:^b5/8'],
  // argument names and lengths
  ['ARG_NAME_TOO_LONG', 'p vfs_read ^arg123456789012345678901234567890=@11'],
  ['NO_ARG_NAME', 'p vfs_read ^=@11'],
  ['BAD_ARG_NAME', 'p vfs_read ^var.1=@11'],
  ['BAD_ARG_NAME', 'p vfs_read ^1var=@11'],
  ['USED_ARG_NAME', 'p vfs_read var1=@11 ^var1=@12'],
  ['USED_ARG_NAME', 'p vfs_read ^common_pid=%ax'],
  ['USED_ARG_NAME', 'p vfs_read arg2=%ax ^%bx'],
  ['ARG_TOO_LONG', 'p vfs_read ^+1234567(+1234567(+1234567(+1234567(+1234567(+1234567(@1234))))))'],
  ['ARG_TOO_LONG', `p vfs_read name=^${'+1('.repeat(20)}%ax${')'.repeat(20)}:u8`],
  ['NO_ARG_BODY', 'p vfs_read arg1=^'],
  // BTF-only syntax without BTF, $argN away from a function entry, strings
  ['NOSUP_BTFARG', 'p vfs_read ^count'],
  ['NOSUP_BTFARG', 'p vfs_read ^$arg*'],
  ['NOSUP_BTFARG', 'p vfs_read varname=^varname2=%ax'],
  ['NOFENTRY_ARGS', 'p vfs_read+8 ^$arg1'],
  ['NOFENTRY_ARGS', 'p 0xffffffff81000000 ^$arg1'],
  ['NEED_STRING_TYPE', 'p vfs_read $comm:^x64'],
  ['NEED_STRING_TYPE', 'p vfs_read $comm:^string[2]'],
  ['NEED_STRING_TYPE', 'p vfs_read \\"s":^u8'],
  // uprobe place
  ['FILE_NOT_FOUND', 'p ^/non_exist_file:100', fileCtx],
  ['NO_REGULAR_FILE', 'p ^/sys:100', fileCtx],
  ['BAD_UPROBE_OFFS', 'p /bin/sh:^10a', U],
  ['BAD_UPROBE_OFFS', 'p /bin/sh:^0x10000000000000000', U],
  ['BAD_REFCNT', 'p /bin/sh:10(^1a)', U],
  ['REFCNT_OPEN_BRACE', 'p /bin/sh:10(10^', U],
  ['BAD_REFCNT_SUFFIX', 'p /bin/sh:10(10)^a', U],
  ['BAD_REFCNT_SUFFIX', 'p /bin/sh:10(10)^%return', U],
];

describe('parse errors: code, message, caret (§9)', () => {
  it.each(cases)('%s: %s', (code, marked, ctx = K) => {
    const { command } = caret(marked);
    const err = parseError(command, ctx);
    expect(err.code).toBe(code);
    expect(err.message).toBe(KERNEL_ERROR_MESSAGES[code]);
    expect(err.logged).toBe(true);
    expectCaret(err, marked);
    expect(err.subsystem).toBe(ctx.kind === 'uprobe' ? 'trace_uprobe' : 'trace_kprobe');
  });

  it('TOO_MANY_OPS: 13 levels over @0 fit, 14 do not; 14 over a register fit', () => {
    const nest = (n: number, base: string) => '+0('.repeat(n) + base + ')'.repeat(n);
    expect(() => parseOk(`p vfs_read ${nest(13, '@0')}`, K)).not.toThrow();
    expect(parseError(`p vfs_read ${nest(14, '@0')}`, K).code).toBe('TOO_MANY_OPS');
    expect(() => parseOk(`p vfs_read ${nest(14, '%ax')}`, K)).not.toThrow();
    expect(parseError(`p vfs_read ${nest(15, '%ax')}`, K).code).toBe('TOO_MANY_OPS');
  });

  it('TOO_MANY_ARGS: more than 128 arguments, caret on the first one, E2BIG', () => {
    const args = Array.from({ length: 129 }, (_, i) => `a${i}=%ax`).join(' ');
    const err = parseError(`p vfs_read ${args}`, K);
    expect(err.code).toBe('TOO_MANY_ARGS');
    expect(err.message).toBe('Too many arguments are specified');
    expect(err.position).toBe('p vfs_read '.length);
    expect(err.errno).toBe(E.E2BIG);
    const ok = Array.from({ length: 128 }, (_, i) => `a${i}=%ax`).join(' ');
    expect(parseOk(`p vfs_read ${ok}`, K).args).toHaveLength(128);
  });

  it('errno per code: EINVAL by default, E2BIG, ENOENT (the lookup errno) for FILE_NOT_FOUND', () => {
    expect(parseError('p vfs_read %nope', K).errno).toBe(E.EINVAL);
    expect(parseError(caret('p vfs_read ^+1234567(+1234567(+1234567(+1234567(+1234567(+1234567(@1234))))))').command, K).errno).toBe(E.E2BIG);
    expect(parseError('p /non_exist_file:100', fileCtx).errno).toBe(E.ENOENT);
    const eacces = ctxFor('uprobe', 'x86_64', { statPath: () => ({ errno: E.EACCES }) });
    expect(parseError('p /root/x:100', eacces)).toMatchObject({ code: 'FILE_NOT_FOUND', errno: E.EACCES });
  });
});

describe('registration-time errors (the core reports them through registrationError)', () => {
  it.each([
    ['BAD_INSN_BNDRY', 'p ^vfs_read+3', E.EILSEQ],
    ['FAIL_REG_PROBE', 'p ^do_exit', E.EINVAL],
    ['BAD_PROBE_ADDR', 'p ^vfs_read x=@unknown_sym', E.ENOENT],
    ['NON_UNIQ_SYMBOL', 'p ^dup_sym', E.EINVAL],
    ['FILE_NOT_FOUND', 'p ^/gone:0x10', E.ENOENT],
  ] as const)('%s: %s', (code, marked, errno) => {
    const { command } = caret(marked);
    const def = parseOk(command, ctxFor('auto'));
    const err = registrationError(def, code, code === 'BAD_PROBE_ADDR' || code === 'FILE_NOT_FOUND' ? { errno } : {});
    expect(err).toMatchObject({ code, message: KERNEL_ERROR_MESSAGES[code], errno, logged: true });
    expectCaret(err, marked);
  });
});

describe('multi-probe errors through the registry (§7)', () => {
  const reg = () => {
    const r = new ProbeEventRegistry({ isOtherEvent: (g, e) => g === 'sched' && e === 'sched_switch' });
    expect(r.write('p:grp/ev vfs_read a=%di b=+8(%si):u32', K).ok).toBe(true);
    expect(r.write('p:ugrp/uev /bin/sh:0x10 %ax', U).ok).toBe(true);
    return r;
  };
  it.each([
    ['DIFF_PROBE_TYPE', '^r:grp/ev vfs_write a=%di b=+8(%si):u32', K],
    ['DIFF_PROBE_TYPE', '^r:ugrp/uev /bin/sh:0x20 %ax', U],
    ['DIFF_ARG_TYPE', 'p:grp/ev vfs_write a=%di ^b=+8(%si):u64', K],
    ['DIFF_ARG_TYPE', 'p:grp/ev vfs_write a=%di ^c=+8(%si):u32', K],
    ['DIFF_ARG_TYPE', 'p:grp/ev vfs_write a=%di b=+8(%si):u32 ^c=%dx', K],
    ['DIFF_ARG_TYPE', 'p:grp/ev vfs_write a=%di ^', K],
    ['DIFF_ARG_TYPE', 'p:grp/ev vfs_write a=%di ^b=+8(%si):u32[2]', K],
    ['SAME_PROBE', '^p:grp/ev vfs_read a=%di b=+8(%si):u32', K],
    ['SAME_PROBE', '^p:grp/ev vfs_read+0 a=%di b=+8(%si):u32', K],
    ['EVENT_EXIST', '^p:ugrp/uev vfs_read', K],
    ['EVENT_EXIST', '^p:grp/ev /bin/sh:0x10', U],
    ['EVENT_EXIST', '^p:sched/sched_switch vfs_read', K],
  ] as const)('%s: %s', (code, marked, ctx) => {
    const r = reg();
    const before = r.list();
    const res = r.write(caret(marked).command, ctx);
    expect(res.ok).toBe(false);
    expect(res.error).toMatchObject({ code, message: KERNEL_ERROR_MESSAGES[code], errno: E.EEXIST, logged: true });
    expectCaret(res.error!, marked);
    expect(r.list()).toEqual(before);
    expect(r.errorLog.at(-1)).toBe(res.error);
  });
});

describe('codes that need BTF (not supported): in the table with the kernel text, never produced', () => {
  const btfOnly: KernelErrorCode[] = [
    'NO_RETVAL',
    'NO_BTFARG',
    'NO_BTF_ENTRY',
    'BAD_VAR_ARGS',
    'DOUBLE_ARGS',
    'ARGS_2LONG',
    'ARGIDX_2BIG',
    'NO_PTR_STRCT',
    'NOSUP_DAT_ARG',
    'BAD_HYPHEN',
    'NO_BTF_FIELD',
    'BAD_BTF_TID',
    'BAD_TYPE4STR',
    'TOO_MANY_EARGS',
  ];
  it('messages', () => {
    expect(KERNEL_ERROR_MESSAGES.NO_RETVAL).toBe("This function returns 'void' type");
    expect(KERNEL_ERROR_MESSAGES.BAD_HYPHEN).toBe("Failed to parse single hyphen. Forgot '>'?");
    expect(KERNEL_ERROR_MESSAGES.BAD_VAR).toBe('Invalid $-valiable specified');
    expect(KERNEL_ERROR_MESSAGES.BAD_RETPROBE).toBe('Retprobe address must be an function entry');
    for (const c of btfOnly) expect(typeof KERNEL_ERROR_MESSAGES[c]).toBe('string');
  });
  it.each([
    ['p vfs_read ^$arg* $arg*', 'NOSUP_BTFARG'], // DOUBLE_ARGS needs $arg* expansion first
    ['p vfs_read ^file->f_mode', 'NOSUP_BTFARG'], // NO_BTF_FIELD / NO_PTR_STRCT
    ['p vfs_read ^file.f_mode', 'NOSUP_BTFARG'], // NOSUP_DAT_ARG
    ['p vfs_read ^file-f_mode', 'NOSUP_BTFARG'], // BAD_HYPHEN
    ['r vfs_read ^$retval->x', 'BAD_VAR'], // NO_RETVAL / BTF field of the return value
  ])('%s → %s', (marked, code) => {
    const err = parseError(caret(marked).command, K);
    expect(err.code).toBe(code);
    expectCaret(err, marked);
  });
  it('every §9 code is in the table (81 - 2 old names = 74 entries)', () => {
    expect(Object.keys(KERNEL_ERROR_MESSAGES)).toHaveLength(74);
  });
});

describe('failures the kernel does not log (§1)', () => {
  it.each([
    ['a:foo sym', K, 'NOT_CLAIMED'],
    ['p', K, 'NOT_CLAIMED'],
    ['r10', K, 'NOT_CLAIMED'],
    ['p /bin/sh:10', K, 'NOT_CLAIMED'],
    ['p vfs_read', U, 'NOT_CLAIMED'],
    ['p /bin/sh:x10', U, 'NOT_CLAIMED'],
    ['p /bin/sh', U, 'NOT_CLAIMED'],
    ['p /bin/sh:x10', ctxFor('auto'), 'NOT_CLAIMED'],
    ['   # only a comment', K, 'EMPTY'],
    ['p vfs_read <4100 x>', K, 'LINE_TOO_LONG'],
    ['-x', K, 'BAD_DELETE'],
    ['-:', K, 'BAD_DELETE'],
  ] as const)('%s', (text, ctx, code) => {
    const line = text.replace('<4100 x>', 'x'.repeat(4100));
    const err = parseError(line, ctx);
    expect(err.code).toBe(code);
    expect(err.logged).toBe(false);
    expect(err.errno).toBe(E.EINVAL);
    expect(err.message.length).toBeGreaterThan(0);
  });
});
