/**
 * An independent check of `uniprobe run ELF -e 'p:… ELF:0xOFFSET %reg'` (issue 6's "done when"):
 * the same binary under qemu-user with gdb-multiarch's breakpoint at the same instruction must
 * report the same number of hits and the same argument register at every hit, in order.
 *
 * Skipped where qemu-user or gdb-multiarch is not installed, except under CI, where that fails
 * (test/helpers.ts skipWithout); `npm test` installs both.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { entry, fileOffset, fixtureFile, symbolVaddr, TARGETS } from './harness.js';
import { repoRoot, skipWithout } from '../helpers.js';
import type { Target } from '../../arch/types.js';

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const QEMU: Record<Target, string> = { x86_64: 'qemu-x86_64', i386: 'qemu-i386', ppc32: 'qemu-ppc', ppc64: 'qemu-ppc64', sparc64: 'qemu-sparc64' };
/** The first argument at function entry: the kernel's fetch-arg name, and gdb's expression. */
const ARG: Record<Target, { fetch: string; gdb: string }> = {
  x86_64: { fetch: '%di', gdb: '(int)$rdi' },
  i386: { fetch: '+4(%sp)', gdb: '*(int*)($esp+4)' },
  ppc32: { fetch: '%gpr3', gdb: '(int)$r3' },
  ppc64: { fetch: '%gpr3', gdb: '(int)$r3' },
  sparc64: { fetch: '%o0', gdb: '(int)$o0' },
};
const GDB = has('gdb-multiarch');

/**
 * Until qemu-user's gdb stub listens on `port` (a LISTEN socket in /proc/net/tcp), at most 20 s.
 * Polling the table leaves the stub's one connection to gdb; a fixed 300 ms wait lost the race
 * on a loaded machine (gdb found no stub, and the reference had no hits).
 */
async function listening(port: number): Promise<void> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (let waited = 0; waited < 20_000; waited += 50) {
    const table = readFileSync('/proc/net/tcp', 'utf8') + readFileSync('/proc/net/tcp6', 'utf8');
    if (table.split('\n').some((l) => { const f = l.trim().split(/\s+/); return f[1]?.endsWith(`:${hex}`) && f[3] === '0A'; })) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`qemu-user's gdb stub never listened on port ${port}`);
}

/** Breakpoint hits under gdb + qemu-user: the argument at each hit, in order. */
async function gdbHits(target: Target, path: string, vaddr: bigint, port: number): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), 'uniprobe-gdb-'));
  const script = join(dir, 'cmds.gdb');
  writeFileSync(
    script,
    [
      'set pagination off',
      'set confirm off',
      `file ${path}`,
      `target remote 127.0.0.1:${port}`,
      `break *0x${vaddr.toString(16)}`,
      'commands',
      'silent',
      `printf "HIT %d\\n", ${ARG[target].gdb}`,
      'continue',
      'end',
      'continue',
      'quit',
    ].join('\n'),
  );
  const qemu = spawn(QEMU[target], ['-g', String(port), path], { stdio: 'ignore' });
  try {
    await listening(port);
    const g = spawnSync('gdb-multiarch', ['-nx', '-batch', '-x', script], { encoding: 'utf8', timeout: 120_000 });
    return [...g.stdout.matchAll(/^HIT (-?\d+)$/gm)].map((m) => Number(m[1]));
  } finally {
    qemu.kill();
  }
}

describe.each(TARGETS)('uniprobe run -e uprobe agrees with gdb over qemu-user on %s', (target: Target) => {
  const skip = skipWithout('gdb-multiarch', GDB) || skipWithout(`qemu-user (${QEMU[target]})`, has(QEMU[target]));
  it.skipIf(skip)('fib-nolibc: same hits, same first argument at every hit', async () => {
    const e = entry(target, 'fib-nolibc');
    const path = fixtureFile(e);
    const vaddr = symbolVaddr(path, 'fib');
    const off = fileOffset(path, vaddr);
    const out = join(mkdtempSync(join(tmpdir(), 'uniprobe-trace-')), 'trace.json');
    const def = `p:test/fib ${path}:0x${off.toString(16)} n=${ARG[target].fetch}:s32`;
    const r = spawnSync('node', [join(repoRoot, 'bin/uniprobe.mjs'), 'run', path, '-e', def, '--format', 'json', '-o', out], { encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(e.exit);
    const ours = readFileSync(out, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { ip: string; args: { n: string } });
    expect(ours.every((x) => BigInt(x.ip) === vaddr)).toBe(true);
    const theirs = await gdbHits(target, path, vaddr, 20000 + Math.floor(Math.random() * 20000));
    expect(theirs.length).toBeGreaterThan(100);
    expect(ours.map((x) => Number(x.args.n))).toEqual(theirs);
  });
});
