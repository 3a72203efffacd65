/**
 * sparc64: the CPU keeps the register windows (arch/sparc/windows.ts, window-file.ts).
 *
 * SPARC V9 defines when a window trap happens: a `save` spills only when CANSAVE = 0, a
 * `restore` fills only when CANRESTORE = 0, and Linux runs user code with CANSAVE + CANRESTORE =
 * NWINDOWS − 2 = 6. So sum(20) by recursion (21 saves, 21 restores, from a state with no caller
 * window resident) takes 21 − 6 = 15 spills and 15 fills, and sum(4) none. With the CPU's window
 * file unreachable (UNIPROBE_SPARC_HOST_WINDOWS=1, the fallback) every one of them traps to the
 * host instead; the results must not differ. A task switched in also never sees the windows of
 * the task before it: a `restore` fills from its own stack and a `save` opens a zeroed window.
 */
import { describe, expect, it } from 'vitest';
import { openEngine } from '../../arch/engine.js';
import { sparc64 } from '../../arch/sparc/sparc64.js';
import { TT, cpuOf } from '../../arch/sparc/cpu.js';
import { UC_SPARC_REG as R } from '../../arch/sparc/ucregs.js';
import type { TrapSink } from '../../arch/types.js';
import { type Engine, UC_PROT } from '../../src/emu/unicorn.js';
import { memAccess } from './kprobe-harness.js';
import { words, writeTempElf } from './mini-elf.js';
import { runProgram } from '../helpers.js';
import * as isa from '../../arch/sparc/isa.js';
import { MAX_RESIDENT } from '../../arch/sparc/window-file.js';
import * as P from './sparc64-programs.js';

const TEXT = 0x10000n;
const STACK_TOP = 0x200000n;
const SAVE = 0x9de3bf50; // save %sp, -176, %sp
const RESTORE = 0x81e80000; // restore
const MOV_55_L0 = 0xa0102055; // mov 0x55, %l0
const TA1 = 0x91d02001; // ta 1: the sink stops the run

interface Run {
  e: Engine;
  traps: { spill: number; fill: number };
  close(): void;
}

function engine(hostWindows: boolean): Run {
  const saved = process.env.UNIPROBE_SPARC_HOST_WINDOWS;
  if (hostWindows) process.env.UNIPROBE_SPARC_HOST_WINDOWS = '1';
  else delete process.env.UNIPROBE_SPARC_HOST_WINDOWS;
  const e = openEngine(sparc64);
  try {
    sparc64.setupEngine(e, { mapPrivate: (a, s, x) => e.memMap(a, s, x ? UC_PROT.ALL : UC_PROT.READ | UC_PROT.WRITE) });
  } finally {
    if (saved === undefined) delete process.env.UNIPROBE_SPARC_HOST_WINDOWS;
    else process.env.UNIPROBE_SPARC_HOST_WINDOWS = saved;
  }
  e.memMap(0n, 4 << 20, UC_PROT.ALL);
  const stop = { stop: true } as const;
  const sink: TrapSink = {
    isKernelText: () => false,
    syscall: () => stop,
    hypercall: () => stop,
    breakpoint: () => stop,
    fault: () => stop,
    memory: () => Object.assign(memAccess(e, 8), { unsettled: false }),
  };
  sparc64.installTrapHooks(e, sink);
  const traps = { spill: 0, fill: 0 };
  e.hookIntr((intno) => {
    if (intno === TT.SPILL) traps.spill++;
    if (intno === TT.FILL) traps.fill++;
  });
  return { e, traps, close: () => e.close() };
}

/** r0..r31 with %sp and %fp on the stack, then PC, %ccr, %y and the resident windows. */
function regs(pc: bigint, windows: bigint[][] = []): bigint[] {
  const r = Array.from({ length: 32 }, () => 0n);
  r[14] = STACK_TOP - 0x1000n - 2047n; // %sp (biased)
  r[30] = STACK_TOP - 0x800n - 2047n; // %fp (biased)
  return [...r, pc, 0n, 0n, BigInt(windows.length), ...windows.flat()];
}

function sum(n: number, hostWindows: boolean): { o0: bigint; traps: { spill: number; fill: number }; cpuFile: boolean } {
  const run = engine(hostWindows);
  try {
    const prog = [...P.recursion.words];
    prog[0] = 0x90102000 | n; // mov n, %o0
    run.e.memWrite(TEXT, words(...prog));
    sparc64.restore(run.e, { values: regs(TEXT) });
    const r = run.e.start(TEXT, 0n, 10_000);
    expect(r.err).toBe(0);
    return { o0: run.e.regRead(R.O0), traps: { ...run.traps }, cpuFile: cpuOf(run.e).windows.cpuFile !== undefined };
  } finally {
    run.close();
  }
}

describe('sparc64 register windows kept by the CPU', () => {
  it('window traps only on overflow and underflow (V9: CANSAVE = 0, CANRESTORE = 0), as Linux runs user code', () => {
    const deep = sum(20, false);
    expect(deep.cpuFile).toBe(true);
    expect(deep).toMatchObject({ o0: 210n, traps: { spill: 21 - 6, fill: 21 - 6 } });
    expect(sum(4, false)).toMatchObject({ o0: 10n, traps: { spill: 0, fill: 0 } });
  });

  it('the host fallback (every save and restore trapped and emulated) computes the same', () => {
    const deep = sum(20, true);
    expect(deep.cpuFile).toBe(false);
    expect(deep).toMatchObject({ o0: 210n, traps: { spill: 21, fill: 21 } });
    expect(sum(4, true)).toMatchObject({ o0: 10n, traps: { spill: 5, fill: 5 } });
  });

  it('a task switched in sees none of the previous task\'s windows', () => {
    const run = engine(false);
    try {
      const e = run.e;
      // Task A: a caller window resident (%l0 = 0xa1) and a window it opened and left (%l0 = 0x55).
      const taskA = (): void => {
        e.memWrite(TEXT, words(SAVE, MOV_55_L0, RESTORE, TA1));
        const callerA = Array.from({ length: 16 }, (_, k) => 0xa0n + BigInt(k) + 1n);
        sparc64.restore(e, { values: regs(TEXT, [callerA]) });
        expect(e.start(TEXT, 0n, 100).err).toBe(0);
      };
      // Task B, no window resident: its `save` opens a zeroed window, not A's (%l0 = 0x55 there)...
      taskA();
      e.memWrite(TEXT + 0x200n, words(SAVE, TA1));
      sparc64.restore(e, { values: regs(TEXT + 0x200n) });
      expect(e.start(TEXT + 0x200n, 0n, 100).err).toBe(0);
      expect(e.regReadBatch([R.L0, R.L1, R.O0, R.O7])).toEqual([0n, 0n, 0n, 0n]);
      // ...and its `restore` fills from its own %fp save area, not from A's caller window.
      taskA();
      const fp = STACK_TOP - 0x800n - 2047n;
      const area = new Uint8Array(128);
      const dv = new DataView(area.buffer);
      for (let k = 0; k < 16; k++) dv.setBigUint64(8 * k, 0xb0n + BigInt(k));
      e.memWrite(fp + 2047n, area);
      e.memWrite(TEXT + 0x100n, words(RESTORE, TA1));
      sparc64.restore(e, { values: regs(TEXT + 0x100n) });
      expect(e.start(TEXT + 0x100n, 0n, 100).err).toBe(0);
      expect(e.regReadBatch([R.L0, R.L7, R.I0])).toEqual([0xb0n, 0xb7n, 0xb8n]);
    } finally {
      run.close();
    }
  });
});

describe('sparc64 window spills from user code are user accesses', () => {
  it('a %sp pointing into the kernel: the overflowing save gets SIGSEGV instead of writing kernel memory', () => {
    const kernel = sparc64.layout.kernelBase + 0x1000n;
    const prog = [
      ...isa.encSetx(kernel - 2047n, isa.REG.O6, isa.REG.G2), // %sp = a kernel address (biased)
      ...Array.from({ length: MAX_RESIDENT + 1 }, () => SAVE), // the seventh spills the first window there
      0x90102000, // mov 0, %o0
      0x821020bc, // mov 188, %g1 (exit_group)
      0x91d0206d, // ta 0x6d
    ];
    const image = new Uint8Array(0x4000);
    image.set(words(...prog));
    const path = writeTempElf('spill-kernel', { machine: 43, base: 0x100000n, image, memsz: 0x6000, entry: 0x100000n, align: 0x2000 });
    const r = runProgram('sparc64', path);
    // Linux: the spill handler's ASI_AIUP store faults; the window cannot be saved: SIGSEGV.
    expect(r.status).toBe(128 + 11);
    expect(r.reports.join('\n')).toMatch(/SIGSEGV/);
  });
});
