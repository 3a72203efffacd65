/**
 * Job control: a default-action stop signal stops the whole thread group (do_signal_stop), SIGCONT
 * resumes it (prepare_signal), and the parent hears of both — SIGCHLD with CLD_STOPPED (unless it
 * set SA_NOCLDSTOP) or CLD_CONTINUED, and wait4 with WUNTRACED / WCONTINUED reports each once.
 * SIGTSTP, SIGTTIN and SIGTTOU are discarded for an orphaned process group, as Linux does (nobody
 * could ever continue it); SIGSTOP always stops. A stopped task only runs again for SIGCONT or
 * SIGKILL.
 */
import type { Process, Task } from '../task.js';
import { GSIG, SA, SI, SIG_IGN } from './numbers.js';
import type { SigInfo } from './pending.js';

/** What the job-control code needs from the signal core and the process table. */
export interface JobCtlDeps {
  processes(): readonly Process[];
  send(info: SigInfo, proc: Process): void;
  /** Wake the parent's tasks sleeping in wait4 (a child changed state). */
  notifyWaiters(parent: Process): void;
  fromGeneric(sig: number): number;
  readonly uid: number;
}

/** is_current_pgrp_orphaned: no member has a parent in another group of the same session. */
function orphanedPgrp(procs: readonly Process[], pgid: number): boolean {
  return !procs.some((p) => p.pgid === pgid && !p.zombie && p.parent !== undefined && !p.parent.zombie && p.parent.pgid !== pgid && p.parent.sid === p.sid);
}

/** A stop signal's default action: false when it is discarded instead (orphaned group). */
export function doSignalStop(d: JobCtlDeps, task: Task, sig: number): boolean {
  const proc = task.process;
  if (sig !== GSIG.SIGSTOP && orphanedPgrp(d.processes(), proc.pgid)) return false;
  const ps = proc.signal;
  if (!ps.stopped) {
    ps.stopped = true;
    ps.report = { kind: 'stopped', sig: d.fromGeneric(sig) };
    notify(d, proc, SI.CLD_STOPPED, d.fromGeneric(sig));
  }
  for (const t of proc.tasks) stopTask(t);
  return true;
}

/** One task enters the group stop: it runs no more until SIGCONT (or dies of SIGKILL). */
export function stopTask(t: Task): void {
  if (t.state === 'dead' || t.signal.stopped) return;
  t.signal.stopped = t.state === 'runnable' ? 'runnable' : 'sleeping';
  if (t.state === 'runnable') t.state = 'blocked';
}

/** SIGCONT sent to a stopped group: every task goes on, the parent is told (CLD_CONTINUED). */
export function continueGroup(d: JobCtlDeps, proc: Process): void {
  const ps = proc.signal;
  if (!ps.stopped) return;
  ps.stopped = false;
  ps.report = { kind: 'continued', sig: d.fromGeneric(GSIG.SIGCONT) };
  for (const t of proc.tasks) {
    if (t.signal.stopped === 'runnable' && t.state === 'blocked') t.state = 'runnable';
    t.signal.stopped = undefined;
  }
  notify(d, proc, SI.CLD_CONTINUED, d.fromGeneric(GSIG.SIGCONT));
}

/** do_notify_parent_cldstop: SIGCHLD unless the parent asked SA_NOCLDSTOP, and a wait4 wake-up. */
function notify(d: JobCtlDeps, proc: Process, code: number, status: number): void {
  const parent = proc.parent;
  if (!parent || parent.zombie) return;
  const ka = parent.signal.sighand.action[GSIG.SIGCHLD]!;
  if (ka.handler !== SIG_IGN && !(ka.flags & SA.NOCLDSTOP)) d.send({ signo: GSIG.SIGCHLD, code, pid: proc.pid, uid: d.uid, status }, parent);
  d.notifyWaiters(parent);
}
