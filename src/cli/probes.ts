/**
 * `-e DEF` on the command line: the definitions written, in order, to a TraceSession on the
 * machine (kernel-thread context, guests paused), then every event enabled.
 */
import type { Machine } from '../kernel/machine.js';
import type { TraceSession } from '../trace/attach.js';
import type { ProbeError } from '../trace/errors.js';
import type { TraceRecord } from '../trace/output.js';
import { readElfFileSync, type ElfFile } from '../elf/index.js';
import { isProbeError, resolveSymbolicUprobe } from '../trace/symbolic.js';
import { splitCommand } from '../trace/command.js';

/** A definition the kernel would refuse: printed in the error-log shape with its caret. */
export class DefinitionError extends Error {
  constructor(readonly probeError: ProbeError) {
    super(probeError.message);
  }
}

/**
 * Define every event of `defs` on `machine` and enable them. Throws DefinitionError for the first
 * definition that fails (nothing has run yet), UniprobeError for what the build cannot do.
 * Uprobes may name a symbol (`PATH:SYMBOL[+OFFS]`, trace/symbolic.ts): resolved to the kernel's
 * `PATH:OFFSET` first. `program` (the ELF being run) lets a kprobe on one of its functions say
 * how to write the uprobe instead.
 */
export async function defineEvents(
  machine: Machine,
  defs: readonly string[],
  onRecord: (r: TraceRecord) => void,
  enable = true,
  program?: string,
): Promise<TraceSession> {
  // Imported here so that main.ts can import DefinitionError without loading the tracer.
  const { TraceSession } = await import('../trace/attach.js');
  const session = new TraceSession(machine, { onRecord });
  for (const def of defs) {
    const resolved = resolveSymbolicUprobe(def, loadElf);
    if (isProbeError(resolved)) throw new DefinitionError(resolved);
    const line = resolved.line;
    const err = await machine.kernelCall<ProbeError | undefined>('kprobe_events', (t) => session.write(t, line));
    if (err) throw new DefinitionError(program ? withUprobeHint(err, program) : err);
  }
  if (enable) await machine.kernelCall<boolean>('enable', (t) => session.enable(t));
  return session;
}

function loadElf(path: string): ElfFile | undefined {
  try {
    return readElfFileSync(path);
  } catch {
    return undefined;
  }
}

/**
 * A kprobe on a symbol the kernel does not have but the program does: users coming from perf or
 * bpftrace meant a uprobe. The kernel's message stays; the hint says how to write it.
 */
function withUprobeHint(err: ProbeError, program: string): ProbeError {
  if (err.code !== 'BAD_PROBE_ADDR' || err.subsystem !== 'trace_kprobe') return err;
  const place = splitCommand(err.command).tokens[1];
  const symbol = place?.split(/[+%]/)[0];
  if (!symbol || /^[0-9]/.test(symbol)) return err;
  const elf = loadElf(program);
  if (!elf?.functions().some((f) => f.name === symbol)) return err;
  return { ...err, message: `${err.message} ('${symbol}' is a function of ${program}, not of the kernel: a uprobe on it is written ${program}:${symbol})` };
}
