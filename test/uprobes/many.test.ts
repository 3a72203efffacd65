/**
 * Many uprobes on one program, every target: a probe on every instruction the placement walk finds
 * in fib (libc build: a few thousand probes over many pages of glibc's text).
 *
 * What Linux guarantees, checked here: each mm gets one private copy per probed page (the first
 * install breaks COW — uprobe_write_opcode's FOLL_FORCE copy; later installs on that page write into
 * the same copy, never copy it again), every registered probe's breakpoint is in place, and after
 * unregistering all of them the tree is empty and every page is the page cache's again.
 * The expected page count comes from the ELF (the probes' addresses), not from the engine.
 */
import { describe, expect, it } from 'vitest';
import { readElfFileSync } from '../../src/elf/index.js';
import { archFor } from '../../arch/index.js';
import { UprobePlacer } from '../../src/placement/placement.js';
import type { UprobeConsumer } from '../../src/uprobes/index.js';
import { entry, fixtureFile, TARGETS, uprobeMachine } from './harness.js';
import type { Target } from '../../arch/types.js';

/** Enough probes to split the tree's runs many times and to cover dozens of pages. */
const MAX_PROBES = 3000;

describe.each(TARGETS)('many uprobes on %s', (target: Target) => {
  it('one private page copy per probed page, every breakpoint in place, all gone after unregister', async () => {
    const e = entry(target, 'fib');
    const path = fixtureFile(e);
    const elf = readElfFileSync(path);
    const arch = archFor(target)!;
    const placer = new UprobePlacer(arch, elf);
    const sites: Array<{ vaddr: bigint; off: bigint }> = [];
    for (const f of placer.functions) {
      for (const w of placer.walk(f)) {
        const off = elf.vaddrToOffset(w.addr);
        if (!w.data && off !== undefined && sites.length < MAX_PROBES) sites.push({ vaddr: w.addr, off });
      }
    }
    expect(sites.length).toBeGreaterThan(1000);
    const um = uprobeMachine(target);
    try {
      um.spawn(e);
      const mm = um.m.processes[0]!.mm;
      const inode = um.inode(path);
      const privateBefore = mm.privatePageCount();
      const uc: UprobeConsumer = { handler: () => 0 };
      const page = BigInt(mm.pageSize);
      const ok: typeof sites = [];
      const firstFrame = new Map<bigint, unknown>();
      await um.m.kernelCall('reg', async (t) => {
        for (const s of sites) {
          if ((await um.up.register(t, inode, s.off, uc)) !== 0) continue;
          ok.push(s);
          // The page keeps the copy its first probe made.
          const p = s.vaddr / page;
          if (!firstFrame.has(p)) firstFrame.set(p, mm.frameAt(s.vaddr));
          else expect(mm.frameAt(s.vaddr)).toBe(firstFrame.get(p));
        }
      });
      // Refusals (an instruction the arch cannot probe) are few; most probes register.
      expect(ok.length).toBeGreaterThan(sites.length * 0.9);
      expect(um.up.list()).toHaveLength(ok.length);
      const swbp = [...um.up.arch.swbp];
      for (const s of ok) expect([...mm.read(s.vaddr, swbp.length)]).toEqual(swbp);
      const pages = new Set(ok.map((s) => s.vaddr / page));
      expect(pages.size).toBeGreaterThan(1);
      expect(mm.privatePageCount() - privateBefore).toBe(pages.size);
      await um.m.kernelCall('unreg', async (t) => {
        for (const s of ok) await um.up.unregister(t, inode, s.off, uc);
      });
      expect(um.up.list()).toHaveLength(0);
      expect(um.up.tree.size).toBe(0);
      // Every restored page equals the file again and is mapped back from the page cache.
      expect(mm.privatePageCount()).toBe(privateBefore);
      for (const s of ok) expect([...mm.read(s.vaddr, swbp.length)]).toEqual([...inode.read(Number(s.off), swbp.length)]);
    } finally {
      um.close();
    }
  });
});
