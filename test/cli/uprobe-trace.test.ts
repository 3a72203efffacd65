/**
 * `uniprobe run` with a kprobe on the guest kernel and a uprobe on the program together, every
 * target, through the real command: JSON values against computed truth (fib(n), the bytes the
 * program wrote), and the text form of uprobe lines.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Target } from '../../arch/types.js';
import { manifest, repoRoot, supported } from '../helpers.js';
import { functionSite } from '../trace/elf-sites.js';

const bin = join(repoRoot, 'bin', 'uniprobe.mjs');
const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as Target[]).filter((t) => supported.has(t));
const fib = (n: number): number => (n < 2 ? n : fib(n - 1) + fib(n - 2));

function uniprobe(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.each(TARGETS)('kprobe and uprobe together on %s', (target) => {
  const e = manifest.find((m) => m.target === target && m.name === 'fib-nolibc')!;
  const path = `fixtures/${e.path}`;
  const site = functionSite(join(repoRoot, path), 'fib');
  const place = `${path}:0x${site.offset.toString(16)}`;

  it('json: uretprobe values are fib(n); kretprobe values add up to the bytes written', () => {
    const r = uniprobe(['run', path, '--format', 'json', '-e', `r:fibret ${place} n=$arg1:u32 ret=$retval:u64`, '-e', 'r:wret ksys_write ret=$retval:s64']);
    expect(r.status).toBe(e.exit);
    expect(r.stdout).toBe(e.stdout);
    const events = r.stderr.trimEnd().split('\n').map((l) => JSON.parse(l));
    const fibs = events.filter((x) => x.event === 'uprobes/fibret');
    const writes = events.filter((x) => x.event === 'kprobes/wret');
    expect(fibs.length).toBeGreaterThan(10);
    for (const x of fibs) {
      expect(Number(x.args.ret)).toBe(fib(Number(x.args.n)));
      expect(x.kind).toBe('r');
      expect(BigInt(x.ip)).toBeLessThan(0x1_0000_0000_0000n);
    }
    expect(writes.reduce((s, x) => s + Number(x.args.ret), 0)).toBe(Buffer.byteLength(e.stdout));
  });

  it('text: (0xIP) for a uprobe, (0xRET <- 0xFUNC) for a uretprobe', () => {
    const r = uniprobe(['run', path, '-e', `p:fibin ${place} n=$arg1:u32`, '-e', `r:fibout ${place} ret=$retval:u32`]);
    expect(r.status).toBe(e.exit);
    const lines = r.stderr.trimEnd().split('\n');
    const fn = `0x${site.vaddr.toString(16)}`;
    expect(lines.filter((l) => l.includes(' fibin: ')).every((l) => l.endsWith(`fibin: (${fn}) n=${/n=(\d+)$/.exec(l)?.[1]}`))).toBe(true);
    expect(lines.filter((l) => l.includes(' fibout: ')).every((l) => new RegExp(`fibout: \\(0x[0-9a-f]+ <- ${fn}\\) ret=\\d+$`).test(l))).toBe(true);
    expect(lines.filter((l) => l.includes(' fibin: ')).length).toBe(lines.filter((l) => l.includes(' fibout: ')).length);
  });
});
