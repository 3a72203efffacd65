/**
 * The `FetchEnv` of a real hit: registers through ProbeRegs and the arch layer, memory through
 * the current task's mm, symbols from the guest kernel image.
 *
 * Kernel and user memory are told apart by the target's TASK_SIZE (MemoryLayout.taskSize): a
 * kernel read below it and a user read at or above it fault, as they do on Linux (see
 * fetch-eval.ts for why that matters to `string` vs `ustring`).
 */
import { probeArchFor } from '../../arch/index.js';
import type { Machine } from '../kernel/machine.js';
import type { ProbeRegs } from '../regs/probe-regs.js';
import type { FetchEnv } from './fetch-eval.js';
import type { Symbolizer } from './output.js';

/** `%pS`: `sym+0xoff/0xsize` for an address inside a guest kernel function, else `0x…`. */
export function kernelSymbolizer(machine: Machine): (addr: bigint) => string {
  return (addr) => {
    const loc = machine.kernel.elf.symbolAt(addr);
    if (!loc) return `0x${addr.toString(16)}`;
    return `${loc.symbol.name}+0x${loc.offset.toString(16)}/0x${loc.symbol.size.toString(16)}`;
  };
}

/** `%ps`: the function's name only (the `<- func` of return probes), else `0x…`. */
export function kernelFunctionName(machine: Machine, addr: bigint): string {
  const loc = machine.kernel.elf.symbolAt(addr);
  return loc ? loc.symbol.name : `0x${addr.toString(16)}`;
}

export interface HitEnvOptions {
  /**
   * `$argN`: the kprobe at a function entry reads the kernel C ABI (regs.arg), a uprobe the user
   * C ABI (readCallArg), a return probe the values its entry handler captured.
   */
  args: 'kernel' | 'user' | readonly bigint[] | undefined;
  /** Return probes: `$retval` is available. */
  isReturn: boolean;
  /** `@SYM` addresses, resolved when the probe was registered. */
  symbols?: ReadonlyMap<string, bigint>;
  /** Uprobes: `@+FOFF` maps to `base + FOFF` (base = the hit's address − the probe's file offset). */
  fileBase?: bigint;
  symbolize: (addr: bigint) => string;
}

export function hitEnv(machine: Machine, regs: ProbeRegs, opts: HitEnvOptions): FetchEnv {
  const arch = machine.arch;
  const taskSize = arch.layout.taskSize;
  const mem = regs.mem;
  const tryRead = (addr: bigint, len: number): Uint8Array | undefined => {
    try {
      return mem.read(addr, len);
    } catch {
      return undefined;
    }
  };
  return {
    wordSize: arch.wordSize,
    endian: arch.endian,
    register: (name) => regs.reg(name),
    stackPointer: () => regs.sp(),
    // frameSp is the address the stack really starts at (sparc64 takes the 2047 bias off %sp).
    stackAddress: () => probeArchFor(arch).frameSp({ engine: regs.engine, mem }),
    arg: (n) => {
      const a = opts.args;
      if (a === 'kernel') return regs.arg(n - 1);
      if (a === 'user') return arch.readCallArg(regs.engine, mem, n - 1);
      return a?.[n - 1];
    },
    retval: () => (opts.isReturn ? regs.returnValue() : undefined),
    comm: () => regs.task.process.comm,
    readKernel: (addr, len) => (addr < taskSize ? undefined : tryRead(addr, len)),
    readUser: (addr, len) => (addr + BigInt(len) > taskSize ? undefined : tryRead(addr, len)),
    symbolAddress: (name) => opts.symbols?.get(name),
    fileOffsetAddress: opts.fileBase === undefined ? undefined : (off) => BigInt.asUintN(arch.wordSize * 8, opts.fileBase! + off),
    symbolize: opts.symbolize,
  };
}

/** Kernel addresses named for text output (`%pS`, `%ps`). */
export function machineSymbolizer(machine: Machine): Symbolizer {
  return { symbol: kernelSymbolizer(machine), functionName: (a) => kernelFunctionName(machine, a) };
}
