/**
 * `uniprobe … | head`: when the reader goes away the command stops quietly (no EPIPE stack
 * trace), for commander's help output as for our own listings.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers.js';

describe('a reader that quits early', () => {
  it.each(['--help', 'run --help', 'list --help'])('uniprobe %s | head -1: one line, nothing on stderr', (args) => {
    const r = spawnSync('sh', ['-c', `node bin/uniprobe.mjs ${args} | head -1`], { cwd: repoRoot, encoding: 'utf8' });
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    expect(r.stdout).toMatch(/^Usage: uniprobe/);
    expect(r.stderr).toBe('');
  });
});
