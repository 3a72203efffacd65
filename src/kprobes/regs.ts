/**
 * pt_regs for handlers: the trapped CPU's registers and memory, read and written through the
 * arch layer (register names are the kernel's for the target: %di on x86-64, %gpr3 on ppc…).
 */
import type { Arch } from '../../arch/types.js';
import type { Engine } from '../emu/unicorn.js';
import type { Mm } from '../mm/mm.js';
import type { Task } from '../kernel/task.js';

/** A guest kernel function call a handler asks for (ProbeRegs.call); see HandlerCalls. */
export interface KernelCall {
  readonly fn: string | bigint;
  readonly args: readonly bigint[];
}

export class ProbeRegs {
  constructor(
    readonly arch: Arch,
    readonly engine: Engine,
    readonly mem: Mm,
    readonly task: Task,
    readonly cpu: number,
    /** instruction_pointer(regs) as Linux shows it to handlers: the probed address. */
    public ip: bigint,
  ) {}

  getPc(): bigint {
    return this.arch.getPc(this.engine);
  }

  /** A pre handler that returns non-zero must have set the PC it wants. */
  setPc(pc: bigint): void {
    this.arch.setPc(this.engine, pc);
  }

  reg(name: string): bigint {
    const r = this.arch.registers.byName.get(name.replace(/^%/, ''));
    if (!r) throw new RangeError(`no register ${name} on ${this.arch.target}`);
    return this.engine.regRead(r.id);
  }

  setReg(name: string, value: bigint): void {
    const r = this.arch.registers.byName.get(name.replace(/^%/, ''));
    if (!r) throw new RangeError(`no register ${name} on ${this.arch.target}`);
    this.engine.regWrite(r.id, value);
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
