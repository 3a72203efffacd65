/**
 * CLONE_VFORK (kernel/fork.c's vfork_done): the parent of a vfork child sleeps until the child
 * execs or exits. glibc's system() and posix_spawn clone with CLONE_VM | CLONE_VFORK, run the child
 * on a stack in the parent's memory and unmap it as soon as clone returns — a parent that went on
 * at once would pull the child's stack away (SIGSEGV). Debian's sash hands a line with shell
 * metacharacters to system("/bin/sh -c ..."); run in a root tree whose /bin/sh is busybox, it
 * prints what it prints on Linux (`chroot ROOT /bin/sash -c 'echo a; echo b'` there: "a", "b").
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, runProgram, supported } from '../helpers.js';
import type { Target } from '../../arch/types.js';

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

function rootWithSh(target: Target): string {
  const root = mkdtempSync(join(tmpdir(), 'uniprobe-vfork-'));
  roots.push(root);
  mkdirSync(join(root, 'bin'));
  copyFileSync(join(repoRoot, 'fixtures', 'external', target, 'busybox'), join(root, 'bin', 'sh'));
  copyFileSync(join(repoRoot, 'fixtures', 'external', target, 'sash'), join(root, 'bin', 'sash'));
  return root;
}

describe.each((['x86_64', 'i386'] as const).filter((t) => supported.has(t)))('CLONE_VFORK on %s', (target) => {
  it('system() in a static glibc program runs its command and the parent waits', () => {
    const root = rootWithSh(target);
    const r = runProgram(target, join(root, 'bin', 'sash'), ['-c', 'echo a; echo b'], { root });
    expect(r.reports).toEqual([]);
    expect(r.stdout).toBe('a\nb\n');
    expect(r.status).toBe(0);
  });
  it('a command that exits non-zero through system(): sash goes on and exits 0, as on Linux', () => {
    const root = rootWithSh(target);
    const r = runProgram(target, join(root, 'bin', 'sash'), ['-c', 'echo x; exit 3'], { root });
    expect(r.reports).toEqual([]);
    expect(r.stdout).toBe('x\n');
    expect(r.status).toBe(0);
  });
});
