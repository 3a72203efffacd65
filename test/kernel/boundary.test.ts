/**
 * The user/kernel boundary on every target (fixtures/src/boundary.c): a user program that loads
 * from, stores into or jumps to the guest kernel's text, loads through NULL (on ppc64 and sparc64
 * the kernel image's alias lies at 0), runs the guest kernel's hypercall trap (x86 `int $0x81`),
 * passes kernel pointers to system calls, or makes a read-only file's shared mapping writable gets
 * what Linux gives — qemu-user's recording in fixtures/boundary.json (tools/record-boundary.py):
 * the same stdout and the same signal or status. Beyond the recording: the fault address is the
 * kernel address itself, the kernel text is unchanged, the page cache keeps the file's bytes.
 * Privileged and I/O instructions (priv-*): x86 #GP -> SIGSEGV (user code at CPL 3), ppc privileged program check and
 * sparc64 privileged_opcode -> SIGILL.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Target } from '../../arch/types.js';
import { Machine } from '../../src/kernel/machine.js';
import { repoRoot, supported } from '../helpers.js';

interface Recorded {
  target: Target;
  mode: string;
  path: string;
  stdout: string;
  signal?: number;
  status?: number;
}
const recordings: Recorded[] = JSON.parse(readFileSync(join(repoRoot, 'fixtures', 'boundary.json'), 'utf8'));
const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as const).filter((t) => supported.has(t));
/** Where boundary.c aims: the guest kernel's text base on each target. */
const KERNEL_TEXT: Record<Target, bigint> = {
  x86_64: 0xffffffff81000000n,
  i386: 0xc1000000n,
  ppc32: 0xc0000000n,
  ppc64: 0xc000000000000000n,
  sparc64: 0xfffff80000000000n,
};

function run(target: Target, mode: string) {
  const path = join(repoRoot, 'fixtures', target, 'boundary-nolibc');
  const out: Buffer[] = [];
  const reports: string[] = [];
  // Bounded: a privileged instruction the CPU lets through must not leave the guest spinning.
  const m = new Machine({ target, maxInsns: 2_000_000, stdout: (b) => out.push(Buffer.from(b)), stderr: () => {}, report: (l) => reports.push(l) });
  try {
    const text = m.kernel.mem.bytes.slice();
    m.spawn(path, [path, mode]);
    const r = m.run();
    const textUnchanged = Buffer.compare(Buffer.from(text), Buffer.from(m.kernel.mem.bytes)) === 0;
    const cache = m.inodeFor(path).page(0)!.bytes(m.arch.layout.pageSize).slice(0, 4);
    return { ...r, stdout: Buffer.concat(out).toString('utf8'), reports, textUnchanged, cache };
  } finally {
    m.close();
  }
}

for (const target of TARGETS) {
  describe(`user/kernel boundary on ${target}`, () => {
    for (const q of recordings.filter((e) => e.target === target)) {
      it(`${q.mode}: ${q.signal !== undefined ? `signal ${q.signal}` : `status ${q.status}`}, as under qemu-user`, () => {
        const r = run(target, q.mode);
        expect(r.stdout).toBe(q.stdout);
        if (q.signal !== undefined) {
          expect(r.reason).toBe('signal');
          expect(r.signal).toBe(q.signal);
          expect(r.status).toBe(128 + q.signal);
          expect(r.reports).toHaveLength(1);
          if (q.mode.endsWith('-kernel')) expect(r.reports[0]).toMatch(new RegExp(`address 0x${KERNEL_TEXT[target].toString(16)}\\b`));
          if (q.mode === 'null-read') expect(r.reports[0]).toMatch(/address 0x0\b/);
          // x86 user code runs at CPL 3 (arch/x86/cpu-state.ts): the CPU itself raises #GP.
          if ((target === 'x86_64' || target === 'i386') && q.mode.startsWith('priv-')) expect(r.reports[0]).toMatch(/general protection fault/);
        } else {
          expect(r.reason).toBe('exit');
          expect(r.status).toBe(q.status);
        }
        expect(r.textUnchanged).toBe(true);
        // The private copy written in `mprotect` never reaches the page cache.
        expect([...r.cache]).toEqual([0x7f, 0x45, 0x4c, 0x46]);
      });
    }
  });
}

/**
 * What a SIGSEGV handler sees for each privileged x86 instruction (fixtures/src/gpf.c): si_code
 * SI_KERNEL, si_addr 0, the PC on the instruction, and the handler's return (rt_sigreturn, back
 * at CPL 3) going on after it; then SIGFPE FPE_INTDIV at the PC for two #DE in a row (a
 * contributory fault after another: QEMU's double-fault logic must not see the earlier ones).
 * Compared with qemu-user's recording (tools/record-gpf.py).
 */
const gpf: Array<{ target: Target; path: string; stdout: string; status?: number; signal?: number }> = JSON.parse(
  readFileSync(join(repoRoot, 'fixtures', 'gpf.json'), 'utf8'),
);
for (const q of gpf.filter((e) => supported.has(e.target))) {
  it(`${q.target}: a handler sees #GP's siginfo for cli, sti, hlt, rdmsr, wrmsr, mov %cr3, lgdt and #DE's for two divisions by 0, as under qemu-user`, () => {
    const path = join(repoRoot, 'fixtures', q.path);
    const out: Buffer[] = [];
    const m = new Machine({ target: q.target, maxInsns: 2_000_000, stdout: (b) => out.push(Buffer.from(b)), stderr: () => {}, report: () => {} });
    try {
      m.spawn(path, [path]);
      const r = m.run();
      expect(Buffer.concat(out).toString('utf8')).toBe(q.stdout);
      expect(r).toMatchObject(q.signal !== undefined ? { reason: 'signal', signal: q.signal } : { reason: 'exit', status: q.status });
    } finally {
      m.close();
    }
  });
}
