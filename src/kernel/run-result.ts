/**
 * How a machine's run ended, as the caller sees it: init's exit (the first process spawned), its
 * terminating signal, an instruction budget stop or a deadlock, with what the run cost.
 */
import { SIG } from '../../arch/types.js';
import type { Process } from './task.js';

export interface RunResult {
  /** What a shell would report: the exit code, 128 + signal, or 124 for a budget stop. */
  status: number;
  exitCode: number;
  signal: number;
  reason: 'exit' | 'signal' | 'budget' | 'deadlock';
  /** Instruction budget used: exact for quanta that ran to their length; a run cut short (block, exit, COW copy) counts in full, so this is an upper bound. */
  insns: number;
  quanta: number;
}

export function runResult(init: Process | undefined, reason: 'exit' | 'deadlock' | 'budget', insns: number, quanta: number): RunResult {
  if (reason === 'budget') return { status: 124, exitCode: 0, signal: SIG.SIGKILL, reason, insns, quanta };
  if (!init) return { status: 0, exitCode: 0, signal: 0, reason, insns, quanta };
  return {
    status: reason === 'deadlock' ? 124 : init.shellStatus,
    exitCode: init.exitCode,
    signal: init.termSignal,
    reason: reason === 'deadlock' ? reason : init.termSignal ? 'signal' : 'exit',
    insns,
    quanta,
  };
}
