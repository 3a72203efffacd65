/**
 * The scheduler and how runs end: the same seed replays a run exactly (instruction count, quanta,
 * output); other seeds give other interleavings but the same output; the instruction budget stops
 * a runaway guest with status 124; a fault kills the process with the signal Linux sends, and a
 * shell sees 128 + N (SIGSEGV 11 -> 139, SIGILL 4 -> 132, SIGABRT 6 -> 134).
 *
 * Fixtures: fork / fork-nolibc (manifest.json), spin-nolibc, segv-nolibc, sigill-nolibc, abort
 * (signals.json: qemu-user's recording of the same deaths). Faulting PCs are checked against the
 * disassembly of each binary (objdump -d, quoted below), located through its symbol table.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readElfFileSync } from '../../src/elf/index.js';
import type { Target } from '../../arch/types.js';
import { manifest, repoRoot, runProgram, supported } from '../helpers.js';

const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as const).filter((t) => supported.has(t));
const fixture = (t: Target, name: string): string => join(repoRoot, 'fixtures', t, name);

interface Signalled {
  target: Target;
  name: string;
  stdout: string;
  signal: number;
}
const signals: Signalled[] = JSON.parse(readFileSync(join(repoRoot, 'fixtures', 'signals.json'), 'utf8'));
const recorded = (t: Target, name: string): Signalled => {
  const e = signals.find((s) => s.target === t && s.name === name);
  if (!e) throw new Error(`no qemu-user recording of ${t}/${name} in fixtures/signals.json`);
  return e;
};

/** Linux signal numbers (the same on every target for these). */
const SIGILL = 4;
const SIGABRT = 6;
const SIGKILL = 9;
const SIGSEGV = 11;

function symbol(path: string, name: string): bigint {
  const s = readElfFileSync(path).symbols.find((x) => x.name === name);
  if (!s) throw new Error(`${path}: no symbol ${name}`);
  return s.codeAddress;
}

describe.each(TARGETS)('scheduling on %s', (target) => {
  const forks = ['fork', 'fork-nolibc'];

  it.each(forks)('%s: the same seed on 2 vCPUs replays the run exactly', (name) => {
    const entry = manifest.find((e) => e.target === target && e.name === name)!;
    // A short quantum makes many scheduling decisions, so a replay has something to get wrong.
    // (A task alone runs in long slices: the decisions are made while parent and child both run.)
    const opts = { seed: 1234, cpus: 2, quantum: 10 };
    const a = runProgram(target, fixture(target, name), [], opts);
    const b = runProgram(target, fixture(target, name), [], opts);
    expect(a.stdout).toBe(entry.stdout);
    expect(a.status).toBe(entry.exit);
    expect(a.quanta).toBeGreaterThan(10);
    expect({ insns: b.insns, quanta: b.quanta, stdout: b.stdout, status: b.status, reports: b.reports }).toEqual({
      insns: a.insns,
      quanta: a.quanta,
      stdout: a.stdout,
      status: a.status,
      reports: a.reports,
    });
  });

  it.each(forks)('%s: other seeds interleave differently and print the same', (name) => {
    const entry = manifest.find((e) => e.target === target && e.name === name)!;
    const runs = [1, 2, 3, 4, 5, 99].map((seed) => runProgram(target, fixture(target, name), [], { seed, cpus: 2, quantum: 100 }));
    for (const r of runs) {
      expect(r.reports).toEqual([]);
      expect(r.stdout).toBe(entry.stdout);
      expect(r.status).toBe(entry.exit);
    }
    // Quantum lengths are drawn from the seed: six seeds do not all give the same schedule.
    expect(new Set(runs.map((r) => `${r.insns}/${r.quanta}`)).size).toBeGreaterThan(1);
  });

  it('the instruction budget stops a guest that never exits: status 124 and one report line', () => {
    const maxInsns = 300_000;
    const r = runProgram(target, fixture(target, 'spin-nolibc'), [], { maxInsns, cpus: 2, seed: 3 });
    expect(r.stdout).toBe('spinning\n');
    expect(r.reason).toBe('budget');
    expect(r.status).toBe(124); // timeout(1)'s status for "ran out of time"
    expect(r.signal).toBe(SIGKILL);
    expect(r.insns).toBeGreaterThanOrEqual(maxInsns);
    expect(r.reports).toHaveLength(1);
    expect(r.reports[0]).toMatch(/budget|max-insns/);
    expect(r.reports[0]).toContain(String(maxInsns));
  });

  // On ppc64 and sparc64 the guest kernel image's alias lies at 0 (the CPU drops high address
  // bits: arch/ppc/ppc64.ts, arch/sparc/sparc64.ts); the user/kernel boundary (src/emu/boundary.ts)
  // keeps user mode out of it, so a store through NULL faults there as on every target.
  it('a null-pointer store kills the process with SIGSEGV: 139, address 0 and the store\'s pc', () => {
    const path = fixture(target, 'segv-nolibc');
    // The store in poke() (objdump -d): x86_64 `movl $0x1,(%rdi)` at poke+0; i386 `mov
    // 0x4(%esp),%eax` then `movl $0x1,(%eax)` at poke+4; ppc32/ppc64 `li r9,1` then `stw
    // r9,0(r3)` at poke+4; sparc64 `mov 1,%g1; retl; st %g1,[%o0]` (delay slot) at poke+8.
    const storeOffset: Record<Target, bigint> = { x86_64: 0n, i386: 4n, ppc32: 4n, ppc64: 4n, sparc64: 8n };
    const pc = symbol(path, 'poke') + storeOffset[target];
    const r = runProgram(target, path, []);
    const q = recorded(target, 'segv-nolibc');
    expect(q.signal).toBe(SIGSEGV);
    expect(r.stdout).toBe(q.stdout); // "poking\n", and nothing after the fault
    expect(r.reason).toBe('signal');
    expect(r.signal).toBe(SIGSEGV);
    expect(r.status).toBe(128 + SIGSEGV);
    expect(r.reports).toHaveLength(1);
    const line = r.reports[0]!;
    expect(line).toContain('SIGSEGV');
    expect(line).toMatch(/address 0x0\b/);
    expect(line).toContain(`pc 0x${pc.toString(16)}`);
  });

  it('an illegal instruction kills the process with SIGILL: 132 and the instruction\'s pc', () => {
    const path = fixture(target, 'sigill-nolibc');
    // illegal() starts with the illegal word on every target (objdump -d: x86 `ud2`, ppc
    // `.long 0x0`, sparc64 `illtrap 0`).
    const pc = symbol(path, 'illegal');
    const r = runProgram(target, path, []);
    const q = recorded(target, 'sigill-nolibc');
    expect(q.signal).toBe(SIGILL);
    expect(r.stdout).toBe(q.stdout);
    expect(r.reason).toBe('signal');
    expect(r.signal).toBe(SIGILL);
    expect(r.status).toBe(128 + SIGILL);
    expect(r.reports).toHaveLength(1);
    expect(r.reports[0]).toContain('SIGILL');
    expect(r.reports[0]).toContain(`pc 0x${pc.toString(16)}`);
  });

  it('glibc abort() (tgkill SIGABRT) ends with 134', () => {
    const r = runProgram(target, fixture(target, 'abort'), []);
    const q = recorded(target, 'abort');
    expect(q.signal).toBe(SIGABRT);
    expect(r.stdout).toBe(q.stdout);
    expect(r.reason).toBe('signal');
    expect(r.signal).toBe(SIGABRT);
    expect(r.status).toBe(128 + SIGABRT);
  });
});
