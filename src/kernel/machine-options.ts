/**
 * What a Machine is built from: the target, vCPUs, scheduler seed and budget, the guest's limits
 * (src/kernel/limits.ts), what it sees of the host (src/vfs/view.ts) and where its output goes.
 */
import type { Target } from '../../arch/types.js';
import type { Limits } from './limits.js';
import type { Machine } from './machine.js';

/** Guest resource limits (maxMemory, maxTasks, maxFiles) are documented in src/kernel/limits.ts. */
export interface MachineOptions extends Partial<Limits> {
  target: Target;
  /** Number of vCPUs (default 1). */
  cpus?: number;
  /** Scheduler seed (default 1). */
  seed?: number;
  /** Stop runaway guests after about this many instructions (default 2e9). */
  maxInsns?: number;
  /** Mean quantum length in instructions (default 20000). */
  quantum?: number;
  /**
   * Instructions a task alone on the machine runs per slice, at least a quantum (default 2^24).
   * Where a slice ends is unobservable by the guest; smaller slices only end runs more often
   * (tests use that to stop a program at many block boundaries).
   */
  loneSlice?: number;
  stdout?: (bytes: Uint8Array) => void;
  stderr?: (bytes: Uint8Array) => void;
  /** One-line reports of guest faults and budget stops (default: to stderr). */
  report?: (line: string) => void;
  /** Path of the guest kernel image (default: fixtures/kernel/<target>/vmlinux). */
  kernelImage?: string;
  /** Host paths the guest may see, besides the program and its arguments that exist (src/vfs/view.ts). */
  allowFiles?: string[];
  /** A host directory the guest sees as its whole root (`--root`), instead of the named paths. */
  root?: string;
  /** The guest's cwd: a host directory in the view, a guest path under `root` (default: the host's cwd, or `/`). */
  cwd?: string;
  /** Called with one line per system call, in strace(1)'s shape (src/kernel/strace.ts). */
  strace?: (line: string) => void;
  /** Called after every quantum (progress displays); must be cheap and must not touch the guest. */
  onQuantum?: (m: Machine) => void;
}
