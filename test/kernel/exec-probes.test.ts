/**
 * Probes keep working through the real-program kernel (issue 13):
 * - a uprobe on a function of a program that a shell started with execve hits, with the same
 *   arguments in the same order as when the program is run directly (uprobe_mmap installs the
 *   breakpoint in the new image): printf, once per line fib prints, its format string fetched
 *   from the new image's memory;
 * - a kprobe and a kretprobe on ksys_read see a reader's reads from a pipe: 6 bytes ("hello\n")
 *   and then 0, end of file once the writer has gone, as pipe_read returns them on Linux.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, supported } from '../helpers.js';

const bin = join(repoRoot, 'bin', 'uniprobe.mjs');
const run = (args: string[]) => spawnSync(process.execPath, [bin, 'run', ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000, maxBuffer: 256 << 20 });

describe.each((['x86_64', 'i386'] as const).filter((t) => supported.has(t)))('%s', (target) => {
  const busybox = `fixtures/external/${target}/busybox`;
  const fib = `fixtures/${target}/fib-nolibc`;
  const fmt = target === 'x86_64' ? '+0(%di):string' : '+0(+4($stack)):string';

  it('a uprobe on printf() of a program started by execve hits as in a direct run', () => {
    const probe = `p:f ${fib}:printf fmt=${fmt}`;
    const direct = run([fib, '-e', probe]);
    const viaExec = run([busybox, '-e', probe, '--', 'sh', '-c', '"$0"; echo rc=$?', fib]);
    const ns = (out: string, comm: string): string[] => out.split('\n').filter((l) => l.includes(`${comm} `) && l.includes(' f: ')).map((l) => /fmt="([^"\n]*)/.exec(l)![1]!); // tracefs prints the string's newline as it is
    // The trace goes to stderr when the program's own output is not a terminal.
    const want = ns(direct.stderr, 'fib-nolibc-1');
    expect(want).toEqual(Array(6).fill('fib(%d) = %ld'));
    // The shell is pid 1; the child it forks and that execs fib-nolibc is pid 2.
    expect(ns(viaExec.stderr, 'fib-nolibc-2')).toEqual(want);
    expect(viaExec.stdout).toContain(`rc=${direct.status}`);
  });

  it('a kprobe and a kretprobe on ksys_read see the reads of a pipe: the bytes, then end of file', () => {
    const r = run([busybox, '-e', 'p:pr ksys_read fd=$arg1', '-e', 'r:rr ksys_read ret=$retval:s32', '--', 'sh', '-c', 'echo hello | "$0" cat > /dev/null', busybox]);
    expect(r.status).toBe(0);
    // The reader (pid 3, the second child) reads fd 0, the pipe: 6 bytes, then 0.
    const reader = r.stderr.split('\n').filter((l) => /busybox-3 /.test(l)).map((l) => (/ (pr|rr): .* (fd|ret)=(\S+)/.exec(l) ?? []).slice(1).join(' '));
    const reads = reader.filter((l) => l.startsWith('pr fd 0x0') || l.startsWith('rr'));
    expect(reads.slice(-4)).toEqual(['pr fd 0x0', 'rr ret 6', 'pr fd 0x0', 'rr ret 0']);
  });
});
