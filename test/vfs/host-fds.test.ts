/**
 * src/vfs/host-fds.ts: host files kept open between guest reads. What a read returns must be what
 * opening the path would return, for the inode the node stands for; the cache is bounded.
 */
import { mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closeHostFiles, hostPread } from '../../src/vfs/host-fds.js';

const dir = mkdtempSync(join(tmpdir(), 'uniprobe-host-fds-'));
afterAll(() => {
  closeHostFiles();
  rmSync(dir, { recursive: true, force: true });
});

function ident(path: string): [bigint, bigint] {
  const st = statSync(path, { bigint: true });
  return [st.dev, st.ino];
}

function read(path: string, offset: number, len: number): string {
  const [dev, ino] = ident(path);
  const out = new Uint8Array(len);
  const n = hostPread(path, dev, ino, out, BigInt(offset));
  return Buffer.from(out.subarray(0, n)).toString();
}

const openFds = (): number => readdirSync('/proc/self/fd').length;

describe('host file descriptors kept for reads', () => {
  it('reads at offsets, short at end of file', () => {
    const p = join(dir, 'a');
    writeFileSync(p, 'hello, world');
    expect(read(p, 0, 5)).toBe('hello');
    expect(read(p, 7, 100)).toBe('world');
    expect(read(p, 12, 4)).toBe('');
  });

  it('never serves a path replaced by another file from the old descriptor', () => {
    const p = join(dir, 'b');
    writeFileSync(p, 'old contents');
    expect(read(p, 0, 3)).toBe('old');
    const q = join(dir, 'b.new');
    writeFileSync(q, 'new contents');
    renameSync(q, p);
    expect(read(p, 0, 3)).toBe('new');
  });

  it('sees in-place changes of the same inode, as a fresh open would', () => {
    const p = join(dir, 'c');
    writeFileSync(p, 'first');
    expect(read(p, 0, 5)).toBe('first');
    writeFileSync(p, 'again');
    expect(read(p, 0, 5)).toBe('again');
  });

  it('keeps at most 16 descriptors open', () => {
    closeHostFiles();
    const before = openFds();
    for (let i = 0; i < 40; i++) {
      const p = join(dir, `many-${i}`);
      writeFileSync(p, `file ${i}`);
      expect(read(p, 0, 10)).toBe(`file ${i}`);
    }
    expect(openFds() - before).toBe(16);
    closeHostFiles();
    expect(openFds()).toBe(before);
  });

  it('throws for a path that is gone (the VFS turns it into EIO)', () => {
    const p = join(dir, 'gone');
    writeFileSync(p, 'x');
    const [dev, ino] = ident(p);
    rmSync(p);
    closeHostFiles();
    expect(() => hostPread(p, dev, ino, new Uint8Array(1), 0n)).toThrow(/ENOENT/);
  });
});
