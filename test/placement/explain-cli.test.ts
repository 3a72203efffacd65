/**
 * `uniprobe explain` end to end: the text table and the JSON document for a user function and a
 * guest-kernel function, values Linux defines checked (int3 as x86's breakpoint and step trap,
 * -EINVAL for blacklisted entry text), and the error shapes.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers.js';

const bin = join(repoRoot, 'bin', 'uniprobe.mjs');

function uniprobe(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Row {
  addr: string;
  where: string;
  fileOffset?: string;
  bytes: string;
  insn: string;
  probe: string;
  allowed: boolean;
  mode?: string;
  slot?: string | null;
  cost?: { slotInsns: number; crossings: number };
  errno?: number;
  errname?: string;
  reason?: string;
}

describe('uniprobe explain', () => {
  it('x86_64 fib: JSON rows for every instruction; push/call/jcc/ret emulated (1 crossing), others stepped from a slot ending in int3', () => {
    const r = uniprobe('explain', 'fixtures/x86_64/fib-nolibc', 'fib', '--format', 'json');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as { target: string; probe: string; functions: Array<{ name: string; addr: string; insns: Row[] }> };
    expect(doc.target).toBe('x86_64');
    expect(doc.probe).toBe('uprobe');
    const [fib] = doc.functions;
    expect(fib!.name).toBe('fib');
    const rows = fib!.insns;
    expect(rows[0]!.addr).toBe(fib!.addr);
    // Rows tile the function: each starts where the previous one ended.
    for (let i = 1; i < rows.length; i++) {
      const prev = rows[i - 1]!;
      expect(BigInt(rows[i]!.addr)).toBe(BigInt(prev.addr) + BigInt(prev.bytes.split(' ').length));
    }
    for (const row of rows) {
      expect(row.allowed).toBe(true);
      if (/^(push|call|ret|j)/.test(row.insn)) {
        expect(row.mode, row.insn).toBe('emulate');
        expect(row.cost).toEqual({ slotInsns: 0, crossings: 1 });
        expect(row.slot).toBeNull();
      } else {
        expect(row.mode, row.insn).toBe('step');
        // The copy, then int3 (0xcc): 2 slot instructions, 2 traps.
        expect(row.slot).toBe(`${row.bytes} cc`);
        expect(row.cost).toEqual({ slotInsns: 2, crossings: 2 });
      }
    }
  });

  it('text table: a header per function, one line per instruction, a summary; mnemonics on fixed-width targets too', () => {
    const r = uniprobe('explain', 'fixtures/ppc32/fib-nolibc', 'fib', '_start');
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^# uprobes on fixtures\/ppc32\/fib-nolibc \(ppc32\)/);
    expect(lines.some((l) => /^fib @ 0x[0-9a-f]+, \d+ bytes$/.test(l))).toBe(true);
    // stwu is carried out at the hit as emulate_step does (one crossing, no slot); cmpwi is stepped.
    expect(lines.some((l) => /fib\+0x0\s+94 21 ff e0\s+stwu r1, -0x20\(r1\)\s+emulate\s+1 \/ 0\s*$/.test(l))).toBe(true);
    expect(lines.some((l) => /fib\+0x4\s+2c 03 00 01\s+cmpwi r3, 1\s+step\s+2 \/ 2\s+slot: 2c 03 00 01 7f e0 00 08/.test(l))).toBe(true);
    // _start's own `trap` after exit: the program's breakpoint, refused as the kernel does.
    expect(lines.some((l) => /7f e0 00 08\s+trap\s+refused -ENOTSUPP.*is_trap_insn/.test(l))).toBe(true);
    expect(lines.filter((l) => /^\s+\d+ instructions: /.test(l))).toHaveLength(2);
  });

  it('--kernel: kprobes on the guest kernel; ksys_write optimizes (boosts as a trap, a post handler makes it a step), a call does not; entry text is blacklisted (-EINVAL)', () => {
    const r = uniprobe('explain', 'fixtures/x86_64/fib-nolibc', '--kernel', 'ksys_write', 'entry_syscall', '--format', 'json');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as { probe: string; functions: Array<{ name: string; insns: Array<Row & { modeWithPostHandler?: string }> }> };
    expect(doc.probe).toBe('kprobe');
    const [ksys, entry] = doc.functions;
    // Jump-optimized once the optimizer ran; a boosted trap before (and a step with a post handler).
    expect(ksys!.insns[0]).toMatchObject({ insn: 'push rbp', allowed: true, mode: 'optimize', trapMode: 'boost', modeWithPostHandler: 'step', cost: { crossings: 1 } });
    // The `call` cannot run from a detour (not boostable): emulated trap, with Linux's reason.
    const call = ksys!.insns.find((r) => r.insn.startsWith('call'))! as Row & { notOptimized?: { errname: string; reason: string } };
    expect(call).toMatchObject({ mode: 'emulate', notOptimized: { errname: 'EINVAL' } });
    expect(call.notOptimized!.reason).toMatch(/not boostable/);
    // A boosted slot: the copy and a jmp back (e9 rel32).
    expect(ksys!.insns[0]!.slot).toMatch(/^55 e9( [0-9a-f]{2}){4}$/);
    for (const row of entry!.insns) expect(row).toMatchObject({ allowed: false, errno: -22, errname: 'EINVAL', reason: 'blacklisted: entry text' });
  });

  it('errors: an unknown function and a missing file are one error line (status 1); a bad format is usage (status 2)', () => {
    const a = uniprobe('explain', 'fixtures/x86_64/fib-nolibc', 'nosuch');
    expect(a.status).toBe(1);
    expect(a.stderr).toBe('uniprobe: error: fixtures/x86_64/fib-nolibc: no function named nosuch\n');
    const b = uniprobe('explain', 'fixtures/x86_64/missing');
    expect(b.status).toBe(1);
    expect(b.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(b.stderr).toMatch(/^uniprobe: error: .*missing/);
    const c = uniprobe('explain', 'fixtures/x86_64/fib-nolibc', '--format', 'xml');
    expect(c.status).toBe(2);
  });
});
