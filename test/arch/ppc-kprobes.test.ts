/**
 * PowerPC kprobe back-end (arch/ppc/kprobes): refusals with Linux's errno, branch emulation with
 * exact LR/CTR effects, and a differential check — every instruction of a hand corpus (each class)
 * and of every function in the ppc32/ppc64 guest kernel images runs once natively and once through
 * the probe path on fresh engines seeded alike; registers (GPRs, LR, CTR, CR, XER, FPRs), the PC
 * where the run stops, written memory and faults must be identical.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { Engine } from '../../src/emu/unicorn.js';
import { readElfFileSync } from '../../src/elf/index.js';
import { ppc32 } from '../../arch/ppc/ppc32.js';
import { ppc64 } from '../../arch/ppc/ppc64.js';
import { UC_PPC_REG as R } from '../../arch/ppc/ucregs.js';
import { PPC_BREAKPOINT } from '../../arch/ppc/common.js';
import type { Arch } from '../../arch/types.js';
import { isRefusal, type ProbeArch } from '../../arch/probes.js';
import { loadDisassembler, ppcProbeArch } from '../../arch/ppc/kprobes/index.js';
import { branchStep } from '../../arch/ppc/kprobes/emulate.js';
import { bdDisp, branchClass, liDisp } from '../../arch/ppc/kprobes/tables.js';
import { repoRoot, FULL } from '../helpers.js';
import { prepareAt, runOnce, type Layout, type Outcome } from './kprobe-harness.js';

const LAYOUT: Layout = {
  size: 4 << 20,
  text: { base: 0x10000n, size: 0x10000 },
  data: { base: 0x100000n, size: 0x10000 },
  slot: 0x800000n,
  stopWord: PPC_BREAKPOINT,
};
const X = 0x18000n; // where hand-corpus instructions go
const LR_SEED = 0x10800n; // a stop word: bclr lands there
const CTR_SEED = 0x10c00n;

/** Three register states: CR/CTR/XER chosen so every branch goes both ways somewhere. */
function seeder(variant: number): (e: Engine) => void {
  return (e) => {
    const gprs = Array.from({ length: 32 }, (_, k) => 0x100000n + 0x200n * BigInt(k) + 0x40n);
    gprs[1] = 0x108000n;
    gprs[5] = variant === 2 ? 0xfffffff0n : 0x104n; // also an index and an addend that carries
    const cr = [0x20000000n, 0x00000000n, 0xffffffffn][variant]!;
    const ctr = [1n, 2n, CTR_SEED][variant]!;
    const xer = [0n, 0x20000000n, 0xe0000000n][variant]!;
    e.regWriteBatch([...gprs.map((_, k) => R.R0 + k), R.LR, R.CTR, R.XER, R.CR], [...gprs, LR_SEED, ctr, xer, cr]);
  };
}

function differential(arch: Arch, pa: ProbeArch, at: bigint, word: number, variant: number): { native: Outcome; probed: Outcome } {
  const place = { words: new Map([[at, word]]), start: at, probe: at };
  const native = runOnce(arch, LAYOUT, place, seeder(variant));
  const probed = runOnce(arch, LAYOUT, place, seeder(variant), { pa, prepared: prepareAt(pa, at, word) });
  return { native, probed };
}

function expectSame(d: { native: Outcome; probed: Outcome }, what: string): void {
  expect(d.probed.hits, what).toBe(1);
  // Natively a faulting word re-runs until the run's stop takes effect: at least once.
  expect(d.native.hits, what).toBeGreaterThanOrEqual(1);
  expect({ regs: d.probed.regs, stop: d.probed.stop, writes: d.probed.writes }, what).toEqual({
    regs: d.native.regs,
    stop: d.native.stop,
    writes: d.native.writes,
  });
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
  [0x429f0005, 'bcl 20,31,$+4'],
  [0x4e800020, 'blr'],
  [0x4e800021, 'blrl'],
  [0x4d820020, 'beqlr'],
  [0x4e000020, 'bdnzlr'],
  [0x4c820021, 'bnelrl'],
  [0x4e800420, 'bctr'],
  [0x4e800421, 'bctrl'],
  [0x4d820420, 'beqctr'],
  [0x4c820421, 'bnectrl'],
  [0x80640008, 'lwz r3,8(r4)'],
  [0x90a1fff0, 'stw r5,-16(r1)'],
  [0x9421ffe0, 'stwu r1,-32(r1)'],
  [0x90a407be, 'stw r5,0x7be(r4): crosses a page, so emulate-first declines and it is stepped'],
  [0x38610010, 'addi r3,r1,16'],
  [0x3c60fff0, 'lis r3,-16'],
  [0x7c832378, 'mr r3,r4'],
  [0x7c832379, 'mr. r3,r4 (Rc = 1: stepped)'],
  [0x7c6428ae, 'lbzx r3,r4,r5'],
  [0x7ca4292e, 'stwx r5,r4,r5'],
  [0xbba1fff4, 'lmw r29,-12(r1)'],
  [0xbfa1fff4, 'stmw r29,-12(r1)'],
  [0xe8640008, 'ld r3,8(r4)', true],
  [0xfbe1fff8, 'std r31,-8(r1)', true],
  [0xf821ff81, 'stdu r1,-128(r1)', true],
  [0x7c642a15, 'add. r3,r4,r5'],
  [0x7c642e15, 'addo. r3,r4,r5'],
  [0x3064ffff, 'addic r3,r4,-1'],
  [0x7c642810, 'subfc r3,r4,r5'],
  [0x7c642914, 'adde r3,r4,r5'],
  [0x2f830000, 'cmpwi cr7,r3,0'],
  [0x7c842840, 'cmplw cr1,r4,r5'],
  [0x5483103b, 'rlwinm. r3,r4,2,0,29'],
  [0x7c831e70, 'srawi r3,r4,3'],
  [0x7c6429d6, 'mullw r3,r4,r5'],
  [0x7c642bd6, 'divw r3,r4,r5'],
  [0x7c0802a6, 'mflr r0'],
  [0x7c0803a6, 'mtlr r0'],
  [0x7d2902a6, 'mfctr r9'],
  [0x7d2903a6, 'mtctr r9'],
  [0x7c600026, 'mfcr r3'],
  [0x7c6ff120, 'mtcrf 0xff,r3'],
  [0x7c6102a6, 'mfxer r3'],
  [0x7c6103a6, 'mtxer r3'],
  [0x60000000, 'nop'],
  [0x3860ffff, 'li r3,-1'],
  [0x4c600005, 'addpcis r3,1', true],
  [0x00000000, 'an invalid word (faults at the probed address both ways)'],
];

const TARGETS: Array<[string, Arch]> = [
  ['ppc32', ppc32],
  ['ppc64', ppc64],
];

beforeAll(async () => {
  await loadDisassembler();
});

describe.each(TARGETS)('%s kprobe back-end', (name, arch) => {
  const pa = ppcProbeArch(arch);

  it('uses the trap word as breakpoint, 4-byte instructions and 8-byte slots', () => {
    expect([...pa.breakpoint]).toEqual([0x7f, 0xe0, 0x00, 0x08]);
    expect(pa.maxInsnLength).toBe(4);
    expect(pa.slotSize).toBe(8);
    const read = (): Uint8Array => new Uint8Array(4);
    expect(pa.isInsnBoundary(read, 0x1000n, 0x1004n)).toBe(true);
    // Misalignment is not a boundary question on powerpc: prepare refuses it with -EINVAL.
    expect(pa.isInsnBoundary(read, 0x1000n, 0x1006n)).toBe(true);
    expect(pa.prepareKprobe(0x1006n, Uint8Array.of(0x60, 0, 0, 0), { hasPostHandler: false })).toMatchObject({ refused: true, errno: 22 });
    expect(pa.decode(0x1000n, Uint8Array.of(0x4e, 0x80, 0x00, 0x20))?.text).toBe('blr');
    expect(pa.decode(0x1000n, Uint8Array.of(0x4e, 0x80))).toBeUndefined();
  });

  it('refuses what Linux refuses, with its errno, in its order', () => {
    const refusal = (addr: bigint, w: number): { errno: number; reason: string } | 'accepted' => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, w);
      const p = pa.prepareKprobe(addr, b, { hasPostHandler: false });
      return isRefusal(p) ? { errno: p.errno, reason: p.reason } : 'accepted';
    };
    const cases: Array<[number, RegExp]> = [
      [0x7fe00008, /tw \(trap\)/],
      [0x7c822008, /tw \(trap\)/], // tw 4,r2,r4: any tw, not only the breakpoint
      [0x0c000000, /twi/],
      [0x08000000, /tdi/], // the 64-bit trap is refused on ppc32 as well (same table in Linux)
      [0x7c000088, /td \(trap\)/],
      [0x44000002, /sc/],
      [0x4c000064, /rfi/],
      [0x4c000024, /rfid/],
      [0x4c000224, /hrfid/],
      [0x4c0002e4, /stop/],
      [0x7c600124, /mtmsr/],
      [0x7c600164, /mtmsrd/],
      [0x04000000, /prefixed/],
      [0x4e800460, /bctar/],
      [0x4e000420, /bcctr with a CTR-decrementing BO/],
    ];
    for (const [w, why] of cases) {
      const r = refusal(0x18000n, w);
      expect(r, w.toString(16)).not.toBe('accepted');
      if (r !== 'accepted') {
        expect(r.errno, w.toString(16)).toBe(22);
        expect(r.reason).toMatch(why);
      }
    }
    // Alignment is checked first: even a trap at an odd address is refused for that.
    expect(refusal(0x18002n, 0x7fe00008)).toEqual({ errno: 22, reason: expect.stringMatching(/unaligned/) });
    expect(refusal(0x18000n, 0x60000000)).toBe('accepted');
    expect(refusal(0x18000n, 0x7c0802a6)).toBe('accepted'); // mflr: emulated first
  });

  it('emulates every branch and addpcis, steps the rest (slot = copy + trap)', () => {
    const mode = (w: number): string => prepareAt(pa, X, w).mode;
    for (const w of [0x48000040, 0x41820020, 0x4e800020, 0x4e800421, 0x4c600005]) expect(mode(w)).toBe('emulate');
    const p = prepareAt(pa, X, 0x80640008);
    expect(p.mode).toBe('step');
    expect(p.tryEmulate).toBeUndefined();
    expect(p.stepTrapOffset).toBe(4);
    expect([...p.slotBytes(0x300000n)]).toEqual([0x80, 0x64, 0x00, 0x08, 0x7f, 0xe0, 0x00, 0x08]);
  });

  it("tries emulate_step first (try_to_emulate) on a function entry's integer instructions, with the slot kept for a decline", () => {
    const entry = [0x7c0802a6, 0x9421ffe0, 0x90a1fff0, 0x38610010, 0x3c60fff0, 0x7c832378, ...(name === 'ppc64' ? [0xfbe1fff8, 0xf821ff81] : [])];
    for (const w of entry) {
      const p = prepareAt(pa, X, w);
      expect(p.mode, w.toString(16)).toBe('step');
      expect(p.tryEmulate, w.toString(16)).toBeTypeOf('function');
      const d = differential(arch, pa, X, w, 0);
      expect({ emulated: d.probed.emulated, steps: d.probed.steps }, w.toString(16)).toEqual({ emulated: 1, steps: 0 });
    }
    // Declined (a store across a page boundary): nothing changed, the copy is stepped.
    const cross = differential(arch, pa, X, 0x90a407be, 0);
    expect({ emulated: cross.probed.emulated, steps: cross.probed.steps }).toEqual({ emulated: 0, steps: 1 });
    expectSame(cross, 'stw across a page');
    // Not emulated here (Rc = 1 sets CR0; std is 64-bit only): stepped.
    for (const w of [0x7c832379, ...(name === 'ppc32' ? [0xfbe1fff8] : [])]) expect(prepareAt(pa, X, w).tryEmulate, w.toString(16)).toBeUndefined();
  });

  it('hijackReturn swaps LR for the trampoline; frameSp is r1', () => {
    const regs = new Map<number, bigint>([
      [R.LR, 0x10001234n],
      [R.R1, 0x7fff0000n],
    ]);
    const engine = { regRead: (id: number) => regs.get(id)!, regWrite: (id: number, v: bigint) => void regs.set(id, v) } as unknown as Engine;
    const cpu = { engine, mem: undefined as never };
    expect(pa.hijackReturn(cpu, 0xc0000400n)).toBe(0x10001234n);
    expect(regs.get(R.LR)).toBe(0xc0000400n);
    expect(pa.frameSp(cpu)).toBe(0x7fff0000n);
  });

  it('branch emulation sets LR and CTR exactly (bc decrements even when not taken)', () => {
    const bits = arch.wordSize === 8 ? 64 : 32;
    const r = { pc: 0n, lr: 0x5000n, ctr: 1n, cr: 0n };
    // bdnzl +0x20 with CTR 1: CTR → 0, not taken, LR still written.
    expect(branchStep(0x42000021, 0x1000n, r, bits)).toEqual({ pc: 0x1004n, lr: 0x1004n, ctr: 0n, cr: 0n });
    // blrl: target is the old LR, then LR = addr + 4.
    expect(branchStep(0x4e800021, 0x1000n, r, bits)).toMatchObject({ pc: 0x5000n, lr: 0x1004n, ctr: 1n });
    // bdz with CTR 0 wraps to all ones: not taken.
    expect(branchStep(0x42400020, 0x1000n, { ...r, ctr: 0n }, bits).ctr).toBe(bits === 64 ? 2n ** 64n - 1n : 0xffffffffn);
    // b -8 from 4 wraps around the address space at the word size.
    expect(branchStep(0x4bfffff8, 4n, r, bits).pc).toBe(bits === 64 ? 2n ** 64n - 4n : 0xfffffffcn);
  });

  it('differential: the hand corpus (each class, three register states)', () => {
    let n = 0;
    for (const [w, text, only64] of CORPUS) {
      if (only64 && name !== 'ppc64') continue;
      for (const v of [0, 1, 2]) {
        expectSame(differential(arch, pa, X, w, v), `${name} ${text} variant ${v}`);
        n++;
      }
    }
    expect(n).toBeGreaterThan(150);
  });

  it('differential: every instruction of every function in the guest kernel image', () => {
    const elf = readElfFileSync(join(repoRoot, 'fixtures', 'kernel', name, 'vmlinux'));
    // fixtures/kernel/bench_pad.c adds 192 identical padding functions (probe targets for the kprobes
    // benchmark); one of them stands for all, or this walk would take minutes.
    const funcs = elf.functions().filter((f) => !f.name.startsWith('bench_pad_') || f.name === 'bench_pad_00');
    const lo = funcs[0]!.codeAddress;
    let n = 0;
    let refused = 0;
    // A word seen before steps the same way (branches are relative): each distinct word once, every
    // occurrence under npm run test:full.
    const seen = new Set<number>();
    for (const f of funcs) {
      const bytes = elf.textBytesAt(f.codeAddress, Number(f.size));
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let off = 0; off + 4 <= bytes.length; off += 4) {
        const w = view.getUint32(off);
        const at = LAYOUT.text.base + (f.codeAddress - lo) + BigInt(off);
        expect(at < LAYOUT.text.base + BigInt(LAYOUT.text.size)).toBe(true);
        const cls = branchClass(w);
        if ((cls === 'b' && liDisp(w) === 0n) || (cls === 'bc' && bdDisp(w) === 0n)) continue; // `b .` never ends natively
        if (!FULL && seen.has(w)) continue;
        seen.add(w);
        const p = pa.prepareKprobe(at, bytes.subarray(off, off + 4), { hasPostHandler: true });
        if (isRefusal(p)) {
          refused++;
          continue;
        }
        expectSame(differential(arch, pa, at, w, n % 3), `${name} ${f.name}+0x${off.toString(16)} 0x${w.toString(16)}`);
        n++;
      }
    }
    expect(n).toBeGreaterThan(FULL ? 500 : 300);
    // The images' `sc` (the hypercall) and `trap` words are the refused ones.
    expect(refused).toBeGreaterThan(0);
  });
});
