/** The dynamic event table: add, multi-probe events, delete, truncate, enable, counters (§7). */
import { describe, expect, it } from 'vitest';
import { E } from '../../src/kernel/errno.js';
import { registrationError } from '../../src/trace/parse.js';
import { ProbeEventRegistry, ERROR_LOG_MAX } from '../../src/trace/registry.js';
import { ctxFor } from './helpers.js';

const K = ctxFor('kprobe');
const U = ctxFor('uprobe');

describe('ProbeEventRegistry', () => {
  it('lists probes in the normalised form, in creation order', () => {
    const r = new ProbeEventRegistry();
    expect(r.write('p vfs_read\nr:grp/ret vfs_write $retval\n\n# comment line\np:ev2 do_exit+4 code=%di:s32', K)).toEqual({ ok: true, applied: 3 });
    expect(r.write('p /bin/fib:0x1136 %di', U).ok).toBe(true);
    expect(r.list('kprobe')).toEqual([
      'p:kprobes/p_vfs_read_0 vfs_read',
      'r:grp/ret vfs_write arg1=$retval',
      'p:kprobes/ev2 do_exit+4 code=%di:s32',
    ]);
    expect(r.list('uprobe')).toEqual(['p:uprobes/p_fib_0x1136 /bin/fib:0x0000000000001136 arg1=%di']);
    expect(r.find('grp', 'ret')).toMatchObject({ flavor: 'kprobe', kind: 'r', enabled: false, users: 0 });
  });

  it('a failing line stops the write; earlier lines stay; the error is logged', () => {
    const r = new ProbeEventRegistry();
    const res = r.write('p:a vfs_read\np:b vfs_read %nope\np:c vfs_read', K);
    expect(res).toMatchObject({ ok: false, applied: 1, error: { code: 'BAD_REG_NAME', position: 13 } });
    expect(r.list()).toEqual(['p:kprobes/a vfs_read']);
    expect(r.errorLog.map((e) => e.code)).toEqual(['BAD_REG_NAME']);
    // Unlogged failures (not claimed, deletion errors) do not reach error_log.
    expect(r.write('x foo', K).ok).toBe(false);
    expect(r.write('-:nosuch', K).error).toMatchObject({ code: 'NO_SUCH_EVENT', errno: E.ENOENT, logged: false });
    expect(r.errorLog).toHaveLength(1);
    for (let i = 0; i < 20; i++) r.write(`p vfs_read %bad${i}`, K);
    expect(r.errorLog).toHaveLength(ERROR_LOG_MAX);
    r.clearErrorLog();
    expect(r.errorLog).toHaveLength(0);
  });

  it('multi-probe events: same kind, same argument names and types, different places', () => {
    const r = new ProbeEventRegistry();
    expect(r.write('p:kprobes/testevent vfs_read a=%di b=+8(%si):u32', K).ok).toBe(true);
    expect(r.write('p:kprobes/testevent vfs_write a=%dx b=+16(%cx):u32', K).ok).toBe(true);
    // Same place, different argument texts: a different probe, so accepted.
    expect(r.write('p:kprobes/testevent vfs_read a=%dx b=+8(%si):u32', K).ok).toBe(true);
    const ev = r.find('kprobes', 'testevent')!;
    expect(ev.probes).toHaveLength(3);
    expect(r.list()).toEqual([
      'p:kprobes/testevent vfs_read a=%di b=+8(%si):u32',
      'p:kprobes/testevent vfs_write a=%dx b=+16(%cx):u32',
      'p:kprobes/testevent vfs_read a=%dx b=+8(%si):u32',
    ]);
    // Uprobes too.
    expect(r.write('p:u/ev /bin/sh:0x10 x=%di', U).ok).toBe(true);
    expect(r.write('p:u/ev /bin/sh:0x20 x=%si', U).ok).toBe(true);
    expect(r.find('u', 'ev')!.probes).toHaveLength(2);
  });

  it('deletion: the whole event, or only the probe whose listing matches', () => {
    const r = new ProbeEventRegistry();
    r.write('p:kprobes/testevent vfs_read a=%di\np:kprobes/testevent vfs_write a=%si\np:other vfs_read', K);
    expect(r.write('-:kprobes/testevent vfs_write', K).ok).toBe(true);
    expect(r.list()).toEqual(['p:kprobes/testevent vfs_read a=%di', 'p:kprobes/other vfs_read']);
    expect(r.write('-:testevent vfs_read a=%si', K).error?.code).toBe('NO_SUCH_EVENT');
    expect(r.write('-:testevent vfs_read a=%di', K).ok).toBe(true);
    expect(r.find('kprobes', 'testevent')).toBeUndefined();
    expect(r.write('-:kprobes.other', K).ok).toBe(true);
    expect(r.list()).toEqual([]);
    expect(r.write('-:kprobes/other', K).error).toMatchObject({ code: 'NO_SUCH_EVENT', errno: E.ENOENT });
  });

  it('deletion through one file only sees its own kind; "-:EVENT" searches every group', () => {
    const r = new ProbeEventRegistry();
    r.write('p:g1/ev vfs_read', K);
    r.write('p:g2/uev /bin/sh:0x10', U);
    expect(r.write('-:uev', K).error?.code).toBe('NO_SUCH_EVENT');
    expect(r.write('-:uev /bin/sh:0x10', U).error?.code).toBe('NO_SUCH_EVENT'); // listing form is zero-padded
    expect(r.write('-:uev /bin/sh:0x0000000000000010', U).ok).toBe(true);
    expect(r.write('-:ev', ctxFor('auto')).ok).toBe(true);
    expect(r.list()).toEqual([]);
  });

  it('an enabled or used event cannot be deleted (EBUSY), a sibling probe can', () => {
    const r = new ProbeEventRegistry();
    r.write('p:ev vfs_read\np:ev vfs_write\np:single do_exit', K);
    expect(r.setEnabled('kprobes', 'ev', true)).toBe(true);
    expect(r.setEnabled('kprobes', 'nosuch', true)).toBe(false);
    // The kernel unregisters a probe that has siblings even while the event is enabled …
    expect(r.write('-:ev vfs_write', K).ok).toBe(true);
    // … but not the last one.
    expect(r.write('-:ev', K).error).toMatchObject({ code: 'EVENT_BUSY', errno: E.EBUSY, logged: false });
    expect(r.list()).toEqual(['p:kprobes/ev vfs_read', 'p:kprobes/single do_exit']);
    r.find('kprobes', 'single')!.users++;
    expect(r.write('-:single', K).error?.code).toBe('EVENT_BUSY');
    r.find('kprobes', 'single')!.users--;
    r.setEnabled('kprobes', 'ev', false);
    expect(r.write('-:ev\n-:single', K).ok).toBe(true);
    expect(r.list()).toEqual([]);
  });

  it('truncating open: all of that kind, or nothing if one is busy', () => {
    const r = new ProbeEventRegistry();
    r.write('p:a vfs_read\np:b vfs_write', K);
    r.write('p:u /bin/sh:0x10', U);
    r.setEnabled('kprobes', 'b', true);
    const busy = r.write('p:c do_exit', K, { truncate: true });
    expect(busy).toMatchObject({ ok: false, applied: 0, error: { code: 'EVENT_BUSY', errno: E.EBUSY } });
    expect(r.list('kprobe')).toHaveLength(2);
    r.setEnabled('kprobes', 'b', false);
    expect(r.write('p:c do_exit', K, { truncate: true }).ok).toBe(true);
    expect(r.list()).toEqual(['p:uprobes/u /bin/sh:0x0000000000000010', 'p:kprobes/c do_exit']);
    expect(r.clear('uprobe')).toEqual({ ok: true, value: 1 });
  });

  it('the register hook runs last and can refuse (nothing added)', () => {
    const r = new ProbeEventRegistry();
    const register = (def: Parameters<typeof registrationError>[0]) =>
      def.location.type === 'symbol' && def.location.offset === 3 ? registrationError(def, 'BAD_INSN_BNDRY') : undefined;
    const res = r.write('p vfs_read+3', K, { register });
    expect(res.error).toMatchObject({ code: 'BAD_INSN_BNDRY', errno: E.EILSEQ, position: 2 });
    expect(r.list()).toEqual([]);
    expect(r.write('p:ev vfs_read+4', K, { register }).ok).toBe(true);
    // On an existing event the argument checks come first, then the hook.
    const bad = r.write('p:ev vfs_read+3', K, { register });
    expect(bad.error?.code).toBe('BAD_INSN_BNDRY');
    expect(r.find('kprobes', 'ev')!.probes).toHaveLength(1);
  });

  it('hit and miss counters per probe point; profile lines like kprobe_profile / uprobe_profile', () => {
    const r = new ProbeEventRegistry();
    r.write('p:ev vfs_read\np:ev vfs_write', K);
    r.write('p:uev /bin/fib:0x1136', U);
    const [p1, p2] = r.find('kprobes', 'ev')!.probes;
    p1!.hits += 3;
    p2!.misses += 1;
    r.find('uprobes', 'uev')!.probes[0]!.hits = 7;
    expect(r.profile('kprobe')).toEqual([
      `  ${'ev'.padEnd(44)} ${'3'.padStart(15)} ${'0'.padStart(15)}`,
      `  ${'ev'.padEnd(44)} ${'0'.padStart(15)} ${'1'.padStart(15)}`,
    ]);
    expect(r.profile('uprobe')).toEqual([`  /bin/fib ${'uev'.padEnd(44)} ${'7'.padStart(15)}`]);
  });

  it('dynamic_events style (auto): both kinds through one write', () => {
    const r = new ProbeEventRegistry();
    expect(r.write('p:k vfs_read\np:u /bin/sh:0x10 %di', ctxFor('auto')).ok).toBe(true);
    expect(r.events().map((e) => `${e.flavor}:${e.group}/${e.event}`)).toEqual(['kprobe:kprobes/k', 'uprobe:uprobes/u']);
  });
});
