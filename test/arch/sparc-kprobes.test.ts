/**
 * sparc64 kprobe back-end (arch/sparc/kprobes): refusals, the Linux slot ([copy][ta 0x71]) with
 * relbranch/retpc fix-ups and annul handling, and a differential check — each instruction (a DCTI
 * together with its delay slot; a delay-slot instruction together with its branch) runs once
 * natively and once through the probe path on fresh engines seeded alike; r1..r31, PC, %ccr, %y,
 * the resident register windows, written memory and faults must be identical.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { Engine } from '../../src/emu/unicorn.js';
import { readElfFileSync } from '../../src/elf/index.js';
import { sparc64 } from '../../arch/sparc/sparc64.js';
import { UC_SPARC_REG as R } from '../../arch/sparc/ucregs.js';
import * as isa from '../../arch/sparc/isa.js';
import { isRefusal } from '../../arch/probes.js';
import { KPROBE_STEP, loadDisassembler, sparcProbeArch } from '../../arch/sparc/kprobes/index.js';
import { dctiClass } from '../../arch/sparc/kprobes/tables.js';
import { resumeAfterStep } from '../../arch/sparc/kprobes/fixup.js';
import { repoRoot, FULL } from '../helpers.js';
import { prepareAt, runOnce, type Layout, type Outcome } from './kprobe-harness.js';

const STOP = 0x91d02001; // ta 1 (ST_BREAKPOINT): ends a run
const LAYOUT: Layout = {
  size: 4 << 20,
  text: { base: 0x10000n, size: 0x10000 },
  data: { base: 0x100000n, size: 0x10000 },
  slot: 0x800000n,
  stopWord: STOP,
};
const X = 0x18000n;
const pa = sparcProbeArch(sparc64);

/** r1..r31: data pointers, text addresses for jump bases and return addresses, biased stacks. */
function seeder(variant: number): (e: Engine) => void {
  return (e) => {
    const r = Array.from({ length: 32 }, (_, k) => 0x100000n + 0x100n * BigInt(k) + 0x40n);
    r[0] = 0n;
    r[1] = 0x10a00n; // %g1: a jmpl base in text
    r[2] = variant === 1 ? 0n : 0x100n; // %g2: brz/brnz go both ways across variants
    r[8] = variant === 0 ? 0n : 0x100840n; // %o0
    r[9] = variant === 2 ? 0xffffffffffffff00n : 0x100940n; // %o1
    r[14] = 0x108000n - 2047n; // %sp (biased)
    r[15] = 0x10800n; // %o7
    r[30] = 0x10c000n - 2047n; // %fp (biased)
    r[31] = 0x10900n; // %i7
    const ccr = [0x00n, 0x44n, 0xbbn][variant]!;
    sparc64.restore(e, { values: [...r, X, ccr, 0x1234n, 0n] });
  };
}

/** Place `words` from `at`, probe `probe`, start at `start`. */
function differential(words: number[], at: bigint, probe: bigint, start = at): { native: Outcome; probed: Outcome }[] {
  const place = { words: new Map(words.map((w, i) => [at + BigInt(4 * i), w] as [bigint, number])), start, probe };
  const pw = words[Number((probe - at) / 4n)]!;
  return [0, 1, 2].map((v) => ({
    native: runOnce(sparc64, LAYOUT, place, seeder(v)),
    probed: runOnce(sparc64, LAYOUT, place, seeder(v), { pa, prepared: prepareAt(pa, probe, pw) }),
  }));
}

/**
 * `afterReturn`: the probed word in the delay slot of `return` is a trap that hits once. Natively
 * the CPU runs `return` and that slot at its own address, once (arch/sparc/windows.ts); with the
 * host fallback (UNIPROBE_SPARC_HOST_WINDOWS=1) the slot ran from a trampoline, never there.
 */
function expectSame(ds: { native: Outcome; probed: Outcome }[], what: string, afterReturn = false): void {
  ds.forEach((d, v) => {
    expect(d.probed.hits, `${what} v${v}`).toBe(afterReturn ? 1 : d.native.hits);
    expect({ regs: d.probed.regs, stop: d.probed.stop, writes: d.probed.writes }, `${what} v${v}`).toEqual({
      regs: d.native.regs,
      stop: d.native.stop,
      writes: d.native.writes,
    });
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
  [0x81c3e008, 'retl'],
  [0x81c7e008, 'ret'],
  [0x9fc06020, 'jmpl %g1+0x20,%o7'],
  [0xa1c04002, 'jmpl %g1+%g2,%l0'],
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
  [0x00000000, 'illtrap 0 (faults at the probed address both ways)'],
];

beforeAll(async () => {
  await loadDisassembler();
});

describe('sparc64 kprobe back-end', () => {
  it('ta 0x70 breakpoint, 4-byte instructions, slot = copy + ta 0x71 with the annul bit cleared', () => {
    expect([...pa.breakpoint]).toEqual([0x91, 0xd0, 0x20, 0x70]);
    expect(pa.decode(0x1000n, Uint8Array.of(0x81, 0xc3, 0xe0, 0x08))?.text).toBe('retl');
    const p = prepareAt(pa, X, 0x32800010); // bne,a
    expect(p.mode).toBe('step');
    expect(p.stepTrapOffset).toBe(4);
    const slot = p.slotBytes(LAYOUT.slot);
    expect(new DataView(slot.buffer).getUint32(0)).toBe(0x12800010);
    expect(new DataView(slot.buffer).getUint32(4)).toBe(KPROBE_STEP);
    expect(prepareAt(pa, X, 0x91414000).mode).toBe('emulate'); // rd %pc
  });

  it('refusals: unaligned -EILSEQ (as Linux); software traps and self-clobbering jmpl -EINVAL (engine limits)', () => {
    const refusal = (addr: bigint, w: number): { errno: number; reason: string } | 'accepted' => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, w);
      const p = pa.prepareKprobe(addr, b, { hasPostHandler: false });
      return isRefusal(p) ? { errno: p.errno, reason: p.reason } : 'accepted';
    };
    expect(refusal(X + 2n, 0x01000000)).toEqual({ errno: 84, reason: expect.stringMatching(/unaligned/) });
    expect(refusal(X, 0x91d0206d)).toEqual({ errno: 22, reason: expect.stringMatching(/Tcc/) }); // ta 0x6d
    expect(refusal(X, 0x91d02070)).toEqual({ errno: 22, reason: expect.stringMatching(/Tcc/) }); // ta 0x70
    expect(refusal(X, 0x9fc3c000)).toEqual({ errno: 22, reason: expect.stringMatching(/jmpl overwriting/) }); // jmpl %o7,%o7
    expect(refusal(X, 0x81c3e008)).toBe('accepted');
  });

  it('relbranch/retpc fix-up table (Linux rules, plus annul and BPr)', () => {
    const slot = 0x800000n;
    const a = 0x18000n;
    // Not taken (tnpc = slot + 8): Bicc resumes in its delay slot, then addr + 8.
    expect(resumeAfterStep(0x12800010, a, slot, slot + 8n, a + 4n)).toEqual({ pc: a + 4n, npc: a + 8n });
    // bne,a not taken: the delay slot is annulled.
    expect(resumeAfterStep(0x32800010, a, slot, slot + 8n, a + 4n)).toEqual({ pc: a + 8n, npc: a + 12n });
    // Taken: re-based target; ba,a annuls even when taken.
    expect(resumeAfterStep(0x12800010, a, slot, slot + 0x40n, a + 4n)).toEqual({ pc: a + 4n, npc: a + 0x40n });
    expect(resumeAfterStep(0x30800010, a, slot, slot + 0x40n, a + 4n)).toEqual({ pc: a + 0x40n, npc: a + 0x44n });
    // BPr is re-based too (Linux's mask misses it).
    expect(resumeAfterStep(0x02ca0010, a, slot, slot + 0x40n, a + 4n)).toEqual({ pc: a + 4n, npc: a + 0x40n });
    // call: re-based, %o7 = addr. jmpl: absolute, rd = addr.
    expect(resumeAfterStep(0x40000010, a, slot, slot + 0x40n, a + 4n)).toEqual({ pc: a + 4n, npc: a + 0x40n, link: 15 });
    expect(resumeAfterStep(0x9fc06020, a, slot, 0x10a20n, a + 4n)).toEqual({ pc: a + 4n, npc: 0x10a20n, link: 15 });
    // A plain instruction in a delay slot resumes at the pending target (the hit's NPC).
    expect(resumeAfterStep(INC_O0, a, slot, slot + 8n, 0x20000n)).toEqual({ pc: 0x20000n, npc: 0x20004n });
  });

  it('kretprobe hooks: %o7 + 8 is the return address, %o7 = trampoline − 8; frameSp unbiases %sp', () => {
    const regs = new Map<number, bigint>([
      [R.O7, 0x10000n],
      [R.SP, 0x7fff0000n - 2047n],
    ]);
    const engine = { regRead: (id: number) => regs.get(id)!, regWrite: (id: number, v: bigint) => void regs.set(id, v) } as unknown as Engine;
    const cpu = { engine, mem: undefined as never };
    expect(pa.hijackReturn(cpu, 0x20000n)).toBe(0x10008n);
    expect(regs.get(R.O7)).toBe(0x20000n - 8n);
    expect(pa.frameSp(cpu)).toBe(0x7fff0000n);
  });

  it('differential: DCTIs with their delay slot, three condition-code/register states', () => {
    for (const [w, text] of DCTIS) expectSame(differential([w, INC_O0], X, X), text);
    // The usual epilogue: ret; restore (the delay slot changes windows).
    expectSame(differential([0x81c7e008, 0x81e80000], X, X), 'ret; restore');
    expectSame(differential([0x40000010, 0x9de3bf40], X, X), 'call; save');
  });

  it('differential: plain instructions, and each in the delay slot of a taken, untaken or annulled branch', () => {
    for (const [w, text] of PLAIN) expectSame(differential([w], X, X), text);
    for (const br of [0x12800010, 0x32800010, 0x10800010, 0x40000010, 0x81c3e008, 0x02c88010]) {
      for (const [w, text] of PLAIN) {
        if (br === 0x10800010 && w === 0) continue;
        expectSame(differential([br, w], X, X + 4n), `${text} in the delay slot of 0x${br.toString(16)}`);
      }
    }
  });

  it('differential: every instruction of every function in the guest kernel image', () => {
    const elf = readElfFileSync(join(repoRoot, 'fixtures', 'kernel', 'sparc64', 'vmlinux'));
    // fixtures/kernel/bench_pad.c adds 192 identical padding functions (probe targets for the kprobes
    // benchmark); one of them stands for all, or this walk would take minutes.
    const funcs = elf.functions().filter((f) => !f.name.startsWith('bench_pad_') || f.name === 'bench_pad_00');
    const lo = funcs[0]!.codeAddress;
    let n = 0;
    let refused = 0;
    // The same placement (the words stepped together) twice adds nothing but time: each distinct
    // one once, every occurrence under npm run test:full.
    const seen = new Set<string>();
    for (const f of funcs) {
      const bytes = elf.textBytesAt(f.codeAddress, Number(f.size));
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const wordAt = (off: number): number | undefined => (off >= 0 && off + 4 <= bytes.length ? view.getUint32(off) : undefined);
      for (let off = 0; off + 4 <= bytes.length; off += 4) {
        const w = wordAt(off)!;
        const at = LAYOUT.text.base + (f.codeAddress - lo) + BigInt(off);
        const p = pa.prepareKprobe(at, bytes.subarray(off, off + 4), { hasPostHandler: true });
        if (isRefusal(p)) {
          refused++;
          continue;
        }
        const prev = wordAt(off - 4);
        const inDelaySlot = prev !== undefined && dctiClass(prev) !== undefined;
        const isDcti = dctiClass(w) !== undefined;
        if (inDelaySlot && isDcti) continue; // DCTI couples: not emitted by compilers
        const words: number[] = [];
        let first = at;
        if (inDelaySlot) {
          words.push(prev!);
          first = at - 4n;
        }
        words.push(w);
        if (isDcti && wordAt(off + 4) !== undefined) words.push(wordAt(off + 4)!);
        const branch = inDelaySlot ? prev! : w;
        const bAt = inDelaySlot ? at - 4n : at;
        // A branch back into the placed words (a tight loop) would not end natively.
        if (isa.branchKind(branch) !== undefined && Math.abs(Number(isa.branchDisp(branch))) <= 8) continue;
        if (isa.isCall(branch) && Math.abs(Number(isa.callTarget(bAt, branch) - bAt)) <= 8) continue;
        const afterReturn = inDelaySlot && isa.isReturn(prev!);
        const key = `${words.join(',')}@${at - first}`;
        if (!FULL && seen.has(key)) continue;
        seen.add(key);
        expectSame(differential(words, first, at, first), `${f.name}+0x${off.toString(16)} 0x${w.toString(16)}`, afterReturn);
        n++;
      }
    }
    expect(n).toBeGreaterThan(FULL ? 400 : 300);
    expect(refused).toBeGreaterThan(0); // the entry trampoline's and hypercalls' ta
  }, 240_000); // the longest differential here: ~55 s alone, ~80 s beside other test files on two cores
});
