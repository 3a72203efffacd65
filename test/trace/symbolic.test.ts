/**
 * Uprobes by symbol (`PATH:SYMBOL[+OFFS]`, src/trace/symbolic.ts) against the kernel's numeric
 * form, with the offset computed independently by binutils readelf: the symbol's value (plus the
 * ppc64 ELFv2 local entry readelf prints) mapped through the PT_LOAD that contains it. On every
 * target the two forms must hit exactly as often, at the same place, through the CLI.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readElfFileSync } from '../../src/elf/index.js';
import { isProbeError, resolveSymbolicUprobe } from '../../src/trace/symbolic.js';
import { readelfFor, runReadelf } from '../elf/readelf.js';
import { repoRoot, supported } from '../helpers.js';
import type { Target } from '../../arch/types.js';

const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as const).filter((t) => supported.has(t));
const rel = (t: Target): string => `fixtures/${t}/fib-nolibc`;

/** File offset of `fib` (+ `plus`) from readelf alone. */
function readelfOffset(t: Target, symbol: string, plus = 0n): bigint {
  const tool = readelfFor(t);
  if (!tool) throw new Error('binutils readelf is needed (apt-get install binutils)');
  const r = runReadelf(tool, join(repoRoot, rel(t)));
  const s = r.symbols.find((x) => x.name === symbol && x.type === 'FUNC')!;
  const local = /<localentry>: (\d+)/.exec(s.extra ?? '');
  const vaddr = s.value + BigInt(local ? Number(local[1]) : 0) + plus;
  const load = r.phdrs.find((p) => p.type === 'LOAD' && vaddr >= p.vaddr && vaddr < p.vaddr + p.filesz)!;
  return load.offset + (vaddr - load.vaddr);
}

function trace(t: Target, def: string): { status: number | null; lines: string[]; stderr: string } {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'uniprobe.mjs'), 'run', rel(t), '-e', def], { cwd: repoRoot, encoding: 'utf8' });
  const lines = r.stderr.split('\n').filter((l) => /: p_|: fibsym:|: fibnum:/.test(l));
  return { status: r.status, lines, stderr: r.stderr };
}

describe.each(TARGETS)('uprobes by symbol on %s', (t) => {
  it('PATH:fib resolves to the offset readelf gives (ppc64 ELFv2: the local entry)', () => {
    const r = resolveSymbolicUprobe(`p ${rel(t)}:fib`, (p) => readElfFileSync(join(repoRoot, p)));
    if (isProbeError(r)) throw new Error(r.message);
    expect(r.resolved?.fileOffset).toBe(readelfOffset(t, 'fib'));
    expect(r.line).toBe(`p:p_fib_nolibc_fib ${rel(t)}:0x${readelfOffset(t, 'fib').toString(16)}`);
  });

  it('hits exactly as often as the numeric form, at the same address, with the same arguments', () => {
    const sym = trace(t, `p:fibsym ${rel(t)}:fib n=$arg1`);
    const num = trace(t, `p:fibnum ${rel(t)}:0x${readelfOffset(t, 'fib').toString(16)} n=$arg1`);
    expect(sym.status).toBe(55);
    expect(num.status).toBe(55);
    expect(sym.lines.length).toBeGreaterThan(10);
    expect(sym.lines.map((l) => l.replace('fibsym', 'X'))).toEqual(num.lines.map((l) => l.replace('fibnum', 'X')));
  });

  it('+OFFS and %return are carried over; an unknown symbol is refused with the caret under it', () => {
    const elf = (p: string) => readElfFileSync(join(repoRoot, p));
    const r = resolveSymbolicUprobe(`r ${rel(t)}:fib%return`, elf);
    if (isProbeError(r)) throw new Error(r.message);
    expect(r.line).toMatch(/^r:r_fib_nolibc_fib \S+:0x[0-9a-f]+%return$/);
    const plus4 = resolveSymbolicUprobe(`p:x ${rel(t)}:fib+4 a=%sp`, elf);
    if (isProbeError(plus4)) throw new Error(plus4.message);
    expect(plus4.line).toBe(`p:x ${rel(t)}:0x${readelfOffset(t, 'fib', 4n).toString(16)} a=%sp`);
    const bad = resolveSymbolicUprobe(`p ${rel(t)}:nosuch`, elf);
    expect(isProbeError(bad) && bad.errno).toBe(22);
    if (isProbeError(bad)) expect(bad.command.slice(bad.position)).toBe('nosuch');
  });
});

describe('a kprobe on a function of the program', () => {
  it("keeps the kernel's message and says how to write the uprobe", () => {
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'uniprobe.mjs'), 'run', 'fixtures/x86_64/fib-nolibc', '-e', 'p fib'], { cwd: repoRoot, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('Invalid probed address or symbol');
    expect(r.stderr).toContain('a uprobe on it is written fixtures/x86_64/fib-nolibc:fib');
  });
});

describe('warnings before the run for uprobes the kernel accepts but that cannot work', () => {
  it('a uprobe in the middle of an instruction: one line naming the instruction it corrupts', () => {
    // fib+0 is `push %r12` (41 54), per readelf's fib and objdump: offset +1 is inside it.
    const off = readelfOffset('x86_64', 'fib', 1n);
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'uniprobe.mjs'), 'run', rel('x86_64'), '-e', `p ${rel('x86_64')}:0x${off.toString(16)}`], { cwd: repoRoot, encoding: 'utf8' });
    expect(r.stderr).toContain(`uniprobe: warning: ${rel('x86_64')}:0x${off.toString(16)} (fib+0x1): mid-instruction`);
    expect(r.stderr).toContain('corrupts the instruction at fib+0x0');
  });

  it('none for a uprobe on an instruction boundary', () => {
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'uniprobe.mjs'), 'run', rel('x86_64'), '-e', `p ${rel('x86_64')}:fib`], { cwd: repoRoot, encoding: 'utf8' });
    expect(r.status).toBe(55);
    expect(r.stderr).not.toContain('warning');
  });
});
