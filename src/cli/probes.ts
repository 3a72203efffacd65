/**
 * `-e DEF` on the command line: the definitions written, in order, to a TraceSession on the
 * machine (kernel-thread context, guests paused), then every event enabled.
 */
import type { Machine } from '../kernel/machine.js';
import type { TraceSession } from '../trace/attach.js';
import type { ProbeError } from '../trace/errors.js';
import type { TraceRecord } from '../trace/output.js';

/** A definition the kernel would refuse: printed in the error-log shape with its caret. */
export class DefinitionError extends Error {
  constructor(readonly probeError: ProbeError) {
    super(probeError.message);
  }
}

/**
 * Define every event of `defs` on `machine` and enable them. Throws DefinitionError for the first
 * definition that fails (nothing has run yet), UniprobeError for what the build cannot do.
 */
export async function defineEvents(machine: Machine, defs: readonly string[], onRecord: (r: TraceRecord) => void, enable = true): Promise<TraceSession> {
  // Imported here so that main.ts can import DefinitionError without loading the tracer.
  const { TraceSession } = await import('../trace/attach.js');
  const session = new TraceSession(machine, { onRecord });
  for (const def of defs) {
    const err = await machine.kernelCall<ProbeError | undefined>('kprobe_events', (t) => session.write(t, def));
    if (err) throw new DefinitionError(err);
  }
  if (enable) await machine.kernelCall<boolean>('enable', (t) => session.enable(t));
  return session;
}
