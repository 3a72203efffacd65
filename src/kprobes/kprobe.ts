/**
 * struct kprobe and the aggregate probe, as kernel/kprobes.c keeps them.
 *
 * A Kprobe is the caller's object: registration resolves and writes back `addr`, masks `flags`,
 * zeroes `nmissed` — the way Linux mutates the caller's struct (reference §8.9). The first probe
 * at an address owns the prepared instruction and the slot; a second probe at the same address
 * turns the owner into an AggrKprobe whose children share them.
 */
import type { PreparedInsn } from '../../arch/probes.js';
import type { RcuNode } from '../sync/index.js';
import type { KernelCall, ProbeRegs } from '../regs/probe-regs.js';

/** KPROBE_FLAG_*: GONE (text went away), DISABLED, OPTIMIZED, FTRACE (as Linux numbers them). */
export const KPROBE_FLAG = { GONE: 1, DISABLED: 2, OPTIMIZED: 4, FTRACE: 8 } as const;

/**
 * A handler that calls guest kernel functions, as Linux handlers may: a generator that yields
 * each call (`yield regs.call('fn', arg)`) and gets the function's return value back. The call
 * runs on the trapped vCPU inside the hit — the probe still current, its status HIT_ACTIVE (pre)
 * or HIT_SSDONE (post) — so a probe it hits is a reentry: missed and counted, not handled.
 */
export type HandlerCalls<T> = Generator<KernelCall, T, bigint>;

/** pre_handler: non-zero = "I changed the PC": no single-step, no post handler. */
export type PreHandler = (p: Kprobe, regs: ProbeRegs) => number | HandlerCalls<number>;
export type PostHandler = (p: Kprobe, regs: ProbeRegs, flags: number) => undefined | HandlerCalls<void>;

/**
 * arch_specific_insn as prepared at registration: how the instruction runs, its slot, and (mode
 * 'step') the address of the slot's step trap. Shared by an aggregate's children; replaced, never
 * changed, when a boosted probe must become a stepped one (kprobe_mutex held).
 */
export interface Ainsn {
  readonly prep: PreparedInsn;
  /**
   * The prep's members the hit path reads, copied here at registration: every Ainsn has the same
   * shape, where the arch's PreparedInsn objects have many (each back-end builds its own), and a
   * property read at a call site that has seen many shapes is a slow, megamorphic one.
   */
  readonly mode: PreparedInsn['mode'];
  readonly emulate: PreparedInsn['emulate'];
  readonly tryEmulate: PreparedInsn['tryEmulate'];
  readonly plainStepResume: bigint | undefined;
  readonly slot: bigint | undefined;
  readonly stepTrap: bigint | undefined;
  /**
   * A plain step (PreparedInsn.plainStepResume) the engine's native trap hook may finish: the PC
   * its step trap leaves (stepTrap + the arch's NativeStepTrapSpec.pcAfterTrap). Undefined: never.
   */
  readonly nativePcAt: bigint | undefined;
  /**
   * What emulate-first (PreparedInsn.tryEmulate) did so far, powerpc's p->ainsn.boostable: 0 not
   * tried yet, 1 emulated once (tried at every hit from then on), -1 declined at its first try
   * (always stepped from then on). Written by the hit path of the vCPU that hit the probe.
   */
  emulated: -1 | 0 | 1;
}

/** An Ainsn, always built here: one object shape for every arch (see Ainsn.mode). */
export function makeAinsn(prep: PreparedInsn, slot: bigint | undefined, stepTrap: bigint | undefined, nativePcAt: bigint | undefined): Ainsn {
  return {
    prep,
    mode: prep.mode,
    // Bound: an arch may write them as methods of its PreparedInsn.
    emulate: prep.emulate?.bind(prep),
    tryEmulate: prep.tryEmulate?.bind(prep),
    plainStepResume: prep.plainStepResume,
    slot,
    stepTrap,
    nativePcAt,
    emulated: 0,
  };
}

export interface KprobeInit {
  symbolName?: string;
  offset?: number;
  addr?: bigint;
  preHandler?: PreHandler;
  postHandler?: PostHandler;
  /** Register disabled (KPROBE_FLAG_DISABLED). */
  disabled?: boolean;
}

export class Kprobe {
  symbolName: string | undefined;
  offset: number;
  /** Resolved address (written back by registration, like p->addr). */
  addr: bigint | undefined;
  preHandler: PreHandler | undefined;
  postHandler: PostHandler | undefined;
  flags = 0;
  /** Hits that could not run the handlers (reentry), or for a kretprobe's kprobe: see Kretprobe. */
  nmissed = 0;
  /** Hits that ran the handlers (for listings and the trace layer's profile). */
  nhit = 0;
  /** @internal the original bytes under the breakpoint (p->opcode). */
  opcode: Uint8Array | undefined;
  /** @internal arch_specific_insn: how the instruction runs, and its slot. */
  ainsn: Ainsn | undefined;
  /** @internal in the hash table (lone probe or aggregate). */
  node: RcuNode<Kprobe> | undefined;
  /** @internal the aggregate this probe is a child of. */
  parent: AggrKprobe | undefined;
  /** @internal set for a kretprobe's kprobe. */
  kretprobe: unknown;
  /**
   * @internal An AggrKprobe (isAggr). A field the hit path reads twice per hit: `instanceof`
   * there cost ~55 ns per hit (--cpu-prof, x86_64 pre-only kprobe on ksys_write).
   */
  readonly aggregate: boolean = false;

  constructor(init: KprobeInit = {}) {
    this.symbolName = init.symbolName;
    this.offset = init.offset ?? 0;
    this.addr = init.addr;
    this.preHandler = init.preHandler;
    this.postHandler = init.postHandler;
    if (init.disabled) this.flags |= KPROBE_FLAG.DISABLED;
  }

  get disabled(): boolean {
    return (this.flags & (KPROBE_FLAG.DISABLED | KPROBE_FLAG.GONE)) !== 0;
  }

  get gone(): boolean {
    return (this.flags & KPROBE_FLAG.GONE) !== 0;
  }
}

/**
 * The aggregate: owns opcode/ainsn/slot and the table entry; its children are the user's probes,
 * in registration order. Its handlers walk the enabled children.
 *
 * `children` is published RCU-style: writers (under kprobe_mutex) build a new array and assign
 * it; a trap handler walking the old array in its read-side section is unaffected, and a removed
 * child is not freed before the grace period of unregister.
 */
export class AggrKprobe extends Kprobe {
  override readonly aggregate = true;
  children: readonly Kprobe[] = [];
}

export const isAggr = (p: Kprobe): p is AggrKprobe => p.aggregate;
