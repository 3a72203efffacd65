/**
 * The error a bad `-e` definition ends in, in a module of its own so that main.ts can recognise it
 * without loading probes.ts (which loads the arch back-ends) at start: `--help` and usage errors
 * stay cheap.
 */
import type { ProbeError } from '../trace/errors.js';

/** A definition the kernel would refuse: printed in the error-log shape with its caret. */
export class DefinitionError extends Error {
  constructor(readonly probeError: ProbeError) {
    super(probeError.message);
  }
}
