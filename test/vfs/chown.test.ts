/**
 * chown in the guest's filesystem, with Linux's rules (fs/attr.c chown_ok/chgrp_ok, notify_change):
 * root gives a node to anyone; an owner that is not root may only change the group to one of its
 * own, anything else is EPERM; -1 keeps an id; a change clears set-user-ID (and set-group-ID when
 * group execution is on) of a non-directory. The host file keeps its owner.
 */
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildView, vfsContext, type View } from '../../src/vfs/index.js';
import { E } from '../../src/kernel/errno.js';

const dir = fs.realpathSync(fs.mkdtempSync(join(tmpdir(), 'uniprobe-chown-')));
fs.writeFileSync(join(dir, 'f'), 'x');
fs.chmodSync(dir, 0o755); // mkdtemp's 0700 would keep other users from looking it up (EACCES)
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const rng = { bytes: (n: number) => new Uint8Array(n) };
const view = (uid: number, gid: number): View => buildView({ paths: [dir], cwd: dir, rng, ctx: vfsContext({ now: () => 0n, uid, gid }) });

describe('chown in the overlay', () => {
  it('root: any owner and group, -1 keeps one, set-id bits of a file cleared', () => {
    const v = view(0, 0);
    const n = v.vfs.lookup(v.fs.cwd, 'f');
    if (typeof n === 'number') throw new Error('lookup');
    expect(v.vfs.chmod(n, 0o6755)).toBe(0);
    expect(v.vfs.chown(n, 1234, -1)).toBe(0);
    expect(v.vfs.stat(v.fs.cwd, 'f')).toMatchObject({ uid: 1234, mode: 0o100755 });
    expect(v.vfs.chown(n, -1, 77)).toBe(0);
    expect(v.vfs.stat(v.fs.cwd, 'f')).toMatchObject({ uid: 1234, gid: 77 });
    expect(fs.statSync(join(dir, 'f')).uid).toBe(process.getuid?.() ?? 0);
  });
  it('an owner that is not root: its own group only; another owner or group is EPERM', () => {
    const host = fs.statSync(join(dir, 'f'));
    const v = view(host.uid === 0 ? 0 : host.uid, 4321);
    if (host.uid === 0) return; // run as root: the owner of a host file is root itself
    const n = v.vfs.lookup(v.fs.cwd, 'f');
    if (typeof n === 'number') throw new Error('lookup');
    expect(v.vfs.chown(n, host.uid + 1, -1)).toBe(-E.EPERM);
    expect(v.vfs.chown(n, -1, 9999)).toBe(-E.EPERM);
    expect(v.vfs.chown(n, -1, 4321)).toBe(0);
  });
  it('not the owner: EPERM for any change; -1, -1 asks for none and succeeds', () => {
    const v = view(5555, 5555);
    const n = v.vfs.lookup(v.fs.cwd, 'f');
    if (typeof n === 'number') throw new Error('lookup');
    expect(v.vfs.chown(n, -1, -1)).toBe(0);
    expect(v.vfs.chown(n, 5555, 5555)).toBe(-E.EPERM);
  });
});
