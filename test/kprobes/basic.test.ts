/**
 * kprobes core on the guest kernel, driven by real programs' system calls: a probe on a kernel
 * function hit by every write(2), with handlers, counts, listing and error codes.
 */
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import { Kprobes, EINVAL, ENOENT, EILSEQ } from '../../src/kprobes/kprobes.js';
import { Kprobe } from '../../src/kprobes/kprobe.js';
import { manifest, repoRoot, supported } from '../helpers.js';
import type { Target } from '../../arch/types.js';

const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as Target[]).filter((t) => supported.has(t));

function fibMachine(target: Target, opts: { cpus?: number; seed?: number } = {}) {
  const e = manifest.find((m) => m.target === target && m.name === 'fib-nolibc')!;
  const out: string[] = [];
  const m = new Machine({ target, cpus: opts.cpus ?? 1, seed: opts.seed ?? 1, stdout: (s) => out.push(typeof s === 'string' ? s : new TextDecoder().decode(s)) });
  m.spawn(`${repoRoot}/fixtures/${e.path}`, [e.path, ...e.args]);
  return { m, e, out };
}

describe.each(TARGETS)('kprobes on %s', (target) => {
  it('a probe on ksys_write fires once per write(2), handlers see the fd argument, output unchanged', async () => {
    const { m, e, out } = fibMachine(target);
    try {
      const kp = new Kprobe({ symbolName: 'ksys_write' });
      const fds: bigint[] = [];
      let post = 0;
      kp.preHandler = (_p, regs) => {
        fds.push(regs.arg(0));
        return 0;
      };
      kp.postHandler = () => void post++;
      const kprobes = new Kprobes(m);
      expect(await m.kernelCall('register', (t) => kprobes.register(t, kp))).toBe(0);
      expect(kp.addr).toBe(m.kernel.symbol('ksys_write')!.localEntry ?? m.kernel.symbol('ksys_write')!.codeAddress);
      const r = await m.runAsync();
      expect(r.status).toBe(e.exit);
      expect(out.join('')).toBe(e.stdout);
      const writes = e.stdout.split('\n').length - 1;
      expect(fds.length).toBeGreaterThan(0);
      expect(fds.every((fd) => fd === 1n)).toBe(true);
      expect(kp.nhit).toBe(fds.length);
      expect(post).toBe(fds.length);
      expect(kp.nmissed).toBe(0);
      expect(fds.length).toBeLessThanOrEqual(writes + 1);
      await m.kernelCall('unregister', (t) => kprobes.unregister(t, kp));
      expect(kprobes.list()).toEqual([]);
    } finally {
      m.close();
    }
  });

  it('error codes: unknown symbol -ENOENT, both addr and symbol -EINVAL, twice -EINVAL, blacklisted -EINVAL, inside an instruction -EILSEQ (ppc: misaligned -EINVAL)', async () => {
    const { m } = fibMachine(target);
    try {
      const kprobes = new Kprobes(m);
      const reg = (p: Kprobe) => m.kernelCall('reg', (t) => kprobes.register(t, p));
      expect(await reg(new Kprobe({ symbolName: 'no_such_function' }))).toBe(-ENOENT);
      expect(await reg(new Kprobe({ symbolName: 'ksys_write', addr: 0x1000n }))).toBe(-EINVAL);
      expect(await reg(new Kprobe({}))).toBe(-EINVAL);
      const p = new Kprobe({ symbolName: 'vfs_write' });
      expect(await reg(p)).toBe(0);
      expect(await reg(p)).toBe(-EINVAL);
      expect(await reg(new Kprobe({ symbolName: 'entry_syscall' }))).toBe(-EINVAL);
      // Inside an instruction: x86 and sparc64 answer -EILSEQ (can_probe / alignment), powerpc's
      // arch_prepare_kprobe -EINVAL for a misaligned address.
      const sym = m.kernel.symbol('vfs_write')!;
      const start = sym.localEntry ?? sym.codeAddress;
      let inside = start + 2n;
      if (m.arch.family === 'x86') {
        inside = start + 1n;
        while (kprobes.arch.isInsnBoundary((a, n) => m.kernel.elf.textBytesAt(a, n), sym.codeAddress, inside)) inside++;
      }
      const mid = await reg(new Kprobe({ addr: inside }));
      expect(mid).toBe(m.arch.family === 'ppc' ? -EINVAL : -EILSEQ);
      expect(kprobes.list()).toHaveLength(1);
      expect(kprobes.list()[0]).toMatch(/^[0-9a-f]+  k  vfs_write\+0x[0-9a-f]+    $/);
    } finally {
      m.close();
    }
  });
});

describe.each(TARGETS)('a kprobe handler that throws on %s', (target) => {
  it('ends the run with an error naming the probe; the vCPU is unwound, unregister restores the text', async () => {
    const { m } = fibMachine(target);
    try {
      const kprobes = new Kprobes(m);
      const kp = new Kprobe({ symbolName: 'ksys_write', postHandler: () => undefined });
      kp.preHandler = () => {
        throw new Error('handler bug');
      };
      expect(await m.kernelCall('reg', (t) => kprobes.register(t, kp))).toBe(0);
      await expect(m.runAsync()).rejects.toThrow(/kprobe handler at ksys_write\+0x[0-9a-f]+ threw: handler bug/);
      expect(m.sync.rcu.readers()).toEqual([]);
      expect(m.tasks.every((t) => t.pinnedCpu === undefined)).toBe(true);
      await m.kernelCall('unreg', (t) => kprobes.unregister(t, kp));
      expect(kprobes.list()).toEqual([]);
      const k = m.kernel;
      expect(m.readKernelText(k.textStart, Number(k.textEnd - k.textStart))).toEqual(k.elf.textBytesAt(k.textStart, Number(k.textEnd - k.textStart)));
      expect(kprobes.slots.stateOf(kp.ainsn!.slot ?? 0n) ?? 'clean').toBe('clean');
      expect(m.sync.lockdep.reports).toEqual([]);
    } finally {
      m.close();
    }
  });
});
