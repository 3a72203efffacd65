/**
 * uprobes: (inode, offset) probes on user programs, shaped like kernel/events/uprobes.c.
 */
export { Uprobes, type MmUprobes } from './uprobes.js';
export {
  Uprobe,
  type UprobeConsumer,
  UPROBE_HANDLER_REMOVE,
  UPROBE_HANDLER_IGNORE,
  MAX_URETPROBE_DEPTH,
  EINVAL,
  EIO,
  ENOTSUPP,
  EAGAIN,
} from './uprobe.js';
export { UprobeRegs } from './regs.js';
export { XolArea } from './xol.js';
export { Utask, type ReturnInstance } from './utask.js';
