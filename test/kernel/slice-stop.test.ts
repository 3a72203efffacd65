/**
 * A lone task's uncounted runs end where the native counter stops them: at the entry of a
 * translated block, none of which ran (src/emu/runs.ts, `stoppedAt`). Where a slice ends must
 * never show: the program prints what qemu-user prints and retires exactly the instructions it
 * retires with the default slices, however often its runs are cut.
 *
 * The case that broke: Unicorn 2.1.1 leaves the PC unsynchronised at such a stop once any hook of
 * the run wrote the PC (a uprobe's step) or noted an access error. On x86 the PC then still held
 * the return address of the last `ret` (chained jumps store no EIP), and an i386 program stopped
 * at a `call` block resumed after a call it never made, 16 bytes off on its stack, and crashed
 * (first seen as a lost printf hit in test/kernel/exec-probes.test.ts under block-granular
 * preemption).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import { defineEvents } from '../../src/cli/probes.js';
import { fixturePath, repoRoot, supported } from '../helpers.js';
import type { Target } from '../../arch/types.js';

const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as const).filter((t) => supported.has(t));
const QEMU: Record<Target, string> = { x86_64: 'qemu-x86_64', i386: 'qemu-i386', ppc32: 'qemu-ppc', ppc64: 'qemu-ppc64', sparc64: 'qemu-sparc64' };

function qemu(target: Target, argv: string[]): { stdout: string; status: number | null } {
  execFileSync('sh', ['-c', `command -v ${QEMU[target]}`], { stdio: 'ignore' }); // missing: fails, no skip
  const r = spawnSync(QEMU[target], argv, { cwd: repoRoot, encoding: 'utf8' });
  return { stdout: r.stdout, status: r.status };
}

/** Run argv with trace events `events` defined as the command line defines them; stdout, status, insns, records. */
async function run(target: Target, argv: string[], events: string[], opts: { seed?: number; quantum?: number; loneSlice?: number }) {
  let stdout = '';
  const m = new Machine({ target, ...opts, cwd: repoRoot, stdout: (b) => (stdout += Buffer.from(b).toString()), stderr: () => undefined, report: () => undefined });
  try {
    m.spawn(argv[0]!, argv);
    let records = 0;
    if (events.length) await defineEvents(m, events, () => records++, true, { program: argv[0] });
    const r = await m.runAsync();
    return { stdout, status: r.status, insns: r.insns, records };
  } finally {
    m.close();
  }
}

describe.each(TARGETS)('%s: runs cut at block entries', (target) => {
  const fib = `fixtures/${target}/fib-nolibc`;

  it('a probed program cut every few hundred instructions prints what qemu-user prints and retires the same instructions', async () => {
    const want = qemu(target, [fixturePath(target, 'fib-nolibc')]);
    // Every call of fib traps; each hit's step or emulation writes the PC inside a hook.
    const base = await run(target, [fib], [`p:f ${fib}:fib`], {});
    expect(base.stdout).toBe(want.stdout);
    expect(base.status).toBe(want.status);
    expect(base.records).toBeGreaterThan(100);
    for (const seed of [1, 2, 3]) {
      const cut = await run(target, [fib], [`p:f ${fib}:fib`], { seed, quantum: 300, loneSlice: 1 });
      expect({ seed, stdout: cut.stdout, status: cut.status, insns: cut.insns, records: cut.records }).toEqual({ seed, stdout: base.stdout, status: base.status, insns: base.insns, records: base.records });
    }
  });

  it.runIf(target === 'x86_64' || target === 'i386')('a program busybox sh started, probed on main, cut every quantum, runs as under qemu-user', async () => {
    const bb = `fixtures/external/${target}/busybox`;
    const argv = [bb, 'sh', '-c', '"$0"; echo rc=$?', fib];
    // qemu-user cannot follow the shell's execve into a guest binary: the program alone under it.
    const alone = qemu(target, [fixturePath(target, 'fib-nolibc')]);
    const want = { stdout: `${alone.stdout}rc=${alone.status}\n` };
    for (const seed of [1, 2, 3, 4]) {
      const r = await run(target, argv, [`p:f ${fib}:main`], { seed, loneSlice: 1 });
      expect({ seed, stdout: r.stdout, records: r.records }).toEqual({ seed, stdout: want.stdout, records: 1 });
    }
  });
});
