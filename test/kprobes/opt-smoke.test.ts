import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import { Kprobes } from '../../src/kprobes/kprobes.js';
import { Kprobe } from '../../src/kprobes/kprobe.js';
import { manifest, repoRoot } from '../helpers.js';
import type { Target } from '../../arch/types.js';

describe.each(['x86_64', 'i386', 'ppc64'] as Target[])('smoke %s', (target) => {
  it('optimizes', async () => {
    const e = manifest.find((m) => m.target === target && m.name === 'fib-nolibc')!;
    const out: string[] = [];
    const m = new Machine({ target, cpus: 1, seed: 1, stdout: (s) => out.push(typeof s === 'string' ? s : new TextDecoder().decode(s)) });
    m.spawn(`${repoRoot}/fixtures/${e.path}`, [e.path, ...e.args]);
    try {
      const kprobes = new Kprobes(m, { optimization: true });
      const kp = new Kprobe({ symbolName: 'ksys_write' });
      let n = 0;
      kp.preHandler = (_p, regs) => { n++; expect(regs.arg(0)).toBe(1n); return 0; };
      expect(await m.kernelCall('register', (t) => kprobes.register(t, kp))).toBe(0);
      await m.kernelCall('flush', (t) => kprobes.optimizer.flush(t));
      console.log(kprobes.list(), [...kprobes.optimizer.refusals]);
      const r = await m.runAsync();
      expect(r.status).toBe(e.exit);
      expect(out.join('')).toBe(e.stdout);
      console.log('hits', n, kp.nhit);
    } finally {
      m.close();
    }
  });
});
