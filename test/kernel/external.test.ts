/**
 * Static programs uniprobe was not written against (Debian's busybox-static) print what they
 * print under qemu-user and exit the same way (fixtures/external/expected.json).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, runProgram, supported } from '../helpers.js';
import type { Target } from '../../arch/types.js';

interface Case {
  target: Target;
  path: string;
  args: string[];
  stdout: string;
  exit: number;
}
const cases: Case[] = JSON.parse(readFileSync(join(repoRoot, 'fixtures', 'external', 'expected.json'), 'utf8'));

describe('programs not written here', () => {
  it.each(cases.filter((c) => supported.has(c.target)).map((c) => [`${c.path} ${c.args.join(' ')}`, c] as const))('%s', (_n, c) => {
    const prev = process.cwd();
    process.chdir(repoRoot); // the recorded arguments are relative to the repository root
    try {
      const r = runProgram(c.target, c.path, c.args);
      expect(r.reports).toEqual([]);
      expect(r.stdout).toBe(c.stdout);
      expect(r.status).toBe(c.exit);
    } finally {
      process.chdir(prev);
    }
  });
});
