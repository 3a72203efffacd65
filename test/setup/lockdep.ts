/**
 * Every Machine a test creates runs with lockdep on and watched (the in-process equivalent of
 * `uniprobe run --lockdep`; spawned CLIs get UNIPROBE_LOCKDEP=1 from vitest.config.ts): a lockdep
 * report that the test did not provoke on purpose (expectLockdepReports) fails the test.
 */
import { afterEach, beforeEach } from 'vitest';
import { startLockdepWatch, stopLockdepWatch } from '../../src/mm/kernel-locking.js';

beforeEach(() => startLockdepWatch());
afterEach(() => {
  const reports = stopLockdepWatch();
  if (reports.length) throw new Error(`lockdep reported during this test:\n${reports.map((r) => r.text).join('\n\n')}`);
});
