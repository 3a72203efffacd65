/**
 * Machine.callKernelFunction, the host's way to call a guest kernel function as a KUnit test
 * calls its target: arguments the way the kernel's C ABI passes them (i386: -mregparm=3), the
 * result through entry_call_return / HC_CALL_DONE, a fault in the function reported and the
 * call rejected, the machine usable afterwards.
 */
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import { Kprobes } from '../../src/kprobes/kprobes.js';
import { Kprobe } from '../../src/kprobes/kprobe.js';
import { supported } from '../helpers.js';
import type { Target } from '../../arch/types.js';

const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as Target[]).filter((t) => supported.has(t));
const EINVAL = 22n;

describe.each(TARGETS)('callKernelFunction on %s', (target) => {
  it('kprobe_test_run(which, value): both arguments arrive (i386: eax and edx), every case gives its target’s value, an unknown case -EINVAL', async () => {
    const m = new Machine({ target, cpus: 2, report: () => undefined });
    try {
      const signed = (v: bigint) => BigInt.asIntN(m.arch.wordSize * 8, v);
      const v = 0xfedcba98n;
      expect(await m.callKernelFunction('kprobe_test_run', [1, v])).toBe(v / 3n);
      expect(await m.callKernelFunction('kprobe_test_run', [2, v])).toBe(v / 3n + 1n);
      expect(await m.callKernelFunction('kprobe_test_run', [3, v])).toBe(v / 3n);
      // Case 4: the stacktrace driver's own return address, inside kprobe_test_run.
      const ra = await m.callKernelFunction('kprobe_test_run', [4, 0]);
      expect(m.kernel.elf.symbolAt(ra)?.symbol.name).toBe('kprobe_test_run');
      expect(signed(await m.callKernelFunction('kprobe_test_run', [99, v]))).toBe(-EINVAL);
      // Each call ran in a task of its own that is gone afterwards.
      expect(m.tasks).toEqual([]);
    } finally {
      m.close();
    }
  });

  it('a fault inside the function: reported, the call rejected, the next call works', async () => {
    const reports: string[] = [];
    const m = new Machine({ target, report: (l) => reports.push(l) });
    try {
      // vfs_write(file, …) dereferences the struct file pointer; this one points nowhere (not
      // NULL: ppc64 and sparc64 see the kernel image at address 0 through its alias).
      // A kprobe at its entry sees all four arguments where the kernel ABI puts them (i386: the
      // fourth on the stack above the return address).
      const kprobes = new Kprobes(m);
      let seen: bigint[] = [];
      const kp = new Kprobe({ symbolName: 'vfs_write', preHandler: (_p, regs) => ((seen = [0, 1, 2, 3].map((i) => regs.arg(i))), 0) });
      expect(await m.kernelCall('reg', (t) => kprobes.register(t, kp))).toBe(0);
      await expect(m.callKernelFunction('vfs_write', [0x4000_0000, 0x1234, 0x56, 0x789a], { comm: 'kunit_try_catch' })).rejects.toThrow(/vfs_write\(\) did not return/);
      expect(seen).toEqual([0x4000_0000n, 0x1234n, 0x56n, 0x789an]);
      await m.kernelCall('unreg', (t) => kprobes.unregister(t, kp));
      expect(reports).toHaveLength(1);
      expect(reports[0]).toMatch(/kunit_try_catch\[\d+\]: SIGSEGV .* in the guest kernel \(vfs_write\+0x/);
      expect(await m.callKernelFunction('kprobe_target', [9])).toBe(3n);
      await expect(m.callKernelFunction('no_such_function')).rejects.toThrow(/no_such_function: not a function of the guest kernel/);
    } finally {
      m.close();
    }
  });
});
