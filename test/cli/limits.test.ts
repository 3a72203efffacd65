/**
 * The limits on the command line: `run --help` shows each with its default, a bad value is a usage
 * error (status 2), the values reach the guest (EMFILE at --max-files, EAGAIN at --max-tasks), and
 * an ELF whose .bss would need 8 GiB ends in one `uniprobe: error:` line, not a host abort.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers.js';

const bin = join(repoRoot, 'bin', 'uniprobe.mjs');
const hostile = join(repoRoot, 'fixtures', 'x86_64', 'hostile-nolibc');

function uniprobe(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

describe('uniprobe run: limits', () => {
  it('--help lists the three limits with their defaults', () => {
    const r = uniprobe('run', '--help');
    expect(r.status).toBe(0);
    const help = r.stdout.replace(/\s+/g, ' ');
    expect(help).toMatch(/--max-memory <size> .*ENOMEM.* \(default: 1073741824\)/);
    expect(help).toMatch(/--max-tasks <n> .*EAGAIN \(default: 128\)/);
    expect(help).toMatch(/--max-files <n> .*EMFILE \(default: 1024\)/);
  });

  it.each([
    ['--max-memory', '10G'],
    ['--max-memory', '1M'],
    ['--max-memory', 'lots'],
    ['--max-tasks', '0'],
    ['--max-tasks', '1000'],
    ['--max-files', '2'],
  ])('%s %s is a usage error', (opt, v) => {
    const r = uniprobe('run', opt, v, hostile, '--', 'fds', '1');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(opt);
    expect(r.stdout).toBe('');
  });

  it('the guest meets --max-files and --max-tasks', () => {
    const fds = uniprobe('run', '--max-files', '64', hostile, '--', 'fds', '1');
    expect(fds.status).toBe(0);
    expect(fds.stdout.split('\n').slice(0, 2)).toEqual(['dups = 61, last fd = 63', 'then dup(1) = -EMFILE (-24)']);
    const bomb = uniprobe('run', '--max-tasks', '4', hostile, '--', 'fork-bomb');
    expect(bomb.status).toBe(0);
    expect(bomb.stdout.split('\n').slice(0, 2)).toEqual(['children = 3', 'then fork() = -EAGAIN (-11)']);
  });

  it('an OOM kill is status 137 with the kernel-style report', () => {
    const r = uniprobe('run', '--max-memory', '32M', hostile, '--', 'cow-oom');
    expect(r.status).toBe(137);
    expect(r.stderr).toMatch(/Out of memory: Killed process 1 \(hostile-nolibc\)/);
  });

  it('an 8 GiB .bss is one error line naming ENOMEM and --max-memory (status 1, no abort)', () => {
    const b = Buffer.from(readFileSync(hostile));
    const phoff = Number(b.readBigUInt64LE(0x20));
    for (let i = 0; i < b.readUInt16LE(0x38); i++) {
      const o = phoff + i * 56;
      if (b.readUInt32LE(o) === 1 && b.readUInt32LE(o + 4) & 2) b.writeBigUInt64LE(8n << 30n, o + 0x28);
    }
    const path = join(mkdtempSync(join(tmpdir(), 'uniprobe-limits-')), 'bigbss');
    writeFileSync(path, b, { mode: 0o755 });
    const r = uniprobe('run', path);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^uniprobe: error: .*bigbss: cannot map \.bss of segment \d+ \(ENOMEM: over the guest memory limit, see --max-memory\)$/);
  });
});
