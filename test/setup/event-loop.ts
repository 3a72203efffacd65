/**
 * Give the worker's event loop a turn after every test.
 *
 * vitest's worker talks to the main process over an RPC whose calls time out after 60 s (birpc's
 * fixed default). A reply can only be read when the worker reaches the event loop's poll phase;
 * a run of synchronous tests (each one a guest run inside Unicorn) never gets there, and the
 * reply's timer fires first: "[vitest-worker]: Timeout calling onTaskUpdate", an unhandled error
 * that makes `vitest run` exit 1 with every test passed. A setImmediate after each test reaches
 * the poll phase, so the longest stretch without one is a single test, not a whole file.
 */
import { afterEach } from 'vitest';

afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
