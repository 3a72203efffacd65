/**
 * The deterministic cost of one probe hit, by execution mode: how many guest instructions run in
 * a slot or trampoline, and how many times the emulator hands control to the host (a trap taken
 * by a hook is one crossing).
 *
 * Why these two numbers and not time: they are what a placement changes, they are the same on
 * every host, and they explain the timings the benchmarks measure (a crossing costs far more than
 * a guest instruction). The counts are for the steady state — a slot already holding the copy;
 * first-hit work (mapping the XOL area, writing a slot) is a one-off and not included.
 *
 * | mode     | crossings | slot instructions                                          |
 * |----------|-----------|------------------------------------------------------------|
 * | emulate  | 1         | 0 — the handler path performs the instruction itself       |
 * | boost    | 1         | the copy and the jump back (kprobes only: no second trap)  |
 * | step     | 2         | the copy (as rewritten by the arch) + 1 for the step trap  |
 * | optimize | 1         | the detour: entry jump, relocated copies, jump back        |
 *
 * `optimize` (kprobes, x86 and ppc64): the jump the optimizer wrote leads to the detour's entry,
 * where the emulator hands the hit to the host (a code hook, not a trap); the entry jumps to the
 * relocated instructions and they jump back. No second crossing, and no trap at all: the cheapest
 * hit. A ppc64 branch is emulated on the host instead (0 detour instructions).
 *
 * "Slot instructions" is a static count: the instructions of the slot bytes decoded in a straight
 * line, up to and including the trailing trap (step) or the jump back (boost). A copy that
 * branches out early (it cannot: every arch emulates what would leave the slot) would run fewer.
 */
import type { ProbeArch, StepMode } from '../../arch/probes.js';

export interface HitCost {
  /** Guest instructions executed in the slot / trampoline per hit. */
  readonly slotInsns: number;
  /** Host crossings (traps handled by the host) per hit. */
  readonly crossings: number;
}

/** Crossings per hit, by mode (the table above). */
export const CROSSINGS: Readonly<Record<StepMode, number>> = { emulate: 1, boost: 1, step: 2 };

/**
 * Count the instructions of `slot` executed on its straight path: decoded one after another up to
 * `end` bytes; `trapAt` = the offset of the trailing trap (counted as one more instruction).
 * A byte sequence the decoder refuses counts as one instruction of the breakpoint's width, so the
 * count never loops and stays deterministic.
 */
export function countSlotInsns(decoder: ProbeArch, slotAddr: bigint, slot: Uint8Array, end: number, trapAt?: number): number {
  let n = 0;
  let off = 0;
  const stop = Math.min(end, slot.length);
  while (off < stop) {
    const insn = decoder.decode(slotAddr + BigInt(off), slot.subarray(off));
    off += insn?.length ?? decoder.breakpoint.length;
    n++;
  }
  return trapAt === undefined ? n : n + 1;
}

/** The cost of a jump-optimized kprobe hit (see the table). */
export function optimizedCost(detourInsns: number): HitCost {
  return { slotInsns: detourInsns, crossings: 1 };
}

export function hitCost(mode: StepMode, slotInsns: number): HitCost {
  return { slotInsns: mode === 'emulate' ? 0 : slotInsns, crossings: CROSSINGS[mode] };
}

/** The cost table as documentation data (shipped in the JSON output, so readers need no README). */
export const COST_MODEL = {
  emulate: 'crossings 1 (the breakpoint trap); slot instructions 0 (the handler path performs the instruction)',
  boost: 'crossings 1 (the breakpoint trap); slot instructions = the copy + the jump back (kprobes only)',
  step: 'crossings 2 (breakpoint trap + step trap); slot instructions = the copy as the arch rewrote it + 1 for the trailing trap',
  optimize: 'crossings 1 (the code hook at the detour entry, no trap); slot instructions = the detour: entry jump + relocated copies + jump back (kprobes on x86 and ppc64, once the optimizer ran)',
  note: 'steady state: the slot already holds the copy; one-off work (XOL area, slot writes) is not counted',
} as const;
