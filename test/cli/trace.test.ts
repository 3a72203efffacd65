/**
 * `uniprobe run -e …` end to end, through the real command (bin/uniprobe.mjs) on every target:
 * the trace's values are checked against independent truth — the bytes the program printed
 * (fixtures/manifest.json, recorded from qemu-user) and the descriptor it wrote to — plus the
 * output formats, -o, --stats, the definition-error shape, `list` and `--help`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Target } from '../../arch/types.js';
import { manifest, repoRoot, supported } from '../helpers.js';

const bin = join(repoRoot, 'bin', 'uniprobe.mjs');
const tmp = mkdtempSync(join(tmpdir(), 'uniprobe-trace-'));
const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as Target[]).filter((t) => supported.has(t));

function uniprobe(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '', ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** sparc64: its freestanding build (a second flavour covered), elsewhere glibc's. */
function program(target: Target) {
  const name = target === 'sparc64' ? 'fib-nolibc' : 'fib';
  return manifest.find((m) => m.target === target && m.name === name)!;
}

interface JsonEvent {
  event: string;
  kind: 'p' | 'r';
  pid: number;
  tid: number;
  cpu: number;
  comm: string;
  ip: string;
  args: Record<string, unknown>;
}

describe.each(TARGETS)('uniprobe run -e on %s', (target) => {
  it("issue 5's check: the sum of ksys_write's $retval equals the bytes the program wrote; fd is 1; JSON as promised", () => {
    const e = program(target);
    const r = uniprobe(['run', `fixtures/${e.path}`, '-e', 'p:myk ksys_write fd=$arg1', '-e', 'r:myr ksys_write ret=$retval', '--format', 'json']);
    expect(r.status).toBe(e.exit);
    expect(r.stdout).toBe(e.stdout);
    const events = r.stderr.trimEnd().split('\n').map((l) => JSON.parse(l) as JsonEvent);
    const entries = events.filter((x) => x.event === 'kprobes/myk');
    const returns = events.filter((x) => x.event === 'kprobes/myr');
    expect(entries.length).toBeGreaterThan(0);
    expect(returns).toHaveLength(entries.length);
    expect(entries.length + returns.length).toBe(events.length);
    // Default type: x64 on 64-bit targets, x32 on 32-bit ones — hex either way, as a string.
    const sum = returns.reduce((s, x) => s + BigInt(x.args.ret as string), 0n);
    expect(sum).toBe(BigInt(Buffer.byteLength(e.stdout)));
    for (const x of entries) {
      expect(x.args).toEqual({ fd: '0x1' });
      expect(x).toMatchObject({ kind: 'p', pid: 1, tid: 1, cpu: 0, comm: e.name });
      expect(x.ip).toMatch(/^0x[0-9a-f]+$/);
      expect(Object.keys(x)).toEqual(['event', 'kind', 'pid', 'tid', 'cpu', 'comm', 'ip', 'args']);
    }
    for (const x of returns) expect(x.kind).toBe('r');
  });

  it('text format to -o FILE, a string fetch, and --stats in kprobe_profile columns', () => {
    const e = program(target);
    const out = join(tmp, `${target}.trace`);
    const r = uniprobe(['run', `fixtures/${e.path}`, '-o', out, '--stats', '-e', 'p:w ksys_write count=$arg3:u32 text=+0($arg2):ustring', '-e', 'r:wr ksys_write ret=$retval:s32']);
    expect(r.status).toBe(e.exit);
    expect(r.stdout).toBe(e.stdout);
    // stderr keeps only the run summary; the trace and the profile went to the file.
    expect(r.stderr).toMatch(/^uniprobe: exit, status \d+, \d+ quanta, \d+ guest instructions\n$/);
    const lines = readFileSync(out, 'utf8').split('\n');
    const profile = lines.slice(lines.indexOf('# kprobe_profile: event, hits, misses'));
    const trace = lines.slice(0, lines.indexOf('# kprobe_profile: event, hits, misses'));
    const comm = e.name.padStart(16);
    const heads = trace.filter((l) => l.startsWith(comm));
    const w = heads.filter((l) => / w: /.test(l));
    const wr = heads.filter((l) => / wr: /.test(l));
    expect(w.length).toBeGreaterThan(0);
    for (const l of w) expect(l).toMatch(new RegExp(`^${comm}-1       \\[000\\] +\\d+\\.\\d{6}: w: \\(ksys_write\\+0x[0-9a-f]+/0x[0-9a-f]+\\) count=\\d+ text="`));
    for (const l of wr) expect(l).toMatch(new RegExp(`^${comm}-1       \\[000\\] +\\d+\\.\\d{6}: wr: \\([a-z_]+\\+0x[0-9a-f]+/0x[0-9a-f]+ <- ksys_write\\) ret=\\d+$`));
    // The strings (possibly running past `count`, and over lines: the kernel prints them raw) hold
    // what the program printed, in order.
    const text = trace.join('\n');
    let at = 0;
    for (const chunk of e.stdout.split(/(?<=\n)/)) {
      const i = text.indexOf(chunk, at);
      expect(i).toBeGreaterThanOrEqual(0);
      at = i + chunk.length;
    }
    const sum = wr.reduce((s, l) => s + Number(/ret=(\d+)$/.exec(l)![1]), 0);
    expect(sum).toBe(Buffer.byteLength(e.stdout));
    expect(profile[1]).toMatch(new RegExp(`^  w {43} +${w.length} +0$`));
    expect(profile[2]).toMatch(new RegExp(`^  wr {42} +${wr.length} +0$`));
  });
});

describe('traces are reproducible', () => {
  it('the same seed gives the same trace byte for byte (timestamps included), on 2 vCPUs with forked children', () => {
    const args = ['run', 'fixtures/x86_64/fork-nolibc', '--cpus', '2', '--seed', '3', '-e', 'p:w ksys_write fd=$arg1:u32 n=$arg3:u64', '-e', 'r:wr ksys_write $retval:s64'];
    const a = uniprobe(args);
    const b = uniprobe(args);
    expect(a.status).toBe(b.status);
    expect(a.stderr).toBe(b.stderr);
    const lines = a.stderr.trimEnd().split('\n');
    // Parent and children (distinct tids) both appear; the clock never goes back.
    const tids = new Set(lines.map((l) => /-(\d+) +\[/.exec(l)![1]));
    expect(tids.size).toBeGreaterThan(1);
    const stamps = lines.map((l) => Number(/\] +(\d+\.\d{6}):/.exec(l)![1]));
    stamps.forEach((t, i) => i > 0 && expect(t).toBeGreaterThanOrEqual(stamps[i - 1]!));
    expect(stamps.at(-1)!).toBeGreaterThan(0);
  });
});

describe('definition errors: the error-log shape, before anything runs', () => {
  it.each([
    ['p:myk ksys_write fd=%dx:x16 bad=^%foo', 'Invalid register name'],
    ['p:myk ksys_write ^$retval', '$retval is not available on probe'],
    ['p:myk ^no_such_function', 'Invalid probed address or symbol'],
    ['p:myk ^ksys_write+2', 'Probe point is not an instruction boundary'],
    ['r:myr ksys_write ret=$retval:^x65', 'Unknown type is specified'],
    ['p:^9bad ksys_write', 'Event name must follow the same rules as C identifiers'],
  ])('%s', (marked, message) => {
    const def = marked.replace('^', '');
    const r = uniprobe(['run', 'fixtures/x86_64/fib-nolibc', '-e', 'p:ok vfs_write', '-e', def]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe(''); // the guest never ran
    expect(r.stderr).toBe(`uniprobe: error: ${message}\n  Command: ${def}\n${' '.repeat(11 + marked.indexOf('^'))}^\n`);
  });

  it('on a terminal (FORCE_COLOR) the prefix and the caret are coloured; in a pipe they are not', () => {
    const plain = uniprobe(['run', 'fixtures/x86_64/fib-nolibc', '-e', 'p:x %bad']);
    expect(plain.stderr).not.toContain('\x1b[');
    const coloured = uniprobe(['run', 'fixtures/x86_64/fib-nolibc', '-e', 'p:x ksys_write %bad'], { FORCE_COLOR: '1' });
    expect(coloured.status).toBe(1);
    expect(coloured.stderr).toContain('\x1b[31m');
    expect(coloured.stderr).toContain('\x1b[32m^\x1b[0m');
  });

  it('a line no parser claims is one error line; a uprobe on a missing file has the caret at its place', () => {
    const r1 = uniprobe(['run', 'fixtures/x86_64/fib-nolibc', '-e', 'x:foo ksys_write']);
    expect(r1.status).toBe(1);
    expect(r1.stderr.split('\n')[0]).toMatch(/^uniprobe: error: Unknown probe type 'x'/);
    const r2 = uniprobe(['run', 'fixtures/x86_64/fib-nolibc', '-e', 'p:u fixtures/x86_64/no-such-program:0x1000']);
    expect(r2.status).toBe(1);
    expect(r2.stdout).toBe('');
    expect(r2.stderr).toBe(`uniprobe: error: Failed to find the given file\n  Command: p:u fixtures/x86_64/no-such-program:0x1000\n${' '.repeat(11 + 4)}^\n`);
  });

  it('-o to an unwritable place is one error line', () => {
    const r = uniprobe(['run', 'fixtures/x86_64/fib-nolibc', '-o', join(tmp, 'no', 'such', 'dir', 'f'), '-e', 'p ksys_write']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^uniprobe: error: .*no\/such\/dir\/f: cannot open for writing \(ENOENT\)\n$/);
  });

  it('a deletion on the command line removes an earlier definition', () => {
    const r = uniprobe(['run', 'fixtures/x86_64/fib-nolibc', '-e', 'p:myk ksys_write', '-e', '-:myk', '-e', 'p:keep vfs_write']);
    expect(r.status).toBe(55);
    expect(r.stderr).not.toContain(' myk: ');
    expect(r.stderr).toContain(' keep: (vfs_write+0x');
  });
});

describe('uniprobe list', () => {
  it('events: the normalised kprobe_events listing, parse → list → parse stable', () => {
    const defs = ['p:myk ksys_write fd=%di', 'r ksys_write $retval', 'p:g/x 0xffffffff81000290 s=+0(%si):ustring', 'r16:g.y vfs_write'];
    const r = uniprobe(['list', ...defs.flatMap((d) => ['-e', d])]);
    expect(r.status).toBe(0);
    const listed = r.stdout.trimEnd().split('\n');
    expect(listed).toEqual([
      'p:kprobes/myk ksys_write fd=%di',
      'r:kprobes/r_ksys_write_0 ksys_write arg1=$retval',
      'p:g/x 0xffffffff81000290 s=+0(%si):ustring',
      'r16:g/y vfs_write',
    ]);
    const again = uniprobe(['list', ...listed.flatMap((d) => ['-e', d])]);
    expect(again.stdout.trimEnd().split('\n')).toEqual(listed);
  });

  it('kprobes: the debugfs list while enabled, on a big-endian target', () => {
    const r = uniprobe(['list', 'kprobes', '--arch', 'ppc32', '-e', 'p vfs_write', '-e', 'r:ret ksys_write $retval']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^c[0-9a-f]{7}  r  ksys_write\+0x0    \nc[0-9a-f]{7}  k  vfs_write\+0x0    \n$|^c[0-9a-f]{7}  k  vfs_write\+0x0    \nc[0-9a-f]{7}  r  ksys_write\+0x0    \n$/);
  });

  it('blacklist and functions of the guest kernel', () => {
    const b = uniprobe(['list', 'blacklist', '--arch', 'sparc64']);
    expect(b.status).toBe(0);
    expect(b.stdout).toMatch(/^0xfffff80000000000-0x[0-9a-f]{16}\tentry_syscall$/m);
    const f = uniprobe(['list', 'functions', '--arch', 'i386']);
    expect(f.stdout).toMatch(/^c[0-9a-f]{7} T ksys_write$/m);
  });

  it('a bad definition in list has the same error shape', () => {
    const r = uniprobe(['list', '-e', 'p:a ksys_write x=%zz']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`uniprobe: error: Invalid register name\n  Command: p:a ksys_write x=%zz\n${' '.repeat(11 + 'p:a ksys_write x='.length)}^\n`);
  });
});

describe('--help on every command', () => {
  it.each([[[]], [['run']], [['list']], [['demo']]])('uniprobe %j --help', (cmd) => {
    const r = uniprobe([...cmd, '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: uniprobe/);
    expect(r.stdout).toContain('Exit status:');
  });
});
