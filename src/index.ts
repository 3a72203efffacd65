/**
 * uniprobe's library surface (ESM, typed). See README.md, "Library".
 */
export { Machine, type MachineOptions, type RunResult } from './kernel/machine.js';
export { UniprobeError, isUniprobeError, type ErrorCode } from './errors.js';
export { parseElf, readElfFile, readElfFileSync, type ElfFile, type ElfSymbol } from './elf/index.js';
export { archFor, supportedTargets } from '../arch/index.js';
export { TARGETS, type Target } from '../arch/types.js';
export * from './trace/index.js';
export * from './sync/index.js';
export { MmLocks } from './mm/locking.js';
export { MmuNotifiers, MmuNotifier, type MmuNotifierOps } from './mm/notifier.js';
export { Kprobes, KPROBE_STATUS } from './kprobes/kprobes.js';
export { Kprobe, AggrKprobe, KPROBE_FLAG, type KprobeInit } from './kprobes/kprobe.js';
export { ProbeRegs } from './regs/probe-regs.js';
export { Kretprobes, Kretprobe } from './kprobes/kretprobe.js';
export * from './uprobes/index.js';
