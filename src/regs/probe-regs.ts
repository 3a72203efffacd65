/**
 * pt_regs for handlers (kprobes and uprobes alike, hence its own module): the trapped CPU's registers and memory, read and written through the
 * arch layer (register names are the kernel's for the target: %di on x86-64, %gpr3 on ppc…).
 *
 * Inside a trap the engine serves the arch's hit registers from one batched read (see
 * cacheHitRegisters), so a handler's `reg`/`arg`/`sp` cost no FFI call of their own.
 */
import type { HitRegisters } from '../../arch/probes.js';
import type { Arch, GuestMemoryAccess } from '../../arch/types.js';
import type { Engine } from '../emu/unicorn.js';
import type { Mm } from '../mm/mm.js';
import type { Task } from '../kernel/task.js';
import type { Machine } from '../kernel/machine.js';

/** A guest kernel function call a handler asks for (ProbeRegs.call); see HandlerCalls. */
export interface KernelCall {
  readonly fn: string | bigint;
  readonly args: readonly bigint[];
}

/** A ProbeCpu the trap path fills in for each hit instead of allocating one. */
export interface HitCpu {
  engine: Engine;
  /** The task's memory; for a uprobe, as its user program reaches it (Mm.user). */
  mem: GuestMemoryAccess;
  pcAfter: bigint | undefined;
}

/**
 * Give every engine of `machine`, now and later, the arch's hit registers: inside its trap hooks
 * they come from one batched read and go back with one batched write (Engine.cacheTrapRegisters).
 */
export function cacheHitRegisters(machine: Machine, regs: HitRegisters): void {
  const add = (mm: Mm): void => {
    if (!mm.destroyed && !mm.engine.closed) mm.engine.cacheTrapRegisters(regs);
  };
  for (const p of machine.processes) add(p.mm);
  machine.mmAttachHooks.push(add);
}

/** Register names as handlers write them ("%di", "di") → the arch's entry, per arch. */
const byNameCache = new WeakMap<Arch, Map<string, { id: number; size: number } | undefined>>();

function lookupRegister(arch: Arch, name: string): { id: number; size: number } {
  let m = byNameCache.get(arch);
  if (!m) byNameCache.set(arch, (m = new Map()));
  let r = m.get(name);
  if (r === undefined && !m.has(name)) m.set(name, (r = arch.registers.byName.get(name.replace(/^%/, ''))));
  if (!r) throw new RangeError(`no register ${name} on ${arch.target}`);
  return r;
}

export class ProbeRegs {
  constructor(
    readonly arch: Arch,
    /** The trapped CPU's engine, address space, task and vCPU (rebound per hit by the cores). */
    public engine: Engine,
    public mem: Mm,
    public task: Task,
    public cpu: number,
    /** instruction_pointer(regs) as Linux shows it to handlers: the probed address. */
    public ip: bigint,
  ) {}

  /**
   * @internal Point this object at another hit. The cores keep one per vCPU (kprobes) or task
   * (uprobes) and rebind it; like Linux's pt_regs pointer it is valid while the handlers run.
   */
  rebind(engine: Engine, mem: Mm, task: Task, cpu: number, ip: bigint): this {
    this.engine = engine;
    this.mem = mem;
    this.task = task;
    this.cpu = cpu;
    this.ip = ip;
    return this;
  }

  getPc(): bigint {
    return this.arch.getPc(this.engine);
  }

  /** A pre handler that returns non-zero must have set the PC it wants. */
  setPc(pc: bigint): void {
    this.arch.setPc(this.engine, pc);
  }

  reg(name: string): bigint {
    return this.engine.regRead(lookupRegister(this.arch, name).id);
  }

  setReg(name: string, value: bigint): void {
    this.engine.regWrite(lookupRegister(this.arch, name).id, value);
  }

  /** regs_get_kernel_argument(regs, n): the n-th (0-based) C argument at function entry. */
  arg(n: number): bigint {
    return (this.arch.readKernelCallArg ?? this.arch.readCallArg)(this.engine, this.mem, n);
  }

  /** regs_return_value. */
  returnValue(): bigint {
    return this.arch.readReturnValue(this.engine);
  }

  sp(): bigint {
    return this.arch.getSp(this.engine);
  }

  /**
   * A call of guest kernel function `fn` (symbol or address) for a handler to yield:
   * `const v = yield regs.call('kprobe_recursed_target', x)`. It runs on this vCPU and the
   * handler resumes with its return value (the whole return register) and these regs as the
   * trap left them.
   */
  call(fn: string | bigint, ...args: Array<bigint | number>): KernelCall {
    return { fn, args: args.map(BigInt) };
  }
}
