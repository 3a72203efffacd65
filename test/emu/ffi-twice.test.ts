/**
 * The engine's FFI modules evaluated twice in one process (a test runner resetting its module
 * registry between files, two copies of the package in one program) must both work: koffi's type
 * names are process-wide, and a second named `koffi.proto` of the hook signatures threw
 * "Duplicate type name 'uc_cb_intr'" — no engine could open (seen in this suite when two files
 * shared an isolated fork). The callback types are anonymous now (src/emu/ffi.ts callbackType).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { repoRoot } from '../helpers.js';

it('Unicorn and the native trap hooks load through a second copy of the modules', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'test/emu/ffi-twice.ts')], { cwd: repoRoot, encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual([
    { unicorn: true, trapHooksUnavailable: null },
    { unicorn: true, trapHooksUnavailable: null },
  ]);
});
