/**
 * The placement map agrees with registration, on every target: probes placed at random addresses
 * (instruction starts, bytes in the middle of instructions, misaligned words, kernel text outside
 * any probe-able function) are registered for real, and
 *   "explain says refused with errno E" ⇔ registration returns -E, and
 *   the mode explain reports is the mode the registered probe runs in.
 * uprobes: on a fixture program with a live process (registration installs into it, so the arch's
 * analysis runs). kprobes: on the target's guest kernel.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readElfFileSync } from '../../src/elf/index.js';
import { Kprobe } from '../../src/kprobes/kprobe.js';
import { Kprobes } from '../../src/kprobes/kprobes.js';
import { KprobePlacer, UprobePlacer, type Verdict } from '../../src/placement/placement.js';
import { ensureListings } from '../../src/placement/explain.js';
import { Machine } from '../../src/kernel/machine.js';
import { entry, fixtureFile, TARGETS, uprobeMachine } from '../uprobes/harness.js';
import type { Target } from '../../arch/types.js';
import { archFor } from '../../arch/index.js';

const RUNS = 120;

/** A random address: a function, then either one of its instruction starts or any byte in it. */
function addressArb(p: UprobePlacer | KprobePlacer) {
  const fns = p.functions;
  return fc
    .tuple(fc.integer({ min: 0, max: fns.length - 1 }), fc.boolean(), fc.nat())
    .map(([fi, atStart, k]) => {
      const f = fns[fi]!;
      if (atStart) {
        const starts = p.walk(f);
        return starts[k % starts.length]!.addr;
      }
      return f.start + BigInt(k % Number(f.size));
    });
}

// The trap mode: registration prepares the breakpoint; optimization comes later (optprobes.test.ts).
const outcome = (v: Verdict): string => (v.ok ? `ok ${v.trapMode ?? v.mode}` : `-${v.errno}`);

describe.each(TARGETS)('explain agrees with registration on %s', (target: Target) => {
  it('uprobes at random addresses of fib-nolibc and fnptr-nolibc: same refusal errno, same mode', async () => {
    await ensureListings();
    const seen = new Set<string>();
    for (const name of ['fib-nolibc', 'fnptr-nolibc']) {
      const e = entry(target, name);
      const path = fixtureFile(e);
      const um = uprobeMachine(target);
      try {
        const placer = new UprobePlacer(um.m.arch, readElfFileSync(path));
        const inode = um.inode(path);
        um.spawn(e);

        await fc.assert(
          fc.asyncProperty(addressArb(placer), async (addr) => {
            const want = placer.verdictAt(addr);
            const off = placer.elf.vaddrToOffset(addr)!;
            const uc = { handler: () => 0 };
            const got = await um.m.kernelCall<string>('reg', async (t) => {
              const rc = await um.up.register(t, inode, off, uc);
              if (rc !== 0) return `${rc}`;
              const u = um.up.list().find((x) => x.offset === off);
              await um.up.unregister(t, inode, off, uc);
              return `ok ${u?.prepared?.mode}`;
            });
            seen.add(got.split(' ')[0]!);
            expect(got, `${placer.where(addr)} (0x${addr.toString(16)})`).toBe(outcome(want));
          }),
          { numRuns: RUNS, seed: 0x5eed + name.length },
        );
      } finally {
        um.close();
      }
    }
    // The sample reached both sides of the map (x86: mid-instruction bytes that decode to
    // something unprobe-able; fixed width: misaligned offsets, system calls, traps).
    expect(seen.has('ok')).toBe(true);
    expect([...seen].some((o) => o.startsWith('-'))).toBe(true);
  });

  it('kprobes at random guest-kernel addresses: same refusal errno (blacklist, mid-instruction…), same mode', async () => {
    await ensureListings();
    const m = new Machine({ target });
    try {
      const kprobes = new Kprobes(m);
      const placer = new KprobePlacer(kprobes);
      const outcomes = new Set<string>();
      const k = m.kernel;
      // Also addresses anywhere in the text, inside or between functions.
      const anyText = fc.bigInt({ min: k.textStart, max: k.textEnd - 1n });
      await fc.assert(
        fc.asyncProperty(fc.oneof(addressArb(placer), anyText), async (addr) => {
          const want = placer.verdictAt(addr);
          const got = await m.kernelCall<string>('reg', async (t) => {
            const p = new Kprobe({ addr, preHandler: () => 0 });
            const rc = await kprobes.register(t, p);
            if (rc !== 0) return `${rc}`;
            // What a hit does: ppc's emulate-first (try_to_emulate) is an emulation, the slot only its fallback.
            const prep = p.ainsn?.prep;
            const mode = prep?.tryEmulate ? 'emulate' : prep?.mode;
            await kprobes.unregister(t, p);
            return `ok ${mode}`;
          });
          outcomes.add(got);
          expect(got, `${placer.where(addr)} (0x${addr.toString(16)})`).toBe(outcome(want));
        }),
        { numRuns: RUNS * 2, seed: 0xc0de },
      );
      // The sample reached both sides of the map.
      expect([...outcomes].some((o) => o.startsWith('ok'))).toBe(true);
      expect([...outcomes].some((o) => o.startsWith('-'))).toBe(true);
    } finally {
      m.close();
    }
  });

  it('documented refusals: blacklisted entry text (-EINVAL), a kernel mid-instruction address; every uprobe refusal in four fixtures has a registration errno and a reason, a breakpoint word is -ENOTSUPP', async () => {
    const m = new Machine({ target });
    try {
      const kprobes = new Kprobes(m);
      const placer = new KprobePlacer(kprobes);
      const entrySyscall = placer.functionNamed('entry_syscall')!;
      const bl = placer.verdictAt(entrySyscall.start);
      expect(bl).toMatchObject({ ok: false, errno: 22 });
      expect((bl as { reason: string }).reason).toMatch(/^blacklisted/);
      const ksys = placer.functionNamed('ksys_write')!;
      const second = placer.walk(ksys)[1]!;
      const mid = placer.verdictAt(second.addr + 1n);
      expect(mid.ok).toBe(false);
      // Linux: -EILSEQ for a non-boundary (sparc64's back-end refuses the misaligned word the same).
      if (!mid.ok && mid.errno !== 84) expect(mid.errno).toBe(22);
      expect(placer.verdictAt(ksys.start).ok).toBe(true);
    } finally {
      m.close();
    }
    // Every uprobe refusal in the fixtures names an errno registration can return and a reason;
    // a word that is the arch's breakpoint itself is refused as a trap (is_trap_insn, -ENOTSUPP).
    for (const name of ['fib-nolibc', 'fnptr-nolibc', 'riprel-nolibc', 'fork-nolibc']) {
      const e = entry(target, name);
      const um = uprobeMachine(target);
      try {
        const placer = new UprobePlacer(um.m.arch, readElfFileSync(fixtureFile(e)));
        for (const f of placer.functions) {
          for (const r of placer.map(f)) {
            const v = r.verdict;
            if (v.ok) continue;
            expect([5, 8, 22, 524]).toContain(v.errno);
            expect(v.reason.length).toBeGreaterThan(5);
            if (placer.up.swbp.every((b, i) => b === r.bytes[i])) {
              // The program's own breakpoint word (ppc _start's `trap`): registration says so too.
              expect(v.errno).toBe(524);
              um.spawn(e);
              const off = placer.elf.vaddrToOffset(r.addr)!;
              const rc = await um.m.kernelCall<number>('reg', (t) => um.up.register(t, um.inode(fixtureFile(e)), off, { handler: () => 0 }));
              expect(rc).toBe(-524);
            }
          }
        }
      } finally {
        um.close();
      }
    }
  });
});

describe('data in text', () => {
  it.skipIf(!TARGETS.includes('ppc64'))('ppc64 jumptable: the table words after dispatch\'s bctr are data — the kernel accepts a uprobe there, the map warns, verify does not probe them', async () => {
    await ensureListings();
    const path = fixtureFile(entry('ppc64', 'jumptable-nolibc'));
    const placer = new UprobePlacer(archFor('ppc64')!, readElfFileSync(path));
    const rows = placer.map(placer.functionNamed('dispatch')!);
    const bctr = rows.findIndex((r) => r.text === 'bctr');
    expect(bctr).toBeGreaterThan(0);
    // gcc's table: one word per case (10 cases + default share the words of the switch).
    const table = rows.slice(bctr + 1).filter((r) => r.data);
    expect(table.length).toBeGreaterThanOrEqual(10);
    for (const r of table) {
      expect(r.verdict.ok).toBe(true);
      expect(r.warning).toMatch(/data in text/);
    }
    const { verify } = await import('../../src/verify/verify.js');
    const report = await verify(path, { probes: ['dispatch'] });
    expect(report.transparent).toBe(true);
    expect(report.skipped.map((x) => x.addr).sort()).toEqual(table.map((r) => r.addr).sort());
  });
});
