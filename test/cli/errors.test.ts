/**
 * The CLI's promised error shape (DESIGN.md): bad input of any kind exits non-zero with exactly
 * one line starting `uniprobe: error:` that names the file and the problem; never a stack trace.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers.js';

const bin = join(repoRoot, 'bin', 'uniprobe.mjs');
const tmp = mkdtempSync(join(tmpdir(), 'uniprobe-cli-'));

function uniprobe(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectOneErrorLine(stderr: string, ...fragments: string[]): void {
  const lines = stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^uniprobe: error: /);
  for (const f of fragments) expect(lines[0]).toContain(f);
  expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
}

describe('uniprobe run: bad input', () => {
  const fib = readFileSync(join(repoRoot, 'fixtures', 'x86_64', 'fib'));
  const cases: Array<[string, () => string, string[]]> = [
    ['a missing file', () => join(tmp, 'nope'), ['nope', 'No such file']],
    ['a directory', () => tmp, ['is a directory']],
    ['an empty file', () => write('empty', Buffer.alloc(0)), ['empty']],
    ['a text file', () => write('text', Buffer.from('#!/bin/sh\necho hi\n')), ['not an ELF file']],
    ['a truncated ELF', () => write('trunc', fib.subarray(0, 200)), ['trunc']],
    ['an ELF for another machine', () => write('arm', patch(fib, 18, [183, 0])), ['not supported', 'aarch64']],
    ['a dynamically linked program', () => '/bin/true', ['dynamically linked']],
  ];
  it.each(cases)('%s', (_what, make, fragments) => {
    const path = make();
    const r = uniprobe('run', path);
    expect(r.status).not.toBe(0);
    expectOneErrorLine(r.stderr, path, ...fragments);
  });

  it('a bad option value is a usage error (status 2)', () => {
    const r = uniprobe('run', '--cpus', '0', 'fixtures/x86_64/fib');
    expect(r.status).toBe(2);
    expectOneErrorLine(r.stderr, '--cpus');
  });

  it('--arch that disagrees with the ELF header', () => {
    const r = uniprobe('run', '--arch', 'ppc32', 'fixtures/x86_64/fib');
    expect(r.status).toBe(1);
    expectOneErrorLine(r.stderr, 'x86_64', 'ppc32');
  });
});

describe('uniprobe run: a good program', () => {
  it('prints what the guest prints and exits with its status', () => {
    const r = uniprobe('run', 'fixtures/x86_64/fib');
    expect(r.stdout).toContain('fib(15) = 610\n');
    expect(r.status).toBe(55); // fib(10) & 0xff, as under qemu-user
    expect(r.stderr).toBe('');
  });

  it('passes arguments after -- to the guest', () => {
    const r = uniprobe('run', 'fixtures/i386/mmapexec-nolibc', '--', 'fixtures/i386/blob.bin');
    expect(r.stdout).toContain('blob(20) = 41\n');
    expect(r.status).toBe(0);
  });
});

function write(name: string, bytes: Uint8Array): string {
  const p = join(tmp, name);
  writeFileSync(p, bytes);
  return p;
}

function patch(b: Uint8Array, off: number, bytes: number[]): Uint8Array {
  const c = Uint8Array.from(b);
  c.set(bytes, off);
  return c;
}
