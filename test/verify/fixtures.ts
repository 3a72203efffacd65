/**
 * `verify --probes all` on every -nolibc fixture of one target (the -O1 builds under test:full) (one test file per target, so the
 * two test workers share the load). Transparent, with one documented exception: where a system
 * call is stepped out of line (x86-64 `syscall`, sparc64 `ta 0x6d`; i386 `int $0x80` and ppc `sc`
 * are not), the child of fork resumes in its parent's XOL slot, which fork does not copy — the
 * verifier must name exactly that, and the program must be transparent once that one
 * instruction is left unprobed.
 */
import { describe, expect, it } from 'vitest';
import { readElfFileSync } from '../../src/elf/index.js';
import { archFor } from '../../arch/index.js';
import { UprobePlacer } from '../../src/placement/placement.js';
import { verify, verifyText, type VerifyReport } from '../../src/verify/verify.js';
import { corpusFixture, manifest, repoRoot, supported } from '../helpers.js';
import type { Target } from '../../arch/types.js';

/** Targets whose system call instruction is stepped from an XOL slot (see the module comment). */
export const FORK_FROM_SLOT = new Set<Target>(['x86_64', 'sparc64']);

const show = (r: VerifyReport): string => verifyText(r).join('\n');

export function verifyFixturesOn(target: Target): void {
  // The -O1 builds under npm run test:full (UNIPROBE_FULL=1): they double the time for the same code paths.
  const fixtures = manifest.filter((e) => e.target === target && corpusFixture(e.name));
  describe.skipIf(!supported.has(target))(`verify --probes all on every -nolibc fixture, ${target}`, () => {
    it.each(fixtures.map((e) => [e.name, e] as const))('%s', async (_name, e) => {
      const path = `${repoRoot}/fixtures/${e.path}`;
      const r = await verify(path, { args: e.args });
      // Every probe-able instruction was probed and hit exactly as often as it ran.
      expect(r.probes.length).toBeGreaterThan(500);
      expect(r.probes.some((p) => p.hits > 0)).toBe(true);
      // Refusals carry the kernel's errno and a reason.
      for (const x of r.refused) expect(x.reason.length, x.where).toBeGreaterThan(5);
      const forkFromSlot = e.name.startsWith('fork') && FORK_FROM_SLOT.has(target);
      if (!forkFromSlot) {
        expect(r.transparent, show(r)).toBe(true);
        expect(r.probes.filter((p) => p.hits !== p.executed)).toEqual([]);
        return;
      }
      expect(r.transparent).toBe(false);
      expect(r.firstDivergence).toMatch(/thread 2, step 0: the probed run stopped \(.*SIGSEGV.*the PC is in an XOL slot/);
      // The child resumes right after the system call in `fork`: leave that one unprobed.
      const resume = BigInt(/went on at \S+ \((0x[0-9a-f]+)\)/.exec(r.firstDivergence!)![1]!);
      const placer = new UprobePlacer(archFor(target)!, readElfFileSync(path));
      const sc = placer.walk(placer.functionNamed('fork')!).find((w) => w.addr + BigInt(w.length) === resume)!;
      expect(sc).toBeDefined();
      const again = await verify(path, { args: e.args, skip: [`0x${sc.addr.toString(16)}`] });
      expect(again.transparent, show(again)).toBe(true);
      expect(again.skipped.map((x) => x.addr)).toContain(sc.addr);
    });
  });
}
