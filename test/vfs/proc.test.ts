/**
 * /proc: the formats against the host kernel's own /proc (maps byte for byte, status field
 * order), and the tree's behaviour (self, fd/, read-only directories) as procfs gives it.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { buildView, formatMaps, formatStatus, vfsContext, type MapEntry, type ProcSource, type ProcTask } from '../../src/vfs/index.js';
import { E } from '../../src/kernel/errno.js';

function parseHostMaps(text: string): MapEntry[] {
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const m = /^([0-9a-f]+)-([0-9a-f]+) ([r-])([w-])([x-])([sp]) ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) (\d+) (.*)$/.exec(l);
      if (!m) throw new Error(`unparsed maps line: ${l}`);
      const name = m[11]!.replace(/^ +/, '');
      return {
        start: BigInt(`0x${m[1]}`),
        end: BigInt(`0x${m[2]}`),
        read: m[3] === 'r',
        write: m[4] === 'w',
        exec: m[5] === 'x',
        shared: m[6] === 's',
        offset: BigInt(`0x${m[7]}`),
        major: parseInt(m[8]!, 16),
        minor: parseInt(m[9]!, 16),
        ino: BigInt(m[10]!),
        ...(name.length > 0 && { name }),
      };
    });
}

const task = (over: Partial<ProcTask> = {}): ProcTask => ({
  pid: 7,
  tgid: 7,
  ppid: 1,
  comm: 'busybox',
  state: 'R',
  exe: '/bin/busybox',
  cwd: '/tmp',
  cmdline: new TextEncoder().encode('busybox\0ls\0'),
  environ: new TextEncoder().encode('A=1\0'),
  umask: 0o022,
  uid: 0,
  gid: 0,
  threads: 1,
  fds: [
    { fd: 0, target: '/dev/null' },
    { fd: 1, target: 'pipe:[42]' },
  ],
  sigBlocked: 0n,
  sigIgnored: 1n << 12n,
  sigCaught: 0n,
  sigPending: 0n,
  maps: () => [
    { start: 0x400000n, end: 0x401000n, read: true, write: false, exec: true, shared: false, offset: 0n, major: 8, minor: 1, ino: 12n, name: '/bin/busybox' },
    { start: 0x7fffffffe000n, end: 0x7ffffffff000n, read: true, write: false, exec: true, shared: false, offset: 0n, major: 0, minor: 0, ino: 0n, name: '[uprobes]' },
  ],
  ...over,
});

describe('/proc formats match the host kernel', () => {
  it('maps: every line of the host /proc/self/maps is reproduced byte for byte from its fields', () => {
    const host = readFileSync('/proc/self/maps', 'utf8');
    expect(formatMaps(parseHostMaps(host), 8)).toBe(host);
  });

  it('maps on a 32-bit kernel: names start after column 48 (25 + 6 × 4 − 1)', () => {
    const line = formatMaps([{ start: 0x8048000n, end: 0x8049000n, read: true, write: false, exec: true, shared: false, offset: 0n, major: 8, minor: 1, ino: 5n, name: '/x' }], 4);
    expect(line).toBe(`${'08048000-08049000 r-xp 00000000 08:01 5 '.padEnd(48)} /x\n`);
  });

  it('status: the lines it writes come in the order the host kernel writes them', () => {
    const hostOrder = readFileSync('/proc/self/status', 'utf8')
      .split('\n')
      .map((l) => l.split(':')[0]);
    const ours = formatStatus(task())
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => l.split(':')[0]!);
    const positions = ours.map((f) => hostOrder.indexOf(f));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  });
});

describe('the /proc tree', () => {
  const src: ProcSource = {
    caller: () => ({ tgid: 7, tid: 7 }),
    pids: () => [1, 7],
    task: (pid) => (pid === 7 ? task() : pid === 1 ? task({ pid: 1, tgid: 1, ppid: 0, comm: 'init' }) : undefined),
    wordSize: 8,
  };
  const view = () => buildView({ paths: [], cwd: '/', rng: { bytes: (n) => new Uint8Array(n) }, ctx: vfsContext({ now: () => 0n }), proc: src });
  const read = (v: ReturnType<typeof view>, p: string): string => {
    const f = v.vfs.open(v.fs, v.fs.cwd, p, { read: true, write: false }, 0);
    if (typeof f === 'number') return `errno ${-f}`;
    return Buffer.from(f.read(65536) as Uint8Array).toString('latin1');
  };

  it('self is a link to the caller; its files read what the machine reports', () => {
    const v = view();
    expect(v.vfs.readlink(v.fs.cwd, '/proc/self')).toBe('7');
    expect(v.vfs.readlink(v.fs.cwd, '/proc/self/exe')).toBe('/bin/busybox');
    expect(read(v, '/proc/self/cmdline')).toBe('busybox\0ls\0');
    expect(read(v, '/proc/1/comm')).toBe('init\n');
    expect(read(v, '/proc/self/maps')).toContain('[uprobes]');
    expect(v.vfs.stat(v.fs.cwd, '/proc/self/maps')).toMatchObject({ size: 0n, mode: 0o100444 });
  });

  it('fd/ lists the descriptors as links to what they name', () => {
    const v = view();
    const names = (v.vfs.lookup(v.fs.cwd, '/proc/self/fd') as import('../../src/vfs/index.js').DirNode).list().map(([n]) => n);
    expect(names).toEqual(['0', '1']);
    expect(v.vfs.readlink(v.fs.cwd, '/proc/self/fd/1')).toBe('pipe:[42]');
    expect(v.vfs.stat(v.fs.cwd, '/proc/self/fd/3')).toBe(-E.ENOENT);
  });

  // As on the host: `mkdir /proc/x` ENOENT, `mkdir /proc/self` EEXIST, `rm /proc/self/maps` EPERM,
  // rename onto an existing entry EPERM, onto a new name ENOENT.
  it('has no create or remove operations: ENOENT to create, EEXIST for an existing name, EPERM to remove', () => {
    const v = view();
    expect(v.vfs.mkdir(v.fs, v.fs.cwd, '/proc/x', 0o755)).toBe(-E.ENOENT);
    expect(v.vfs.mkdir(v.fs, v.fs.cwd, '/proc/self', 0o755)).toBe(-E.EEXIST);
    expect(v.vfs.symlink('x', v.fs.cwd, '/proc/newlink')).toBe(-E.ENOENT);
    expect(v.vfs.unlink(v.fs.cwd, '/proc/self/maps')).toBe(-E.EPERM);
    expect(v.vfs.rmdir(v.fs.cwd, '/proc/7')).toBe(-E.EPERM);
    expect(v.vfs.rename(v.fs.cwd, '/proc/self/maps', v.fs.cwd, '/proc/self/status')).toBe(-E.EPERM);
    expect(v.vfs.rename(v.fs.cwd, '/proc/self/maps', v.fs.cwd, '/proc/self/maps2')).toBe(-E.ENOENT);
    expect(v.vfs.open(v.fs, v.fs.cwd, '/proc/new', { read: false, write: true, create: true }, 0o644)).toBe(-E.ENOENT);
    expect(v.vfs.stat(v.fs.cwd, '/proc/99')).toBe(-E.ENOENT);
  });
});
