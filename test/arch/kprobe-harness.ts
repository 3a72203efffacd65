/**
 * Differential harness for the instruction back-ends of kprobes: run an instruction once natively
 * and once through the probe path (breakpoint → emulate, or slot + step trap → postStep), each on
 * a fresh engine seeded identically, and return what can be compared: the arch's register
 * snapshot, where the run stopped, every byte written, faults.
 *
 * The probe path here is the smallest stand-in for the generic kprobe core: a hit at the probe
 * either emulates or jumps to the slot (same run), the step trap calls postStep with the hit's
 * pcAfter, and any other breakpoint is a stop word that ends the run.
 */
import '../../arch/decoders-ready.js'; // the back-ends decode with Capstone
import { pooledEngine, releaseEngine } from './engine-pool.js';

/**
 * The differential runs execute a few hundred instructions per engine, thousands of engines per
 * file: a 1 MiB translation buffer instead of 32 MiB (Unicorn clears the whole buffer when it
 * sets it up and at every flush).
 */
const SMALL_ENGINE = { translationBufferBytes: 1 << 20 };
import { Engine, UC_HOOK, UC_PROT } from '../../src/emu/unicorn.js';
import { countExecutions } from './executions.js';
import type { Arch, GuestMemoryAccess, TrapSink } from '../../arch/types.js';
import { isRefusal, type PreparedInsn, type ProbeArch, type ProbeCpu } from '../../arch/probes.js';

export interface Placement {
  /** Words to write, by address (everything else in the text window is the stop word). */
  words: Map<bigint, number>;
  start: bigint;
  /** Probe address (probed run only). */
  probe: bigint;
}

export interface Layout {
  /** Mapped zero-filled region [0, size). */
  size: number;
  /** Text window filled with stop words. */
  text: { base: bigint; size: number };
  /** Data window filled with a byte pattern. */
  data: { base: bigint; size: number };
  /** Separate mapping for the slot. */
  slot: bigint;
  stopWord: number;
}

export interface Outcome {
  regs: bigint[];
  stop: string;
  writes: Array<[string, string]>;
  /** Probed: breakpoint hits; native: executions of the probed address. */
  hits: number;
  steps: number;
  /** Probed: hits carried out by emulate-first (PreparedInsn.tryEmulate), no step. */
  emulated: number;
}

function be(words: number[]): Uint8Array {
  const b = new Uint8Array(words.length * 4);
  const v = new DataView(b.buffer);
  words.forEach((w, i) => v.setUint32(i * 4, w >>> 0));
  return b;
}

const hex = (v: bigint): string => '0x' + v.toString(16);

export function memAccess(e: Engine, wordSize: number): GuestMemoryAccess {
  return {
    read: (a, n) => e.memRead(a, n),
    write: (a, b) => e.memWrite(a, b),
    readWord(a) {
      const b = e.memRead(a, wordSize);
      const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
      return wordSize === 8 ? v.getBigUint64(0) : BigInt(v.getUint32(0));
    },
    writeWord(a, value) {
      const b = new Uint8Array(wordSize);
      const v = new DataView(b.buffer);
      if (wordSize === 8) v.setBigUint64(0, BigInt.asUintN(64, value));
      else v.setUint32(0, Number(BigInt.asUintN(32, value)));
      e.memWrite(a, b);
    },
  };
}

/**
 * One run. `seed` writes the registers (after setup, before the run). `prepared` absent = native.
 * `maxSteps` bounds the run in instructions (a loop back into the probe would not end otherwise).
 */
export function runOnce(
  arch: Arch,
  layout: Layout,
  place: Placement,
  seed: (e: Engine) => void,
  probe?: { pa: ProbeArch; prepared: PreparedInsn },
  maxSteps = 500,
): Outcome {
  const e = pooledEngine(arch, SMALL_ENGINE);
  try {
    arch.setupEngine(e, { mapPrivate: (a, s, x) => e.memMap(a, s, x ? UC_PROT.ALL : UC_PROT.READ | UC_PROT.WRITE) });
    e.memMap(0n, layout.size, UC_PROT.ALL);
    e.memWrite(layout.text.base, be(new Array(layout.text.size / 4).fill(layout.stopWord)));
    const pattern = new Uint8Array(layout.data.size);
    for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 37 + 11) & 0xff;
    e.memWrite(layout.data.base, pattern);
    for (const [a, w] of place.words) e.memWrite(a, be([w]));
    const slotPage = layout.slot & ~0x1fffn;
    e.memMap(slotPage, 0x2000, UC_PROT.ALL);
    if (probe) {
      e.memWrite(place.probe, probe.pa.breakpoint);
      if (probe.prepared.mode !== 'emulate') e.memWrite(layout.slot, probe.prepared.slotBytes(layout.slot));
    }
    const writes = new Map<bigint, number>();
    // Stores an emulation makes go through here, where the MEM_WRITE hook below cannot see them.
    const direct = memAccess(e, arch.wordSize);
    const mem: GuestMemoryAccess = {
      ...direct,
      write(a, b) {
        direct.write(a, b);
        for (let i = 0n; i < BigInt(b.length); i++) writes.set(a + i, 1);
      },
    };
    let stop = 'none';
    let hits = 0;
    let steps = 0;
    let emulated = 0;
    let stepping = false;
    let hitPcAfter = 0n;
    const inSlot = (pc: bigint): boolean => pc >= layout.slot && pc < layout.slot + 32n;
    const sink: TrapSink = {
      isKernelText: () => false,
      syscall: (resume) => ((stop = `syscall@${hex(resume)}`), { stop: true }),
      hypercall: (resume) => ((stop = `hypercall@${hex(resume)}`), { stop: true }),
      breakpoint(addr, pcAfter) {
        const cpu: ProbeCpu = { engine: e, mem, pcAfter };
        if (probe && addr === place.probe && !stepping) {
          hits++;
          if (hits > 1) return (stop = `rehit@${hex(addr)}`), { stop: true, pc: addr };
          const p = probe.prepared;
          if (p.mode === 'emulate') {
            p.emulate!(cpu);
            return { pc: arch.getPc(e) };
          }
          // Emulate-first (ppc's try_to_emulate): stepped only when the emulation declines.
          if (p.tryEmulate?.(cpu)) {
            emulated++;
            return { pc: arch.getPc(e) };
          }
          stepping = true;
          hitPcAfter = pcAfter;
          return { pc: layout.slot };
        }
        if (probe && stepping && addr === layout.slot + BigInt(probe.prepared.stepTrapOffset!)) {
          stepping = false;
          steps++;
          probe.prepared.postStep!(cpu, layout.slot, hitPcAfter);
          return { pc: arch.getPc(e) };
        }
        stop = `stop@${hex(addr)}`;
        return { stop: true, pc: addr };
      },
      fault(f, pc) {
        // As kprobe_fault_handler does: a fault in the slot is reported at the probed address.
        stop = `fault:${f.signal}@${hex(inSlot(pc) ? place.probe : pc)}`;
        return { stop: true, pc };
      },
      memory: () => Object.assign(mem, { unsettled: false }),
    };
    arch.installTrapHooks(e, sink);
    // As on a machine: the back-end's register accesses go through the trap register cache.
    if (probe) e.cacheTrapRegisters(probe.pa.hitRegisters);
    e.hookMem(UC_HOOK.MEM_WRITE, (_type, addr, size) => {
      for (let i = 0n; i < BigInt(size); i++) writes.set(addr + i, 1);
    });
    // Natively: how often the probed address runs (the probed run must hit exactly as often).
    const executed = probe ? undefined : countExecutions(e, [place.probe]);
    seed(e);
    const r = e.start(place.start, 0n, maxSteps);
    if (r.err !== 0) {
      const pc = arch.getPc(e);
      stop = `err${r.err}@${hex(inSlot(pc) ? place.probe : pc)}`;
    } else if (stop === 'none') stop = 'count';
    // kprobe_fault_handler: a fault while stepping leaves the PC at the probed instruction.
    if (inSlot(arch.getPc(e))) arch.setPc(e, place.probe);
    const regs = arch.snapshot(e).values;
    const wl: Array<[string, string]> = [...writes.keys()]
      .filter((a) => !inSlot(a))
      .sort((a, b) => (a < b ? -1 : 1))
      .map((a) => {
        const b = e.tryMemRead(a, 1);
        return [hex(a), b ? hex(BigInt(b[0]!)) : 'unmapped'];
      });
    return { regs, stop, writes: wl, hits: executed?.get(place.probe) ?? hits, steps, emulated };
  } finally {
    releaseEngine(e);
  }
}

/** Prepare `word` at `addr` with the back-end (throws on refusal: callers filter those first). */
export function prepareAt(pa: ProbeArch, addr: bigint, word: number): PreparedInsn {
  const p = pa.prepareKprobe(addr, be([word]), { hasPostHandler: true });
  if (isRefusal(p)) throw new Error(`refused 0x${word.toString(16)}: ${p.reason}`);
  return p;
}
