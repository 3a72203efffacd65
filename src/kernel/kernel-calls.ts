/**
 * Kernel calls: guest kernel functions run on a vCPU at the host's request. The kprobes
 * self-tests call their targets directly (`kprobe_target(value)`, host-initiated), and a kprobe
 * handler may call kernel functions too (trap-initiated). Both run the function with arguments
 * placed the way the guest kernel's C ABI passes them and return address `entry_call_return`,
 * whose HC_CALL_DONE hypercall hands the result back.
 *
 * Invariant: each task keeps a stack of pending calls (a handler's call can be nested inside a
 * host call); HC_CALL_DONE completes the innermost one. A trap-initiated call saves and restores
 * the whole CPU state only between runs (never inside a hook, where sparc64's %ccr is not
 * readable), and keeps the trapped context atomic, so the task stays on its vCPU throughout.
 */
import type { TrapAction } from '../../arch/types.js';
import { SIG } from '../../arch/types.js';
import type { Engine } from '../emu/unicorn.js';
import { UniprobeError } from '../errors.js';
import type { Mm } from '../mm/mm.js';
import type { GuestWork } from '../sync/index.js';
import { HC, KERNEL_STACK_SIZE } from './kernel-image.js';
import type { Machine } from './machine.js';
import type { MachineState } from './machine-state.js';
import type { ProcessTable } from './process-table.js';
import { Process, type Task } from './task.js';

/** Bytes left free below a trapped stack pointer for a handler's call (red zones, stack bias). */
const CALL_STACK_GAP = 512n;

export interface KernelCallsDeps {
  readonly machine: Machine;
  readonly state: MachineState;
  readonly procs: ProcessTable;
  readonly maxInsns: number;
  /** A guest kernel bug seen in a hypercall (TrapDispatch.kernelOops). */
  oops(task: Task, why: string): TrapAction;
}

export class KernelCalls {
  /** Per task: what to do when each pending kernel call returns, innermost last. */
  private readonly pending = new WeakMap<Task, Array<(ret: bigint) => TrapAction>>();
  /** Tasks sent to the hypercall stub by callFromTrap, and the call to enter once stopped. */
  private readonly parked = new WeakMap<Task, () => void>();
  /** The mm kernel-call tasks run in (kernel mappings only, like a kthread's borrowed init_mm). */
  private proc: Process | undefined;

  constructor(private readonly d: KernelCallsDeps) {}

  /** Machine.callKernelFunction: run `fn(args)` in a kernel-only task of its own, to its return. */
  async callKernelFunction(fn: string | bigint, args: Array<bigint | number>, comm: string | undefined): Promise<bigint> {
    const { machine, state, procs } = this.d;
    const name = typeof fn === 'string' ? fn : machine.kernelSymbolize(fn);
    const pc = typeof fn === 'string' ? machine.kernel.symbol(fn)?.codeAddress : fn;
    if (pc === undefined || !machine.kernel.isText(pc)) throw new UniprobeError('KERNEL', `${name}: not a function of the guest kernel`);
    procs.reapMms();
    if (!this.proc || this.proc.zombie) {
      this.proc = new Process(procs.allocPid(), state.newMm(), '[kernel]', machine.limits.maxFiles);
    }
    const proc = this.proc;
    proc.comm = (comm ?? 'kcall').slice(0, 15);
    const task = procs.newTask(proc);
    task.inKernel = true;
    // Linux zeroes a new kernel stack (THREADINFO_GFP has __GFP_ZERO): no stale return addresses
    // from an earlier task for an unwinder to find.
    const size = KERNEL_STACK_SIZE;
    machine.kernel.stackArena.bytes.fill(0, task.kstackIndex * size, (task.kstackIndex + 1) * size);
    const e = proc.mm.engine;
    const prev = state.loaded.get(proc.mm);
    if (prev && prev.state !== 'dead') prev.regs = machine.arch.snapshot(e);
    state.loaded.set(proc.mm, task);
    let result: bigint | undefined;
    this.push(task, (ret) => {
      result = ret;
      procs.retireTask(task);
      return { stop: true };
    });
    this.enter(task, pc, args.map(BigInt), task.kstackTop);
    const work: GuestWork = {
      runnable: () => task.state === 'runnable' && task.pinnedCpu === undefined,
      pinnedCpus: () => state.pinnedCpus(),
      runQuantum: (cpu) => {
        const pinned = procs.tasks.find((t) => t.pinnedCpu === cpu && t.state === 'runnable');
        state.runQuantum(pinned ?? task, cpu);
      },
    };
    const sched = machine.sync.sched;
    try {
      while (result === undefined) {
        if (task.state === 'dead') throw new UniprobeError('KERNEL', `${name}() did not return: its task was killed (see the report above)`);
        if (machine.insns >= this.d.maxInsns) throw new UniprobeError('KERNEL', `${name}() did not return within --max-insns ${this.d.maxInsns}`);
        const s = sched.chooseStep(work);
        if (!s) {
          const hung = sched.hungTasks();
          throw new UniprobeError('SYNC', `${name}() cannot finish: ${hung.join('; ') || 'nothing left to run'}`);
        }
        if (s.kind === 'kthread') await sched.runThread(s);
        else work.runQuantum(s.cpu);
      }
      return result;
    } finally {
      if (task.state !== 'dead') procs.retireTask(task);
      this.pending.delete(task);
      procs.dropTask(task);
    }
  }

  /** Machine.callFromTrap: a probe handler's call of `fn(args)` before the trapped code goes on. */
  callFromTrap(task: Task, fn: bigint, args: bigint[], resume: (ret: bigint) => TrapAction): TrapAction {
    const { machine, state, procs } = this.d;
    const arch = machine.arch;
    const e = task.mm.engine;
    const enter = (trappedPc: bigint): void => {
      arch.setPc(e, trappedPc);
      const saved = arch.snapshot(e);
      this.push(task, (ret) => {
        machine.runAfterStop(() => {
          arch.restore(e, saved);
          let action: TrapAction;
          try {
            action = resume(ret);
          } catch (err) {
            // As for an exception out of a hook inside the run: the task cannot go on.
            state.current = undefined;
            if (state.currentCpu) state.currentCpu.current = undefined;
            state.currentCpu = undefined;
            procs.killProcess(task.process, SIG.SIGKILL, undefined);
            throw err;
          }
          if (action.pc !== undefined) arch.setPc(e, action.pc);
        });
        return { stop: true };
      });
      this.enter(task, fn, args, arch.getSp(e) - CALL_STACK_GAP);
    };
    const pc = arch.getPc(e);
    // Asked again from a `resume` (the handler's next call): the engine is stopped already.
    if (!e.isRunning) {
      enter(pc);
      return { pc: arch.getPc(e) };
    }
    // From inside the run: go through the hypercall stub, whose hook stops the run (a stop asked
    // for in a hook that also moved the PC would be dropped by Unicorn).
    const stub = machine.kernel.symbol('uniprobe_hypercall')?.codeAddress;
    if (stub === undefined) throw new UniprobeError('KERNEL', 'the guest kernel image lacks uniprobe_hypercall');
    this.parked.set(task, () => enter(pc));
    return { pc: stub };
  }

  /** The hypercalls of kernel calls: a parked task's stop, and HC_CALL_DONE; else undefined. */
  hypercall(task: Task): TrapAction | undefined {
    const parked = this.parked.get(task);
    if (parked) {
      this.parked.delete(task);
      this.d.machine.runAfterStop(parked);
      return { stop: true };
    }
    const arch = this.d.machine.arch;
    const e = task.mm.engine;
    if (arch.readCallArg(e, task.mm, 0) !== BigInt(HC.CALL_DONE)) return undefined;
    const done = this.pending.get(task)?.pop();
    if (!done) return this.d.oops(task, 'HC_CALL_DONE without a host-initiated call');
    return done(arch.readCallArg(e, task.mm, 1));
  }

  private push(task: Task, done: (ret: bigint) => TrapAction): void {
    let stack = this.pending.get(task);
    if (!stack) this.pending.set(task, (stack = []));
    stack.push(done);
  }

  /** Enter `pc(args)` on `task`'s loaded registers, returning to entry_call_return. */
  private enter(task: Task, pc: bigint, args: bigint[], stackTop: bigint): void {
    const { arch, kernel } = this.d.machine;
    const e = task.mm.engine;
    arch.enterKernelFunction(e, task.mm, { pc, stackTop, args, returnTo: kernel.entryCallReturn, kernel: kernel.elf });
    this.placeArgs(e, task.mm, args);
  }

  /**
   * enterKernelFunction passes arguments by the C ABI of the system-call entry stub; the kernel's
   * own functions may take them elsewhere (i386: -mregparm=3 — eax, edx, ecx, then the stack
   * from 4(%esp)), which is what readKernelCallArg reads. Where the two disagree, find the place
   * readKernelCallArg reads for that argument — a register, or a stack word just above the stack
   * pointer — by writing a marker there, and put the argument in it. An argument that cannot be
   * placed, or a placement that moved another one, is refused rather than passed wrong.
   */
  private placeArgs(e: Engine, mem: Mm, args: bigint[]): void {
    const arch = this.d.machine.arch;
    const read = arch.readKernelCallArg;
    if (!read) return;
    const w = arch.wordSize;
    const mask = (1n << BigInt(w * 8)) - 1n;
    const reads = (i: number, v: bigint): boolean => {
      try {
        return read(e, mem, i) === (v & mask);
      } catch {
        return false;
      }
    };
    if (args.every((a, i) => reads(i, a))) return;
    const sp = arch.getSp(e);
    const places: Array<{ get(): bigint; set(v: bigint): void }> = [
      ...[...arch.registers.byName.values()].map((r) => ({ get: () => e.regRead(r.id), set: (v: bigint) => e.regWrite(r.id, v) })),
      ...Array.from({ length: args.length + 4 }, (_, k) => {
        const at = sp + BigInt(k * w);
        return { get: () => mem.readWord(at), set: (v: bigint) => mem.writeWord(at, v) };
      }),
    ];
    args.forEach((arg, i) => {
      if (reads(i, arg)) return;
      const marker = (arg ^ 0x5a5a5a5an) & mask;
      const place = places.find((p) => {
        const old = p.get();
        p.set(marker);
        const hit = reads(i, marker);
        p.set(old);
        return hit;
      });
      place?.set(arg & mask);
    });
    const wrong = args.findIndex((a, i) => !reads(i, a));
    if (wrong >= 0) throw new UniprobeError('ARCH', `${arch.target}: cannot pass kernel-function argument ${wrong} where readKernelCallArg reads it`);
  }
}
