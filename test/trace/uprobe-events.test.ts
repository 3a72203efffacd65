/**
 * uprobe events on real programs, every target: a probe and a return probe on the recursive `fib`
 * of fib-nolibc. Truth is computed independently: each return value must be fib(n) of the n that
 * call received, the top-level calls are the ones the program printed, and `@+0` reads the
 * file's own first bytes from disk.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Target } from '../../arch/types.js';
import { Machine } from '../../src/kernel/machine.js';
import { TraceSession } from '../../src/trace/attach.js';
import type { ProbeError } from '../../src/trace/errors.js';
import { formatValueJson } from '../../src/trace/fetch-eval.js';
import type { TraceRecord } from '../../src/trace/output.js';
import { manifest, repoRoot, supported } from '../helpers.js';
import { functionSite } from './elf-sites.js';

const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as Target[]).filter((t) => supported.has(t));
const fib = (n: number): number => (n < 2 ? n : fib(n - 1) + fib(n - 2));

function setup(target: Target) {
  const e = manifest.find((m) => m.target === target && m.name === 'fib-nolibc')!;
  const path = `fixtures/${e.path}`;
  const out: Buffer[] = [];
  const m = new Machine({ target, stdout: (b) => out.push(Buffer.from(b)) });
  m.spawn(`${repoRoot}/${path}`, [e.path]);
  const records: TraceRecord[] = [];
  const session = new TraceSession(m, { onRecord: (r) => records.push(r), cwd: repoRoot });
  const write = (line: string) => m.kernelCall<ProbeError | undefined>('uprobe_events', (t) => session.write(t, line));
  const enable = () => m.kernelCall<boolean>('enable', (t) => session.enable(t));
  const disable = () => m.kernelCall<boolean>('disable', (t) => session.disable(t));
  return { m, e, path, out, records, session, write, enable, disable, site: functionSite(`${repoRoot}/${path}`, 'fib') };
}

function val(r: TraceRecord, name: string): string | null {
  const a = r.args.find((x) => x.name === name)!;
  return formatValueJson(a.type, a.value) as string | null;
}

describe.each(TARGETS)('uprobe events on %s', (target) => {
  it('p and r on fib: every return is fib(n) of its own call, calls and returns pair up, @+0 is the ELF magic', async () => {
    const { m, e, path, out, records, session, write, enable, site } = setup(target);
    try {
      const off = `0x${site.offset.toString(16)}`;
      expect(await write(`p:uf ${path}:${off} n=$arg1:s32 magic=@+0:x32 who=$comm`)).toBeUndefined();
      expect(await write(`r:ufr ${path}:${off} n=$arg1:s32 ret=$retval:s64`)).toBeUndefined();
      expect(session.registry.list()).toEqual([
        `p:uprobes/uf ${path}:0x${site.offset.toString(16).padStart(m.arch.wordSize * 2, '0')} n=$arg1:s32 magic=@+0:x32 who=$comm`,
        `r:uprobes/ufr ${path}:0x${site.offset.toString(16).padStart(m.arch.wordSize * 2, '0')} n=$arg1:s32 ret=$retval:s64`,
      ]);
      await enable();
      const r = await m.runAsync();
      expect(r.status).toBe(e.exit);
      expect(Buffer.concat(out).toString()).toBe(e.stdout);

      const calls = records.filter((x) => x.event === 'uf');
      const rets = records.filter((x) => x.event === 'ufr');
      expect(calls.length).toBeGreaterThan(10);
      expect(rets).toHaveLength(calls.length);
      for (const x of rets) expect(Number(val(x, 'ret'))).toBe(fib(Number(val(x, 'n'))));
      // The program printed fib(N) for the top-level calls: each N was seen at an entry.
      const printed = [...e.stdout.matchAll(/fib\((\d+)\)/g)].map((x) => x[1]);
      const seen = new Set(calls.map((x) => val(x, 'n')));
      for (const n of printed) expect(seen.has(n!)).toBe(true);
      const file = readFileSync(`${repoRoot}/${path}`);
      const magic = m.arch.endian === 'little' ? file.readUInt32LE(0) : file.readUInt32BE(0);
      for (const x of calls) {
        expect(x).toMatchObject({ group: 'uprobes', flavor: 'uprobe', kind: 'p', ip: site.vaddr, pid: 1, tid: 1 });
        expect(val(x, 'magic')).toBe(`0x${magic.toString(16)}`);
        expect(val(x, 'who')).toBe('fib-nolibc');
      }
      for (const x of rets) {
        expect(x.func).toBe(site.vaddr);
        expect(x.ip).toBeLessThan(m.arch.layout.taskSize);
      }
      // uprobe_profile: nhit counts entries for both kinds.
      expect(session.profile().map((p) => [p.event, p.hits, p.path])).toEqual([
        ['uf', calls.length, path],
        ['ufr', calls.length, path],
      ]);
    } finally {
      m.close();
    }
  });
});

describe('uprobe events: enable, disable, delete', () => {
  it('the consumer is registered at enable and unregistered at disable: the original bytes come back', async () => {
    const { m, path, write, enable, disable, site, records, session } = setup('x86_64');
    try {
      const mm = m.processes[0]!.mm;
      const original = mm.read(site.vaddr, 1);
      expect(await write(`p:uf ${path}:0x${site.offset.toString(16)}`)).toBeUndefined();
      expect([...mm.read(site.vaddr, 1)]).toEqual([...original]); // defined, not yet enabled
      await enable();
      expect([...mm.read(site.vaddr, 1)]).toEqual([0xcc]);
      await disable();
      expect([...mm.read(site.vaddr, 1)]).toEqual([...original]);
      expect(await write('-:uf')).toBeUndefined();
      expect(session.registry.list()).toEqual([]);
      await m.runAsync();
      expect(records).toEqual([]);
    } finally {
      m.close();
    }
  });

  it('an offset past the end of the file is accepted by the definition and refused by the enable', async () => {
    const { m, path, write, enable } = setup('x86_64');
    try {
      expect(await write(`p:far ${path}:0x10000000`)).toBeUndefined();
      await expect(enable()).rejects.toThrow(/cannot enable uprobes\/far at .*fib-nolibc:0x10000000: uprobe_register failed \(EINVAL\)/);
    } finally {
      m.close();
    }
  });

  it('a missing file is FILE_NOT_FOUND at the place (errno ENOENT), a directory NO_REGULAR_FILE', async () => {
    const { m, write } = setup('x86_64');
    try {
      expect(await write('p:x fixtures/x86_64/no-such-program:0x10')).toMatchObject({ code: 'FILE_NOT_FOUND', errno: 2, position: 4 });
      expect(await write('p:x fixtures/x86_64/:0x10')).toMatchObject({ code: 'NO_REGULAR_FILE', position: 4 });
    } finally {
      m.close();
    }
  });
});
