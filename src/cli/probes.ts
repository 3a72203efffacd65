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

import { DefinitionError } from './definition-error.js';

export { DefinitionError };

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
  opts: DefineOptions = {},
): Promise<TraceSession> {
  // Imported here so that main.ts can import DefinitionError without loading the tracer.
  const [{ TraceSession }, { Kprobes }] = await Promise.all([import('../trace/attach.js'), import('../kprobes/kprobes.js')]);
  const kprobes = opts.kprobeOptimization === undefined ? undefined : new Kprobes(machine, { optimization: opts.kprobeOptimization });
  const session = new TraceSession(machine, { onRecord, ...(kprobes ? { kprobes } : {}) });
  for (const def of defs) {
    const resolved = resolveSymbolicUprobe(def, loadElf);
    if (isProbeError(resolved)) throw new DefinitionError(resolved);
    const line = resolved.line;
    const err = await machine.kernelCall<ProbeError | undefined>('kprobe_events', (t) => session.write(t, line));
    if (err) throw new DefinitionError(opts.program ? withUprobeHint(err, opts.program) : err);
    if (opts.warn) await warnAboutUprobe(line, opts.warn);
  }
  if (enable) await machine.kernelCall<boolean>('enable', (t) => session.enable(t));
  return session;
}

export interface DefineOptions {
  /** The ELF being run: a kprobe on one of its functions says how to write the uprobe. */
  program?: string;
  /** Where to say that an accepted uprobe will not do what it seems to (mid-instruction …). */
  warn?: (line: string) => void;
  /** debug.kprobes-optimization for the session's kprobes (default: the core's, on). */
  kprobeOptimization?: boolean;
}

/**
 * The kernel accepts a uprobe in the middle of an instruction, on data in text or in a writable
 * mapping (it checks none of that), and the result is a corrupted program or a probe never hit.
 * The placement map knows each case (placement.ts, UprobePlacer.placeAt): say it before the run.
 */
async function warnAboutUprobe(line: string, warn: (line: string) => void): Promise<void> {
  const place = splitCommand(line).tokens[1] ?? '';
  const m = /^(.*\/.*):(0x[0-9a-fA-F]+|[0-9]+)(?:%return)?(?:\(.*\))?$/.exec(place);
  if (!m) return;
  const elf = loadElf(m[1]!);
  const vaddr = elf?.offsetToVaddr(BigInt(m[2]!));
  if (!elf?.target || vaddr === undefined) return;
  const [{ UprobePlacer }, { archFor }] = await Promise.all([import('../placement/placement.js'), import('../../arch/index.js')]);
  const arch = archFor(elf.target);
  if (!arch) return;
  const p = new UprobePlacer(arch, elf).placeAt(vaddr);
  if (p.warning) warn(`uniprobe: warning: ${place} (${p.where}): ${p.warning}`);
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
