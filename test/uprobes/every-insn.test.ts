/**
 * A uprobe on every instruction of every function of several fixture programs, per target: the
 * program's output and status are unchanged, and every probe's hit count equals an independent
 * ground truth (a one-address UC_HOOK_CODE count on an unprobed run). Instructions the arch
 * refuses are allowed only with an errno and a reason, and are listed.
 *
 * This exercises every emulation class (x86 branches, NOPs, push; ppc branches; sparc nop), the
 * XOL step with its fixups (RIP-relative through the scratch register, call return addresses,
 * sparc delay slots), slot reuse between probes, and XOL slots being rewritten between runs.
 */
import { describe, expect, it } from 'vitest';
import { readElfFileSync } from '../../src/elf/index.js';
import { probeArchFor } from '../../arch/index.js';
import { entry, fixtureFile, groundTruth, TARGETS, uprobeMachine } from './harness.js';
import type { UprobeConsumer } from '../../src/uprobes/index.js';
import type { Target } from '../../arch/types.js';

const PROGRAMS = ['fib-nolibc', 'riprel-nolibc', 'fnptr-nolibc'];

/** Instruction starts of every function (original bytes from the file), with their file offsets. */
function instructions(target: Target, path: string): Array<{ vaddr: bigint; off: bigint; fn: string }> {
  const elf = readElfFileSync(path);
  const um = uprobeMachine(target);
  const decode = probeArchFor(um.m.arch);
  um.close();
  const out: Array<{ vaddr: bigint; off: bigint; fn: string }> = [];
  const seen = new Set<bigint>();
  for (const f of elf.functions()) {
    if (f.size === 0n) continue;
    let a = f.codeAddress;
    const end = f.codeAddress + f.size;
    while (a < end) {
      const bytes = elf.textBytesAt(a, Math.min(decode.maxInsnLength, Number(end - a)));
      const insn = decode.decode(a, bytes);
      const len = insn?.length ?? 4;
      const off = elf.vaddrToOffset(a);
      if (off !== undefined && !seen.has(a)) {
        seen.add(a);
        out.push({ vaddr: a, off, fn: f.name });
      }
      a += BigInt(len);
    }
  }
  return out;
}

describe.each(TARGETS)('a uprobe on every instruction on %s', (target: Target) => {
  it.each(PROGRAMS)('%s: output unchanged, hits = UC_HOOK_CODE counts', async (name) => {
    const e = entry(target, name);
    const path = fixtureFile(e);
    // Only instructions the unprobed run executed: a word it never ran may be data in the text
    // (ppc64 inline jump tables after bctr), and a breakpoint there would corrupt the data, in
    // Linux as here. Never-run instructions have nothing to count anyway.
    const all = instructions(target, path);
    const ran = await groundTruth(target, e, all.map((i) => i.vaddr));
    const insns = all.filter((i) => ran.get(i.vaddr)! > 0);
    const um = uprobeMachine(target);
    try {
      const inode = um.inode(path);
      const hits = new Map<bigint, number>();
      const refused: string[] = [];
      const probed: bigint[] = [];
      // Spawned first: registration installs into the live mm and so reports the arch's refusal
      // (Linux too: uprobe_mmap ignores install errors; a probe registered before any mm maps the
      // file returns 0 and simply never arms where the instruction cannot be probed).
      um.spawn(e);
      await um.m.kernelCall('reg-all', async (t) => {
        for (const i of insns) {
          const uc: UprobeConsumer = { handler: (_c, regs) => (hits.set(regs.ip, (hits.get(regs.ip) ?? 0) + 1), 0) };
          const rc = await um.up.register(t, inode, i.off, uc);
          if (rc === 0) probed.push(i.vaddr);
          else refused.push(`${i.fn}+0x${(i.vaddr - insns.find((x) => x.fn === i.fn)!.vaddr).toString(16)}: ${rc} ${um.up.lastRefusal ?? ''}`);
        }
      });
      const r = await um.m.runAsync();
      expect(um.reports).toEqual([]);
      expect(r.status).toBe(e.exit);
      expect(um.out.join('')).toBe(e.stdout);
      // Refusals are the arch's, each with an errno and a reason.
      for (const line of refused) expect(line).toMatch(/: -\d+ .+/);
      expect(probed.length).toBeGreaterThan(insns.length * 0.9);
      const truth = ran;
      const diffs = probed.filter((a) => (hits.get(a) ?? 0) !== truth.get(a)).map((a) => `0x${a.toString(16)}: hit ${hits.get(a) ?? 0}, executed ${truth.get(a)}`);
      expect(diffs).toEqual([]);
    } finally {
      um.close();
    }
  });
});
