/**
 * x86 user code runs at CPL 3 and the guest kernel at CPL 0 (arch/x86/cpu-state.ts), as under
 * Linux: the privilege level QEMU keeps in hflags is sampled at every instruction of a program
 * that makes system calls (whose kernel half runs guest kernel code) and takes signals (frames
 * written by the host, sigreturn). Linux's definition: CPL 3 exactly when the PC is below
 * TASK_SIZE. test/kernel/boundary.test.ts checks the consequence (#GP -> SIGSEGV for cli, hlt …).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import type { Engine } from '../../src/emu/unicorn.js';
import type { Mm } from '../../src/mm/mm.js';
import { x86Cpl } from '../../arch/x86/cpu-state.js';
import { fixturePath, repoRoot, supported } from '../helpers.js';

/** How signals-nolibc ends under qemu-user (fixtures/signals.json); syscalls-nolibc exits 0. */
const recorded: Array<{ target: string; name: string; signal?: number }> = JSON.parse(readFileSync(join(repoRoot, 'fixtures', 'signals.json'), 'utf8'));

const TARGETS = (['x86_64', 'i386'] as const).filter((t) => supported.has(t));

for (const target of TARGETS) {
  describe(`CPL on ${target}`, () => {
    for (const prog of ['syscalls-nolibc', 'signals-nolibc']) {
      it(`${prog}: CPL 3 at every user instruction, CPL 0 at every kernel instruction`, () => {
        const m = new Machine({ target, maxInsns: 5_000_000, stdout: () => {}, stderr: () => {}, report: () => {} });
        try {
          const path = fixturePath(target, prog);
          m.spawn(path, [path]);
          const seen = new Set<Engine>();
          const counts = { user: 0, kernel: 0, wrongUser: 0, wrongKernel: 0 };
          const taskSize = m.arch.layout.taskSize;
          for (const mm of (m as unknown as { mms: Set<Mm> }).mms) {
            const e = mm.engine;
            if (seen.has(e)) continue;
            seen.add(e);
            expect(x86Cpl(e)).toBeDefined();
            e.hookCode((pc) => {
              const cpl = x86Cpl(e);
              if (pc < taskSize) {
                counts.user++;
                if (cpl !== 3) counts.wrongUser++;
              } else {
                counts.kernel++;
                if (cpl !== 0) counts.wrongKernel++;
              }
            });
          }
          const r = m.run();
          const sig = recorded.find((q) => q.target === target && q.name === prog)?.signal;
          if (sig !== undefined) expect(r.signal).toBe(sig);
          else expect(r).toMatchObject({ reason: 'exit', status: 0 });
          expect(counts.user).toBeGreaterThan(1000);
          expect(counts.kernel).toBeGreaterThan(100);
          expect(counts).toMatchObject({ wrongUser: 0, wrongKernel: 0 });
        } finally {
          m.close();
        }
      });
    }
  });
}
