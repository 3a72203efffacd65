/**
 * Closing an engine gives its memory back to the system: a tool that runs thousands of short
 * machines (verify, regress, the placement explorer, this test suite) must not grow with each one.
 * - glibc's dynamic mmap threshold kept ~530 KiB of every closed x86-64 engine resident until
 *   src/emu/ffi.ts pinned it (fixMmapThreshold): 300 engines grew the process by ~146 MB.
 * - Unicorn 2.1.1's sparc64 loses ~125 KiB per engine inside uc_close itself (docs/unicorn.md,
 *   "Host memory per engine"): pinned here, so that a Unicorn that fixes it shows up.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers.js';

const ENGINES = 300;

function churn(target: string): number {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'test/emu/engine-churn.ts'), target, String(ENGINES)], { cwd: repoRoot, encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const out = JSON.parse(r.stdout) as { target: string; engines: number; before: number; after: number };
  expect(out).toMatchObject({ target, engines: ENGINES });
  return (out.after - out.before) / ENGINES; // KiB per engine
}

describe(`${ENGINES} engines opened, run and closed`, () => {
  it.each(['x86_64', 'ppc64'])('%s: the resident set stays where it was (< 40 KiB per engine)', (target) => {
    expect(churn(target)).toBeLessThan(40);
  });

  it("sparc64: Unicorn 2.1.1's own loss, ~125 KiB per engine (between 60 and 250)", () => {
    const perEngine = churn('sparc64');
    expect(perEngine).toBeGreaterThan(60);
    expect(perEngine).toBeLessThan(250);
  });
});
