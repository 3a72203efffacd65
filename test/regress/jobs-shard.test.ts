/**
 * `regress --jobs N` and `--shard i/n`: worker threads give the same results, in the same order,
 * as one thread — from the TypeScript sources (this file, through the tsx bootstrap) and from the
 * compiled CLI (dist's worker.js) — and the shards of a suite together are the full run, each pair
 * once. Bad --shard and --jobs values are usage errors (status 2, one line).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { loadSuite, runCase, runSuite } from '../../src/regress/regress.js';
import { runJobs } from '../../src/regress/pool.js';
import { shardOf } from '../../src/regress/shard.js';
import { parseShard } from '../../src/cli/regress.js';
import { repoRoot } from '../helpers.js';

const bin = join(repoRoot, 'bin', 'uniprobe.mjs');
const suite = join(repoRoot, 'test', 'regress', 'suite');

function uniprobe(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 180_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('regress --jobs', () => {
  it('two worker threads (from the sources) give the results of one thread, in the same order', async () => {
    const one = await runSuite(suite, { targets: ['ppc64'] });
    const two = await runSuite(suite, { targets: ['ppc64'], jobs: 2 });
    expect(one).toHaveLength(6);
    expect(one.every((r) => r.ok)).toBe(true);
    expect(two).toEqual(one);
  });

  it('a pair that cannot run fails with its reason, the others still run (worker side)', async () => {
    const [c] = loadSuite(suite);
    const missing = { ...c!, name: 'missing', program: 'no-such-{target}' };
    const runs = await runJobs(
      [
        { id: 0, dir: suite, c: missing, target: 'x86_64' },
        { id: 1, dir: suite, c: c!, target: 'x86_64' },
      ],
      2,
    );
    expect(runs[0]).toEqual({ id: 0, error: `missing: ${join(suite, 'no-such-x86_64')}: No such file or directory` });
    expect(runs[1]).toEqual({ id: 1, lines: await runCase(c!, 'x86_64', { dir: suite }) });
  });

  it('a worker that dies fails the pair it ran with the reason; a new worker runs the rest', async () => {
    const [c] = loadSuite(suite);
    // Dies on job 0 (exit code 7), answers the others with a one-line trace.
    const code = "const { parentPort } = require('node:worker_threads'); parentPort.on('message', (j) => j.id === 0 ? process.exit(7) : parentPort.postMessage({ id: j.id, lines: ['ran ' + j.id] }));";
    const jobs = [0, 1, 2].map((id) => ({ id, dir: suite, c: c!, target: 'i386' as const }));
    const runs = await runJobs(jobs, 1, undefined, () => new Worker(code, { eval: true }));
    expect(runs).toEqual([
      { id: 0, error: 'worker thread stopped: exit code 7' },
      { id: 1, lines: ['ran 1'] },
      { id: 2, lines: ['ran 2'] },
    ]);
  });

  it('the compiled CLI prints the same report with --jobs 2 as with --jobs 1', () => {
    const one = uniprobe('regress', 'test/regress/suite', '--target', 'sparc64');
    const two = uniprobe('regress', 'test/regress/suite', '--target', 'sparc64', '--jobs', '2');
    expect(one.status).toBe(0);
    expect(two.stderr).toBe('');
    expect(two.status).toBe(0);
    expect(two.stdout).toBe(one.stdout);
    expect(two.stdout.trimEnd().split('\n').at(-1)).toBe('6/6 passed');
  });

  it('--update with --jobs 2 writes the golden from the first target and checks the second against it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'uniprobe-regress-jobs-'));
    const forkCase = { name: 'fork', program: join(repoRoot, 'fixtures', '{target}', 'fork-nolibc'), probes: [{ event: 'work', at: 'work', fetch: [{ name: 'n', arg: 1, type: 's32' }] }] };
    writeFileSync(join(dir, 'fork.case.json'), JSON.stringify(forkCase));
    const u = uniprobe('regress', dir, '--update', '--jobs', '2', '--target', 'ppc32', 'i386');
    expect(u.stdout).toBe('updated  fork i386\nok       fork ppc32\n2/2 passed\n');
    expect(u.status).toBe(0);
    // The program's own values: work(3) and work(5) in the parent, work(4) in the child.
    expect(readFileSync(join(dir, 'fork.golden.jsonl'), 'utf8')).toBe(
      ['{"pid":1,"event":"work","at":"work","args":{"n":"3"}}', '{"pid":1,"event":"work","at":"work","args":{"n":"5"}}', '{"pid":2,"event":"work","at":"work","args":{"n":"4"}}', '{"exit":0}', ''].join('\n'),
    );
  });
});

describe('regress --shard', () => {
  it('shards cut the cases into contiguous blocks whose sizes differ by at most one; their union is every case once', () => {
    const items = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    for (let n = 1; n <= 9; n++) {
      const parts = Array.from({ length: n }, (_, i) => shardOf(items, { index: i + 1, count: n }));
      expect(parts.flat()).toEqual(items);
      const sizes = parts.map((p) => p.length);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      expect([...sizes].sort((a, b) => b - a)).toEqual(sizes);
    }
    expect(shardOf(items, { index: 2, count: 3 })).toEqual(['d', 'e']);
  });

  it('parseShard: i/n with 1 ≤ i ≤ n, anything else a reason', () => {
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    expect(parseShard('1/1')).toEqual({ index: 1, count: 1 });
    for (const bad of ['0/2', '3/2', 'x/y', '1/0', '1/', '/2', '1/2/3', '-1/2', '1.5/2', '']) expect(parseShard(bad)).toHaveProperty('error');
  });

  it('the CLI shards 1/3, 2/3, 3/3 together report exactly the full run', () => {
    type Row = { case: string; target: string; ok: boolean; events: number };
    const json = (...extra: string[]) => {
      const r = uniprobe('regress', 'test/regress/suite', '--target', 'ppc32', '--format', 'json', ...extra);
      expect(r.status).toBe(0);
      return JSON.parse(r.stdout) as Row[];
    };
    const full = json();
    const shards = [1, 2, 3].map((i) => json('--shard', `${i}/3`));
    expect(full.map((r) => r.case)).toEqual(loadSuite(suite).map((c) => c.name));
    for (const s of shards) expect(s).toHaveLength(2);
    expect(shards.flat()).toEqual(full);
  });

  it('bad --shard and --jobs values: one usage error line, status 2, nothing run', () => {
    for (const [opt, v, why] of [
      ['--shard', '0/2', 'The index must be from 1 to 2.'],
      ['--shard', '3/2', 'The index must be from 1 to 2.'],
      ['--shard', 'x/y', 'Expected INDEX/COUNT, such as 1/3.'],
      ['--shard', '1/0', 'The count must be at least 1.'],
      ['--jobs', '0', '--jobs must be an integer from 1 to 64'],
      ['--jobs', 'two', '--jobs must be an integer from 1 to 64'],
    ] as const) {
      const r = uniprobe('regress', 'test/regress/suite', opt, v);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(new RegExp(`^uniprobe: error: option '[^']*${opt}[^']*' argument '${v}' is invalid\\. ${why.replace(/[.]/g, '\\.')}\\n$`));
    }
  });
});
