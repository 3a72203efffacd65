/**
 * The end-of-run warning for a uprobe on a file the program never mapped (src/cli/never-mapped.ts),
 * through the CLI: Linux installs a uprobe only where its file is mapped (uprobe_mmap), so such a
 * probe gets no hits; the run says so once per event, after the run. Files the program maps — by
 * exec (the program itself) or by mmap (mmapexec maps blob.bin and calls into it) — get no warning,
 * nor do kprobes.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers.js';

const bin = join(repoRoot, 'bin', 'uniprobe.mjs');

function uniprobe(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('warning: a uprobe on a file the program never maps', () => {
  it('one line per never-mapped uprobe event, entry and return probes; none for the program itself or a kprobe', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'uniprobe-never-mapped-')), 'trace.txt');
    const r = uniprobe(
      'run',
      'fixtures/x86_64/fib-nolibc',
      '-e', 'p:p_x fixtures/x86_64/fib:fib',
      '-e', 'r:r_x fixtures/i386/fib-nolibc:fib',
      '-e', 'p:own fixtures/x86_64/fib-nolibc:fib',
      '-e', 'p:kw ksys_write',
      '-o', out,
    );
    expect(r.status).toBe(55); // fib-nolibc exits with fib(10)
    expect(r.stderr).toBe(
      [
        "uniprobe: warning: uprobe 'p_x' on fixtures/x86_64/fib was never hit: the program never mapped that file",
        "uniprobe: warning: uprobe 'r_x' on fixtures/i386/fib-nolibc was never hit: the program never mapped that file",
        '',
      ].join('\n'),
    );
    const trace = readFileSync(out, 'utf8');
    expect(trace).toMatch(/ own: /);
    expect(trace).toMatch(/ kw: /);
    expect(trace).not.toMatch(/ (p_x|r_x): /);
  });

  it('a file mapped by mmap (not exec) counts as mapped: no warning, and its probe is hit', () => {
    const r = uniprobe('run', 'fixtures/x86_64/mmapexec', '-e', 'p:blob fixtures/x86_64/blob.bin:0', '--', 'fixtures/x86_64/blob.bin');
    expect(r.status).toBe(0);
    expect(r.stderr).not.toMatch(/warning/);
    expect(r.stderr).toMatch(/ blob: \(0x[0-9a-f]+\)/);
  });

  it('the same blob.bin probe on a run that does not map it warns', () => {
    const r = uniprobe('run', 'fixtures/x86_64/fib-nolibc', '-e', 'p:blob fixtures/x86_64/blob.bin:0');
    expect(r.status).toBe(55);
    expect(r.stderr).toBe("uniprobe: warning: uprobe 'blob' on fixtures/x86_64/blob.bin was never hit: the program never mapped that file\n");
  });
});
