/**
 * The guest's filesystem through the real command: what --mount and --root show, that writes
 * stay in the guest, and what the guest sees of /proc — with Debian's static busybox, whose
 * behaviour under qemu-user is recorded in fixtures/external (this checks the options).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, skipWithout } from '../helpers.js';

const hasQemu = (): boolean => spawnSync('qemu-x86_64', ['--version']).status === 0;

const bin = join(repoRoot, 'bin', 'uniprobe.mjs');
const busybox = join(repoRoot, 'fixtures', 'external', 'x86_64', 'busybox');

function sh(script: string, opts: string[] = [], cwd = repoRoot) {
  const r = spawnSync(process.execPath, [bin, 'run', ...opts, busybox, '--', 'sh', '-c', script], { cwd, encoding: 'utf8', timeout: 120_000 });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'uniprobe-guestfs-'));
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub', 'note'), 'from the host\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the guest filesystem on the command line', () => {
  it('shows only named paths: an unnamed directory is absent, --mount adds one with its subtree', () => {
    expect(sh(`ls ${dir}/sub 2>&1; echo rc=$?`).stdout).toBe(`ls: ${dir}/sub: No such file or directory\nrc=1\n`);
    expect(sh(`ls ${dir}/sub; cat ${dir}/sub/note`, ['--mount', dir]).stdout).toBe('note\nfrom the host\n');
  });

  it('keeps writes in memory: the host file and directory are unchanged afterwards', () => {
    const before = statSync(join(dir, 'sub', 'note')).mtimeMs;
    const r = sh(`echo changed > ${dir}/sub/note; echo new > ${dir}/sub/extra; rm ${dir}/sub/note; ls ${dir}/sub; cat ${dir}/sub/extra`, ['--mount', dir]);
    expect(r.stdout).toBe('extra\nnew\n');
    expect(readFileSync(join(dir, 'sub', 'note'), 'utf8')).toBe('from the host\n');
    expect(statSync(join(dir, 'sub', 'note')).mtimeMs).toBe(before);
    expect(readdirSync(join(dir, 'sub'))).toEqual(['note']);
  });

  it('--root makes a host directory the whole /, and --cwd a directory inside it', () => {
    expect(sh('ls /; cat /sub/note; pwd', ['--root', dir]).stdout).toBe('dev\nproc\nsub\ntmp\nfrom the host\n/\n');
    expect(sh('pwd; cat note', ['--root', dir, '--cwd', '/sub']).stdout).toBe('/sub\nfrom the host\n');
    const bad = sh('true', ['--root', join(dir, 'sub', 'note')]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('--root');
  });

  it('/proc/self: exe, cmdline and the lines of the program in maps as qemu-user shows them; comm as prctl(PR_SET_NAME) set it', () => {
    if (skipWithout('qemu-user', hasQemu())) return;
    const script = 'readlink /proc/self/exe; cat /proc/self/cmdline | tr "\\0" " "; echo; grep -c busybox /proc/self/maps; cat /proc/self/comm';
    const ours = sh(script).stdout.split('\n');
    const qemu = spawnSync('qemu-x86_64', [busybox, 'sh', '-c', script], { cwd: repoRoot, encoding: 'utf8' }).stdout.split('\n');
    expect(ours.slice(0, 3)).toEqual(qemu.slice(0, 3));
    // busybox runs its applets by exec'ing /proc/self/exe (Linux names the task "exe"), then
    // renames itself after the applet with prctl(PR_SET_NAME), as on Linux; qemu-user shows its
    // own host process's comm instead.
    expect(ours[3]).toBe('cat');
  });
});
