/**
 * `uniprobe verify` end to end: status 0 and a report of same-checks when transparent, status 1
 * with the first divergence when not, JSON, and the error shapes.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers.js';

const bin = join(repoRoot, 'bin', 'uniprobe.mjs');

function uniprobe(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('uniprobe verify', () => {
  it('transparent: status 0, every check the same, hits == executed for every probe of fib', () => {
    const r = uniprobe('verify', 'fixtures/i386/fib-nolibc', '--probes', 'fib', 'main');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('uniprobe verify: fixtures/i386/fib-nolibc (i386), seed 1');
    for (const check of ['instruction sequence', 'registers at system calls', 'hits == executed', 'exit status', 'stdout', 'stderr', 'writable memory at exit']) {
      expect(lines.some((l) => l.startsWith(`  same  ${check}: `))).toBe(true);
    }
    expect(lines.at(-1)).toBe('TRANSPARENT');
  });

  it('--format json: every probe of fib with its hits and executions, equal', () => {
    const r = uniprobe('verify', 'fixtures/ppc32/fib-nolibc', '--probes', 'fib', '--format', 'json');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as { transparent: boolean; probes: Array<{ where: string; hits: number; executed: number }> };
    expect(doc.transparent).toBe(true);
    const entry = doc.probes.find((p) => p.where === 'fib+0x0')!;
    expect(entry.hits).toBe(entry.executed);
    expect(entry.hits).toBeGreaterThan(100);
    for (const p of doc.probes) expect(p.hits, p.where).toBe(p.executed);
  });

  it('not transparent: status 1 and the first divergence (a fork stepped from an XOL slot kills the child)', () => {
    const r = uniprobe('verify', 'fixtures/x86_64/fork-nolibc', '--probes', 'fork');
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/\nNOT TRANSPARENT — first divergence: instruction sequence: thread 2, step 0: the probed run stopped \(.*SIGSEGV.*XOL slot/);
    expect(r.stdout).toMatch(/\n {2}DIFF {2}exit status: /);
  });

  it('errors: an unknown function, an unresolvable --skip: one error line, status 1', () => {
    const a = uniprobe('verify', 'fixtures/x86_64/fib-nolibc', '--probes', 'nosuch');
    expect(a.status).toBe(1);
    expect(a.stderr).toBe('uniprobe: error: fixtures/x86_64/fib-nolibc: no function named nosuch\n');
    const b = uniprobe('verify', 'fixtures/x86_64/fib-nolibc', '--skip', 'nosuch+0x4');
    expect(b.status).toBe(1);
    expect(b.stderr).toMatch(/^uniprobe: error: .*cannot resolve "nosuch\+0x4"/);
  });
});
