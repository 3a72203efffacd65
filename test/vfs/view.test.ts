/**
 * The guest's view of the host, devices and file data, checked against the host's own files
 * (lstat, contents) and the values Linux defines (device numbers, errnos, dirent layouts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildView, vfsContext, dirent64, direntLegacy, DirNode, RegNode, MEM_DEV, type View, type OpenFlags } from '../../src/vfs/index.js';
import { E } from '../../src/kernel/errno.js';
import { MemCharge } from '../../src/mm/charge.js';

let dir: string;
beforeAll(() => {
  dir = fs.realpathSync(fs.mkdtempSync(join(tmpdir(), 'uniprobe-view-')));
  fs.mkdirSync(join(dir, 'shown/sub'), { recursive: true });
  fs.writeFileSync(join(dir, 'shown/sub/f'), 'inside');
  fs.writeFileSync(join(dir, 'prog'), 'program bytes');
  fs.writeFileSync(join(dir, 'secret'), 'not named');
  fs.symlinkSync(join(dir, 'secret'), join(dir, 'shown/escape'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const RD: OpenFlags = { read: true, write: false };
const RW: OpenFlags = { read: true, write: true };
const rng = { bytes: (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 1) & 255) };
const view = (o: Partial<Parameters<typeof buildView>[0]> = {}): View =>
  buildView({ paths: [join(dir, 'prog'), join(dir, 'shown')], cwd: dir, rng, ctx: vfsContext({ now: () => 5_000_000_000n }), ...o });
const text = (b: Uint8Array | number): string => (typeof b === 'number' ? `errno ${-b}` : Buffer.from(b).toString());

describe('the view of named host paths', () => {
  it('shows named files and directory subtrees at their absolute paths with the host metadata', () => {
    const v = view();
    const st = v.vfs.stat(v.fs.cwd, `${dir}/shown/sub/f`);
    const host = fs.statSync(join(dir, 'shown/sub/f'), { bigint: true });
    expect(st).toMatchObject({ dev: host.dev, ino: host.ino, mode: Number(host.mode), size: host.size, mtimeNs: host.mtimeNs });
    const f = v.vfs.open(v.fs, v.fs.cwd, 'prog', RD, 0);
    expect(typeof f).toBe('object');
    if (typeof f !== 'number') expect(text(f.read(100))).toBe('program bytes');
  });

  it('hides what was not named, even through a symbolic link inside a named directory', () => {
    const v = view();
    expect(v.vfs.stat(v.fs.cwd, 'secret')).toBe(-E.ENOENT);
    expect(v.vfs.stat(v.fs.cwd, 'shown/escape')).toBe(-E.ENOENT); // the link's target is outside the view
    expect(v.vfs.readlink(v.fs.cwd, 'shown/escape')).toBe(join(dir, 'secret')); // the link itself is visible
    const names = (v.vfs.lookup(v.fs.cwd, '.') as DirNode).list().map(([n]) => n).sort();
    expect(names).toEqual(['prog', 'shown']);
  });

  it('keeps every change in memory: writes, truncation, unlink and rename never reach the host', () => {
    const v = view();
    const before = fs.readFileSync(join(dir, 'prog'), 'utf8');
    const mtime = fs.statSync(join(dir, 'prog')).mtimeMs;
    const f = v.vfs.open(v.fs, v.fs.cwd, 'prog', { ...RW, append: true }, 0);
    if (typeof f === 'number') throw new Error(`open: ${f}`);
    expect(f.write(Buffer.from(' and more'))).toBe(9);
    expect(v.vfs.stat(v.fs.cwd, 'prog')).toMatchObject({ size: 22n, dev: MEM_DEV, mtimeNs: 5_000_000_000n });
    expect(v.vfs.unlink(v.fs.cwd, 'shown/sub/f')).toBe(0);
    expect(v.vfs.rename(v.fs.cwd, 'shown', v.fs.cwd, 'moved')).toBe(0);
    expect(v.vfs.mkdir(v.fs, v.fs.cwd, 'newdir', 0o777)).toBe(0);
    expect(fs.readFileSync(join(dir, 'prog'), 'utf8')).toBe(before);
    expect(fs.statSync(join(dir, 'prog')).mtimeMs).toBe(mtime);
    expect(fs.existsSync(join(dir, 'shown/sub/f'))).toBe(true);
    expect(fs.existsSync(join(dir, 'newdir'))).toBe(false);
    // the guest sees its own changes
    expect(v.vfs.stat(v.fs.cwd, 'moved/sub/f')).toBe(-E.ENOENT);
    expect(v.vfs.stat(v.fs.cwd, 'newdir')).toMatchObject({ mode: 0o40755 }); // umask 022
  });

  it('gives /tmp as an empty sticky directory and resolves getcwd from the cwd', () => {
    const bare = buildView({ paths: [], cwd: '/', rng, ctx: vfsContext({ now: () => 0n }) });
    expect(bare.vfs.stat(bare.fs.cwd, '/tmp')).toMatchObject({ mode: 0o41777 });
    expect((bare.vfs.lookup(bare.fs.cwd, '/tmp') as DirNode).list()).toEqual([]);
    const v = view(); // named paths under the host's /tmp: it is shown, with only those entries
    expect((v.vfs.lookup(v.fs.cwd, '/tmp') as DirNode).list().map(([n]) => n)).toEqual([dir.split('/')[2]]);
    expect(v.vfs.getcwd(v.fs)).toBe(dir);
    expect(v.vfs.chdir(v.fs, v.fs.cwd, 'shown/sub')).toBe(0);
    expect(v.vfs.getcwd(v.fs)).toBe(`${dir}/shown/sub`);
    expect(v.vfs.rmdir(v.fs.cwd, `${dir}/shown/sub`)).toBe(-E.ENOTEMPTY);
    expect(v.vfs.unlink(v.fs.cwd, 'f')).toBe(0);
    expect(v.vfs.rmdir(v.fs.cwd, `${dir}/shown/sub`)).toBe(0);
    expect(v.vfs.getcwd(v.fs)).toBe(-E.ENOENT); // Linux: getcwd of a removed directory
    expect(v.vfs.stat(v.fs.cwd, '.')).toBe(-E.ENOENT);
  });

  it('with a root tree, shows the whole directory as /', () => {
    const v = buildView({ root: dir, rng, ctx: vfsContext({ now: () => 0n }) });
    expect(v.vfs.getcwd(v.fs)).toBe('/');
    const f = v.vfs.open(v.fs, v.fs.cwd, '/secret', RD, 0);
    expect(typeof f === 'number' ? f : text(f.read(64))).toBe('not named');
    // an absolute link target is resolved inside the root, where /<dir>/secret does not exist
    expect(v.vfs.stat(v.fs.cwd, '/shown/escape')).toBe(-E.ENOENT);
  });
});

describe('/dev (drivers/char/mem.c)', () => {
  let v: View;
  beforeAll(() => {
    v = view();
  });
  const open = (p: string, fl: OpenFlags = RW) => v.vfs.open(v.fs, v.fs.cwd, p, fl, 0);
  it.each([
    ['null', 1, 3],
    ['zero', 1, 5],
    ['full', 1, 7],
    ['random', 1, 8],
    ['urandom', 1, 9],
    ['tty', 5, 0],
  ])('/dev/%s is a character device %i,%i, mode crw-rw-rw-', (name, major, minor) => {
    const st = v.vfs.stat(v.fs.cwd, `/dev/${name}`);
    if (typeof st === 'number') throw new Error(String(st));
    expect(st.mode).toBe(0o20666);
    // stat's st_rdev: new_encode_dev
    expect(st.rdev).toBe(BigInt((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)));
  });
  it('null swallows writes and reads EOF; zero reads zeros; full refuses writes with ENOSPC', () => {
    const n = open('/dev/null');
    const z = open('/dev/zero');
    const f = open('/dev/full');
    if (typeof n === 'number' || typeof z === 'number' || typeof f === 'number') throw new Error('open');
    expect(n.write(new Uint8Array(10))).toBe(10);
    expect((n.read(10) as Uint8Array).length).toBe(0);
    expect([...(z.read(4) as Uint8Array)]).toEqual([0, 0, 0, 0]);
    expect(f.write(new Uint8Array(1))).toBe(-E.ENOSPC);
    expect([...(f.read(2) as Uint8Array)]).toEqual([0, 0]);
    expect(n.lseek(100n, 0)).toBe(0n); // null_lseek
  });
  it('urandom reads the seeded generator; /dev/tty is ENXIO without a controlling terminal', () => {
    const u = open('/dev/urandom', RD);
    if (typeof u === 'number') throw new Error('open');
    expect([...(u.read(3) as Uint8Array)]).toEqual([1, 8, 15]);
    expect(open('/dev/tty')).toBe(-E.ENXIO);
  });
});

describe('file data (tmpfs semantics)', () => {
  it('is sparse: a 1 TiB truncate allocates nothing, holes read as zeros, st_blocks counts pages', () => {
    const charge = new MemCharge(1 << 20);
    const v = buildView({ paths: [], cwd: '/', rng, ctx: vfsContext({ now: () => 0n, charge }) });
    const f = v.vfs.open(v.fs, v.fs.cwd, '/tmp/big', { ...RW, create: true }, 0o600);
    if (typeof f === 'number') throw new Error(String(f));
    expect(v.vfs.ftruncate(f, 1n << 40n)).toBe(0);
    expect(charge.used).toBe(0);
    expect(f.pwrite((1n << 40n) - 2n, Uint8Array.of(1, 2, 3))).toBe(3);
    expect(f.node.stat()).toMatchObject({ size: (1n << 40n) + 1n, blocks: 16n }); // two 4 KiB pages
    expect([...(f.pread(5n, 3) as Uint8Array)]).toEqual([0, 0, 0]);
    expect(charge.used).toBe(8192);
    expect(f.lseek(0n, 2)).toBe((1n << 40n) + 1n); // SEEK_END, exact past 2^53 too
    expect(v.vfs.ftruncate(f, 0n)).toBe(0);
    expect(charge.used).toBe(0);
  });

  it('fails a write with ENOSPC when guest memory is exhausted, after what fitted', () => {
    const charge = new MemCharge(8192);
    const v = buildView({ paths: [], cwd: '/', rng, ctx: vfsContext({ now: () => 0n, charge }) });
    const f = v.vfs.open(v.fs, v.fs.cwd, '/tmp/x', { ...RW, create: true }, 0o600);
    if (typeof f === 'number') throw new Error(String(f));
    expect(f.write(new Uint8Array(10000))).toBe(8192); // a short write, as Linux returns
    expect(f.write(new Uint8Array(1))).toBe(-E.ENOSPC);
    expect(f.node.stat().size).toBe(8192n);
    expect(f.node).toBeInstanceOf(RegNode);
  });

  it('lseek: EINVAL for a negative result or a bad whence, SEEK_DATA/SEEK_HOLE ENXIO past the end', () => {
    const v = buildView({ paths: [], cwd: '/', rng, ctx: vfsContext({ now: () => 0n }) });
    const f = v.vfs.open(v.fs, v.fs.cwd, '/tmp/s', { ...RW, create: true }, 0o600);
    if (typeof f === 'number') throw new Error(String(f));
    f.write(Buffer.from('0123456789'));
    expect(f.lseek(-1n, 0)).toBe(-E.EINVAL);
    expect(f.lseek(0n, 5)).toBe(-E.EINVAL);
    expect(f.lseek(-3n, 2)).toBe(7n);
    expect(text(f.read(10))).toBe('789');
    expect(f.lseek(10n, 3)).toBe(-E.ENXIO);
    expect(f.lseek(2n, 4)).toBe(10n);
  });
});

describe('directory records', () => {
  it('getdents64: 8-byte aligned linux_dirent64 records, "." and ".." first, EINVAL for a buffer too small, then 0 at the end', () => {
    const v = buildView({ paths: [], cwd: '/', rng, ctx: vfsContext({ now: () => 0n }) });
    v.vfs.mkdir(v.fs, v.fs.cwd, '/tmp/d', 0o755);
    v.vfs.symlink('x', v.fs.cwd, '/tmp/d/link');
    const d = v.vfs.open(v.fs, v.fs.cwd, '/tmp/d', { read: true, write: false, directory: true }, 0);
    if (typeof d === 'number') throw new Error(String(d));
    expect(d.readdir(20, dirent64(true))).toBe(-E.EINVAL); // the first record needs 24 bytes
    const b = d.readdir(4096, dirent64(false)) as Uint8Array;
    const dv = new DataView(b.buffer);
    const recs: Array<[string, number, number]> = [];
    for (let at = 0; at < b.length; ) {
      const len = dv.getUint16(at + 16, false);
      const name = Buffer.from(b.subarray(at + 19, at + len)).toString().replace(/\0.*$/s, '');
      recs.push([name, b[at + 18]!, len]);
      at += len;
    }
    // DT_DIR 4, DT_LNK 10; reclen = ALIGN(19 + namelen + 1, 8)
    expect(recs).toEqual([
      ['.', 4, 24],
      ['..', 4, 24],
      ['link', 10, 24],
    ]);
    expect((d.readdir(4096, dirent64(false)) as Uint8Array).length).toBe(0);
    expect(d.lseek(0n, 0)).toBe(0n);
    expect((d.readdir(4096, dirent64(false)) as Uint8Array).length).toBe(72);
  });

  it('the legacy linux_dirent puts d_type in the last byte and aligns records to the word size', () => {
    const rec = direntLegacy(true, 4)({ ino: 5n, off: 1n, type: 8, name: 'ab' });
    // d_ino 4 + d_off 4 + d_reclen 2 + "ab" + NUL + d_type = 14 -> 16
    expect(rec.length).toBe(16);
    expect(rec[15]).toBe(8);
    expect(Buffer.from(rec.subarray(10, 12)).toString()).toBe('ab');
    expect(new DataView(rec.buffer).getUint16(8, true)).toBe(16);
  });
});

describe('named paths reached through a symbolic link', () => {
  it('show the link where it is and its target, so the given path resolves in the guest', () => {
    const linkDir = fs.mkdtempSync(join(tmpdir(), 'uniprobe-viewlink-'));
    try {
      fs.symlinkSync(join(dir, 'shown'), join(linkDir, 'via'));
      const v = buildView({ paths: [join(linkDir, 'via', 'sub', 'f')], cwd: linkDir, rng, ctx: vfsContext({ now: () => 0n }) });
      const f = v.vfs.open(v.fs, v.fs.cwd, 'via/sub/f', RD, 0);
      expect(typeof f === 'number' ? f : text(f.read(64))).toBe('inside');
      expect(v.vfs.readlink(v.fs.cwd, 'via')).toBe(join(dir, 'shown'));
    } finally {
      fs.rmSync(linkDir, { recursive: true, force: true });
    }
  });
});
