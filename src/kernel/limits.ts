/**
 * The guest's resource limits and the validation of every numeric Machine option.
 *
 * A hostile guest must not be able to harm the host, so each resource it can make the host
 * allocate is bounded by a number the user can set (library option, command-line flag), enforced
 * with the error Linux gives at the same limit:
 * - memory (`maxMemory`): host bytes holding guest pages — anonymous mappings, brk, private
 *   copy-on-write copies, the page cache of files mapped or opened (src/mm/charge.ts). mmap → ENOMEM,
 *   brk keeps the old break, exec fails, a guest store whose copy is refused → OOM kill (SIGKILL).
 * - tasks (`maxTasks`): live threads and processes, like RLIMIT_NPROC → clone/fork EAGAIN.
 * - descriptors (`maxFiles`): RLIMIT_NOFILE → EMFILE; F_DUPFD at or past it → EINVAL.
 */
import { UniprobeError } from '../errors.js';
import { DEFAULT_NOFILE, NR_OPEN } from './fdtable.js';
import type { Task } from './task.js';

/**
 * Kernel stacks in the guest kernel's arena (kernel-image.ts allocates them): a hard cap on live
 * tasks. Here, not there, so the command line can show limits without loading the emulator.
 */
export const KERNEL_STACKS = 256;

export interface Limits {
  /** Bytes of guest memory (default 1 GiB). */
  maxMemory: number;
  /** Live tasks, threads included (default 128; at most the kernel's stack arena, 256). */
  maxTasks: number;
  /** RLIMIT_NOFILE (default 1024, Linux's default soft limit). */
  maxFiles: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = { maxMemory: 1 << 30, maxTasks: 128, maxFiles: DEFAULT_NOFILE };

/** Bounds of each limit: memory from 16 MiB (room for a stack and a program) to 4 GiB. */
export const LIMIT_RANGE = {
  maxMemory: [16 << 20, 2 ** 32],
  maxTasks: [1, KERNEL_STACKS],
  maxFiles: [3, NR_OPEN],
} as const satisfies Record<keyof Limits, readonly [number, number]>;

/** MAX_RW_COUNT: INT_MAX & PAGE_MASK (4 KiB pages), the most one read/write moves. */
export const MAX_RW_COUNT = 0x7ffff000;

/** An integer option in [min, max], or a USAGE UniprobeError naming it. */
export function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new UniprobeError('USAGE', `${name} must be an integer from ${min} to ${max}, not ${String(v)}`);
  }
  return v;
}

export function resolveLimits(o: Partial<Limits>): Limits {
  const pick = <K extends keyof Limits>(k: K): number => {
    const v = o[k];
    return v === undefined ? DEFAULT_LIMITS[k] : checkInt(k, v, LIMIT_RANGE[k][0], LIMIT_RANGE[k][1]);
  };
  return { maxMemory: pick('maxMemory'), maxTasks: pick('maxTasks'), maxFiles: pick('maxFiles') };
}

/** "512M", "2G", "1048576", "64K": a size in bytes (binary units, as the kernel's memparse). */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+)([KMG]?)i?B?$/i.exec(text.trim());
  if (!m) return undefined;
  const mult = { '': 1, K: 1024, M: 1 << 20, G: 1 << 30 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  const n = Number(m[1]) * mult;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** May one more task start (clone)? Live tasks under the limit, and a free kernel stack. */
export function taskFits(tasks: readonly Task[], maxTasks: number, freeStacks: number): boolean {
  let live = 0;
  for (const t of tasks) if (t.state !== 'dead') live++;
  return live < maxTasks && freeStacks > 0;
}
