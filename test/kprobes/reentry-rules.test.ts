/**
 * Each family's kprobe reentry rule, as its kprobe_handler decides (the hit path in
 * src/kprobes/trap.ts applies it; test_kprobe_missed in test-kprobes.test.ts runs the 'active'
 * case end to end on every target):
 * - x86, reenter_kprobe (arch/x86/kernel/kprobes/core.c): HIT_ACTIVE, HIT_SSDONE and HIT_SS
 *   count a miss and single-step; a hit in KPROBE_REENTER is "Unrecoverable kprobe detected".
 * - powerpc, kprobe_handler (arch/powerpc/kernel/kprobes.c): every state reenters, except
 *   HIT_SS when the new probe's instruction is a trap (tw/twi/td/tdi): that trap is not ours.
 * - sparc64, kprobe_handler (arch/sparc/kernel/kprobes.c): HIT_SS goes to no_kprobe; every
 *   other state (REENTER included) reenters.
 */
import { describe, expect, it } from 'vitest';
import { archFor, probeArchFor } from '../../arch/index.js';
import type { KprobeHitState } from '../../arch/probes.js';
import type { Target } from '../../arch/types.js';

const STATES: KprobeHitState[] = ['active', 'ss', 'ssdone', 'reenter'];
const rule = (t: Target, state: KprobeHitState, opcode: number[]) => probeArchFor(archFor(t)!).reentry(state, Uint8Array.from(opcode));

const NOP_X86 = [0x90];
const PPC_ADDI = [0x38, 0x60, 0x00, 0x01]; // li r3,1
const PPC_TW = [0x7f, 0xe0, 0x00, 0x08]; // trap (tw 31,0,0)
const PPC_TDI = [0x08, 0x20, 0x00, 0x00]; // tdi 1,0,0 (64-bit only)
const SPARC_NOP = [0x01, 0x00, 0x00, 0x00];

describe('kprobe reentry rules per family', () => {
  for (const t of ['x86_64', 'i386'] as const) {
    it(`${t}: reenter_kprobe — a miss from ACTIVE, SS and SSDONE; a hit while reentering is unrecoverable`, () => {
      expect(STATES.map((s) => rule(t, s, NOP_X86))).toEqual(['reenter', 'reenter', 'reenter', 'unrecoverable']);
    });
  }

  for (const t of ['ppc32', 'ppc64'] as const) {
    it(`${t}: a miss from every state; while single-stepping, a probe on a trap instruction is not ours`, () => {
      expect(STATES.map((s) => rule(t, s, PPC_ADDI))).toEqual(['reenter', 'reenter', 'reenter', 'reenter']);
      expect(STATES.map((s) => rule(t, s, PPC_TW))).toEqual(['reenter', 'not-ours', 'reenter', 'reenter']);
    });
  }

  it('ppc64 counts td/tdi as traps, ppc32 does not (is_trap)', () => {
    expect(rule('ppc64', 'ss', PPC_TDI)).toBe('not-ours');
    expect(rule('ppc32', 'ss', PPC_TDI)).toBe('reenter');
  });

  it('sparc64: a miss from every state but single-stepping, reentry included', () => {
    expect(STATES.map((s) => rule('sparc64', s, SPARC_NOP))).toEqual(['reenter', 'not-ours', 'reenter', 'reenter']);
  });
});
