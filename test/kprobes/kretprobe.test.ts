/**
 * kretprobes on the guest kernel, driven by real programs: return values of ksys_write against
 * the bytes the program wrote, entry handlers, chained kretprobes on one function, nested frames,
 * pool exhaustion (a parent asleep in a system call while its child makes its own), tasks dying
 * inside a probed function, unregister while an instance is live, registration errors.
 */
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import { Kprobes, EINVAL, ENOENT } from '../../src/kprobes/kprobes.js';
import { E2BIG, Kretprobe, Kretprobes, type KretprobeInstance } from '../../src/kprobes/kretprobe.js';
import type { ProbeRegs } from '../../src/regs/probe-regs.js';
import { manifest, repoRoot, supported } from '../helpers.js';
import type { Target } from '../../arch/types.js';

const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as Target[]).filter((t) => supported.has(t));

function machine(target: Target, name: string, opts: { cpus?: number; seed?: number } = {}) {
  const e = manifest.find((m) => m.target === target && m.name === name)!;
  const out: string[] = [];
  const syscalls: string[] = [];
  const m = new Machine({
    target,
    cpus: opts.cpus ?? 1,
    seed: opts.seed ?? 1,
    stdout: (s) => out.push(typeof s === 'string' ? s : new TextDecoder().decode(s)),
    strace: (l) => syscalls.push(l.replace(/^\[\d+\] /, '').replace(/\(.*$/, '')),
  });
  m.spawn(`${repoRoot}/fixtures/${e.path}`, [e.path, ...e.args]);
  const kprobes = new Kprobes(m);
  const krp = new Kretprobes(kprobes);
  return { m, e, out, syscalls, kprobes, krp };
}

const signed = (m: Machine, v: bigint) => BigInt.asIntN(m.arch.wordSize * 8, v);
const fnAt = (m: Machine, a: bigint) => m.kernel.elf.symbolAt(a)?.symbol.name;

describe.each(TARGETS)('kretprobes on %s', (target) => {
  it('ksys_write: return values add up to the bytes written, one hit per write(2), entry handler first, output unchanged', async () => {
    const { m, e, out, syscalls, kprobes, krp } = machine(target, 'fib-nolibc');
    try {
      let sum = 0n;
      let hits = 0;
      let entries = 0;
      const retIn = new Set<string | undefined>();
      const rp = new Kretprobe({
        symbolName: 'ksys_write',
        dataSize: 8,
        entryHandler: (ri, regs) => {
          entries++;
          // The count argument, kept in the instance's private data for the return handler.
          new DataView(ri.data.buffer).setUint32(0, Number(regs.arg(2)));
          return 0;
        },
        handler: (ri, regs) => {
          hits++;
          const ret = signed(m, regs.returnValue());
          expect(ret).toBe(BigInt(new DataView(ri.data.buffer).getUint32(0)));
          sum += ret;
          retIn.add(fnAt(m, regs.ip));
        },
      });
      expect(await m.kernelCall('reg', (t) => krp.register(t, rp))).toBe(0);
      expect(rp.maxactive).toBe(10);
      expect(rp.nfree).toBe(10);
      expect(kprobes.list()).toEqual([expect.stringMatching(/^[0-9a-f]+  r  ksys_write\+0x[0-9a-f]+    $/)]);
      const r = await m.runAsync();
      expect(r.status).toBe(e.exit);
      expect(out.join('')).toBe(e.stdout);
      const writes = syscalls.filter((s) => s === 'write').length;
      expect(writes).toBeGreaterThan(0);
      expect(hits).toBe(writes);
      expect(entries).toBe(writes);
      expect(sum).toBe(BigInt(e.stdout.length));
      expect(retIn).toEqual(new Set(['do_syscall']));
      expect(rp.nmissed).toBe(0);
      expect(rp.kp.nmissed).toBe(0);
      expect(rp.kp.nhit).toBe(writes);
      expect(rp.ninuse).toBe(0);
      expect(rp.nfree).toBe(10);
      expect(krp.npending).toBe(0);
      expect(krp.frameMismatches).toBe(0);
      await m.kernelCall('unreg', (t) => krp.unregister(t, rp));
      expect(kprobes.list()).toEqual([]);
      expect(rp.holder).toBeUndefined();
    } finally {
      m.close();
    }
  });

  it('an entry handler returning non-zero suppresses the return handler and is not a miss', async () => {
    const { m, e, out, syscalls, krp } = machine(target, 'fib-nolibc');
    try {
      let entries = 0;
      let returns = 0;
      const rp = new Kretprobe({
        symbolName: 'ksys_write',
        maxactive: 1,
        entryHandler: () => (++entries % 2 === 0 ? 1 : 0),
        handler: () => void returns++,
      });
      expect(await m.kernelCall('reg', (t) => krp.register(t, rp))).toBe(0);
      expect((await m.runAsync()).status).toBe(e.exit);
      expect(out.join('')).toBe(e.stdout);
      const writes = syscalls.filter((s) => s === 'write').length;
      expect(entries).toBe(writes);
      expect(returns).toBe(Math.ceil(writes / 2));
      expect(rp.nmissed).toBe(0);
      expect(rp.nfree).toBe(1);
      expect(krp.npending).toBe(0);
    } finally {
      m.close();
    }
  });

  it('two kretprobes on one function chain on the same frame: both fire newest first with the right value', async () => {
    const { m, e, out, syscalls, kprobes, krp } = machine(target, 'fib-nolibc');
    try {
      const seen: string[] = [];
      const vals: bigint[][] = [[], []];
      const mk = (i: number) =>
        new Kretprobe({
          symbolName: 'ksys_write',
          handler: (_ri, regs) => {
            seen.push(`rp${i}`);
            vals[i]!.push(signed(m, regs.returnValue()));
            expect(fnAt(m, regs.ip)).toBe('do_syscall');
          },
        });
      const rps = [mk(0), mk(1)];
      expect(await m.kernelCall('reg', (t) => krp.registerBatch(t, rps))).toBe(0);
      const lines = kprobes.list();
      expect(lines).toHaveLength(2);
      for (const l of lines) expect(l).toMatch(/  r  ksys_write\+0x/);
      expect((await m.runAsync()).status).toBe(e.exit);
      expect(out.join('')).toBe(e.stdout);
      const writes = syscalls.filter((s) => s === 'write').length;
      expect(seen).toEqual(Array.from({ length: writes }, () => ['rp1', 'rp0']).flat());
      expect(vals[0]).toEqual(vals[1]);
      expect(vals[0]!.reduce((a, b) => a + b, 0n)).toBe(BigInt(e.stdout.length));
      expect(krp.npending).toBe(0);
      expect(krp.frameMismatches).toBe(0);
      await m.kernelCall('unreg', (t) => krp.unregisterBatch(t, rps));
      expect(kprobes.list()).toEqual([]);
    } finally {
      m.close();
    }
  });

  it('nested frames (do_syscall → ksys_write → vfs_write) return in LIFO order, each to its caller', async () => {
    const { m, e, out, syscalls, krp } = machine(target, 'fib-nolibc');
    try {
      const events: string[] = [];
      const rets: Record<string, bigint[]> = { vfs_write: [], ksys_write: [] };
      const rps = ['do_syscall', 'ksys_write', 'vfs_write'].map(
        (fn) =>
          new Kretprobe({
            symbolName: fn,
            handler: (_ri: KretprobeInstance, regs: ProbeRegs) => {
              events.push(`${fn}>${fnAt(m, regs.ip)}`);
              rets[fn]?.push(signed(m, regs.returnValue()));
            },
          }),
      );
      expect(await m.kernelCall('reg', (t) => krp.registerBatch(t, rps))).toBe(0);
      expect((await m.runAsync()).status).toBe(e.exit);
      expect(out.join('')).toBe(e.stdout);
      const writes = syscalls.filter((s) => s === 'write').length;
      const chain = events.join(' ');
      const one = `vfs_write>ksys_write ksys_write>do_syscall do_syscall>${fnAt(m, m.kernel.symbol('entry_syscall')!.codeAddress)}`;
      expect(chain.split(one).length - 1).toBe(writes);
      expect(events.filter((x) => x.startsWith('vfs_write')).length).toBe(writes);
      expect(rets.vfs_write).toEqual(rets.ksys_write);
      // exit_group never returns from do_syscall: the dead task's instance went back to the pool.
      expect(events.filter((x) => x.startsWith('do_syscall')).length).toBe(syscalls.length - 1);
      expect(krp.npending).toBe(0);
      for (const rp of rps) expect(rp.ninuse).toBe(0);
      expect(krp.frameMismatches).toBe(0);
    } finally {
      m.close();
    }
  });

  it('pool exhaustion: maxactive=1 on do_syscall while the parent sleeps in wait4 counts child calls in rp.nmissed', async () => {
    const { m, e, out, syscalls, krp } = machine(target, 'fork-nolibc');
    try {
      let returns = 0;
      let sum = 0n;
      const rp = new Kretprobe({ symbolName: 'do_syscall', maxactive: 1, handler: () => void returns++ });
      const w = new Kretprobe({ symbolName: 'ksys_write', handler: (_ri, regs) => void (sum += signed(m, regs.returnValue())) });
      expect(await m.kernelCall('reg', (t) => krp.registerBatch(t, [rp, w]))).toBe(0);
      expect((await m.runAsync()).status).toBe(e.exit);
      expect(out.join('')).toBe(e.stdout);
      expect(sum).toBe(BigInt(e.stdout.length));
      expect(rp.nmissed).toBeGreaterThan(0);
      expect(rp.kp.nmissed).toBe(0);
      expect(rp.kp.nhit).toBe(syscalls.length);
      // Every tracked call returned, except those cut short by exit (instances freed with the task).
      const exits = syscalls.filter((s) => s === 'exit' || s === 'exit_group').length;
      expect(returns).toBeGreaterThanOrEqual(syscalls.length - rp.nmissed - exits);
      expect(returns).toBeLessThanOrEqual(syscalls.length - rp.nmissed);
      // The parent's exit_group was tracked and never returned: its instance died with the task.
      expect(returns).toBeLessThan(rp.kp.nhit - rp.nmissed);
      expect(rp.ninuse).toBe(0);
      expect(rp.nfree).toBe(1);
      expect(krp.npending).toBe(0);
      expect(krp.frameMismatches).toBe(0);
    } finally {
      m.close();
    }
  });

  it('unregister while an instance is live: no handler afterwards, the live frame still returns right, later calls are not hijacked', async () => {
    const { m, e, out, krp } = machine(target, 'fork-nolibc', { cpus: 2 });
    try {
      let unregistered = false;
      let lateHandlers = 0;
      let handlers = 0;
      const h = () => {
        handlers++;
        if (unregistered) lateHandlers++;
      };
      const wait = new Kretprobe({ symbolName: 'kernel_wait4', handler: h });
      const write = new Kretprobe({ symbolName: 'ksys_write', handler: h });
      expect(await m.kernelCall('reg', (t) => krp.registerBatch(t, [wait, write]))).toBe(0);
      let trampHits = 0;
      let lateTrampHits = 0;
      const tramp = krp.trampoline!;
      const orig = krp.kprobes.trapHooks.get(tramp)!;
      krp.kprobes.trapHooks.set(tramp, (hit) => {
        trampHits++;
        if (unregistered) lateTrampHits++;
        return orig(hit);
      });
      let liveAtUnregister = -1;
      m.kthread('unregister', async (t) => {
        while (wait.ninuse === 0) await m.sync.sched.tick(t);
        await krp.unregisterBatch(t, [wait, write]);
        unregistered = true;
        liveAtUnregister = krp.npending;
      });
      expect((await m.runAsync()).status).toBe(e.exit);
      expect(out.join('')).toBe(e.stdout);
      expect(liveAtUnregister).toBeGreaterThanOrEqual(1);
      expect(handlers).toBeGreaterThan(0);
      expect(lateHandlers).toBe(0);
      // Only the frames live at unregister came back through the trampoline afterwards.
      expect(lateTrampHits).toBe(liveAtUnregister);
      expect(trampHits).toBe(handlers + lateTrampHits);
      expect(krp.npending).toBe(0);
      expect(krp.kprobes.list()).toEqual([]);
      expect(krp.kprobes.isArmed(wait.kp.addr!)).toBe(false);
    } finally {
      m.close();
    }
  });

  it('registration: function entry only, -ENOENT, -E2BIG, blacklist, twice, maxactive default', async () => {
    const { m, kprobes, krp } = machine(target, 'fib-nolibc');
    try {
      const reg = (rp: Kretprobe) => m.kernelCall('reg', (t) => krp.register(t, rp));
      expect(await reg(new Kretprobe({ symbolName: 'no_such_function' }))).toBe(-ENOENT);
      expect(await reg(new Kretprobe({ symbolName: 'ksys_write', addr: 0x1000n }))).toBe(-EINVAL);
      // Not at the entry: the second instruction of vfs_write.
      const sym = m.kernel.symbol('vfs_write')!;
      const entry = sym.localEntry ?? sym.codeAddress;
      let off = 4;
      if (m.arch.family === 'x86') {
        off = 1;
        while (!kprobes.arch.isInsnBoundary((a, n) => m.kernel.elf.textBytesAt(a, n), sym.codeAddress, entry + BigInt(off))) off++;
      }
      expect(await reg(new Kretprobe({ symbolName: 'vfs_write', offset: off }))).toBe(-EINVAL);
      expect(await reg(new Kretprobe({ addr: entry + BigInt(off) }))).toBe(-EINVAL);
      expect(await reg(new Kretprobe({ symbolName: 'vfs_write', dataSize: 4097 }))).toBe(-E2BIG);
      // The arch's kretprobe blacklist (x86: __switch_to, absent from this image): try one that is.
      const arch = kprobes.arch;
      Object.defineProperty(kprobes, 'arch', { value: { ...arch, kretprobeBlacklist: ['vfs_read'] } });
      expect(await reg(new Kretprobe({ symbolName: 'vfs_read' }))).toBe(-EINVAL);
      Object.defineProperty(kprobes, 'arch', { value: arch });
      // By address at the entry (ppc64 ELFv2: the local entry), then the same struct again.
      const rp = new Kretprobe({ addr: entry });
      expect(await reg(rp)).toBe(0);
      expect(await reg(rp)).toBe(-EINVAL);
      expect(rp.maxactive).toBe(10);
      expect(kprobes.list()).toEqual([expect.stringMatching(/  r  vfs_write\+0x/)]);
      // A plain kprobe next to it: listed 'k', same address (an aggregate).
      const { Kprobe } = await import('../../src/kprobes/kprobe.js');
      const kp = new Kprobe({ symbolName: 'vfs_write' });
      expect(await m.kernelCall('reg', (t) => kprobes.register(t, kp))).toBe(0);
      expect(kprobes.list().map((l) => l.split('  ')[1])).toEqual(['r', 'k']);
      await m.kernelCall('unreg', (t) => krp.unregister(t, rp));
      expect(kprobes.list().map((l) => l.split('  ')[1])).toEqual(['k']);
    } finally {
      m.close();
    }
  });
});

describe('kretprobe maxactive default', () => {
  it('max(10, 2 × vCPUs), preallocated at registration', async () => {
    const target = TARGETS[0]!;
    for (const [cpus, want] of [
      [1, 10],
      [5, 10],
      [8, 16],
    ] as const) {
      const { m, krp } = machine(target, 'fib-nolibc', { cpus });
      try {
        const rp = new Kretprobe({ symbolName: 'ksys_write' });
        expect(await m.kernelCall('reg', (t) => krp.register(t, rp))).toBe(0);
        expect(rp.maxactive).toBe(want);
        expect(rp.nfree).toBe(want);
        const fixed = new Kretprobe({ symbolName: 'vfs_write', maxactive: 3 });
        expect(await m.kernelCall('reg', (t) => krp.register(t, fixed))).toBe(0);
        expect(fixed.nfree).toBe(3);
      } finally {
        m.close();
      }
    }
  });
});
