/**
 * sparc64 uprobe back-end (arch/sparc/uprobes): the Linux slot ([copy][ta 0x74], annul bit
 * cleared), relbranch/retpc fix-ups, the quirks of arch/sparc/kernel/uprobes.c this engine fixes
 * (each pinned by name below), the return-probe hooks, and a differential check — each probed
 * word, a DCTI together with its delay slot and a delay-slot word together with its branch, runs
 * once natively and once through the probe path (slot on a page near the top of user space);
 * r1..r31, PC, %ccr, %y, the resident register windows, all memory, faults and hit counts must be
 * identical.
 */
import { openEngine } from '../../arch/engine.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readdirSync } from 'node:fs';
import { Engine, UC_PROT } from '../../src/emu/unicorn.js';
import { readElfFileSync } from '../../src/elf/index.js';
import { STUB_AREA, sparc64 } from '../../arch/sparc/sparc64.js';
import { UC_SPARC_REG as R } from '../../arch/sparc/ucregs.js';
import * as isa from '../../arch/sparc/isa.js';
import { isRefusal, type PreparedUprobe, type ProbeRefusal } from '../../arch/probes.js';
import { uprobeArchFor } from '../../arch/index.js';
import { ERRNO, UPROBE_STP, UPROBE_SWBP, uprobeCopyWord } from '../../arch/sparc/uprobes/index.js';
import { loadDisassembler } from '../../arch/sparc/kprobes/index.js';
import { dctiClass } from '../../arch/sparc/kprobes/tables.js';
import type { TrapSink } from '../../arch/types.js';
import { repoRoot, corpusFixture, FULL } from '../helpers.js';
import { chunked, memAccess, runUprobeDiff, type UprobeDiff, type UprobeScenario } from './uprobe-harness.js';

const STOP = 0x91d02001; // ta 1 (ST_BREAKPOINT): ends a run
const TEXT = 0x10000n;
const TEXT_SIZE = 0x10000;
const DATA = 0x100000n;
const DATA_SIZE = 0x10000;
const XOL = 0xffffffc000n; // one 8 KiB page below the top of user space (TASK_SIZE = 2^40)
const X = 0x18000n;
const ua = uprobeArchFor(sparc64);

/** r0..r31 of a seed: data pointers, text addresses for jump bases and return addresses, biased stacks. */
function seedRegs(variant: number): bigint[] {
  const r = Array.from({ length: 32 }, (_, k) => DATA + 0x100n * BigInt(k) + 0x40n);
  r[0] = 0n;
  r[1] = 0x10a00n; // %g1: a jmpl base in text
  r[2] = variant === 1 ? 0n : 0x100n; // %g2: brz/brnz go both ways across variants
  r[8] = variant === 0 ? 0n : DATA + 0x840n; // %o0
  r[9] = variant === 2 ? 0xffffffffffffff00n : DATA + 0x940n; // %o1
  r[14] = DATA + 0x8000n - 2047n; // %sp (biased)
  r[15] = 0x10800n; // %o7
  r[30] = DATA + 0xc000n - 2047n; // %fp (biased)
  r[31] = 0x10900n; // %i7
  return r;
}

function seeder(variant: number): (e: Engine) => void {
  return (e) => {
    const ccr = [0x00n, 0x44n, 0xbbn][variant]!;
    sparc64.restore(e, { values: [...seedRegs(variant), X, ccr, 0x1234n, 0n] });
  };
}

/**
 * Would the jmpl/return `w` jump to address 0 from a seed? Unicorn 2.1.1's sparc64 CPU hangs
 * inside uc_emu_start when it fetches at PC 0, mapped or not (any other unmapped address gives
 * UC_ERR_FETCH_UNMAPPED; measured), so such a run never ends natively either.
 */
function jumpsToZero(w: number, variant: number): boolean {
  if (!isa.isJmpl(w) && !isa.isReturn(w)) return false;
  const r = seedRegs(variant);
  return BigInt.asUintN(64, r[isa.rs1(w)]! + (isa.iBit(w) ? isa.simm13(w) : r[isa.rs2(w)]!)) === 0n;
}

const REG_NAMES = [...['g', 'o', 'l', 'i'].flatMap((g) => Array.from({ length: 8 }, (_, k) => `%${g}${k}`)), 'pc', 'ccr', 'y'];

/** The windows' contents, made once: a scenario copies the text and shares the data (only read). */
const STOP_TEXT = (() => {
  const text = new Uint8Array(TEXT_SIZE);
  const v = new DataView(text.buffer);
  for (let o = 0; o < TEXT_SIZE; o += 4) v.setUint32(o, STOP);
  return text;
})();
const DATA_BYTES = new Uint8Array(DATA_SIZE).map((_, i) => (i * 37 + 11) & 0xff);

function scenario(words: number[], at: bigint, probe: bigint, variant: number, extra: Partial<UprobeScenario> = {}): UprobeScenario {
  const text = STOP_TEXT.slice();
  const v = new DataView(text.buffer);
  words.forEach((w, i) => v.setUint32(Number(at - TEXT) + 4 * i, w >>> 0));
  const data = DATA_BYTES;
  return {
    arch: sparc64,
    ua,
    regions: [
      { base: TEXT, bytes: text },
      { base: DATA, bytes: data },
    ],
    xol: XOL,
    vaddr: probe,
    start: at,
    seed: seeder(variant),
    maxInsns: 100,
    regNames: REG_NAMES,
    ...extra,
  };
}

/** Place `words` from `at`, probe `probe`, start at `at`; three register/condition-code states. */
function differential(words: number[], at: bigint, probe: bigint, extra: Partial<UprobeScenario> = {}): UprobeDiff[] {
  return [0, 1, 2].map((v) => runUprobeDiff(scenario(words, at, probe, v, extra)));
}

const PC = 32; // index of the PC in sparc64's register snapshot

/**
 * The engine's one known difference (arch/sparc/sparc64.ts, not the uprobe back-end): a delay
 * slot it resumes through a trampoline (after a probed DCTI, as after an emulated `return`) runs
 * from the trampoline, so a fault there is seen at the trampoline's address, not at the delay
 * slot's. Everything else about the run — registers, memory, the kind of fault — is the same.
 */
function faultInResumedDelaySlot(d: UprobeDiff, delaySlot: bigint): boolean {
  if (!d.native || !d.probed) return false;
  const inStubs = (a: bigint): boolean => a >= STUB_AREA && a < STUB_AREA + 0x100000n;
  const [n, p] = [d.native.regs[PC]!, d.probed.regs[PC]!];
  // Either way round: the native run also resumes a `return`'s delay slot through a trampoline,
  // where the probed run (a probe on that delay slot) steps it from its own slot.
  if (!((inStubs(p) && n === delaySlot) || (inStubs(n) && p === delaySlot))) return false;
  const kind = (ev: string[]): string => ev.map((e) => e.replace(/@.*/, '')).join();
  return kind(d.native.events) === kind(d.probed.events) && d.mismatches.every((m) => m.startsWith('pc:') || m.startsWith('events:'));
}

/**
 * `afterReturn`: the probe in the delay slot of `return` hits once. Natively the CPU runs `return`
 * and that slot at its own address, once (arch/sparc/windows.ts); with the host fallback
 * (UNIPROBE_SPARC_HOST_WINDOWS=1) the slot ran from a trampoline, never there.
 * `stubFaults`: counts the known trampoline-fault difference instead of failing on it.
 */
function expectSame(ds: UprobeDiff[], what: string, afterReturn = false, stubFaults?: { n: number }): void {
  ds.forEach((d, v) => {
    expect(d.refusal, `${what} v${v}`).toBeUndefined();
    const slot = d.prepared!.insn.addr + (afterReturn ? 0n : 4n);
    if (stubFaults && faultInResumedDelaySlot(d, slot)) {
      stubFaults.n++;
      return;
    }
    expect(d.mismatches, `${what} v${v}`).toEqual([]);
    expect(d.probed!.hits, `${what} v${v}`).toBe(afterReturn ? 1 : d.native!.hits);
  });
}

const INC_O0 = 0x90022001; // add %o0, 1, %o0 (the delay-slot marker)
const DCTIS: Array<[number, string]> = [
  [0x40000010, 'call +0x40'],
  [0x10800010, 'ba +0x40'],
  [0x30800010, 'ba,a +0x40'],
  [0x12800010, 'bne +0x40'],
  [0x32800010, 'bne,a +0x40'],
  [0x02800010, 'be +0x40'],
  [0x00800010, 'bn +0x40'],
  [0x20800010, 'bn,a +0x40'],
  [0x12680010, 'bne,pt %xcc,+0x40'],
  [0x32480010, 'bne,a,pt %icc,+0x40'],
  [0x02ca0010, 'brz %o0,+0x40'],
  [0x2aca4010, 'brnz,a %o1,+0x40'],
  [0x02c88010, 'brz %g2,+0x40'],
  [0x22c88010, 'brz,a %g2,+0x40'],
  [0x81c3e008, 'retl'],
  [0x81c7e008, 'ret'],
  [0x9fc06020, 'jmpl %g1+0x20,%o7'],
  [0xa1c04002, 'jmpl %g1+%g2,%l0'],
  [0xbfc06020, 'jmpl %g1+0x20,%i7'],
  [0x81cfe008, 'return %i7+8'],
];
const PLAIN: Array<[number, string]> = [
  [0x9de3bf40, 'save %sp,-192,%sp'],
  [0x81e80000, 'restore'],
  [0xd25a2008, 'ldx [%o0+8],%o1'],
  [0xd273a87f, 'stx %o1,[%sp+2047+128]'],
  [0xd4022000, 'lduw [%o0],%o2'],
  [0xd42a2001, 'stb %o2,[%o0+1]'],
  [0x80a20009, 'cmp %o0,%o1'],
  [0x94823fff, 'addcc %o0,-1,%o2'],
  [0x96420009, 'addc %o0,%o1,%o3'],
  [0x19048d15, 'sethi %hi(0x12345400),%o4'],
  [0x9b2a3003, 'sllx %o0,3,%o5'],
  [0x91666001, 'movne %icc,1,%o0'],
  [0x944a0009, 'mulx %o0,%o1,%o2'],
  [0x91414000, 'rd %pc,%o0'],
  [0x01000000, 'nop'],
  [0x81580000, 'flushw'],
  [0x91d02003, 'ta 3 (flush windows, a software trap stepped from the slot)'],
  [0x00000000, 'illtrap 0 (faults at the probed address both ways)'],
];

beforeAll(async () => {
  await loadDisassembler();
});

const be = (w: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, w >>> 0);
  return b;
};
const word = (b: Uint8Array, at = 0): number => new DataView(b.buffer, b.byteOffset).getUint32(at);
const prep = (w: number, at = X): PreparedUprobe | ProbeRefusal => ua.analyzeUprobe(at, be(w));

describe('sparc64 uprobe back-end', () => {
  it('ta 0x73 swbp, ta 0x74 step trap: slot = [copy][ta 0x74], 8 bytes; is_trap_insn is the swbp only', () => {
    expect([...ua.swbp]).toEqual([0x91, 0xd0, 0x20, 0x73]);
    expect(ua.maxInsnBytes).toBe(4);
    expect(ua.xolSlotBytes).toBe(8);
    expect(ua.isTrapInsn(be(UPROBE_SWBP))).toBe(true);
    expect(ua.isTrapInsn(be(0x91d02070))).toBe(false); // the kprobe breakpoint is someone else's
    expect(ua.isTrapInsn(be(UPROBE_STP))).toBe(false);
    const p = prep(0xd25a2008) as PreparedUprobe;
    expect(p.mode).toBe('step');
    expect(p.stepTrapOffset).toBe(4);
    const slot = p.slotBytes(XOL);
    expect([word(slot, 0), word(slot, 4)]).toEqual([0xd25a2008, UPROBE_STP]);
    expect(p.insn.text).toBe('ldx [%o0+8], %o1');
  });

  it('arch_uprobe_copy_ixol clears the annul bit of every format-2 branch (BPcc, Bicc, BPr, FBPfcc, FBfcc), nothing else', () => {
    const branches = [0x32800010, 0x30800010, 0x32480010, 0x2aca4010, 0x23480010 /* fbne,a,pt */, 0x23800010 /* fbne,a */];
    for (const w of branches) {
      expect(isa.branchKind(w), w.toString(16)).toBeDefined();
      expect(uprobeCopyWord(w), w.toString(16)).toBe((w & ~(1 << 29)) >>> 0);
      const slot = (prep(w) as PreparedUprobe).slotBytes(XOL);
      expect(word(slot)).toBe((w & ~(1 << 29)) >>> 0);
    }
    // Bit 29 of anything else is an operand (rd of a format-3 word, sethi's rd): left alone.
    for (const w of [0x40000010, 0xe1022008 /* ld [%o0+8],%l0 */, 0x21000000 /* sethi 0,%l0 */]) expect(uprobeCopyWord(w)).toBe(w);
  });

  it('analysis accepts every instruction (Linux); only a jmpl clobbering its own target is refused, -EINVAL (engine: no NPC register)', () => {
    for (const w of [0x91d0206d, 0x91d02070, 0x00000000, 0x9de3bf40, 0x81cfe008, 0x91414000]) expect(isRefusal(prep(w)), w.toString(16)).toBe(false);
    expect(prep(0x9fc3c000)).toMatchObject({ refused: true, errno: ERRNO.EINVAL, reason: expect.stringMatching(/jmpl overwriting/) }); // jmpl %o7,%o7
    expect(prep(0x01000000, X + 2n)).toMatchObject({ refused: true, errno: ERRNO.EINVAL, reason: expect.stringMatching(/unaligned/) });
  });

  it('emulates only nop (skip_sstep); steps everything else', () => {
    expect((prep(0x01000000) as PreparedUprobe).mode).toBe('emulate');
    expect((prep(0x91414000) as PreparedUprobe).mode).toBe('step'); // rd %pc: stepped, then fixed
    expect((prep(0x10800010) as PreparedUprobe).mode).toBe('step');
  });

  it('differential: DCTIs with their delay slot, three condition-code/register states', () => {
    for (const [w, text] of DCTIS) expectSame(differential([w, INC_O0], X, X), text);
    expectSame(differential([0x81c7e008, 0x81e80000], X, X), 'ret; restore');
    expectSame(differential([0x40000010, 0x9de3bf40], X, X), 'call; save');
  });

  it('an analysis made at another address runs right here (a uprobe is analysed once per file)', () => {
    for (const [w, text] of [...DCTIS, ...PLAIN]) {
      if (w === 0) continue;
      expectSame([runUprobeDiff({ ...scenario([w, INC_O0], X, X, 0), analyzeAt: X + 0x80000n })], `${text} analysed elsewhere`);
    }
    // nop in a delay slot, analysed elsewhere: the pending target comes from the hit.
    expectSame([runUprobeDiff({ ...scenario([0x10800010, 0x01000000], X, X + 4n, 0), analyzeAt: X + 0x80004n })], 'nop in a delay slot, analysed elsewhere');
  });

  it('a fault in the delay slot of a probed DCTI: same state and signal, seen at the resume trampoline (engine limit)', () => {
    for (const [words, what] of [
      [[0x12800010, 0x00000000], 'bne; illtrap'],
      [[0x10800010, 0xd25a2008], 'ba; ldx [%o0+8] with %o0 = 0'],
    ] as const) {
      const d = runUprobeDiff(scenario([...words], X, X, 0));
      expect(faultInResumedDelaySlot(d, X + 4n), what).toBe(true);
      expect(d.probed!.events[0]).toMatch(/^err\d+@0x180000/); // in the trampoline area
    }
  });

  it('differential: plain instructions, and each in the delay slot of a taken, untaken or annulled branch', () => {
    for (const [w, text] of PLAIN) expectSame(differential([w], X, X), text);
    for (const br of [0x12800010, 0x32800010, 0x10800010, 0x40000010, 0x81c3e008, 0x02c88010, 0x2aca4010]) {
      for (const [w, text] of PLAIN) {
        if (br === 0x10800010 && w === 0) continue;
        expectSame(differential([br, w], X, X + 4n), `${text} in the delay slot of 0x${br.toString(16)}`);
      }
    }
    const stubFaults = { n: 0 };
    for (const [w, text] of PLAIN) expectSame(differential([0x81cfe008, w], X, X + 4n), `${text} in the delay slot of return`, true, stubFaults);
    // The CPU runs `return` itself (arch/sparc/windows.ts): natively its delay slot runs, and
    // faults, at its own address, as the probed run's does (when the host emulated every
    // `return`, the illtrap faulted in a trampoline natively: 3 such runs).
    expect(stubFaults.n).toBe(0);
  });

  it('differential: a probed DCTI whose delay slot is probed too (both fire; the second sees the pending target)', () => {
    for (const [w, text] of DCTIS) {
      if (isa.isReturn(w)) continue;
      for (const delay of [INC_O0, 0x01000000]) {
        const ds = differential([w, delay], X, X, { extraProbes: [X + 4n] });
        expectSame(ds, `${text} + probed delay slot 0x${delay.toString(16)}`);
        ds.forEach((d, v) => expect(d.probed!.extraHits, `${text} v${v}`).toEqual([d.native!.hits > 0 ? countDelay(w, v) : 0]));
      }
    }
  });

  describe("Linux's quirks, fixed (each differs from what arch/sparc/kernel/uprobes.c would do)", () => {
    it('1. an untaken annulled branch, and ba,a, skip their delay slot (Linux resumes at saved tnpc and runs it)', () => {
      // bne,a with Z set (variant 1: ccr 0x44) is untaken: the marker must not run.
      const untaken = runUprobeDiff(scenario([0x32800010, INC_O0], X, X, 1));
      expect(untaken.mismatches).toEqual([]);
      expect(untaken.probed!.regs[8]).toBe(DATA + 0x840n); // %o0 unchanged: the delay slot did not run
      const baa = runUprobeDiff(scenario([0x30800010, INC_O0], X, X, 0));
      expect(baa.mismatches).toEqual([]);
      expect(baa.probed!.regs[8]).toBe(0n);
      expect(baa.probed!.events).toEqual([`breakpoint@0x${(X + 0x40n).toString(16)}→0x${(X + 0x44n).toString(16)}`]);
    });
    it('2. a taken BPr (and FP branches) is re-based to the probe (Linux keeps the slot-relative target)', () => {
      const d = runUprobeDiff(scenario([0x02c88010, INC_O0], X, X, 1)); // brz %g2 with %g2 = 0: taken
      expect(d.mismatches).toEqual([]);
      expect(d.probed!.events).toEqual([`breakpoint@0x${(X + 0x40n).toString(16)}→0x${(X + 0x44n).toString(16)}`]);
    });
    it('3. a probe inside a delay slot resumes at the pending target (Linux resets tnpc to tpc + 4 first): nop and stepped word', () => {
      for (const w of [0x01000000, INC_O0]) {
        const d = runUprobeDiff(scenario([0x10800010, w], X, X + 4n, 0)); // ba +0x40; <w>
        expect(d.mismatches).toEqual([]);
        expect(d.probed!.events).toEqual([`breakpoint@0x${(X + 0x40n).toString(16)}→0x${(X + 0x44n).toString(16)}`]);
      }
    });
    it('4. rd %pc stepped from the slot reads the probe address, not the slot (Linux leaves the slot address)', () => {
      const d = runUprobeDiff(scenario([0x91414000], X, X, 0));
      expect(d.mismatches).toEqual([]);
      expect(d.probed!.regs[8]).toBe(X);
    });
  });

  const corpus = fixturePlacements();
  const stubFaults = { n: 0 };
  let corpusRuns = 0;
  let corpusEmulated = 0;
  it.each(chunked(corpus, 150))('differential: every distinct placement in %s (a DCTI with its delay slot, a delay slot with its DCTI)', (_label, chunk) => {
    const failures: string[] = [];
    for (const c of chunk) {
      for (const v of [0, 1]) {
        if (c.words.some((w) => jumpsToZero(w, v))) continue;
        const d = runUprobeDiff(scenario(c.words, X, c.probe, v));
        if (d.refusal) {
          failures.push(`${c.where} refused: ${d.refusal.reason}`);
          break;
        }
        corpusRuns++;
        if (d.prepared!.mode === 'emulate') corpusEmulated++;
        if (faultInResumedDelaySlot(d, X + 4n)) {
          stubFaults.n++;
          continue;
        }
        for (const m of d.mismatches) failures.push(`${c.where} v${v}: ${m}`);
        const want = c.afterReturn ? 1 : d.native!.hits;
        if (d.probed!.hits !== want) failures.push(`${c.where} v${v}: ${d.probed!.hits} hits, native ${d.native!.hits}`);
      }
    }
    expect(failures).toEqual([]);
  });
  it('the fixture corpus ran stepping and nop emulation (mostly in delay slots)', () => {
    expect(corpusRuns).toBeGreaterThan(FULL ? 3000 : 2500); // the -O1 builds add ~500 placements (npm run test:full)
    expect(corpusEmulated).toBeGreaterThan(50);
    expect(stubFaults.n).toBeLessThan(corpusRuns / 20);
  });

  it('uretprobe hooks: %o7 + 8 is the return address, %o7 = trampoline − 8; every instance is alive (no arch override)', () => {
    const regs = new Map<number, bigint>([
      [R.O7, 0x10000n],
      [R.SP, 0x7fff0000n - 2047n],
    ]);
    const engine = { regRead: (id: number) => regs.get(id)!, regWrite: (id: number, v: bigint) => void regs.set(id, v) } as unknown as Engine;
    const cpu = { engine, mem: undefined as never };
    expect(ua.hijackUserReturn(cpu, XOL)).toBe(0x10008n);
    expect(regs.get(R.O7)).toBe(XOL - 8n);
    // Hijacked again (a tail call before any save): the original is the trampoline itself.
    expect(ua.hijackUserReturn(cpu, XOL)).toBe(XOL);
    expect(ua.userSp(cpu)).toBe(0x7fff0000n - 2047n);
    for (const ctx of ['call', 'chain-call', 'ret'] as const) {
      expect(ua.uretprobeIsAlive(cpu, 0n, ctx)).toBe(true);
      expect(ua.uretprobeIsAlive(cpu, 0xffffffffffffffffn, ctx)).toBe(true);
    }
  });

  it('arch/sparc/sparc64.ts reports ta 0x73 and ta 0x74 in user text as breakpoints, with the trap address and the next PC', () => {
    const e = openEngine(sparc64);
    try {
      sparc64.setupEngine(e, { mapPrivate: (a, s, x) => e.memMap(a, s, x ? UC_PROT.ALL : UC_PROT.READ | UC_PROT.WRITE) });
      e.memMap(TEXT, TEXT_SIZE, UC_PROT.ALL);
      // ba +0x10 ; ta 0x73 (in the delay slot) … ta 0x74 at the target
      const words = [0x10800004, UPROBE_SWBP, STOP, STOP, UPROBE_STP];
      words.forEach((w, i) => e.memWrite(X + BigInt(4 * i), be(w)));
      const seen: string[] = [];
      const sink: TrapSink = {
        isKernelText: () => false,
        syscall: () => undefined,
        hypercall: () => undefined,
        breakpoint: (addr, after) => {
          seen.push(`${addr.toString(16)}→${after.toString(16)}`);
          return addr === X + 4n ? { pc: after } : { stop: true, pc: addr };
        },
        fault: () => ({ stop: true }),
        memory: () => Object.assign(memAccess(e, sparc64), { unsettled: false }),
      };
      sparc64.installTrapHooks(e, sink);
      e.start(X, 0n, 20);
      expect(seen).toEqual([`${(X + 4n).toString(16)}→${(X + 0x10n).toString(16)}`, `${(X + 0x10n).toString(16)}→${(X + 0x14n).toString(16)}`]);
    } finally {
      e.close();
    }
  });
});

interface Placement {
  where: string;
  words: number[];
  probe: bigint;
  afterReturn: boolean;
}

/** Every distinct placement (the probed word with its DCTI or delay slot) of the -nolibc fixtures, by file. */
function fixturePlacements(): Map<string, Placement[]> {
  const dir = join(repoRoot, 'fixtures', 'sparc64');
  const seen = new Set<string>();
  const out = new Map<string, Placement[]>();
  for (const file of readdirSync(dir).filter(corpusFixture).sort()) {
    const elf = readElfFileSync(join(dir, file));
    const list: Placement[] = [];
    for (const f of elf.functions()) {
      const bytes = elf.textBytesAt(f.codeAddress, Number(f.size));
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const wordAt = (off: number): number | undefined => (off >= 0 && off + 4 <= bytes.length ? view.getUint32(off) : undefined);
      for (let off = 0; off + 4 <= bytes.length; off += 4) {
        const w = wordAt(off)!;
        const prev = wordAt(off - 4);
        const inDelaySlot = prev !== undefined && dctiClass(prev) !== undefined;
        const isDcti = dctiClass(w) !== undefined;
        if (inDelaySlot && isDcti) continue; // DCTI couples: not emitted by compilers
        const words: number[] = [];
        if (inDelaySlot) words.push(prev!);
        words.push(w);
        if (isDcti && wordAt(off + 4) !== undefined) words.push(wordAt(off + 4)!);
        const key = words.join(',') + (inDelaySlot ? '@1' : '@0');
        if (seen.has(key)) continue;
        seen.add(key);
        const branch = inDelaySlot ? prev! : w;
        // A branch back into the placed words (a tight loop) would not end natively.
        if (isa.branchKind(branch) !== undefined && Math.abs(Number(isa.branchDisp(branch))) <= 8) continue;
        if (isa.isCall(branch) && BigInt.asIntN(64, isa.callTarget(0n, branch)) <= 8n && BigInt.asIntN(64, isa.callTarget(0n, branch)) >= -8n) continue;
        list.push({
          where: `${f.name}+0x${off.toString(16)} 0x${w.toString(16)}`,
          words,
          probe: inDelaySlot ? X + 4n : X,
          afterReturn: inDelaySlot && isa.isReturn(prev!),
        });
      }
    }
    if (list.length) out.set(file, list);
  }
  return out;
}

/** How often the delay slot of `w` runs in the seeded state `v` (annulled or not). */
function countDelay(w: number, v: number): number {
  if (!isa.annulBit(w) || isa.branchKind(w) === undefined) return 1;
  const native = runUprobeDiff(scenario([w, INC_O0], X, X, v)).native!;
  return native.regs[8] === seederO0(v) ? 0 : 1;
}
const seederO0 = (v: number): bigint => (v === 0 ? 0n : DATA + 0x840n);
