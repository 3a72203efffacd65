import { defineConfig } from 'vitest/config';

// Two cores: run test files in two forked workers (koffi callbacks and Unicorn engines are per
// process, so forks isolate native state between files).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup/event-loop.ts', 'test/setup/lockdep.ts'],
    // Spawned `uniprobe run`s report lockdep violations on stderr, as with --lockdep.
    env: { UNIPROBE_LOCKDEP: '1' },
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
