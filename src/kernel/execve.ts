/**
 * execve's install half (fs/exec.c's begin_new_exec and load_elf_binary past the point of no
 * return), run once the engine has stopped: the other threads of the process die (de_thread),
 * a new mm gets the program mapped under its mmap_lock (so uprobe_mmap installs breakpoints on
 * the new image as on any mapping), the old mm is dropped, close-on-exec descriptors are closed,
 * clear_child_tid is forgotten, and the task starts in user mode at the new entry point. The
 * system call does not return; --strace shows it as returning 0.
 */
import { SIG } from '../../arch/types.js';
import { UniprobeError } from '../errors.js';
import { loadElf } from './exec.js';
import type { Machine, MachineOptions } from './machine.js';
import type { MachineState } from './machine-state.js';
import type { ProcessTable } from './process-table.js';
import type { ExecImage } from './sys/exec.js';
import type { Task } from './task.js';
import { formatSyscallResult } from './strace.js';

export interface ExecDeps {
  readonly machine: Machine;
  readonly state: MachineState;
  readonly procs: ProcessTable;
  readonly opts: Pick<MachineOptions, 'strace'>;
}

export function installExec(d: ExecDeps, task: Task, image: ExecImage): void {
  const { machine, state, procs } = d;
  const proc = task.process;
  if (task.state === 'dead') return;
  if (task.straceCall !== undefined) {
    d.opts.strace?.(`${task.straceCall}${formatSyscallResult('execve', 0n, machine.arch.wordSize * 8)}`);
    task.straceCall = undefined;
  }
  // de_thread: every other thread of the group goes.
  for (const t of proc.tasks) if (t !== task) procs.retireTask(t);
  const old = proc.mm;
  const mm = state.newMm();
  const lock = machine.mmLocks.mmapLock(mm);
  if (!lock.tryDownWrite(task.sysctx, 'exec')) throw new UniprobeError('INTERNAL', 'a new mm has a busy mmap_lock');
  machine.mappingContext = task.sysctx;
  let start;
  try {
    start = loadElf(machine.arch, mm, image.elf, image.inode, image.argv, image.envp, machine.rng);
  } catch (e) {
    if (!(e instanceof UniprobeError)) throw e;
    // Past the point of no return a failure kills the process (Linux: SIGSEGV, force_fatal_sig).
    procs.killProcess(proc, SIG.SIGSEGV, `uniprobe: ${proc.comm}[${task.tid}]: execve of ${image.filename} failed after the point of no return: ${e.message}`);
    mm.users = 0;
    return;
  } finally {
    machine.mappingContext = undefined;
    lock.upWrite(task.sysctx, 'exec');
  }
  proc.mm = mm;
  old.users--;
  procs.releaseVfork(proc);
  state.loaded.delete(old);
  for (const fd of [...proc.fds.closeOnExec]) proc.fds.delete(fd);
  proc.comm = (image.filename.split('/').pop() ?? image.filename).slice(0, 15);
  proc.exePath = image.exePath;
  proc.exeNode = image.node;
  proc.argv = image.argv;
  proc.envp = image.envp;
  task.clearChildTid = 0n;
  // Caught signals back to their default action, no alternate stack (mask and pending stay).
  procs.signals.exec(task);
  task.inKernel = false;
  task.syscall = undefined;
  task.userRegs = undefined;
  task.regs = undefined;
  task.cloneStart = undefined;
  machine.arch.startRegisters(mm.engine, { entry: start.entry, sp: start.sp, elf: image.elf });
  state.loaded.set(mm, task);
  // The old mm is destroyed by the run loop's reapMms, once its engine is surely not running.
}
