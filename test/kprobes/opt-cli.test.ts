/**
 * optprobes from the command line: `list kprobes` shows [OPTIMIZED] where Linux's debugfs list
 * would (not on ppc32/sparc64, not with --no-kprobe-optimization, not at a probe blocked by
 * another inside its replaced bytes); `run` with a kprobe and a uprobe together gives the same
 * trace with optimization on and off; `p vfs_read @` is refused at registration with the caret
 * under the probe point. Needs `npm run build` (dist/).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers.js';

const bin = join(repoRoot, 'bin', 'uniprobe.mjs');

function uniprobe(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('uniprobe and optprobes', () => {
  it('list kprobes: [OPTIMIZED] on x86_64 and ppc64 (kprobe and kretprobe), never on ppc32 or sparc64 or with --no-kprobe-optimization', () => {
    const defs = ['-e', 'p:k vfs_write', '-e', 'r:r ksys_write $retval'];
    for (const arch of ['x86_64', 'i386', 'ppc64']) {
      const r = uniprobe('list', 'kprobes', '--arch', arch, ...defs);
      expect(r.status, r.stderr).toBe(0);
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(/^[0-9a-f]+  k  vfs_write\+0x[0-9a-f]+    \[OPTIMIZED\]$/);
      expect(lines[1]).toMatch(/^[0-9a-f]+  r  ksys_write\+0x[0-9a-f]+    \[OPTIMIZED\]$/);
      const off = uniprobe('list', 'kprobes', '--arch', arch, '--no-kprobe-optimization', ...defs);
      expect(off.stdout).not.toContain('[OPTIMIZED]');
      expect(off.stdout.trimEnd().split('\n')).toHaveLength(2);
    }
    for (const arch of ['ppc32', 'sparc64']) {
      const r = uniprobe('list', 'kprobes', '--arch', arch, ...defs);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trimEnd().split('\n')).toHaveLength(2);
      expect(r.stdout).not.toContain('[OPTIMIZED]');
    }
    // x86-64: vfs_write+0x4 lies inside the 5 bytes vfs_write+0's jump would replace.
    const blocked = uniprobe('list', 'kprobes', '--arch', 'x86_64', '-e', 'p:a vfs_write', '-e', 'p:b vfs_write+4');
    expect(blocked.stdout.trimEnd().split('\n')).toEqual([expect.stringMatching(/  k  vfs_write\+0x0    $/), expect.stringMatching(/  k  vfs_write\+0x4    \[OPTIMIZED\]$/)]);
  });

  it('run: a kprobe and a uprobe in the same run, same trace with and without optimization', () => {
    for (const arch of ['x86_64', 'ppc64']) {
      const elf = `fixtures/${arch}/fib-nolibc`;
      const explain = uniprobe('explain', elf, '--format', 'json', 'fib');
      expect(explain.status, explain.stderr).toBe(0);
      const fib = JSON.parse(explain.stdout) as { functions: Array<{ insns: Array<{ fileOffset: string; allowed: boolean }> }> };
      // The third instruction: past ppc64's global entry (callers inside the program use the local one).
      const off = fib.functions[0]!.insns.filter((r) => r.allowed)[2]!.fileOffset;
      const args = ['run', elf, '-e', 'p:k ksys_write fd=$arg1', '-e', `p:u ${elf}:${off}`, '--format', 'json', '--stats', '--cpus', '2'];
      const on = uniprobe(...args);
      const offRun = uniprobe(...args, '--no-kprobe-optimization');
      expect(on.status).toBe(offRun.status);
      expect(on.stdout).toBe(offRun.stdout);
      // The optimizer is a kernel thread the scheduler interleaves: the vCPU a hit lands on may
      // differ; everything else is the same.
      const events = (s: string) => s.split('\n').filter((l) => l.startsWith('{"event"')).map((l) => l.replace(/"cpu":\d+,/, ''));
      expect(events(on.stderr)).toEqual(events(offRun.stderr));
      expect(events(on.stderr).some((l) => l.includes('"probes/k"') || l.includes('/k"'))).toBe(true);
      expect(events(on.stderr).some((l) => l.includes('/u"'))).toBe(true);
    }
  });

  it('p vfs_read @: parsed, then refused at registration as BAD_PROBE_ADDR with the caret under the probe point', () => {
    const r = uniprobe('run', 'fixtures/x86_64/fib-nolibc', '-e', 'p vfs_read @');
    expect(r.status).toBe(1);
    expect(r.stderr.split('\n').slice(0, 3)).toEqual(['uniprobe: error: Invalid probed address or symbol', '  Command: p vfs_read @', '             ^']);
  });
});
