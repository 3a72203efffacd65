/**
 * uniprobe's library surface (ESM, typed). See README.md, "Library".
 */
export { Machine, type MachineOptions, type RunResult } from './kernel/machine.js';
export { UniprobeError, isUniprobeError, type ErrorCode } from './errors.js';
export { parseElf, readElfFile, readElfFileSync, type ElfFile, type ElfSymbol } from './elf/index.js';
export { archFor, supportedTargets } from '../arch/index.js';
export { TARGETS, type Target } from '../arch/types.js';
export * from './trace/index.js';
