/**
 * Two rules of kernel/kprobes.c that are easy to get wrong, on every target:
 * - enable_kprobe on a lone probe that was registered disabled arms it (the owner of the
 *   breakpoint is the probe itself; only an aggregate's child is "enabled" without arming);
 * - the kprobe hash table spreads probes over its buckets on every target (a hit walks one bucket);
 * - a symbol that kallsyms knows but that is not text (a data object) is found, then refused by
 *   check_kprobe_address_safe with -EINVAL, not -ENOENT.
 */
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import { Kprobes, EINVAL, ENOENT } from '../../src/kprobes/kprobes.js';
import { Kprobe, KPROBE_FLAG } from '../../src/kprobes/kprobe.js';
import { manifest, repoRoot, supported } from '../helpers.js';
import type { Target } from '../../arch/types.js';

const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as Target[]).filter((t) => supported.has(t));

describe.each(TARGETS)('kprobes enable and lookup on %s', (target) => {
  it('a lone probe registered disabled is armed by enable and then hits', async () => {
    const e = manifest.find((m) => m.target === target && m.name === 'fib-nolibc')!;
    const m = new Machine({ target, stdout: () => {} });
    try {
      m.spawn(`${repoRoot}/fixtures/${e.path}`, [e.path]);
      const kprobes = new Kprobes(m);
      const kp = new Kprobe({ symbolName: 'ksys_write' });
      kp.flags |= KPROBE_FLAG.DISABLED;
      expect(await m.kernelCall('reg', (t) => kprobes.register(t, kp))).toBe(0);
      expect(kprobes.isArmed(kp.addr!)).toBe(false);
      expect(await m.kernelCall('enable', (t) => kprobes.enable(t, kp))).toBe(0);
      expect(kprobes.isArmed(kp.addr!)).toBe(true);
      expect(kp.disabled).toBe(false);
      const r = await m.runAsync();
      expect(r.status).toBe(e.exit);
      expect(kp.nhit).toBe(e.stdout.split('\n').length - 1);
    } finally {
      m.close();
    }
  });

  it('probes spread over the 64 buckets of the hash table, 64-bit kernel addresses included', async () => {
    const m = new Machine({ target, stdout: () => {} });
    try {
      const kprobes = new Kprobes(m);
      // The entries of 128 padding functions: 128 distinct, well-spread kernel addresses.
      const addrs = Array.from({ length: 128 }, (_, i) => m.kernel.symbol(`bench_pad_${i.toString(16).padStart(2, '0')}`)!)
        .map((s) => s.localEntry ?? s.codeAddress);
      await m.kernelCall('reg', async (t) => {
        for (const addr of addrs) expect(await kprobes.register(t, new Kprobe({ addr }))).toBe(0);
      });
      const sizes = kprobes.table.buckets.map((b) => [...b.values()].length);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(128);
      // hash_ptr of evenly spaced functions fills a lattice of the buckets, not all of them; a
      // hash that loses the low bits (Number() of an address above 2^53) puts all 128 in one.
      expect(sizes.filter((n) => n > 0).length).toBeGreaterThanOrEqual(16);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(16);
    } finally {
      m.close();
    }
  });

  it('a data symbol is -EINVAL (found, not text); an unknown one -ENOENT', async () => {
    const m = new Machine({ target, stdout: () => {} });
    try {
      const kprobes = new Kprobes(m);
      expect(m.kernel.elf.symbolByName('target_return_address')).toBeDefined();
      expect(await m.kernelCall('reg', (t) => kprobes.register(t, new Kprobe({ symbolName: 'target_return_address' })))).toBe(-EINVAL);
      expect(await m.kernelCall('reg', (t) => kprobes.register(t, new Kprobe({ symbolName: 'no_such_symbol' })))).toBe(-ENOENT);
      expect(kprobes.list()).toEqual([]);
    } finally {
      m.close();
    }
  });
});
