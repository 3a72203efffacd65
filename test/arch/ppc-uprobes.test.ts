/**
 * PowerPC uprobe back-end (arch/ppc/uprobes) on ppc32 and ppc64: refusals with Linux's errno
 * (-EINVAL for alignment and the 64-byte-crossing prefix, -ENOTSUPP for what cannot be
 * single-stepped), trap recognition, which branch forms the modelled CPUs run (and therefore
 * whether they are emulated or stepped), the return-probe hooks, and a differential check — each
 * word of a hand corpus and every distinct word of the freestanding fixture programs runs once
 * natively and once through the probe path (slot on a page near the top of user space), with
 * GPRs, LR, CTR, CR, XER, FPRs, the PC where the run stops, all memory and faults compared.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readdirSync } from 'node:fs';
import { Engine } from '../../src/emu/unicorn.js';
import { readElfFileSync } from '../../src/elf/index.js';
import { ppc32 } from '../../arch/ppc/ppc32.js';
import { ppc64 } from '../../arch/ppc/ppc64.js';
import { UC_PPC_REG as R } from '../../arch/ppc/ucregs.js';
import { PPC_BREAKPOINT } from '../../arch/ppc/common.js';
import type { Arch } from '../../arch/types.js';
import { isRefusal, type PreparedUprobe, type ProbeRefusal, type UprobeArch } from '../../arch/probes.js';
import { uprobeArchFor } from '../../arch/index.js';
import { ERRNO } from '../../arch/ppc/uprobes/index.js';
import { loadDisassembler } from '../../arch/ppc/kprobes/index.js';
import { bdDisp, branchClass, liDisp } from '../../arch/ppc/kprobes/tables.js';
import { repoRoot, corpusFixture } from '../helpers.js';
import { chunked, runUprobeDiff, type UprobeDiff, type UprobeScenario } from './uprobe-harness.js';

const TEXT = 0x10000n;
const TEXT_SIZE = 0x10000;
const DATA = 0x100000n;
const DATA_SIZE = 0x10000;
const X = 0x18000n; // where the probed word goes
const LR_SEED = 0x10800n; // a stop word: bclr lands there
const CTR_SEED = 0x10c00n;
const XOL = { ppc32: 0xbfffe000n, ppc64: 0xfffffffe000n } as const;

const TARGETS: Array<{ name: 'ppc32' | 'ppc64'; arch: Arch; ua: UprobeArch }> = [
  { name: 'ppc32', arch: ppc32, ua: uprobeArchFor(ppc32) },
  { name: 'ppc64', arch: ppc64, ua: uprobeArchFor(ppc64) },
];

const be = (...words: number[]): Uint8Array => {
  const b = new Uint8Array(words.length * 4);
  const v = new DataView(b.buffer);
  words.forEach((w, i) => v.setUint32(i * 4, w >>> 0));
  return b;
};

/** Three register states: CR/CTR/XER chosen so every branch goes both ways somewhere. */
function seeder(variant: number): (e: Engine) => void {
  return (e) => {
    const gprs = Array.from({ length: 32 }, (_, k) => DATA + 0x200n * BigInt(k) + 0x40n);
    gprs[1] = DATA + 0x8000n;
    gprs[5] = variant === 2 ? 0xfffffff0n : 0x104n;
    const cr = [0x20000000n, 0x00000000n, 0xffffffffn][variant]!;
    const ctr = [1n, 2n, CTR_SEED][variant]!;
    const xer = [0n, 0x20000000n, 0xe0000000n][variant]!;
    e.regWriteBatch([...gprs.map((_, k) => R.R0 + k), R.LR, R.CTR, R.XER, R.CR], [...gprs, LR_SEED, ctr, xer, cr]);
  };
}

/** A text window of stop words (`trap`) with `words` placed from `at`, and a data window. */
/**
 * The windows' contents, made once: a scenario copies the text and shares the data (only read:
 * written into each engine). Building them per scenario took a third of this file's time.
 */
const STOP_TEXT = (() => {
  const text = new Uint8Array(TEXT_SIZE);
  const v = new DataView(text.buffer);
  for (let o = 0; o < TEXT_SIZE; o += 4) v.setUint32(o, PPC_BREAKPOINT);
  return text;
})();
const DATA_BYTES = new Uint8Array(DATA_SIZE).map((_, i) => (i * 37 + 11) & 0xff);

function scenario(name: 'ppc32' | 'ppc64', arch: Arch, ua: UprobeArch, words: Map<bigint, number>, vaddr: bigint, variant: number): UprobeScenario {
  const text = STOP_TEXT.slice();
  const v = new DataView(text.buffer);
  for (const [a, w] of words) v.setUint32(Number(a - TEXT), w >>> 0);
  const data = DATA_BYTES;
  return {
    arch,
    ua,
    regions: [
      { base: TEXT, bytes: text },
      { base: DATA, bytes: data },
    ],
    xol: XOL[name],
    vaddr,
    seed: seeder(variant),
    maxInsns: 100,
  };
}

function differential(t: (typeof TARGETS)[number], w: number, variant: number, at = X, analyzeAt?: bigint): UprobeDiff {
  return runUprobeDiff({ ...scenario(t.name, t.arch, t.ua, new Map([[at, w]]), at, variant), analyzeAt });
}

function expectSame(r: UprobeDiff, what: string): void {
  expect(r.refusal, what).toBeUndefined();
  expect(r.mismatches, what).toEqual([]);
  expect(r.probed!.hits, what).toBe(1);
}

// Hand corpus: [word, text, ppc64 only?]
const CORPUS: Array<[number, string, boolean?]> = [
  [0x48000040, 'b +0x40'],
  [0x48000041, 'bl +0x40'],
  [0x4bffffe0, 'b -0x20'],
  [0x48010102, 'ba 0x10100'],
  [0x48010103, 'bla 0x10100'],
  [0x41820020, 'beq +0x20'],
  [0x40820020, 'bne +0x20'],
  [0x42000020, 'bdnz +0x20'],
  [0x42400020, 'bdz +0x20'],
  [0x41020020, 'bdnzt eq,+0x20'],
  [0x40020020, 'bdnzf eq,+0x20'],
  [0x41820021, 'beql +0x20'],
  [0x42000021, 'bdnzl +0x20'],
  [0x429f0005, 'bcl 20,31,$+4 (the PIC idiom)'],
  [0x4e800020, 'blr'],
  [0x4e800021, 'blrl'],
  [0x4d820020, 'beqlr'],
  [0x4e000020, 'bdnzlr'],
  [0x4c820021, 'bnelrl'],
  [0x4e800420, 'bctr'],
  [0x4e800421, 'bctrl'],
  [0x4d820420, 'beqctr'],
  [0x4c820421, 'bnectrl'],
  [0x4e000420, 'bcctr with a CTR-decrementing BO (ppc64 runs it; illegal on ppc32)'],
  [0x4e400421, 'bcctrl, branch if CTR was zero, decrementing (ppc64: test, then decrement)'],
  [0x4c600005, 'addpcis r3,1 (ppc64 runs it; illegal on ppc32)'],
  [0x80640008, 'lwz r3,8(r4)'],
  [0x90a1fff0, 'stw r5,-16(r1)'],
  [0x9421ffe0, 'stwu r1,-32(r1)'],
  [0x7c6428ae, 'lbzx r3,r4,r5'],
  [0x7ca4292e, 'stwx r5,r4,r5'],
  [0xbba1fff4, 'lmw r29,-12(r1)'],
  [0xbfa1fff4, 'stmw r29,-12(r1)'],
  [0x7c602028, 'lwarx r3,0,r4'],
  [0x7c60212d, 'stwcx. r3,0,r4'],
  [0xe8640008, 'ld r3,8(r4)', true],
  [0xfbe1fff8, 'std r31,-8(r1)', true],
  [0xf821ff81, 'stdu r1,-128(r1)', true],
  [0x7c642a15, 'add. r3,r4,r5'],
  [0x7c642e15, 'addo. r3,r4,r5'],
  [0x3064ffff, 'addic r3,r4,-1'],
  [0x7c642810, 'subfc r3,r4,r5'],
  [0x7c642914, 'adde r3,r4,r5'],
  [0x2f830000, 'cmpwi cr7,r3,0'],
  [0x5483103b, 'rlwinm. r3,r4,2,0,29'],
  [0x7c6429d6, 'mullw r3,r4,r5'],
  [0x7c642bd6, 'divw r3,r4,r5'],
  [0x7c0802a6, 'mflr r0'],
  [0x7c0803a6, 'mtlr r0'],
  [0x7d2902a6, 'mfctr r9'],
  [0x7d2903a6, 'mtctr r9'],
  [0x7c600026, 'mfcr r3'],
  [0x7c6ff120, 'mtcrf 0xff,r3'],
  [0x7c6102a6, 'mfxer r3'],
  [0x60000000, 'nop'],
  [0x3860ffff, 'li r3,-1'],
  [0x80600000, 'lwz r3,0(0): a faulting load (faults at the probe)'],
  [0x04000000, 'an ISA 3.1 prefix word (illegal on both: faults at the probe)'],
  [0x00000000, 'an invalid word (faults at the probe)'],
];

/** The first occurrence of every distinct word in the -nolibc fixtures, by file. */
function fixtureWords(name: 'ppc32' | 'ppc64'): Map<string, Array<{ fn: string; off: number; w: number }>> {
  const dir = join(repoRoot, 'fixtures', name);
  const seen = new Set<number>();
  const out = new Map<string, Array<{ fn: string; off: number; w: number }>>();
  for (const file of readdirSync(dir).filter(corpusFixture).sort()) {
    const elf = readElfFileSync(join(dir, file));
    const list: Array<{ fn: string; off: number; w: number }> = [];
    for (const f of elf.functions()) {
      const bytes = elf.textBytesAt(f.codeAddress, Number(f.size));
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let off = 0; off + 4 <= bytes.length; off += 4) {
        const w = view.getUint32(off);
        if (seen.has(w)) continue;
        seen.add(w);
        const cls = branchClass(w);
        if ((cls === 'b' && liDisp(w) === 0n) || (cls === 'bc' && bdDisp(w) === 0n)) continue; // `b .` never ends natively
        list.push({ fn: f.name, off, w });
      }
    }
    if (list.length) out.set(file, list);
  }
  return out;
}

const corpusModes = { ppc32: new Map<string, number>(), ppc64: new Map<string, number>() };

beforeAll(async () => {
  await loadDisassembler();
});

describe.each(TARGETS)('$name uprobe back-end', (t) => {
  const { name, ua } = t;
  const is64 = name === 'ppc64';
  const prep = (w: number, at = X): PreparedUprobe | ProbeRefusal => ua.analyzeUprobe(at, be(w));
  const mode = (w: number): string => {
    const p = prep(w);
    return isRefusal(p) ? `refused ${p.errno}` : p.mode;
  };

  it('trap as swbp, 4-byte instructions, 8-byte slots [copy][trap]; is_trap_insn knows every trap form', () => {
    expect([...ua.swbp]).toEqual([0x7f, 0xe0, 0x00, 0x08]);
    expect(ua.maxInsnBytes).toBe(4);
    expect(ua.xolSlotBytes).toBe(8);
    expect(ua.isTrapInsn(be(0x7fe00008))).toBe(true);
    expect(ua.isTrapInsn(be(0x7c822008))).toBe(true); // tw 4,r2,r4
    expect(ua.isTrapInsn(be(0x0c000000))).toBe(true); // twi
    expect(ua.isTrapInsn(be(0x7c000088))).toBe(is64); // td: a trap only on ppc64
    expect(ua.isTrapInsn(be(0x08000000))).toBe(is64); // tdi
    expect(ua.isTrapInsn(be(0x60000000))).toBe(false);
    const p = prep(0x80640008) as PreparedUprobe;
    expect(p.mode).toBe('step');
    expect(p.stepTrapOffset).toBe(4);
    expect([...p.slotBytes(XOL[name])]).toEqual([0x80, 0x64, 0x00, 0x08, 0x7f, 0xe0, 0x00, 0x08]);
    expect(p.insn.text).toBe('lwz r3, 8(r4)');
  });

  it('refuses what Linux refuses: misaligned -EINVAL; what cannot be single-stepped -ENOTSUPP', () => {
    expect(prep(0x60000000, X + 2n)).toMatchObject({ refused: true, errno: ERRNO.EINVAL, reason: expect.stringMatching(/unaligned/) });
    // Alignment first: even a trap at an odd address is refused for that.
    expect(prep(0x7fe00008, X + 1n)).toMatchObject({ errno: ERRNO.EINVAL });
    const never: Array<[number, RegExp]> = [
      [0x7fe00008, /tw \(trap\)/],
      [0x7c822008, /tw \(trap\)/],
      [0x0c000000, /twi/],
      [0x08000000, /tdi/],
      [0x7c000088, /td \(trap\)/],
      [0x44000002, /sc/],
      [0x4c000064, /rfi/],
      [0x4c000024, /rfid/],
      [0x4c000224, /hrfid/],
      [0x4c0002e4, /stop/],
      [0x4c000364, /nap/],
      [0x7c600124, /mtmsr/],
      [0x7c600164, /mtmsrd/],
    ];
    for (const [w, why] of never) {
      expect(prep(w), w.toString(16)).toMatchObject({ refused: true, errno: ERRNO.ENOTSUPP, reason: expect.stringMatching(why) });
    }
  });

  it(is64 ? 'a prefixed instruction at addr & 0x3f == 60 would cross 64 bytes: -EINVAL (ISA 3.1 CPU)' : 'ppc32 (no ISA 3.1) has no prefix check: the word is stepped', () => {
    const at60 = 0x1803cn;
    if (is64) {
      expect(prep(0x04000000, at60)).toMatchObject({ refused: true, errno: ERRNO.EINVAL, reason: expect.stringMatching(/64-byte/) });
      expect(mode(0x04000000)).toBe('step'); // elsewhere: stepped (and illegal on Unicorn 2.1.1)
    } else {
      expect((prep(0x04000000, at60) as PreparedUprobe).mode).toBe('step');
    }
  });

  it('emulates every branch the CPU runs; bctar is refused where it runs (TAR unreachable), stepped where it is illegal', () => {
    for (const w of [0x48000040, 0x41820020, 0x4e800020, 0x4e800421, 0x42000021]) expect(mode(w), w.toString(16)).toBe('emulate');
    expect(mode(0x4e000420)).toBe(is64 ? 'emulate' : 'step'); // bcctr, CTR-decrementing BO
    expect(mode(0x4c600005)).toBe(is64 ? 'emulate' : 'step'); // addpcis
    const bctar = prep(0x4e800460);
    if (is64) expect(bctar).toMatchObject({ refused: true, errno: ERRNO.ENOTSUPP, reason: expect.stringMatching(/TAR/) });
    else expect((bctar as PreparedUprobe).mode).toBe('step');
    expect(mode(0x7c0802a6)).toBe('emulate'); // mflr: emulate_step does it (arch/ppc/kprobes/emulate-int.ts)
  });

  it('differential: the hand corpus (three register states)', () => {
    let n = 0;
    for (const [w, text, only64] of CORPUS) {
      if (only64 && !is64) continue;
      for (const v of [0, 1, 2]) {
        expectSame(differential(t, w, v), `${name} ${text} variant ${v}`);
        n++;
      }
      // Analysed where another mm maps the file: the emulation uses the hit's address.
      expectSame(differential(t, w, 0, X, X + 0x40000n), `${name} ${text} analysed elsewhere`);
    }
    if (!is64) {
      for (const v of [0, 1, 2]) {
        expectSame(differential(t, 0x4e800460, v), `bctar (illegal on ppc32) variant ${v}`);
        expectSame(differential(t, 0x4e800461, v), `bctarl (illegal on ppc32) variant ${v}`);
      }
    }
    expect(n).toBeGreaterThan(150);
  });

  const corpus = fixtureWords(name);
  // Chunks of a few hundred words: a long synchronous test starves vitest's worker RPC.
  it.each(chunked(corpus, 150))('differential: every distinct word of %s', (_label, chunk) => {
    const failures: string[] = [];
    for (const { fn, off, w } of chunk) {
      for (const v of [0, 1]) {
        const r = differential(t, w, v);
        const m = r.refusal ? `refused ${r.refusal.errno}` : r.prepared!.mode;
        corpusModes[name].set(m, (corpusModes[name].get(m) ?? 0) + 1);
        if (r.refusal) break;
        for (const x of r.mismatches) failures.push(`${fn}+0x${off.toString(16)} 0x${w.toString(16)} v${v}: ${x}`);
        if (r.probed!.hits !== 1) failures.push(`${fn}+0x${off.toString(16)} 0x${w.toString(16)} v${v}: ${r.probed!.hits} hits`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('the fixture corpus exercised emulation, stepping and refusals', () => {
    const modes = corpusModes[name];
    expect([...corpus.values()].reduce((n, l) => n + l.length, 0)).toBeGreaterThan(1000);
    expect(modes.get('emulate') ?? 0).toBeGreaterThan(100);
    // Function entries' addi/addis/mr/mflr/stw(u)/std(u) are emulated (arch/ppc/kprobes/emulate-int.ts): ~850 words step.
    expect(modes.get('step') ?? 0).toBeGreaterThan(500);
    expect(modes.get(`refused ${ERRNO.ENOTSUPP}`) ?? 0).toBeGreaterThan(0); // sc in the system-call stubs
  });

  it('uretprobe hooks: hijack swaps LR; is_alive compares r1 (≤ at a chained call, < otherwise)', () => {
    const regs = new Map<number, bigint>([
      [R.LR, 0x10001234n],
      [R.R1, 0x7fff0000n],
    ]);
    const engine = { regRead: (id: number) => regs.get(id)!, regWrite: (id: number, v: bigint) => void regs.set(id, v) } as unknown as Engine;
    const cpu = { engine, mem: undefined as never };
    expect(ua.hijackUserReturn(cpu, XOL[name])).toBe(0x10001234n);
    expect(regs.get(R.LR)).toBe(XOL[name]);
    // A tail call: LR already is the trampoline, handed back as is (the core chains).
    expect(ua.hijackUserReturn(cpu, XOL[name])).toBe(XOL[name]);
    expect(ua.userSp(cpu)).toBe(0x7fff0000n);
    const s = 0x7fff0000n;
    for (const [r1, call, chain, ret] of [
      [s - 0x20n, true, true, true],
      [s, false, true, false],
      [s + 0x20n, false, false, false],
    ] as const) {
      regs.set(R.R1, r1);
      expect(ua.uretprobeIsAlive(cpu, s, 'call'), `call ${r1 - s}`).toBe(call);
      expect(ua.uretprobeIsAlive(cpu, s, 'chain-call'), `chain ${r1 - s}`).toBe(chain);
      expect(ua.uretprobeIsAlive(cpu, s, 'ret'), `ret ${r1 - s}`).toBe(ret);
    }
  });

  it('the harness notices a postXol that resumes on the probed word and a branch emulated without LK', () => {
    const again = runUprobeDiff({
      ...scenario(name, t.arch, ua, new Map([[X, 0x7c642a14]]), X, 0),
      tamper: (p) => ({ ...p, postXol: (cpu, s, v, st) => p.postXol(cpu, s, v - 4n, st) }),
    });
    expect(again.probed!.hits).toBeGreaterThan(1);
    const noLink = runUprobeDiff({
      ...scenario(name, t.arch, ua, new Map([[X, 0x48000041]]), X, 0),
      tamper: (p) => ({ ...p, emulate: (cpu) => (cpu.engine.regWrite(R.PC, X + 0x40n), true) }),
    });
    expect(noLink.mismatches.length).toBeGreaterThan(0);
  });
});
