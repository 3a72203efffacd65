/**
 * The kernel's own kprobes self-test, lib/tests/test_kprobes.c (KUnit suite `kprobes_test`,
 * reference §7), ported to every target against the guest kernel image. The image contains the
 * suite's targets (fixtures/kernel/test_kprobes.c: kprobe_target = v/3, kprobe_target2 =
 * v/3 + 1, kprobe_recursed_target = v/3, the stacktrace driver/target/internal target); the test
 * calls them the way the KUnit test does — directly, from the host, through
 * Machine.callKernelFunction — and its handlers call kernel functions the way Linux handlers do
 * (`yield regs.call(...)`).
 *
 * Where Linux defines a value the test checks it: return values (v/3, v/3 + 1), handler evidence
 * (preh_val, posth_val, krph_val), nmissed == 2 for the reentrant case, the real return address
 * seen inside a kretprobe handler. Beyond the KUnit checks: hit counts, the return address a
 * kretprobe handler sees, instance bookkeeping, and the register/unregister rules that make the
 * suite reset `kp.addr` and `kp.flags` before reusing a probe.
 */
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import { Rng } from '../../src/kernel/rng.js';
import { EINVAL, Kprobes } from '../../src/kprobes/kprobes.js';
import { Kprobe, KPROBE_FLAG } from '../../src/kprobes/kprobe.js';
import { Kretprobe, Kretprobes } from '../../src/kprobes/kretprobe.js';
import type { ProbeRegs } from '../../src/regs/probe-regs.js';
import { supported } from '../helpers.js';
import type { Target } from '../../arch/types.js';

const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as Target[]).filter((t) => supported.has(t));

/** The suite's div_factor. */
const DIV = 3n;

/**
 * kprobes_test_init: a fresh kernel per case (two vCPUs, so maxactive's default is max(10, 4))
 * and rand1, a u32 above div_factor so rand1 / 3 is never 0 — Linux draws it from
 * get_random_u32(); here from a seeded stream, per target and case, so a failure replays.
 */
function suite(target: Target, seed: number) {
  const reports: string[] = [];
  const m = new Machine({ target, cpus: 2, seed, report: (l) => reports.push(l) });
  const kprobes = new Kprobes(m);
  const krp = new Kretprobes(kprobes);
  const rng = new Rng(seed * 7919 + target.length);
  const rand1 = BigInt(4 + rng.below(0xffff_ffff - 4));
  return {
    m,
    kprobes,
    krp,
    rand1,
    reports,
    call: (fn: string, ...args: bigint[]) => m.callKernelFunction(fn, args, { comm: 'kunit_try_catch' }),
    register: (p: Kprobe) => m.kernelCall('register_kprobe', (t) => kprobes.register(t, p)),
    registerBatch: (ps: Kprobe[]) => m.kernelCall('register_kprobes', (t) => kprobes.registerBatch(t, ps)),
    unregister: (p: Kprobe) => m.kernelCall('unregister_kprobe', (t) => kprobes.unregister(t, p)),
    unregisterBatch: (ps: Kprobe[]) => m.kernelCall('unregister_kprobes', (t) => kprobes.unregisterBatch(t, ps)),
    registerRet: (rp: Kretprobe) => m.kernelCall('register_kretprobe', (t) => krp.register(t, rp)),
    registerRetBatch: (rps: Kretprobe[]) => m.kernelCall('register_kretprobes', (t) => krp.registerBatch(t, rps)),
    unregisterRet: (rp: Kretprobe) => m.kernelCall('unregister_kretprobe', (t) => krp.unregister(t, rp)),
    unregisterRetBatch: (rps: Kretprobe[]) => m.kernelCall('unregister_kretprobes', (t) => krp.unregisterBatch(t, rps)),
  };
}
type Suite = ReturnType<typeof suite>;

async function withSuite(target: Target, seed: number, body: (s: Suite) => Promise<void>): Promise<void> {
  const s = suite(target, seed);
  try {
    await body(s);
    // Every case leaves the kernel as it found it: no probe, no instance, no reader, no lockdep
    // report, text back to the image's bytes.
    expect(s.kprobes.list()).toEqual([]);
    expect(s.krp.npending).toBe(0);
    expect(s.krp.frameMismatches).toBe(0);
    expect(s.m.sync.rcu.readers()).toEqual([]);
    expect(s.m.sync.lockdep.reports).toEqual([]);
    const k = s.m.kernel;
    const n = Number(k.textEnd - k.textStart);
    expect(s.m.readKernelText(k.textStart, n)).toEqual(k.elf.textBytesAt(k.textStart, n));
    expect(s.reports).toEqual([]);
  } finally {
    s.m.close();
  }
}

/**
 * preemptible() inside a handler: Linux runs kprobe handlers with preemption (and on x86 IRQs)
 * off. Here a hit's trap context is an RCU reader from the trap to the end of the step (the
 * task pinned to its vCPU), return handlers too.
 */
const preemptible = (regs: ProbeRegs): boolean => regs.task.kctx.preempt === 0 && regs.task.kctx.rcuDepth === 0;

/**
 * What __builtin_return_address(0) records for a call, against the PC the call returns to: the
 * same on x86 and powerpc; on sparc64 it is %i7, the `call` instruction's own address, and the
 * return lands 8 bytes further on, past the delay slot (fixtures/kernel/ABI.md).
 */
const retOffset = (m: Machine): bigint => (m.arch.family === 'sparc' ? 8n : 0n);

/** target_return_address[0..1] in the image's data (native words, native byte order). */
function targetReturnAddress(m: Machine): [bigint, bigint] {
  const w = m.arch.wordSize;
  const b = m.readKernelText(m.kernel.symbol('target_return_address')!.value, 2 * w);
  const v = new DataView(b.buffer, b.byteOffset);
  const le = m.arch.endian === 'little';
  const word = (i: number) => (w === 8 ? v.getBigUint64(i * 8, le) : BigInt(v.getUint32(i * 4, le)));
  return [word(0), word(1)];
}

const fnOf = (m: Machine, a: bigint) => m.kernel.elf.symbolAt(a)?.symbol.name;

/**
 * stack_trace_save_regs(regs) for a return handler, as return addresses in the form
 * __builtin_return_address gives them, each kretprobe trampoline translated back to the real
 * address it stands for (Kretprobes.findRetAddr, Linux's kretprobe_find_ret_addr), innermost
 * first. It starts at regs (the handler's regs.ip: the real return PC already). Then:
 * - x86 and powerpc keep return addresses in memory (x86 on the stack; powerpc in the LR save
 *   words non-leaf functions fill), so the walk is Linux's "guess" unwinder (unwind_guess):
 *   every word from the stack pointer to the top of the task's kernel stack that is a kernel
 *   text address or the trampoline. The kernel-call task's stack starts zeroed, so no stale
 *   words from earlier tasks are found.
 * - sparc64 keeps them in register windows: the trapped frame's caller is %i7 of the current
 *   window. Linux flushes every window to the stack (flushw) and follows the saved %i7s; the
 *   host's window file is internal to the arch back-end, so this walk stops after that one.
 */
function stackTraceRegs(s: Suite, regs: ProbeRegs): bigint[] {
  const { m, krp } = s;
  const off = retOffset(m);
  const out = [regs.ip - off];
  let nth = 0;
  const translate = (pc: bigint): bigint | undefined => {
    if (pc === krp.trampoline) {
      const real = krp.findRetAddr(regs.task, nth++);
      return real === undefined ? undefined : real - off;
    }
    return m.kernel.isText(pc) ? pc - off : undefined;
  };
  if (m.arch.family === 'sparc') {
    const caller = translate(regs.reg('i7') + off);
    if (caller !== undefined) out.push(caller);
    return out;
  }
  const w = BigInt(m.arch.wordSize);
  for (let a = regs.sp(); a < regs.task.kstackTop; a += w) {
    const entry = translate(regs.mem.readWord(a));
    if (entry !== undefined) out.push(entry);
  }
  return out;
}

describe.each(TARGETS)('test_kprobes on %s', (target) => {
  it('test_kprobe: pre and post handler run once around kprobe_target; both call the unprobed kprobe_recursed_target and agree; the target still returns rand1 / 3', async () => {
    await withSuite(target, 1, async (s) => {
      const { rand1 } = s;
      let preh = 0n;
      let posth = 0n;
      let pre = 0;
      let post = 0;
      const kp = new Kprobe({
        symbolName: 'kprobe_target',
        preHandler: function* (_p, regs) {
          pre++;
          expect(preemptible(regs)).toBe(false);
          // The probe sits on the first instruction: the argument is where the kernel ABI puts it.
          expect(regs.arg(0)).toBe(rand1);
          preh = yield regs.call('kprobe_recursed_target', rand1);
          return 0;
        },
        postHandler: function* (_p, regs) {
          post++;
          const expval = yield regs.call('kprobe_recursed_target', rand1);
          expect(preemptible(regs)).toBe(false);
          expect(expval).toBe(preh);
          posth = preh + DIV;
        },
      });
      expect(await s.register(kp)).toBe(0);
      expect(await s.call('kprobe_target', rand1)).toBe(rand1 / DIV);
      await s.unregister(kp);
      // KUnit: both non-zero. The values themselves: recursed_target(rand1) and that + 3.
      expect(preh).toBe(rand1 / DIV);
      expect(posth).toBe(rand1 / DIV + DIV);
      expect([pre, post, kp.nhit, kp.nmissed]).toEqual([1, 1, 1, 0]);
      // Unregistered: the target runs bare.
      expect(await s.call('kprobe_target', rand1)).toBe(rand1 / DIV);
      expect([pre, post]).toEqual([1, 1]);
    });
  });

  it('test_kprobes: a reused kp (addr and flags reset) and kp2 registered as a batch; each target fires its own probe only', async () => {
    await withSuite(target, 2, async (s) => {
      const { rand1 } = s;
      let preh = 0n;
      let posth = 0n;
      const kp = new Kprobe({
        symbolName: 'kprobe_target',
        preHandler: function* (_p, regs) {
          preh = yield regs.call('kprobe_recursed_target', rand1);
          return 0;
        },
        postHandler: function* (_p, regs) {
          expect(yield regs.call('kprobe_recursed_target', rand1)).toBe(preh);
          posth = preh + DIV;
        },
      });
      const kp2 = new Kprobe({
        symbolName: 'kprobe_target2',
        preHandler: () => {
          preh = rand1 / DIV + 1n;
          return 0;
        },
        postHandler: () => {
          expect(preh).toBe(rand1 / DIV + 1n);
          posth = preh + DIV;
        },
      });
      // kp was used by test_kprobe before: registered (addr written back), then unregistered.
      expect(await s.register(kp)).toBe(0);
      await s.unregister(kp);
      expect(kp.addr).toBeDefined();
      kp.addr = undefined;
      kp.flags = 0;
      expect(await s.registerBatch([kp, kp2])).toBe(0);

      expect(await s.call('kprobe_target', rand1)).toBe(rand1 / DIV);
      expect([preh, posth]).toEqual([rand1 / DIV, rand1 / DIV + DIV]);
      preh = posth = 0n;
      expect(await s.call('kprobe_target2', rand1)).toBe(rand1 / DIV + 1n);
      expect([preh, posth]).toEqual([rand1 / DIV + 1n, rand1 / DIV + 1n + DIV]);
      await s.unregisterBatch([kp, kp2]);
      expect([kp.nhit, kp2.nhit, kp.nmissed, kp2.nmissed]).toEqual([1, 1, 0, 0]);
    });
  });

  it('test_kprobe_missed: handlers that call the probed kprobe_recursed_target re-enter their own probe — nmissed == 2 exactly, the nested calls still run the instruction', async () => {
    await withSuite(target, 3, async (s) => {
      const { rand1 } = s;
      let preh = 0n;
      let posth = 0n;
      const status: number[] = [];
      const kp = new Kprobe({
        symbolName: 'kprobe_recursed_target',
        preHandler: function* (_p, regs) {
          preh = yield regs.call('kprobe_recursed_target', rand1);
          status.push(kp.nmissed);
          return 0;
        },
        postHandler: function* (_p, regs) {
          posth = yield regs.call('kprobe_recursed_target', rand1);
          status.push(kp.nmissed);
        },
      });
      expect(await s.register(kp)).toBe(0);
      expect(await s.call('kprobe_recursed_target', rand1)).toBe(rand1 / DIV);
      // Linux: one reentry from inside the pre handler (KPROBE_HIT_ACTIVE) and one from inside
      // the post handler (KPROBE_HIT_SSDONE), each counted and single-stepped without handlers;
      // the outer hit ran its handlers once.
      expect(kp.nmissed).toBe(2);
      expect(status).toEqual([1, 2]);
      expect(kp.nhit).toBe(1);
      // The re-entered calls ran the probed function correctly.
      expect(preh).toBe(rand1 / DIV);
      expect(posth).toBe(rand1 / DIV);
      await s.unregister(kp);
    });
  });

  it('test_kretprobe: entry handler first, then the return handler sees rand1 / 3 and the real return address (entry_call_return, not the trampoline)', async () => {
    await withSuite(target, 4, async (s) => {
      const { m, rand1, krp } = s;
      let krph = 0n;
      const seenIp: bigint[] = [];
      const rp = new Kretprobe({
        symbolName: 'kprobe_target',
        entryHandler: (_ri, regs) => {
          expect(preemptible(regs)).toBe(false);
          krph = rand1 / DIV;
          return 0;
        },
        handler: (_ri, regs) => {
          expect(preemptible(regs)).toBe(false);
          expect(regs.returnValue()).toBe(rand1 / DIV);
          // The entry handler ran first.
          expect(krph).not.toBe(0n);
          krph = rand1;
          seenIp.push(regs.ip);
        },
      });
      expect(await s.registerRet(rp)).toBe(0);
      // maxactive 0 → max(10, 2 × 2 vCPUs), preallocated.
      expect([rp.maxactive, rp.nfree]).toEqual([10, 10]);
      expect(await s.call('kprobe_target', rand1)).toBe(rand1 / DIV);
      await s.unregisterRet(rp);
      expect(krph).toBe(rand1);
      // The host called kprobe_target directly: its caller is entry_call_return.
      expect(seenIp).toEqual([m.kernel.entryCallReturn]);
      expect(seenIp[0]).not.toBe(krp.trampoline);
      expect([rp.nmissed, rp.kp.nmissed, rp.kp.nhit, rp.ninuse]).toEqual([0, 0, 1, 0]);
    });
  });

  it('test_kretprobes: a reused rp and rp2 registered as a batch; each return handler checks its own function’s value', async () => {
    await withSuite(target, 5, async (s) => {
      const { rand1 } = s;
      let krph = 0n;
      const entry = () => {
        krph = rand1 / DIV;
        return 0;
      };
      const rp = new Kretprobe({
        symbolName: 'kprobe_target',
        entryHandler: entry,
        handler: (_ri, regs) => {
          expect(regs.returnValue()).toBe(rand1 / DIV);
          expect(krph).not.toBe(0n);
          krph = rand1;
        },
      });
      const rp2 = new Kretprobe({
        symbolName: 'kprobe_target2',
        entryHandler: entry,
        handler: (_ri, regs) => {
          expect(regs.returnValue()).toBe(rand1 / DIV + 1n);
          expect(krph).not.toBe(0n);
          krph = rand1;
        },
      });
      // rp was used by test_kretprobe before.
      expect(await s.registerRet(rp)).toBe(0);
      await s.unregisterRet(rp);
      rp.kp.addr = undefined;
      rp.kp.flags = 0;
      expect(await s.registerRetBatch([rp, rp2])).toBe(0);
      expect(await s.call('kprobe_target', rand1)).toBe(rand1 / DIV);
      expect(krph).toBe(rand1);
      krph = 0n;
      expect(await s.call('kprobe_target2', rand1)).toBe(rand1 / DIV + 1n);
      expect(krph).toBe(rand1);
      await s.unregisterRetBatch([rp, rp2]);
      expect([rp.kp.nhit, rp2.kp.nhit, rp.nmissed, rp2.nmissed]).toEqual([1, 1, 0, 0]);
    });
  });

  /**
   * The driver, run once unprobed first (KUnit does the same): target_return_address[] is only
   * written by the first call, so it holds the real return addresses — a probed call would see
   * the trampoline in its own return slot.
   */
  async function recordReturnAddresses(s: Suite): Promise<[bigint, bigint]> {
    const { m } = s;
    const ecr = m.kernel.entryCallReturn;
    // The driver returns its own return address: where the host called it from. KUnit asserts it
    // differs from the test's own (the driver was not inlined); here it is exactly that.
    expect(await s.call('kprobe_stacktrace_driver')).toBe(ecr - retOffset(m));
    const [r0, r1] = targetReturnAddress(m);
    expect(fnOf(m, r0)).toBe('kprobe_stacktrace_target');
    expect(fnOf(m, r1)).toBe('kprobe_stacktrace_driver');
    return [r0, r1];
  }

  it('test_stacktrace_on_kretprobe: inside the return handler of kprobe_stacktrace_target the return value is target_return_address[1], and so are regs.ip and the first entry of the stack trace', async () => {
    await withSuite(target, 6, async (s) => {
      const { m, krp } = s;
      const [, r1] = await recordReturnAddresses(s);
      const traces: bigint[][] = [];
      const rp3 = new Kretprobe({
        symbolName: 'kprobe_stacktrace_target',
        handler: (_ri, regs) => {
          expect(preemptible(regs)).toBe(false);
          expect(regs.returnValue()).toBe(r1);
          expect(regs.ip).toBe(r1 + retOffset(m));
          expect(regs.ip).not.toBe(krp.trampoline);
          traces.push(stackTraceRegs(s, regs));
        },
      });
      expect(await s.registerRet(rp3)).toBe(0);
      expect(await s.call('kprobe_stacktrace_driver')).toBe(m.kernel.entryCallReturn - retOffset(m));
      await s.unregisterRet(rp3);
      expect(traces).toHaveLength(1);
      const trace = traces[0]!;
      // stack_trace_save: the real return address is in the trace (the trampoline never is);
      // stack_trace_save_regs: the trace starts with it.
      expect(trace).toContain(r1);
      expect(trace[0]).toBe(r1);
      expect(trace).not.toContain(krp.trampoline! - retOffset(m));
    });
  });

  it('test_stacktrace_on_nested_kretprobe: with kprobe_stacktrace_internal_target probed too, two trampolines are live; inside the inner return handler the trace reads target_return_address[0] then [1]', async () => {
    await withSuite(target, 7, async (s) => {
      const { m, krp } = s;
      const [r0, r1] = await recordReturnAddresses(s);
      const order: string[] = [];
      let inner: bigint[] = [];
      let outerLive: bigint | undefined;
      const rp3 = new Kretprobe({
        symbolName: 'kprobe_stacktrace_target',
        handler: (_ri, regs) => {
          order.push('target');
          expect(regs.returnValue()).toBe(r1);
          expect(stackTraceRegs(s, regs)[0]).toBe(r1);
        },
      });
      const rp4 = new Kretprobe({
        symbolName: 'kprobe_stacktrace_internal_target',
        handler: (_ri, regs) => {
          order.push('internal');
          expect(preemptible(regs)).toBe(false);
          expect(regs.returnValue()).toBe(r0);
          expect(regs.ip).toBe(r0 + retOffset(m));
          // The outer function is still live with the trampoline as its return address; an
          // unwinder finds its real one through the task's instances.
          outerLive = krp.findRetAddr(regs.task, 0);
          inner = stackTraceRegs(s, regs);
        },
      });
      rp3.kp.addr = undefined;
      rp3.kp.flags = 0;
      expect(await s.registerRetBatch([rp3, rp4])).toBe(0);
      expect(await s.call('kprobe_stacktrace_driver')).toBe(m.kernel.entryCallReturn - retOffset(m));
      await s.unregisterRetBatch([rp3, rp4]);
      // LIFO: the internal target returns first.
      expect(order).toEqual(['internal', 'target']);
      expect(outerLive).toBe(r1 + retOffset(m));
      // stack_trace_save: right after [0] comes [1] (each trampoline resolved to its own frame's
      // address, innermost first); stack_trace_save_regs: the trace starts [0], [1].
      const i = inner.indexOf(r0);
      expect(i).toBeGreaterThanOrEqual(0);
      expect(inner[i + 1]).toBe(r1);
      expect(inner.slice(0, 2)).toEqual([r0, r1]);
    });
  });

  it('register/unregister rules behind the suite’s resets: a stale addr is -EINVAL, unregister leaves DISABLED, which registers a silent probe, batches are all-or-nothing, an unknown probe’s unregister clears addr', async () => {
    await withSuite(target, 8, async (s) => {
      const { rand1 } = s;
      const hits: string[] = [];
      const kp = new Kprobe({ symbolName: 'kprobe_target', preHandler: () => (hits.push('kp'), 0) });
      const kp2 = new Kprobe({ symbolName: 'kprobe_target2', preHandler: () => (hits.push('kp2'), 0) });
      expect(await s.register(kp)).toBe(0);
      const addr = kp.addr;
      // Registration wrote the address back; the same struct twice is refused.
      expect(addr).toBe(s.m.kernel.symbol('kprobe_target')!.localEntry ?? s.m.kernel.symbol('kprobe_target')!.codeAddress);
      expect(await s.register(kp)).toBe(-EINVAL);
      // Unregistering disables the probe first (__disable_kprobe in the top half): the struct
      // keeps its addr and now carries DISABLED.
      await s.unregister(kp);
      expect(kp.addr).toBe(addr);
      expect(kp.flags).toBe(KPROBE_FLAG.DISABLED);
      // Reused as is: symbol_name and a stale addr → -EINVAL (what `kp.addr = NULL` avoids).
      expect(await s.register(kp)).toBe(-EINVAL);
      // A batch stops at that first failure and unregisters what it had registered: kp2 is gone
      // again and its target runs bare — left with addr and DISABLED like any unregistered probe.
      expect(await s.registerBatch([kp2, kp])).toBe(-EINVAL);
      expect(s.kprobes.isRegistered(kp2)).toBe(false);
      expect(kp2.addr).toBeDefined();
      expect(kp2.flags).toBe(KPROBE_FLAG.DISABLED);
      expect(await s.call('kprobe_target2', rand1)).toBe(rand1 / DIV + 1n);
      expect(hits).toEqual([]);
      // addr cleared but the stale DISABLED kept (what `kp.flags = 0` avoids): registered, but
      // disabled — the breakpoint is not even armed, the handler never runs.
      kp.addr = undefined;
      expect(await s.register(kp)).toBe(0);
      expect(s.kprobes.list()).toEqual([expect.stringMatching(/  k  kprobe_target\+0x0    \[DISABLED\]$/)]);
      expect(s.kprobes.isArmed(kp.addr!)).toBe(false);
      expect(await s.call('kprobe_target', rand1)).toBe(rand1 / DIV);
      expect(hits).toEqual([]);
      await s.unregister(kp);
      // Both reset, as the suite does: they fire.
      kp.addr = kp2.addr = undefined;
      kp.flags = kp2.flags = 0;
      expect(await s.registerBatch([kp, kp2])).toBe(0);
      expect(await s.call('kprobe_target', rand1)).toBe(rand1 / DIV);
      expect(await s.call('kprobe_target2', rand1)).toBe(rand1 / DIV + 1n);
      expect(hits).toEqual(['kp', 'kp2']);
      await s.unregisterBatch([kp, kp2]);
      // Unregistering a probe that is not registered only clears its addr (Linux: p->addr = NULL).
      const never = new Kprobe({ addr: addr });
      await s.unregister(never);
      expect(never.addr).toBeUndefined();
      // kretprobes: the same all-or-nothing batch, and a stale kp.addr refused.
      const rp = new Kretprobe({ symbolName: 'kprobe_target', handler: () => void hits.push('rp') });
      const rp2 = new Kretprobe({ symbolName: 'kprobe_target2', handler: () => void hits.push('rp2') });
      expect(await s.registerRet(rp)).toBe(0);
      await s.unregisterRet(rp);
      expect(await s.registerRetBatch([rp2, rp])).toBe(-EINVAL);
      expect(s.kprobes.isRegistered(rp2.kp)).toBe(false);
      expect(rp2.nfree).toBe(0);
      rp.kp.addr = rp2.kp.addr = undefined;
      rp.kp.flags = rp2.kp.flags = 0;
      expect(await s.registerRetBatch([rp2, rp])).toBe(0);
      expect(await s.call('kprobe_target', rand1)).toBe(rand1 / DIV);
      expect(await s.call('kprobe_target2', rand1)).toBe(rand1 / DIV + 1n);
      await s.unregisterRetBatch([rp2, rp]);
      expect(hits).toEqual(['kp', 'kp2', 'rp', 'rp2']);
    });
  });
});
