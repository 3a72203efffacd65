/**
 * The uprobes core on real fixture programs, every target: (inode, offset) probes across
 * processes, the mmap hook, filters, unregister, the page cache left clean, fork, uretprobes on a
 * recursive function, a foreign trap (SIGTRAP) and USDT reference counters.
 *
 * Hit counts are checked against an independent ground truth: Unicorn's one-address code hook on
 * an unprobed run of the same program.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { entry, fileOffset, fixtureFile, groundTruth, site, symbolVaddr, TARGETS, uprobeMachine } from './harness.js';
import { EINVAL, UPROBE_HANDLER_REMOVE, type UprobeConsumer } from '../../src/uprobes/index.js';
import { repoRoot } from '../helpers.js';
import { Kprobes } from '../../src/kprobes/kprobes.js';
import { Kprobe } from '../../src/kprobes/kprobe.js';
import signals from '../../fixtures/signals.json' with { type: 'json' };
import type { Target } from '../../arch/types.js';

const fib = (n: number): number => (n < 2 ? n : fib(n - 1) + fib(n - 2));

function counter(): { uc: UprobeConsumer; byPid: Map<number, number> } {
  const byPid = new Map<number, number>();
  const uc: UprobeConsumer = {
    handler: (_c, regs) => {
      const pid = regs.task.process.pid;
      byPid.set(pid, (byPid.get(pid) ?? 0) + 1);
      return 0;
    },
  };
  return { uc, byPid };
}

describe.each(TARGETS)('uprobes core on %s', (target: Target) => {
  it('two processes of one binary and a third exec-ed after registration all hit; page cache and file untouched', async () => {
    const { e, path, vaddr, off } = site(target, 'fib-nolibc', 'fib');
    const um = uprobeMachine(target, { cpus: 2, seed: 7 });
    try {
      const inode = um.inode(path);
      const fileBytes = readFileSync(path);
      const original = fileBytes.subarray(Number(off), Number(off) + um.up.arch.maxInsnBytes);
      const pids = [um.spawn(e), um.spawn(e)];
      const { uc, byPid } = counter();
      expect(await um.m.kernelCall('reg', (t) => um.up.register(t, inode, off, uc))).toBe(0);
      pids.push(um.spawn(e)); // exec after registration: the mmap hook installs
      const swbp = um.up.arch.swbp;
      for (const p of um.m.processes) expect([...p.mm.read(vaddr, swbp.length)]).toEqual([...swbp]);
      // The breakpoint lives in each mm's private copy of the page: the page cache is clean.
      expect([...inode.read(Number(off), original.length)]).toEqual([...original]);
      expect(um.m.processes[0]!.mm.frameAt(vaddr)).not.toBe(um.m.processes[1]!.mm.frameAt(vaddr));
      const r = await um.m.runAsync();
      expect(r.status).toBe(e.exit);
      expect(um.out.join('').split('\n').filter(Boolean).sort()).toEqual(e.stdout.repeat(3).split('\n').filter(Boolean).sort());
      const truth = (await groundTruth(target, e, [vaddr])).get(vaddr)!;
      expect(truth).toBeGreaterThan(10);
      expect(pids.map((p) => byPid.get(p))).toEqual([truth, truth, truth]);
      expect([...readFileSync(path)]).toEqual([...fileBytes]);
      await um.m.kernelCall('unreg', (t) => um.up.unregister(t, inode, off, uc));
      expect(um.up.list()).toHaveLength(0);
    } finally {
      um.close();
    }
  });

  it('unregister restores the original bytes in every live mm; later processes do not hit', async () => {
    const { e, path, vaddr, off } = site(target, 'fib-nolibc', 'fib');
    const um = uprobeMachine(target);
    try {
      const inode = um.inode(path);
      um.spawn(e);
      um.spawn(e);
      const before = um.m.processes.map((p) => [...p.mm.read(vaddr, 4)]);
      const { uc, byPid } = counter();
      expect(await um.m.kernelCall('reg', (t) => um.up.register(t, inode, off, uc))).toBe(0);
      const privateWhileProbed = um.m.processes.map((p) => p.mm.privatePageCount());
      await um.m.kernelCall('unreg', (t) => um.up.unregister(t, inode, off, uc));
      expect(um.m.processes.map((p) => [...p.mm.read(vaddr, 4)])).toEqual(before);
      // The identical private copy is dropped: the page cache page is mapped again.
      const pgoff = Number(off) / um.m.arch.layout.pageSize;
      for (const [i, p] of um.m.processes.entries()) {
        expect(p.mm.frameAt(vaddr)).toBe(inode.page(Math.floor(pgoff)));
        expect(p.mm.privatePageCount()).toBe(privateWhileProbed[i]! - 1);
      }
      um.spawn(e);
      const r = await um.m.runAsync();
      expect(r.status).toBe(e.exit);
      expect(byPid.size).toBe(0);
    } finally {
      um.close();
    }
  });

  it('a filter limits the breakpoint (and the hits) to one process', async () => {
    const { e, path, vaddr, off } = site(target, 'fib-nolibc', 'fib');
    const um = uprobeMachine(target, { cpus: 2 });
    try {
      const inode = um.inode(path);
      const a = um.spawn(e);
      const b = um.spawn(e);
      const mmA = um.m.processes.find((p) => p.pid === a)!.mm;
      const { uc, byPid } = counter();
      uc.filter = (_c, mm) => mm === mmA;
      expect(await um.m.kernelCall('reg', (t) => um.up.register(t, inode, off, uc))).toBe(0);
      const mmB = um.m.processes.find((p) => p.pid === b)!.mm;
      expect([...mmB.read(vaddr, 1)]).not.toEqual([...um.up.arch.swbp.subarray(0, 1)]);
      await um.m.runAsync();
      const truth = (await groundTruth(target, e, [vaddr])).get(vaddr)!;
      expect(byPid.get(a)).toBe(truth);
      expect(byPid.has(b)).toBe(false);
    } finally {
      um.close();
    }
  });

  it('argument checks: no handler, offset beyond the file, misaligned ref_ctr_offset → -EINVAL; a different ref_ctr for the same probe → -EINVAL', async () => {
    const e = entry(target, 'fib-nolibc');
    const path = fixtureFile(e);
    const off = fileOffset(path, symbolVaddr(path, 'fib'));
    const um = uprobeMachine(target);
    try {
      const inode = um.inode(path);
      const reg = (o: bigint, uc: UprobeConsumer, ref?: bigint) => um.m.kernelCall('reg', (t) => um.up.register(t, inode, o, uc, ref));
      expect(await reg(off, {})).toBe(-EINVAL);
      expect(await reg(BigInt(inode.size) + 1n, { handler: () => 0 })).toBe(-EINVAL);
      expect(await reg(off, { handler: () => 0 }, 3n)).toBe(-EINVAL);
      if (um.up.arch.swbp.length > 1) expect(await reg(off + 1n, { handler: () => 0 })).toBe(-EINVAL);
      const uc = { handler: () => 0 };
      expect(await reg(off, uc, 16n)).toBe(0);
      expect(await reg(off, { handler: () => 0 }, 32n)).toBe(-EINVAL);
      expect(um.up.warnings.some((w) => w.startsWith('ref_ctr_offset mismatch'))).toBe(true);
    } finally {
      um.close();
    }
  });

  it('fork: the child inherits the breakpoint (its copy of the page) and hits too', async () => {
    const { e, path, vaddr, off } = site(target, 'fork-nolibc', 'work');
    const um = uprobeMachine(target);
    try {
      const inode = um.inode(path);
      const args: Array<[number, bigint]> = [];
      const uc: UprobeConsumer = {
        handler: (_c, regs) => {
          args.push([regs.task.process.pid, BigInt.asIntN(32, regs.arg(0))]);
          return 0;
        },
      };
      const parent = um.spawn(e);
      expect(await um.m.kernelCall('reg', (t) => um.up.register(t, inode, off, uc))).toBe(0);
      const r = await um.m.runAsync();
      expect(r.status).toBe(e.exit);
      expect(um.out.join('')).toBe(e.stdout);
      // fork.c: the parent calls work(3) and work(5), the child work(4).
      expect(args.filter(([p]) => p === parent).map(([, n]) => n)).toEqual([3n, 5n]);
      expect(args.filter(([p]) => p !== parent).map(([, n]) => n)).toEqual([4n]);
    } finally {
      um.close();
    }
  });

  it('uretprobe on recursive fib: one return per call, each $retval = fib(n) of its own call', async () => {
    const { e, path, vaddr, off } = site(target, 'fib-nolibc', 'fib');
    const um = uprobeMachine(target);
    try {
      const inode = um.inode(path);
      const w = um.m.arch.wordSize * 8;
      const entries: number[] = [];
      const rets: Array<{ func: bigint; ret: number }> = [];
      const uc: UprobeConsumer = {
        handler: (_c, regs) => {
          entries.push(Number(BigInt.asIntN(32, regs.arg(0))));
          return 0;
        },
        retHandler: (_c, func, regs) => {
          rets.push({ func, ret: Number(BigInt.asIntN(w, regs.returnValue())) });
          return 0;
        },
      };
      um.spawn(e);
      expect(await um.m.kernelCall('reg', (t) => um.up.register(t, inode, off, uc))).toBe(0);
      const r = await um.m.runAsync();
      expect(r.status).toBe(e.exit);
      expect(um.out.join('')).toBe(e.stdout);
      const truth = (await groundTruth(target, e, [vaddr])).get(vaddr)!;
      expect(entries).toHaveLength(truth);
      expect(rets).toHaveLength(truth);
      expect(rets.every((x) => x.func === vaddr)).toBe(true);
      const want = entries.map(fib).sort((a, b) => a - b);
      expect(rets.map((x) => x.ret).sort((a, b) => a - b)).toEqual(want);
      expect(um.up.warnings).toEqual([]);
    } finally {
      um.close();
    }
  });

  it('a handler returning UPROBE_HANDLER_REMOVE takes the breakpoint out of that mm only', async () => {
    const { e, path, vaddr, off } = site(target, 'fib-nolibc', 'fib');
    const um = uprobeMachine(target);
    try {
      const inode = um.inode(path);
      const { uc, byPid } = counter();
      const count = uc.handler!;
      uc.handler = (c, regs) => (count(c, regs), UPROBE_HANDLER_REMOVE);
      const a = um.spawn(e);
      expect(await um.m.kernelCall('reg', (t) => um.up.register(t, inode, off, uc))).toBe(0);
      const r = await um.m.runAsync();
      expect(r.status).toBe(e.exit);
      expect(byPid.get(a)).toBe(1);
      // Still registered: a new process gets the breakpoint again, and loses it at its first hit.
      const b = um.spawn(e);
      await um.m.runAsync();
      expect(byPid.get(b)).toBe(1);
      expect(um.up.list()).toHaveLength(1);
    } finally {
      um.close();
    }
  });

  it('a trap with no uprobe behind it is the program’s own: SIGTRAP kills it (status 128 + 5)', async () => {
    const e = entry(target, 'fib-nolibc');
    const path = fixtureFile(e);
    const um = uprobeMachine(target);
    try {
      const inode = um.inode(path);
      const off = fileOffset(path, symbolVaddr(path, 'fib'));
      expect(await um.m.kernelCall('reg', (t) => um.up.register(t, inode, off, counter().uc))).toBe(0);
      um.spawn(e);
      const mm = um.m.processes[0]!.mm;
      // A debugger's breakpoint at main (ptrace POKETEXT does this write).
      mm.write(symbolVaddr(path, 'main'), um.up.arch.swbp, true);
      const r = await um.m.runAsync();
      expect(r.signal).toBe(5);
      expect(r.status).toBe(133);
      expect(um.reports.join('\n')).toMatch(/SIGTRAP/);
    } finally {
      um.close();
    }
  });

  it('a fault in the XOL slot is reported at the probed instruction (abort_xol), as without the probe', async () => {
    const sig = (signals as Array<{ target: string; name: string; path: string; args: string[]; stdout: string; signal: number }>).find((x) => x.target === target && x.name === 'segv-nolibc')!;
    const e = { ...sig, exit: 128 + sig.signal, target: target };
    const path = fixtureFile(e);
    const plain = uprobeMachine(target);
    let line: string;
    try {
      plain.spawn(e);
      await plain.m.runAsync();
      line = plain.reports.join('\n');
    } finally {
      plain.close();
    }
    // ppc64 and sparc64: the kernel image's low alias maps address 0, so the NULL store does not
    // fault (README, pinned in test/arch); there is no faulting instruction to probe.
    const m = /pc (0x[0-9a-f]+)/.exec(line);
    if (!m) return expect(line).toBe('');
    const pc = BigInt(m[1]!);
    const um = uprobeMachine(target);
    try {
      const inode = um.inode(path);
      um.spawn(e);
      const { uc, byPid } = counter();
      expect(await um.m.kernelCall('reg', (t) => um.up.register(t, inode, fileOffset(path, pc), uc))).toBe(0);
      const r = await um.m.runAsync();
      expect(r.signal).toBe(11);
      expect([...byPid.values()]).toEqual([1]);
      expect(um.reports.join('\n')).toBe(line);
    } finally {
      um.close();
    }
  });

  it('every XOL slot busy: the hit waits until one is free (xol_take_insn_slot sleeps), no handler runs meanwhile', async () => {
    const e = entry(target, 'fib-nolibc');
    const path = fixtureFile(e);
    const um = uprobeMachine(target);
    try {
      const inode = um.inode(path);
      // A stepped instruction at or after fib's entry.
      let vaddr = symbolVaddr(path, 'fib');
      const text = (a: bigint) => inode.read(Number(fileOffset(path, a)), um.up.arch.maxInsnBytes);
      for (;;) {
        const p = um.up.arch.analyzeUprobe(vaddr, text(vaddr));
        if (!('refused' in p) && p.mode === 'step') break;
        vaddr += BigInt('refused' in p ? 4 : p.insn.length);
      }
      um.spawn(e);
      const task = um.m.processes[0]!.tasks[0]!;
      let freed = false;
      const early: number[] = [];
      const { uc, byPid } = counter();
      const count = uc.handler!;
      uc.handler = (c, regs) => (freed || early.push(1), count(c, regs));
      expect(await um.m.kernelCall('reg', (t) => um.up.register(t, inode, fileOffset(path, vaddr), uc))).toBe(0);
      // The area exists and every slot is held, as by other threads in the middle of their steps.
      um.up.ensureXol(task);
      const xol = um.up.state(task.mm).xol!;
      const held: number[] = [];
      for (let s = xol.take(); s !== undefined; s = xol.take()) held.push(s);
      expect(held).toHaveLength(xol.slots - 1); // slot 0 is the trampoline
      um.m.kthread('holder', async (t) => {
        for (let i = 0; i < 30; i++) await um.m.sync.sched.tick(t);
        freed = true;
        for (const s of held) xol.free(s);
      });
      const r = await um.m.runAsync();
      expect(r.status).toBe(e.exit);
      expect(um.out.join('')).toBe(e.stdout);
      expect(early).toEqual([]);
      const truth = (await groundTruth(target, e, [vaddr])).get(vaddr)!;
      expect(byPid.get(um.m.processes[0]!.pid)).toBe(truth);
      expect(xol.inUse).toBe(0);
    } finally {
      um.close();
    }
  });

  it('uprobes created before kprobes leave kernel-mode traps (kprobe hits and their steps) to kprobes', async () => {
    const e = entry(target, 'fib-nolibc');
    const path = fixtureFile(e);
    const vaddr = symbolVaddr(path, 'fib');
    const um = uprobeMachine(target); // the uprobes core is first in the trap chain here
    try {
      const kprobes = new Kprobes(um.m);
      const kp = new Kprobe({ symbolName: 'ksys_write' });
      kp.postHandler = () => undefined; // stepped, never boosted: a kernel step trap every hit
      const { uc, byPid } = counter();
      const pid = um.spawn(e);
      await um.m.kernelCall('reg', async (t) => {
        expect(await um.up.register(t, um.inode(path), fileOffset(path, vaddr), uc)).toBe(0);
        expect(await kprobes.register(t, kp)).toBe(0);
      });
      const r = await um.m.runAsync();
      expect(r.status).toBe(e.exit);
      expect(kp.nhit).toBe(e.stdout.split('\n').length - 1);
      expect(byPid.get(pid)).toBe((await groundTruth(target, e, [vaddr])).get(vaddr));
    } finally {
      um.close();
    }
  });

  it('USDT: the reference counter is raised in the mm (delayed until .data is mapped) and the site runs only then', async () => {
    const e = entry(target, 'usdt-nolibc');
    const path = fixtureFile(e);
    const site = symbolVaddr(path, 'usdt_probe_site');
    const sem = symbolVaddr(path, 'usdt_sem');
    const siteOff = fileOffset(path, site);
    const semOff = fileOffset(path, sem);
    // Untraced: the semaphore is 0, the site never runs.
    const plain = uprobeMachine(target);
    try {
      plain.spawn(e);
      const r0 = await plain.m.runAsync();
      expect(r0.status).toBe(0);
      expect(plain.out.join('')).toMatch(/semaphore off i=2/);
    } finally {
      plain.close();
    }
    const um = uprobeMachine(target);
    try {
      const inode = um.inode(path);
      const { uc, byPid } = counter();
      // Registered before the exec: text is mapped before data, so the increment is delayed.
      expect(await um.m.kernelCall('reg', (t) => um.up.register(t, inode, siteOff, uc, semOff))).toBe(0);
      const pid = um.spawn(e);
      const mm = um.m.processes[0]!.mm;
      const readSem = (): number => new DataView(mm.read(sem, 2).buffer).getUint16(0, um.m.arch.endian === 'little');
      expect(readSem()).toBe(1);
      // The counter lives in this mm's private copy of .data: the file still says 0.
      expect([...inode.read(Number(semOff), 2)]).toEqual([0, 0]);
      const r = await um.m.runAsync();
      expect(r.status).toBe(3);
      expect(um.out.join('')).toMatch(/site fired i=2 value=21/);
      expect(byPid.get(pid)).toBe(3);
    } finally {
      um.close();
    }
  });

  it('the mmap hook: a file mapped by a running program (mmapexec maps blob.bin) gets the breakpoint; uretprobe values are the blob’s', async () => {
    const e = entry(target, 'mmapexec-nolibc');
    const blob = `${repoRoot}/fixtures/${target}/blob.bin`;
    const um = uprobeMachine(target, { allowFiles: [blob] });
    try {
      const inode = um.inode(blob);
      const w = um.m.arch.wordSize * 8;
      const got: bigint[] = [];
      const uc: UprobeConsumer = { retHandler: (_c, _f, regs) => (got.push(BigInt.asIntN(w, regs.returnValue())), 0) };
      expect(await um.m.kernelCall('reg', (t) => um.up.register(t, inode, 0n, uc))).toBe(0);
      um.spawn(e, [blob]);
      const r = await um.m.runAsync();
      expect(r.status).toBe(0);
      expect(um.out.join('')).toBe(e.stdout);
      expect(got).toEqual([1n, 41n, -5n, 2001n]);
    } finally {
      um.close();
    }
  });
});
