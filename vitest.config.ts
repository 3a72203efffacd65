import { defineConfig } from 'vitest/config';

// Two cores: run test files in two forked workers (koffi callbacks and Unicorn engines are per
// process, so forks keep native state away from the vitest main process).
//
// Files that need a fresh module graph run isolated (a new process per file): vi.mock replaces a
// module for the whole worker, so progress-commands.test.ts (which mocks src/host-io.js) must not
// share one. (The sparc64 differential files ran isolated too while they closed ~7,000 engines,
// each losing ~125 KiB in Unicorn; they reuse engines now: test/arch/engine-pool.ts.) Every
// other file runs in the two workers without isolation: each file's tests create
// and close their own machines, so they need no fresh process, and skipping the per-file process
// start and re-import of the engine (~1 s of CPU per file) is a third of npm test's time for the
// smaller files. The per-test setup files (lockdep watch, event-loop turn) still run around every
// test of every file.
const ISOLATED = ['test/cli/progress-commands.test.ts'];

export default defineConfig({
  test: {
    // engine-pool.ts: the differential harnesses' idle engines are closed when each file ends.
    setupFiles: ['test/setup/event-loop.ts', 'test/setup/lockdep.ts', 'test/setup/engine-pool.ts'],
    // Spawned `uniprobe run`s report lockdep violations on stderr, as with --lockdep.
    env: { UNIPROBE_LOCKDEP: '1' },
    pool: 'forks',
    // Both switches: a project's `isolate` alone does not reach the forks pool (measured: every
    // file still got its own process).
    isolate: false,
    poolOptions: { forks: { maxForks: 2, minForks: 1, isolate: false } },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'isolated', include: ISOLATED, isolate: true, poolOptions: { forks: { isolate: true } } } },
      { extends: true, test: { name: 'shared', include: ['test/**/*.test.ts'], exclude: ISOLATED } },
    ],
  },
});
