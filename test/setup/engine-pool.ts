/**
 * Close the differential harnesses' idle engines (test/arch/engine-pool.ts) when a file ends, so
 * that no file leaves native engines behind in the worker for the next.
 */
import { afterAll } from 'vitest';
import { closeEnginePools } from '../arch/engine-pool.js';

afterAll(closeEnginePools);
