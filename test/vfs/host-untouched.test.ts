/**
 * The host is never written (issue 13): a static program runs every writing system call it has
 * on named host files and directories — open with O_TRUNC and O_APPEND, write, pwrite through
 * dd, ftruncate, fchmod/chmod, chown/fchown, utimensat, link, symlink, rename (also over a file,
 * sed -i), unlink, mkdir, rmdir — and afterwards every host byte, mode, link count, mtime and
 * directory entry is what it was. The guest sees its own changes: its output is Linux's, from
 * the same busybox run natively on a copy of the tree (x86-64 hosts). fixtures/src/writes.c then
 * makes every writing system call there is — vector and positional writes, fsync, fallocate,
 * the *at forms, renameat2, mknod/mkfifo, creat, O_EXCL, xattrs, a shared writable mapping —
 * with the same check, each result compared with the program run natively.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import { repoRoot, supported } from '../helpers.js';

const busybox = join(repoRoot, 'fixtures', 'external', 'x86_64', 'busybox');
const writes = join(repoRoot, 'fixtures', 'x86_64', 'writes');
/**
 * Calls of fixtures/src/writes.c the guest kernel does not have yet, and what they give instead
 * of Linux's 0: no preallocation, no device nodes or FIFOs in the overlay, no extended
 * attributes (ENOSYS), and no shared writable file mappings (EACCES, README "The guest's
 * filesystem"). Every other line must be Linux's.
 */
const NOT_YET: Record<string, number> = {
  fallocate: -38,
  'mknod(fifo)': -38,
  mkfifo: -38,
  setxattr: -38,
  removexattr: -38,
  'mmap(MAP_SHARED, PROT_WRITE)': -13,
};
const SCRIPT = [
  'cd "$0"',
  'echo over > file; echo app >> file; truncate -s 3 file; chmod 600 file',
  "touch -d '2001-01-01 00:00' file; ln file hard; ln -s file soft; mv sub/other sub/renamed",
  'rm hard; mkdir newdir; rmdir newdir; mkdir kept; printf xy | dd of=file bs=1 seek=1 conv=notrunc 2>/dev/null',
  "sed -i s/e/E/ sub/renamed; chown 0:0 file; cp sub/renamed copy; : > sub/renamed; echo new > sub/added; rm sub/added",
  "ls -R; cat file; echo; cat copy; stat -c '%n %s %a %h' file copy sub/renamed",
].join('\n');

/** Everything the host has under `dir`: entries, bytes, mode, links, size and mtime. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string, rel: string): void => {
    const st = lstatSync(p, { bigint: true });
    const what = st.isSymbolicLink() ? `-> ${readlinkSync(p)}` : st.isFile() ? readFileSync(p).toString('base64') : 'dir';
    out[rel] = `${st.mode} ${st.nlink} ${st.size} ${st.mtimeNs} ${st.ino} ${what}`;
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(join(p, n), `${rel}/${n}`);
  };
  walk(dir, '.');
  return out;
}

function makeTree(): string {
  const dir = mkdtempSync(join(tmpdir(), 'uniprobe-host-'));
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'file'), 'original\n');
  writeFileSync(join(dir, 'sub', 'other'), 'keep\n');
  return dir;
}

function runGuest(argv: string[], dir: string): { out: string; calls: Set<string>; status: number } {
  const out: Buffer[] = [];
  const calls = new Set<string>();
  const m = new Machine({
    target: 'x86_64',
    allowFiles: [dir],
    stdout: (b) => out.push(Buffer.from(b)),
    stderr: (b) => out.push(Buffer.from(b)),
    strace: (l) => calls.add(/^\[\d+\] (\w+)\(/.exec(l)?.[1] ?? ''),
  });
  try {
    m.spawn(argv[0]!, argv);
    const status = m.run().status;
    return { out: Buffer.concat(out).toString('utf8'), calls, status };
  } finally {
    m.close();
  }
}

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe.runIf(supported.has('x86_64'))('the host is never written', () => {
  it('the writing system calls of a shell and its utilities stay in the guest; the guest sees its changes', () => {
    const dir = makeTree();
    dirs.push(dir);
    const before = snapshot(dir);
    const { out, calls, status } = runGuest([busybox, 'sh', '-c', SCRIPT, dir], dir);
    expect(status).toBe(0);
    expect(snapshot(dir)).toEqual(before);
    for (const c of ['openat', 'write', 'ftruncate', 'fchmod', 'chmod', 'fchown', 'chown', 'utimensat', 'link', 'symlink', 'rename', 'unlink', 'mkdir', 'rmdir']) {
      expect(calls, c).toContain(c);
    }
    if (process.arch === 'x64') {
      // Linux's answer: the same program natively, on a copy (no times printed: the guest's
      // clock is the deterministic one, counted from the epoch).
      const copy = mkdtempSync(join(tmpdir(), 'uniprobe-host-ref-'));
      dirs.push(copy);
      cpSync(dir, copy, { recursive: true });
      const linux = execFileSync(busybox, ['sh', '-c', SCRIPT, copy], { encoding: 'utf8' });
      expect(out).toBe(linux);
    }
  });

  it('every writing system call (fixtures/src/writes.c) leaves the host as it was; results are Linux\'s', () => {
    const dir = makeTree();
    dirs.push(dir);
    const before = snapshot(dir);
    const { out, status } = runGuest([writes, dir], dir);
    expect(status).toBe(0);
    expect(snapshot(dir)).toEqual(before);
    const lines = out.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(40);
    if (process.arch === 'x64') {
      const copy = makeTree();
      dirs.push(copy);
      const linux = execFileSync(writes, [copy], { encoding: 'utf8' }).split('\n').filter(Boolean);
      const ours = lines.map((l) => {
        const [name, value] = l.split(' = ');
        return NOT_YET[name!] !== undefined && Number(value) === NOT_YET[name!] ? `${name} = (not yet)` : l;
      });
      const want = linux.map((l) => (NOT_YET[l.split(' = ')[0]!] !== undefined ? `${l.split(' = ')[0]} = (not yet)` : l));
      expect(ours).toEqual(want);
    }
  });
});
