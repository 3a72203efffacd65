/**
 * `uniprobe scenario` end to end through the real command (bin/uniprobe.mjs): the list, the exit
 * statuses (3 when the seed's bug is found, 0 when clean), text and JSON, replay of one seed, and
 * bad input; `uniprobe run --lockdep` on a clean run adds nothing to stderr.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { manifest, repoRoot } from '../helpers.js';

const bin = join(repoRoot, 'bin', 'uniprobe.mjs');

function uniprobe(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NO_COLOR: '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('uniprobe scenario', () => {
  it('--list: one line per seed scenario, name first, in seed order', () => {
    const r = uniprobe(['scenario', '--list']);
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.map((l) => l.split(/\s+/).slice(0, 3).join(' '))).toEqual([
      'uprobe-mmap seed 001',
      'hmm-mirror seed 002',
      'kprobe-unregister seed 003',
      'notifier-alloc seed 004',
    ]);
  });

  it('old finds the bug (exit 3, the reproducing seed named); fixed is clean (exit 0)', () => {
    const old = uniprobe(['scenario', 'kprobe-unregister', '--variant', 'old', '--seeds', '3']);
    expect(old.status).toBe(3);
    expect(old.stdout).toMatch(/^FOUND use-after-free: .*\n {2}on 3 of 3 seeds; reproduce with --seed 1\n {2}\| vCPU \d \(fib-nolibc\[1\]\) trapped at 0x[0-9a-f]+, inside freed slot/m);
    const fixed = uniprobe(['scenario', 'kprobe-unregister', '--variant', 'fixed', '--seeds', '3']);
    expect(fixed.status).toBe(0);
    expect(fixed.stdout).toMatch(/\nnothing found\n/);
  });

  it('--format json: the sweep as one document; --seed S replays the seed a sweep named', () => {
    const r = uniprobe(['scenario', 'hmm-mirror', '--seeds', '12', '--format', 'json']);
    expect(r.status).toBe(3);
    const w = JSON.parse(r.stdout);
    expect(w).toMatchObject({ scenario: 'hmm-mirror', seedDiscussion: '002', variant: 'old', cpus: 3 });
    const ff = w.found.find((f: { kind: string }) => f.kind === 'false-failure');
    const again = JSON.parse(uniprobe(['scenario', 'hmm-mirror', '--seed', String(ff.seeds[0]), '--format', 'json']).stdout);
    expect(again.seeds).toEqual([ff.seeds[0]]);
    expect(again.found[0]).toEqual({ ...ff, seeds: [ff.seeds[0]] });
  });

  it('bad input: an unknown scenario, too few vCPUs, a bad variant', () => {
    const unknown = uniprobe(['scenario', 'nope']);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toBe('uniprobe: error: scenario: no scenario named nope (known: uprobe-mmap, hmm-mirror, kprobe-unregister, notifier-alloc)\n');
    const cpus = uniprobe(['scenario', 'kprobe-unregister', '--cpus', '1']);
    expect(cpus.status).toBe(1);
    expect(cpus.stderr).toMatch(/^uniprobe: error: scenario kprobe-unregister: .*2 vCPUs/);
    const variant = uniprobe(['scenario', 'hmm-mirror', '--variant', 'new']);
    expect(variant.status).toBe(2);
    expect(variant.stderr).toMatch(/uniprobe: error: option '--variant <v>' argument 'new' is invalid/);
  });
});

describe('uniprobe run --lockdep', () => {
  it('a clean multi-vCPU run with probes: same output and status, no lockdep line', () => {
    const e = manifest.find((m) => m.target === 'x86_64' && m.name === 'fork-nolibc')!;
    const r = uniprobe(['run', '--lockdep', '--cpus', '3', '-e', 'p:w ksys_write', '-o', '/dev/null', `fixtures/${e.path}`, '--', ...e.args]);
    expect(r.status).toBe(e.exit);
    expect(r.stdout).toBe(e.stdout);
    expect(r.stderr).not.toMatch(/lockdep/);
  });
});
