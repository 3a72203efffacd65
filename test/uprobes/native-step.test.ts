/**
 * Steps finished by the engine's native trap hook (src/emu/trap-hook.ts NativeStepTrap): for an
 * out-of-line copy whose post_xol only moves the PC, the step trap is handled in C and the core's
 * bookkeeping runs before any other JavaScript of the engine. It must not show:
 * - the same program, probes and runs give the same output, hit counts and retired instruction
 *   count as with every step trap going through JavaScript (UNIPROBE_NATIVE_STEP=0), also when
 *   the runs are cut every few hundred instructions (a step armed when a run ends is the
 *   JavaScript path's again);
 * - the next probe hit, right behind the stepped instruction, finds the task back in
 *   UTASK_RUNNING with its slot free, as handle_singlestep leaves it;
 * - the native path is really taken on every target (sparc64 included: its hits outside delay
 *   slots; test/arch/sparc-uprobes.test.ts covers the ones inside).
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Machine } from '../../src/kernel/machine.js';
import { readElfFileSync } from '../../src/elf/index.js';
import { Uprobes } from '../../src/uprobes/index.js';
import type { Utask } from '../../src/uprobes/utask.js';
import { isRefusal } from '../../arch/probes.js';
import type { Target } from '../../arch/types.js';
import * as sparcIsa from '../../arch/sparc/isa.js';
import { repoRoot, supported, withEnv } from '../helpers.js';

const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as const).filter((t) => supported.has(t));

/** A stepped instruction near fib's start, and the probeable instruction right behind it. */
function steppedPair(target: Target, m: Machine, up: Uprobes, path: string): { first: bigint; second: bigint; plain: boolean; secondSteps: boolean } {
  const elf = readElfFileSync(path);
  const fib = elf.symbolByName('fib')!;
  let a = fib.localEntry;
  for (let i = 0; i < 12; i++) {
    const p = up.arch.analyzeUprobe(a, elf.textBytesAt(a, up.arch.maxInsnBytes));
    if (isRefusal(p)) break;
    const next = a + BigInt(p.insn.length);
    const q = up.arch.analyzeUprobe(next, elf.textBytesAt(next, up.arch.maxInsnBytes));
    if (p.mode === 'step' && !isRefusal(q)) {
      return { first: elf.vaddrToOffset(a)!, second: elf.vaddrToOffset(next)!, plain: p.plainStepNext !== undefined && up.arch.nativeStepTrap !== undefined, secondSteps: q.mode === 'step' };
    }
    a = next;
  }
  throw new Error(`${target}: no stepped instruction followed by a probeable one at fib's start (machine ${m.arch.target})`);
}

interface Outcome {
  stdout: string;
  status: number;
  insns: number;
  hits: [number, number];
  /** At every hit of the second probe: the task's uprobe state and XOL slots in use. */
  states: Set<string>;
  native: number;
}

async function run(target: Target, opts: { loneSlice?: number; quantum?: number; seed?: number }): Promise<Outcome> {
  const path = join(repoRoot, 'bench', 'guest', target, 'calls');
  let stdout = '';
  const m = new Machine({ target, ...opts, stdout: (b) => (stdout += Buffer.from(b).toString()), report: () => undefined });
  try {
    const up = new Uprobes(m);
    const { first, second } = steppedPair(target, m, up, path);
    const hits: [number, number] = [0, 0];
    const states = new Set<string>();
    let native = 0;
    const ino = m.inodeFor(path);
    expect(await m.kernelCall('r1', (t) => up.register(t, ino, first, { handler: () => (hits[0]++, 0) }))).toBe(0);
    expect(
      await m.kernelCall('r2', (t) =>
        up.register(t, ino, second, {
          handler: (_c, regs) => {
            hits[1]++;
            const ut = regs.task.utask as Utask;
            states.add(`${ut.state} active=${ut.active !== undefined} slots=${up.stateIf(regs.mem)?.xol?.inUse}`);
            native = regs.engine.nativeSteps?.completed ?? 0;
            return 0;
          },
        }),
      ),
    ).toBe(0);
    m.spawn(path, [path, '12']);
    const r = await m.runAsync();
    return { stdout, status: r.status, insns: r.insns, hits, states, native };
  } finally {
    m.close();
  }
}

/** The same with every step trap handled in JavaScript (the trap trampolines stay). */
const viaJavaScript = (target: Target, opts: Parameters<typeof run>[1]): Promise<Outcome> =>
  withEnv('UNIPROBE_NATIVE_STEP', '0', () => run(target, opts)); // read when each engine opens

describe.each(TARGETS)('%s: steps finished by the native trap hook', (target) => {
  it('change nothing the program or the probes see, with long runs and with runs cut every few hundred instructions', async () => {
    for (const opts of [{}, { loneSlice: 1, quantum: 300, seed: 7 }]) {
      const native = await run(target, opts);
      const js = await viaJavaScript(target, opts);
      expect(native.hits[0]).toBeGreaterThan(100);
      expect(native.hits).toEqual([native.hits[0], native.hits[0]]);
      const { native: n, ...seen } = native;
      const { native: j, ...seenJs } = js;
      expect(seen).toEqual(seenJs);
      expect(j).toBe(0);
      const m = new Machine({ target, report: () => undefined });
      try {
        const up = new Uprobes(m);
        const { plain, secondSteps } = steppedPair(target, m, up, join(repoRoot, 'bench', 'guest', target, 'calls'));
        // handle_singlestep's end state at the very next hit: the first slot is free again (the
        // second probe, when it steps too, has taken its own before its handlers run).
        expect([...native.states]).toEqual([`running active=false slots=${secondSteps ? 1 : 0}`]);
        // Every target describes its step trap to the native hook, and fib's first stepped
        // instruction is a plain one on each: the native path is taken at most of its hits.
        expect(plain).toBe(true);
        expect(n).toBeGreaterThan(native.hits[0] / 2);
      } finally {
        m.close();
      }
    }
  });
});

/**
 * sparc64: a probe in a delay slot continues at the pending branch target, not at vaddr + 4, so
 * its plain step must not be finished natively (NativeStepTrapSpec.hitPcAfterIsNext). The probe
 * sits in the delay slot of fib's recursive `call`: finished at vaddr + 4 it would skip the call.
 */
describe.runIf(supported.has('sparc64'))('sparc64: a plain step in a delay slot', () => {
  it('keeps the JavaScript path and resumes at the call target: the output and counts of the unprobed run', async () => {
    const path = join(repoRoot, 'bench', 'guest', 'sparc64', 'calls');
    const elf = readElfFileSync(path);
    const fib = elf.symbolByName('fib')!;
    let slot: bigint | undefined;
    for (let a = fib.localEntry; a < fib.localEntry + 0x100n && slot === undefined; a += 4n) {
      if (sparcIsa.isCall(Buffer.from(elf.textBytesAt(a, 4)).readUInt32BE(0))) slot = a + 4n;
    }
    expect(slot).toBeDefined();
    const once = async (probe: boolean) => {
      let stdout = '';
      let hits = 0;
      let native = -1;
      const m = new Machine({ target: 'sparc64', stdout: (b) => (stdout += Buffer.from(b).toString()), report: () => undefined });
      try {
        const up = new Uprobes(m);
        const p = up.arch.analyzeUprobe(slot!, elf.textBytesAt(slot!, 4));
        if (isRefusal(p)) throw new Error(p.reason);
        // The delay-slot word is an ordinary instruction: plain, were it not for where it runs.
        expect([p.mode, p.plainStepNext]).toEqual(['step', 4]);
        const handler = (_c: unknown, regs: { engine: Machine['processes'][number]['mm']['engine'] }) => {
          hits++;
          native = regs.engine.nativeSteps?.completed ?? 0;
          return 0;
        };
        if (probe) expect(await m.kernelCall('r', (t) => up.register(t, m.inodeFor(path), elf.vaddrToOffset(slot!)!, { handler }))).toBe(0);
        m.spawn(path, [path, '12']);
        const r = await m.runAsync();
        return { stdout, status: r.status, hits, native };
      } finally {
        m.close();
      }
    };
    const bare = await once(false);
    const probed = await once(true);
    const js = await withEnv('UNIPROBE_NATIVE_STEP', '0', () => once(true));
    expect(probed.hits).toBeGreaterThan(100);
    expect(probed.native).toBe(0);
    expect({ ...probed, hits: 0, native: 0 }).toEqual({ ...bare, native: 0 });
    expect(js).toEqual(probed);
  });
});
