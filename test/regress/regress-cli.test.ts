/**
 * `uniprobe regress DIR` end to end: a passing suite (status 0, a line per case and target, no
 * progress bar when stderr is not a terminal), --update into an empty directory, a failing golden
 * (status 1, the first differing line), JSON, and a bad suite directory.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { repoRoot } from '../helpers.js';

const bin = join(repoRoot, 'bin', 'uniprobe.mjs');

function uniprobe(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const forkCase = {
  name: 'fork',
  program: join(repoRoot, 'fixtures', '{target}', 'fork-nolibc'),
  probes: [{ event: 'work', at: 'work', fetch: [{ name: 'n', arg: 1, type: 's32' }] }],
};

describe('uniprobe regress', () => {
  it('the shipped suite on two targets: status 0, one line per case and target, no progress bar off a terminal', () => {
    const r = uniprobe('regress', 'test/regress/suite', '--target', 'i386', 'ppc64');
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.filter((l) => /^ok {7}\S+ (i386|ppc64)$/.test(l))).toHaveLength(12);
    expect(lines.at(-1)).toBe('12/12 passed');
  });

  it('--update into a new suite, then a golden edited by hand fails with its line (status 1); JSON report', () => {
    const dir = mkdtempSync(join(tmpdir(), 'uniprobe-regress-cli-'));
    writeFileSync(join(dir, 'fork.case.json'), JSON.stringify(forkCase));
    const u = uniprobe('regress', dir, '--update', '--target', 'x86_64', 'sparc64');
    expect(u.status).toBe(0);
    expect(u.stdout).toContain('updated  fork x86_64');
    expect(u.stdout).toContain('ok       fork sparc64');
    const golden = join(dir, 'fork.golden.jsonl');
    expect(readFileSync(golden, 'utf8')).toBe(
      ['{"pid":1,"event":"work","at":"work","args":{"n":"3"}}', '{"pid":1,"event":"work","at":"work","args":{"n":"5"}}', '{"pid":2,"event":"work","at":"work","args":{"n":"4"}}', '{"exit":0}', ''].join('\n'),
    );
    writeFileSync(golden, readFileSync(golden, 'utf8').replace('"n":"5"', '"n":"6"'));
    const f = uniprobe('regress', dir, '--target', 'ppc32', '--format', 'json');
    expect(f.status).toBe(1);
    const doc = JSON.parse(f.stdout) as Array<{ case: string; target: string; ok: boolean; detail: string }>;
    expect(doc).toHaveLength(1);
    expect(doc[0]).toMatchObject({ case: 'fork', target: 'ppc32', ok: false });
    expect(doc[0]!.detail).toBe('line 2: expected {"pid":1,"event":"work","at":"work","args":{"n":"6"}}, got {"pid":1,"event":"work","at":"work","args":{"n":"5"}}');
  });

  it('a directory without cases, a bad case file: one error line, status 1', () => {
    const empty = mkdtempSync(join(tmpdir(), 'uniprobe-regress-empty-'));
    const a = uniprobe('regress', empty);
    expect(a.status).toBe(1);
    expect(a.stderr).toMatch(/^uniprobe: error: .*no \*\.case\.json files\n$/);
    writeFileSync(join(empty, 'x.case.json'), '{"name":"x","program":"p","probes":[{"event":"e","at":"f","fetch":[{"name":"v","arg":0}]}]}');
    const b = uniprobe('regress', empty);
    expect(b.status).toBe(1);
    expect(b.stderr).toMatch(/^uniprobe: error: .*x\.case\.json: e\.v: "arg" counts from 1\n$/);
  });
});

describe('regress progress bar', () => {
  it('is the shared progress line: after the first second, redrawn in place, cleared at the end', async () => {
    const { progressBar } = await import('../../src/cli/regress.js');
    const out: string[] = [];
    vi.useFakeTimers();
    try {
      vi.setSystemTime(0);
      const bar = progressBar({ isTTY: true, write: (s: string) => (out.push(s), true) } as unknown as NodeJS.WriteStream);
      bar(0, 4, 'fib x86_64');
      vi.setSystemTime(1000);
      bar(2, 4, 'fib ppc32');
      bar(4, 4, 'done');
      expect(out).toEqual(['\r\x1b[Kuniprobe: [############............] 2/4 fib ppc32, 1.0 s', '\r\x1b[K']);
    } finally {
      vi.useRealTimers();
    }
  });
});
