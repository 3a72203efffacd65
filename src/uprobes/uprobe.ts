/**
 * struct uprobe and struct uprobe_consumer (kernel/events/uprobes.c).
 *
 * A uprobe is identified by (inode, file offset), never by a virtual address: the same probe
 * sits at different addresses in different mms, and in every VMA of one mm that maps the page.
 *
 * Lifetime: the tree holds one reference while the uprobe is in it (`active`); every user that
 * found it (a registration, an mmap install walk, a task stepping its copy, a return instance)
 * holds another. The last put releases it. Consumers are published copy-on-write: the hit path
 * reads `consumers` once and walks that array (Linux walks the list under SRCU in newer kernels,
 * under register_rwsem read in v5.8); writers replace it under consumer_rwsem.
 */
import { E } from '../kernel/errno.js';
import type { PreparedUprobe } from '../../arch/probes.js';
import type { Inode } from '../mm/inode.js';
import type { Mm } from '../mm/mm.js';
import { Kref, RwSem, UPROBE_LOCKS, type Scheduler } from '../sync/index.js';
import type { UprobeRegs } from './regs.js';

/** A handler's return codes (include/linux/uprobes.h). */
export const UPROBE_HANDLER_REMOVE = 1;
/** Newer kernels: this consumer wants no return probe for this hit. */
export const UPROBE_HANDLER_IGNORE = 2;
/** MAX_URETPROBE_DEPTH: deeper nesting silently gets no return instance. */
export const MAX_URETPROBE_DEPTH = 64;

/** Errno values the uprobes API returns (negated). ENOTSUPP is the kernel-internal 524. */
export const { EIO, ENOENT, EAGAIN, ENOMEM, EINVAL, ENOTSUPP } = E;

export interface UprobeConsumer {
  /** Runs at every hit of the probe in any mm that has the breakpoint. Return 0, or REMOVE. */
  handler?(self: UprobeConsumer, regs: UprobeRegs): number;
  /** Runs when the probed function returns; `func` is the probed (entry) address. */
  retHandler?(self: UprobeConsumer, func: bigint, regs: UprobeRegs): number;
  /** Which mms get the breakpoint for this consumer (no filter = every mm). */
  filter?(self: UprobeConsumer, mm: Mm): boolean;
}

export class Uprobe {
  readonly inode: Inode;
  readonly offset: bigint;
  readonly refCtrOffset: bigint | undefined;
  readonly ref: Kref;
  /** Serialises register/unregister of this uprobe; handlers conceptually run under it (read). */
  readonly registerRwsem: RwSem;
  /** Protects writers of `consumers`. */
  readonly consumerRwsem: RwSem;
  /** RCU-published: replaced, never mutated. Newest consumer first (Linux adds at the head). */
  consumers: readonly UprobeConsumer[] = [];
  /** In the tree (uprobe_is_active): false once delete_uprobe took it out. */
  active = true;
  /**
   * UPROBE_COPY_INSN: the original instruction was copied from the page cache and analysed.
   * Set once, on the first install; the hit path restarts the instruction until it is set.
   */
  prepared: PreparedUprobe | undefined;
  /** The original bytes copy_insn read (what unregister writes back). */
  insn: Uint8Array | undefined;
  /**
   * The XOL slot contents (arch ixol: copy + step trap), made once: they do not depend on the
   * slot's address (PreparedUprobe.slotBytes), and one object lets an XOL area tell at a glance
   * that a slot already holds them.
   */
  xolImage: Uint8Array | undefined;
  /** Hits (all mms), for listings and --stats. */
  nhit = 0;

  constructor(sched: Scheduler, inode: Inode, offset: bigint, refCtrOffset: bigint | undefined) {
    this.inode = inode;
    this.offset = offset;
    this.refCtrOffset = refCtrOffset;
    // The tree's reference and the caller's (alloc_uprobe returns it with ref 2).
    this.ref = new Kref(`uprobe ${inode.path}:0x${offset.toString(16)}`, 2);
    this.registerRwsem = new RwSem(sched, UPROBE_LOCKS.registerRwsem);
    this.consumerRwsem = new RwSem(sched, UPROBE_LOCKS.consumerRwsem);
  }

  /** What the last put does (Uprobes.putUprobe): made once, not per put. */
  readonly release = (): void => {
    // The last user is gone: its delayed counter increments go with it.
    this.active = false;
  };

  get name(): string {
    return `${this.inode.path}:0x${this.offset.toString(16)}`;
  }

  /** filter_chain: does any consumer want this mm? (No filter = yes.) */
  wantsMm(mm: Mm): boolean {
    return this.consumers.some((c) => !c.filter || c.filter(c, mm));
  }
}
