import { defineConfig } from 'vitest/config';

// Two cores: run test files in two forked workers (koffi callbacks and Unicorn engines are per
// process, so forks keep native state away from the vitest main process).
//
// Files that need a fresh module graph run isolated (a new process per file): vi.mock replaces a
// module for the whole worker, so progress-commands.test.ts (which mocks src/host-io.js) must not
// share one. The two sparc64 differential files open ~7,000 sparc64 engines between them, and
// Unicorn 2.1.1 loses ~125 KiB inside each sparc64 uc_close (docs/unicorn.md, "Host memory per
// engine"): ~0.9 GB a worker would carry to the end of the run; their own process gives it back
// when the file ends. Every other file runs in the two workers without isolation: each file's tests create
// and close their own machines, so they need no fresh process, and skipping the per-file process
// start and re-import of the engine (~1 s of CPU per file) is a third of npm test's time for the
// smaller files. The per-test setup files (lockdep watch, event-loop turn) still run around every
// test of every file.
const ISOLATED = ['test/cli/progress-commands.test.ts', 'test/arch/sparc-uprobes.test.ts', 'test/arch/sparc-kprobes.test.ts'];

export default defineConfig({
  test: {
    setupFiles: ['test/setup/event-loop.ts', 'test/setup/lockdep.ts'],
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
