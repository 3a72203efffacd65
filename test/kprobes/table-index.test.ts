/**
 * The trap path reads kprobe_table through an exact index by address (src/kprobes/table.ts); the
 * RCU hlists stay the truth. Over a random sequence of registrations (lone and aggregated),
 * disables, enables and batch unregistrations, the index answers what get_kprobe's bucket walk
 * answers, for every address, after every step; and a run whose every hit cross-checks the two
 * (`table.verify`) counts the same hits.
 */
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import { Kprobes } from '../../src/kprobes/kprobes.js';
import { Kprobe } from '../../src/kprobes/kprobe.js';
import { manifest, repoRoot, supported } from '../helpers.js';
import type { Target } from '../../arch/types.js';

const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as Target[]).filter((t) => supported.has(t));

/** A small deterministic generator (the test must replay). */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

describe.each(TARGETS)('kprobe table index on %s', (target) => {
  it('answers what the hlist walk answers after every registration, aggregation and removal', async () => {
    const m = new Machine({ target, stdout: () => {} });
    try {
      const kprobes = new Kprobes(m);
      const table = kprobes.table;
      // 24 function entries: few enough that probes often share an address (aggregates).
      const sites = Array.from({ length: 24 }, (_, i) => m.kernel.symbol(`bench_pad_${i.toString(16).padStart(2, '0')}`)!).map(
        (s) => s.localEntry ?? s.codeAddress,
      );
      const live: Kprobe[] = [];
      const next = rng(7);
      await m.kernelCall('ops', async (t) => {
        const check = (): void => {
          const rcu = m.sync.rcu;
          rcu.readLock(t);
          try {
            for (const a of sites) expect(table.get(t, a)).toBe(table.walk(t, a, true));
          } finally {
            rcu.readUnlock(t);
          }
        };
        for (let step = 0; step < 300; step++) {
          const op = next(10);
          if (op < 5 || live.length === 0) {
            const kp = new Kprobe({ addr: sites[next(sites.length)]!, preHandler: () => 0, ...(next(3) === 0 ? { postHandler: () => undefined } : {}) });
            expect(await kprobes.register(t, kp)).toBe(0);
            live.push(kp);
          } else if (op < 7) {
            const batch = live.splice(next(live.length), 1 + next(3));
            await kprobes.unregisterBatch(t, batch);
          } else if (op < 9) {
            await kprobes.disable(t, live[next(live.length)]!);
          } else {
            await kprobes.enable(t, live[next(live.length)]!);
          }
          check();
        }
        await kprobes.unregisterBatch(t, live.splice(0));
        check();
      });
      expect([...table.all()]).toEqual([]);
    } finally {
      m.close();
    }
  });

  it('hits agree with the walk on every trap (verify mode)', async () => {
    const e = manifest.find((x) => x.target === target && x.name === 'fib-nolibc')!;
    const m = new Machine({ target, stdout: () => {} });
    try {
      m.spawn(`${repoRoot}/fixtures/${e.path}`, [e.path]);
      const kprobes = new Kprobes(m);
      kprobes.table.verify = true;
      const hot = new Kprobe({ symbolName: 'ksys_write', preHandler: () => 0, postHandler: () => undefined });
      const cold = Array.from({ length: 64 }, (_, i) => new Kprobe({ symbolName: `bench_pad_${i.toString(16).padStart(2, '0')}` }));
      expect(await m.kernelCall('reg', (t) => kprobes.registerBatch(t, [hot, ...cold]))).toBe(0);
      const r = await m.runAsync();
      expect(r.status).toBe(e.exit);
      expect(hot.nhit).toBe(e.stdout.split('\n').length - 1);
    } finally {
      m.close();
    }
  });
});
