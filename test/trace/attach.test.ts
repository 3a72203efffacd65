/**
 * Probe events on real machines: definitions attached to the kprobes core, hits turned into
 * records whose values are checked against what the program really did (its stdout, the bytes of
 * each write), registration failures reported as the kernel reports them, deletion, multi-probe
 * events, enable/disable.
 */
import { describe, expect, it } from 'vitest';
import type { Target } from '../../arch/types.js';
import { Machine } from '../../src/kernel/machine.js';
import { TraceSession } from '../../src/trace/attach.js';
import type { ProbeError } from '../../src/trace/errors.js';
import { formatValueJson } from '../../src/trace/fetch-eval.js';
import type { TraceRecord } from '../../src/trace/output.js';
import { manifest, repoRoot, supported } from '../helpers.js';
import { expectCaret } from './helpers.js';

const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as Target[]).filter((t) => supported.has(t));

function setup(target: Target, name = 'fib-nolibc', opts: { cpus?: number } = {}) {
  const e = manifest.find((m) => m.target === target && m.name === name)!;
  const out: Buffer[] = [];
  const syscalls: string[] = [];
  const m = new Machine({
    target,
    cpus: opts.cpus ?? 1,
    stdout: (b) => out.push(Buffer.from(b)),
    strace: (l) => syscalls.push(l.replace(/^\[\d+\] /, '').replace(/\(.*$/, '')),
  });
  m.spawn(`${repoRoot}/fixtures/${e.path}`, [e.path, ...e.args]);
  const records: TraceRecord[] = [];
  const session = new TraceSession(m, { onRecord: (r) => records.push(r) });
  const write = (line: string) => m.kernelCall<ProbeError | undefined>('kprobe_events', (t) => session.write(t, line));
  const enable = (group?: string, event?: string) => m.kernelCall<boolean>('enable', (t) => session.enable(t, group, event));
  const disable = (group?: string, event?: string) => m.kernelCall<boolean>('disable', (t) => session.disable(t, group, event));
  return { m, e, out, records, session, write, enable, disable, syscalls };
}

/** An argument's value as JSON output shows it (a string, or null for a fault). */
function val(r: TraceRecord, name: string, symbolize?: (a: bigint) => string): unknown {
  const a = r.args.find((x) => x.name === name)!;
  return formatValueJson(a.type, a.value, symbolize);
}

describe.each(TARGETS)('probe events on %s', (target) => {
  it('kprobe + kretprobe on ksys_write: fd, the bytes written and the return values match what the program printed', async () => {
    const { m, e, out, records, session, write, enable } = setup(target);
    try {
      expect(await write('p:myk ksys_write fd=$arg1:u32 buf=+0($arg2):ustring count=$arg3:u64 comm=$comm')).toBeUndefined();
      expect(await write('r:myr ksys_write ret=$retval:s64 count=$arg3:u64')).toBeUndefined();
      expect(await enable()).toBe(true);
      const r = await m.runAsync();
      expect(r.status).toBe(e.exit);
      expect(Buffer.concat(out).toString()).toBe(e.stdout);

      const entries = records.filter((x) => x.event === 'myk');
      const returns = records.filter((x) => x.event === 'myr');
      expect(entries.length).toBeGreaterThan(0);
      expect(returns).toHaveLength(entries.length);
      // Every entry is followed by its return (one task, no nesting).
      records.forEach((x, i) => expect(x.event).toBe(i % 2 === 0 ? 'myk' : 'myr'));
      // The buffers, cut at their counts, are exactly the program's stdout; returns add up to it.
      const written = entries.map((x) => String(val(x, 'buf')).slice(0, Number(val(x, 'count')))).join('');
      expect(written).toBe(e.stdout);
      const sum = returns.reduce((s, x) => s + BigInt(val(x, 'ret') as string), 0n);
      expect(sum).toBe(BigInt(Buffer.byteLength(e.stdout)));
      returns.forEach((x, i) => expect(val(x, 'count')).toBe(val(entries[i]!, 'count')));
      for (const x of entries) {
        expect(val(x, 'fd')).toBe('1');
        expect(val(x, 'comm')).toBe('fib-nolibc');
        expect(x).toMatchObject({ group: 'kprobes', kind: 'p', flavor: 'kprobe', pid: 1, tid: 1, cpu: 0, comm: 'fib-nolibc' });
        expect(x.ip).toBe(m.kernel.symbol('ksys_write')!.localEntry);
      }
      for (const x of returns) {
        expect(x.func).toBe(m.kernel.symbol('ksys_write')!.localEntry);
        // The return address is in the kernel function that called ksys_write.
        expect(m.kernel.elf.symbolAt(x.ip)?.symbol.name).not.toBe('ksys_write');
        expect(m.kernel.isText(x.ip)).toBe(true);
      }
      // Timestamps are the guest instruction clock: never decreasing, within the run's budget.
      records.forEach((x, i) => i > 0 && expect(x.timestamp).toBeGreaterThanOrEqual(records[i - 1]!.timestamp));
      expect(records.at(-1)!.timestamp).toBeLessThanOrEqual(r.insns);
      // ... and they move inside a run (src/kernel/run-clock.ts): the program computes between
      // two writes, so each entry is stamped later than the one before, though the whole program
      // may be one run (a lone task runs 16 M instructions per run).
      entries.forEach((x, i) => i > 0 && expect(x.timestamp).toBeGreaterThan(entries[i - 1]!.timestamp));
      expect(entries[0]!.timestamp).toBeGreaterThan(0);
      expect(session.profile()).toEqual([
        { group: 'kprobes', event: 'myk', flavor: 'kprobe', hits: entries.length, misses: 0 },
        { group: 'kprobes', event: 'myr', flavor: 'kprobe', hits: returns.length, misses: 0 },
      ]);
    } finally {
      m.close();
    }
  });

  it('@SYM:symbol reads a kernel data word and names the function it points to; a lone probe registered disabled arms when enabled', async () => {
    const { m, records, write, enable, session } = setup(target);
    try {
      expect(await write('p:grp/t vfs_write fn=@target_fn:symbol sym=@target_fn')).toBeUndefined();
      await enable('grp', 't');
      await m.runAsync();
      expect(records.length).toBeGreaterThan(0);
      const k = m.kernel.symbol('kprobe_target')!;
      expect(val(records[0]!, 'fn', session.symbolizer.symbol)).toBe(`kprobe_target+0x0/0x${k.size.toString(16)}`);
      expect(val(records[0]!, 'sym')).toBe(`0x${k.codeAddress.toString(16)}`);
    } finally {
      m.close();
    }
  });
});

describe('registration failures are the kernel error_log entries, and leave nothing behind', () => {
  it.each<[string, string, string, number]>([
    // x86-64: ksys_write+2 is inside `mov %rsp,%rbp` (ksys_write+1, 3 bytes).
    ['not an instruction boundary', 'p:bad ^ksys_write+2', 'BAD_INSN_BNDRY', 84],
    ['blacklisted entry text', 'p:bad ^entry_syscall', 'FAIL_REG_PROBE', 22],
    ['an unknown symbol (kallsyms lookup at parse time)', 'p:bad ^no_such_function', 'BAD_PROBE_ADDR', 22],
    ['an unknown @SYM (registration ENOENT)', 'p:bad ^ksys_write x=@no_such_variable', 'BAD_PROBE_ADDR', 2],
    // The parser accepts `@` with no symbol (the kernel keeps the empty name); registration's
    // lookup fails: the caret goes under the probe point, not the argument.
    ['an empty @SYM (registration ENOENT)', 'p:bad ^ksys_write @', 'BAD_PROBE_ADDR', 2],
    ['an empty @SYM with an offset', 'p:bad ^ksys_write x=@-8', 'BAD_PROBE_ADDR', 2],
  ])('%s', async (_what, marked, code, errno) => {
    const { m, session, write } = setup('x86_64');
    try {
      const err = await write(marked.replace('^', ''));
      expect(err).toMatchObject({ code, errno, logged: true });
      expectCaret(err!, marked);
      expect(session.registry.list()).toEqual([]);
      expect(session.kprobes.list()).toEqual([]);
    } finally {
      m.close();
    }
  });

  it('a return probe by address must be a function entry (BAD_RETPROBE)', async () => {
    const { m, write } = setup('x86_64');
    try {
      const at = m.kernel.symbol('ksys_write')!.codeAddress;
      const err = await write(`r:bad 0x${(at + 1n).toString(16)}`);
      expect(err).toMatchObject({ code: 'BAD_RETPROBE' });
      expect(await write(`r:good 0x${at.toString(16)} $retval`)).toBeUndefined();
    } finally {
      m.close();
    }
  });

  it('parse errors come back unchanged, with their caret', async () => {
    const { m, write } = setup('x86_64');
    try {
      const err = await write('p:myk ksys_write fd=%dx:x16 bad=%foo');
      expect(err).toMatchObject({ code: 'BAD_REG_NAME' });
      expectCaret(err!, 'p:myk ksys_write fd=%dx:x16 bad=^%foo');
    } finally {
      m.close();
    }
  });

});

describe('the event table on a machine', () => {
  it('deleting an enabled event is EBUSY; disabled, it goes and its kprobe is unregistered', async () => {
    const { m, session, write, enable, disable, records } = setup('x86_64');
    try {
      expect(await write('p:myk ksys_write')).toBeUndefined();
      await enable();
      expect(session.kprobes.list()).toHaveLength(1);
      expect(await write('-:myk')).toMatchObject({ code: 'EVENT_BUSY' });
      await disable();
      expect(session.kprobes.list()[0]).toContain('[DISABLED]');
      expect(await write('-:kprobes/myk')).toBeUndefined();
      expect(session.kprobes.list()).toEqual([]);
      expect(session.registry.list()).toEqual([]);
      await m.runAsync();
      expect(records).toEqual([]);
    } finally {
      m.close();
    }
  });

  it('a multi-probe event: hits of each probe point under one event name', async () => {
    const { m, session, write, enable, records } = setup('x86_64');
    try {
      expect(await write('p:multi ksys_write x=%di:u64')).toBeUndefined();
      expect(await write('p:multi vfs_write x=%di:u64')).toBeUndefined();
      expect(await write('p:multi vfs_write y=%di:u64')).toMatchObject({ code: 'DIFF_ARG_TYPE' });
      expect(await write('p:multi vfs_write x=%di:u64')).toMatchObject({ code: 'SAME_PROBE' });
      await enable();
      await m.runAsync();
      const at = (name: string) => m.kernel.symbol(name)!.codeAddress;
      const k = records.filter((r) => r.ip === at('ksys_write'));
      const v = records.filter((r) => r.ip === at('vfs_write'));
      expect(k.length).toBeGreaterThan(0);
      expect(v).toHaveLength(k.length);
      expect(records.every((r) => r.event === 'multi')).toBe(true);
      // ksys_write gets the fd (1), vfs_write a pointer to its struct file on the kernel stack.
      expect(k.every((r) => val(r, 'x') === '1')).toBe(true);
      expect(v.every((r) => BigInt(val(r, 'x') as string) >= m.arch.layout.taskSize)).toBe(true);
      expect(session.profile().map((p) => p.hits)).toEqual([k.length, v.length]);
      expect(session.registry.list()).toEqual(['p:kprobes/multi ksys_write x=%di:u64', 'p:kprobes/multi vfs_write x=%di:u64']);
    } finally {
      m.close();
    }
  });

  it('a disabled event records nothing and its probe is not armed', async () => {
    const { m, session, write, records } = setup('x86_64');
    try {
      expect(await write('p:quiet ksys_write')).toBeUndefined();
      expect(session.kprobes.isArmed(m.kernel.symbol('ksys_write')!.codeAddress)).toBe(false);
      await m.runAsync();
      expect(records).toEqual([]);
      expect(session.profile()[0]).toMatchObject({ hits: 0 });
    } finally {
      m.close();
    }
  });

  it('MOD:SYM on a module that is never loaded: accepted and listed, never armed', async () => {
    const { m, session, write, enable, records } = setup('x86_64');
    try {
      expect(await write('p:m mymod:func')).toBeUndefined();
      await enable();
      await m.runAsync();
      expect(session.registry.list()).toEqual(['p:kprobes/m mymod:func']);
      expect(session.kprobes.list()).toEqual([]);
      expect(records).toEqual([]);
    } finally {
      m.close();
    }
  });

  it('r1: on do_syscall while the parent sleeps in wait4: child calls are misses, tracked calls are hits', async () => {
    const { m, e, out, session, write, enable, records, syscalls } = setup('x86_64', 'fork-nolibc');
    try {
      expect(await write('r1:w do_syscall ret=$retval:s64')).toBeUndefined();
      await enable();
      expect((await m.runAsync()).status).toBe(e.exit);
      expect(Buffer.concat(out).toString()).toBe(e.stdout);
      const [row] = session.profile();
      expect(row!.hits).toBe(records.length);
      expect(row!.misses).toBeGreaterThan(0);
      // Tracked calls return, except exits (their instance dies with the task).
      const exits = syscalls.filter((s) => s === 'exit' || s === 'exit_group').length;
      expect(row!.hits).toBeGreaterThanOrEqual(syscalls.length - row!.misses - exits);
      expect(row!.hits).toBeLessThanOrEqual(syscalls.length - row!.misses);
    } finally {
      m.close();
    }
  });
});
