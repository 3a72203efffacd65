/**
 * Differential harness for the x86 kprobe back-end: one instruction runs once natively and once
 * through the probe path, each on a fresh Unicorn engine seeded identically, and every general
 * register, the flags, the IP, faults and all mapped memory (text, data, stack) are compared.
 *
 * The probe path is the smallest stand-in for the generic kprobe core, driven by the arch's own
 * installTrapHooks: int3 at the probed address → emulate, or jump to the slot inside the same run
 * (boosted: the slot jumps back by itself; stepped: the slot's trailing int3 traps again and
 * postStep fixes the state). A fault inside the slot is mapped back to the probed address, as
 * kprobe_fault_handler does. Both runs stop at the first instruction outside the probed one (and
 * the slot), so a `rep` prefix runs to completion in both.
 */
import '../../arch/decoders-ready.js'; // the back-ends decode with Capstone
import { pooledEngine, releaseEngine } from './engine-pool.js';
import { Buffer } from 'node:buffer';
import { Engine, UC_HOOK, UC_PROT } from '../../src/emu/unicorn.js';
import type { Arch, GuestMemoryAccess, TrapSink } from '../../arch/types.js';
import { isRefusal, type PreparedInsn, type ProbeArch, type ProbeCpu, type ProbeRefusal, type StepMode } from '../../arch/probes.js';
import { REGS_32, REGS_64 } from '../../arch/x86/kprobes/emulate.js';

export interface Region {
  base: bigint;
  size: number;
}

export interface X86Layout {
  data: Region;
  stack: Region;
  slot: bigint;
}

export const LAYOUT: Record<'x86_64' | 'i386', X86Layout> = {
  // Slot page in the module area: within ±2 GiB of kernel text, as Linux's execmem places it.
  x86_64: { data: { base: 0xffff888000000000n, size: 0x10000 }, stack: { base: 0xffffc90000000000n, size: 0x4000 }, slot: 0xffffffffa0000000n },
  i386: { data: { base: 0xd8000000n, size: 0x10000 }, stack: { base: 0xd0000000n, size: 0x4000 }, slot: 0xe0000000n },
};

export interface DiffCase {
  /** Code (and data it addresses RIP-relatively) mapped at `base`, page-rounded. */
  text: { base: bigint; bytes: Uint8Array };
  addr: bigint;
  /** Selects the register and flags seed. */
  seed: number;
  hasPostHandler: boolean;
  /** Register overrides by kernel name (ax, cx, sp, flags, r8…). */
  regs?: Record<string, bigint>;
  /** Memory written after seeding (e.g. a return address on the stack top). */
  mem?: Array<[bigint, Uint8Array]>;
}

export interface RunState {
  err: number;
  regs: bigint[];
  events: string[];
}

export interface DiffResult {
  mode: StepMode | 'refused';
  refusal?: ProbeRefusal;
  prepared?: PreparedInsn;
  mismatches: string[];
  native?: RunState;
  probe?: RunState;
}

const PAGE = 0x1000;
const roundUp = (n: number): number => Math.ceil(n / PAGE) * PAGE;
const hex = (v: bigint): string => '0x' + v.toString(16);

/** Deterministic data bytes (xorshift32), the same for every engine. */
const DATA_PATTERN = (() => {
  const b = new Uint8Array(0x20000);
  let x = 0x2545f491;
  for (let i = 0; i < b.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
})();

const FLAG_SEEDS = [0x202n, 0x202n | 0x8d5n, 0x202n | 0x81n /* CF SF: below, less */];

function ids(arch: Arch): { gpr: readonly number[]; ip: number; flags: number; sp: number } {
  const r = arch.wordSize === 8 ? REGS_64 : REGS_32;
  return { gpr: r.gpr, ip: r.ip, flags: r.flags, sp: r.sp };
}

function memAccess(e: Engine, wordSize: number, onWrite?: (a: bigint, b: Uint8Array) => void): GuestMemoryAccess {
  return {
    read: (a, n) => e.memRead(a, n),
    write: (a, b) => {
      onWrite?.(a, b);
      e.memWrite(a, b);
    },
    readWord(a) {
      const b = e.memRead(a, wordSize);
      let v = 0n;
      for (let k = wordSize - 1; k >= 0; k--) v = (v << 8n) | BigInt(b[k]!);
      return v;
    },
    writeWord(a, v) {
      const b = new Uint8Array(wordSize);
      for (let k = 0; k < wordSize; k++) b[k] = Number((v >> BigInt(8 * k)) & 0xffn);
      e.memWrite(a, b);
    },
  };
}

/** A fresh engine with text, data and stack mapped and the registers seeded for `c`. */
function freshEngine(arch: Arch, c: DiffCase): Engine {
  const lay = LAYOUT[arch.target as 'x86_64' | 'i386'];
  const e = pooledEngine(arch, { translationBufferBytes: 1 << 20 }); // one instruction per run: 1 MiB of translations is plenty
  arch.setupEngine(e, { mapPrivate: (a, s) => e.memMap(a, s, UC_PROT.ALL) });
  e.memMap(c.text.base, roundUp(c.text.bytes.length), UC_PROT.ALL);
  e.memWrite(c.text.base, c.text.bytes);
  e.memMap(lay.data.base, lay.data.size, UC_PROT.ALL);
  e.memWrite(lay.data.base, DATA_PATTERN.subarray(0, lay.data.size));
  e.memMap(lay.stack.base, lay.stack.size, UC_PROT.ALL);
  e.memWrite(lay.stack.base, DATA_PATTERN.subarray(0x1000, 0x1000 + lay.stack.size));
  const r = ids(arch);
  // Every register points into the data window (memory operands land in mapped memory); the
  // seed shifts them and picks the flags.
  const mid = lay.data.base + BigInt(lay.data.size / 2);
  const values = r.gpr.map((_, i) => mid + BigInt(i * 0x400 + c.seed * 0x28));
  values[4] = lay.stack.base + BigInt(lay.stack.size / 2); // sp
  if (c.seed % 2 === 1) values[1] = 3n; // a small count for rep/loop on odd seeds
  e.regWriteBatch([...r.gpr, r.flags], [...values, FLAG_SEEDS[c.seed % FLAG_SEEDS.length]!]);
  for (const [name, v] of Object.entries(c.regs ?? {})) {
    const reg = arch.registers.byName.get(name);
    if (reg === undefined) throw new Error(`unknown register ${name}`);
    e.regWrite(reg.id, v);
  }
  for (const [a, b] of c.mem ?? []) e.memWrite(a, b);
  e.regWrite(r.ip, c.addr);
  return e;
}

function sinkFor(e: Engine, events: string[], onBreakpoint: (addr: bigint, after: bigint) => bigint | undefined): TrapSink {
  return {
    isKernelText: () => true,
    syscall: (pc) => (events.push(`syscall@${hex(pc)}`), { stop: true }),
    // A hypercall returns to the next instruction, as the guest kernel's stub expects.
    hypercall: (pc) => (events.push(`hypercall@${hex(pc)}`), undefined),
    breakpoint: (addr, after) => {
      const pc = onBreakpoint(addr, after);
      if (pc !== undefined) return { pc };
      events.push(`breakpoint@${hex(addr)}`);
      return { stop: true };
    },
    fault: (f, pc) => (events.push(`fault:${f.reason}@${hex(pc)}`), { stop: true }),
    memory: () => {
      throw new Error('not used');
    },
  };
}

function readState(arch: Arch, e: Engine, err: number, events: string[]): RunState {
  const r = ids(arch);
  return { err, regs: e.regReadBatch([...r.gpr, r.ip, r.flags]), events };
}

/** Stop at the first instruction outside [from, to) ∪ {addr}: the probed instruction is done. */
function stopWhenLeaving(e: Engine, addr: bigint, from: bigint, to: bigint): void {
  e.hookCode((signed) => {
    // Engine.hookCode hands 64-bit addresses over as signed values (kernel addresses < 0).
    const a = BigInt.asUintN(64, signed);
    if (a !== addr && (a < from || a >= to)) e.stop();
  });
}

function runNative(arch: Arch, c: DiffCase): { e: Engine; state: RunState } {
  const e = freshEngine(arch, c);
  const events: string[] = [];
  arch.installTrapHooks(e, sinkFor(e, events, () => undefined));
  stopWhenLeaving(e, c.addr, 0n, 0n);
  const { err } = e.start(c.addr, 0n, 0);
  return { e, state: readState(arch, e, err, events) };
}

export type Tamper = (p: PreparedInsn) => PreparedInsn;

function runProbed(arch: Arch, probe: ProbeArch, c: DiffCase, prepared: PreparedInsn): { e: Engine; state: RunState } {
  const lay = LAYOUT[arch.target as 'x86_64' | 'i386'];
  const slot = lay.slot;
  const e = freshEngine(arch, c);
  e.memMap(slot, PAGE, UC_PROT.ALL);
  if (prepared.mode !== 'emulate') e.memWrite(slot, prepared.slotBytes(slot));
  e.memWrite(c.addr, probe.breakpoint); // only the first byte is patched, as Linux arms a kprobe
  // As on a machine: the back-end's register accesses go through the trap register cache.
  e.cacheTrapRegisters(probe.hitRegisters);
  const cpu: ProbeCpu = { engine: e, mem: memAccess(e, arch.wordSize) };
  const events: string[] = [];
  // Where the stand-in core is: before the hit, between slot entry and step trap, or finished.
  const progress = { state: 'idle' as 'idle' | 'stepping' | 'done' };
  arch.installTrapHooks(
    e,
    sinkFor(e, events, (addr) => {
      if (addr === c.addr && progress.state === 'idle') {
        if (prepared.mode === 'emulate') {
          prepared.emulate!(cpu);
          progress.state = 'done';
          return arch.getPc(e);
        }
        progress.state = prepared.mode === 'step' ? 'stepping' : 'done';
        return slot;
      }
      if (progress.state === 'stepping' && addr === slot + BigInt(prepared.stepTrapOffset!)) {
        prepared.postStep!(cpu, slot);
        progress.state = 'done';
        return arch.getPc(e);
      }
      return undefined;
    }),
  );
  stopWhenLeaving(e, c.addr, slot, slot + BigInt(probe.slotSize));
  const { err } = e.start(c.addr, 0n, 0);
  const st = readState(arch, e, err, events);
  const ipIdx = st.regs.length - 2;
  const ip = st.regs[ipIdx]!;
  // kprobe_fault_handler: a fault while the copy runs is reported at the probed address; a trap
  // taken inside the copy (hypercall) is seen at the matching offset of the original.
  const inSlot = (v: bigint): boolean => v >= slot && v < slot + BigInt(probe.slotSize);
  if (inSlot(ip)) st.regs[ipIdx] = c.addr + (ip - slot);
  st.events = st.events.map((ev) => ev.replace(/@(0x[0-9a-f]+)$/, (m, a: string) => (inSlot(BigInt(a)) ? `@${hex(c.addr + BigInt(a) - slot)}` : m)));
  if (progress.state !== 'done' && st.err === 0 && st.events.length === 0) st.events.push(`probe path did not finish (${progress.state})`);
  return { e, state: st };
}

function compareRegion(name: string, a: Engine, b: Engine, base: bigint, size: number, ignore: bigint | undefined, out: string[]): void {
  const x = Buffer.from(a.memRead(base, size));
  const y = Buffer.from(b.memRead(base, size));
  if (ignore !== undefined && ignore >= base && ignore < base + BigInt(size)) {
    const off = Number(ignore - base);
    y[off] = x[off]!;
  }
  if (x.equals(y)) return;
  for (let i = 0; i < size; i++) {
    if (x[i] !== y[i]) {
      out.push(`${name} byte ${hex(base + BigInt(i))}: native 0x${x[i]!.toString(16)} probed 0x${y[i]!.toString(16)}`);
      if (out.length > 8) return;
    }
  }
}

const REG_NAMES_64 = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags'];
const REG_NAMES_32 = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi', 'eip', 'eflags'];

/** Run `c` natively and through the probe path; list every difference. */
export function runDiff(arch: Arch, probe: ProbeArch, c: DiffCase, tamper?: Tamper): DiffResult {
  const bytes = c.text.bytes.subarray(Number(c.addr - c.text.base), Number(c.addr - c.text.base) + probe.maxInsnLength);
  const p = probe.prepareKprobe(c.addr, bytes, { hasPostHandler: c.hasPostHandler });
  if (isRefusal(p)) return { mode: 'refused', refusal: p, mismatches: [] };
  const prepared = tamper ? tamper(p) : p;
  const lay = LAYOUT[arch.target as 'x86_64' | 'i386'];
  const slotNo = prepared.slotRefusal?.(lay.slot);
  if (slotNo !== undefined) return { mode: 'refused', refusal: slotNo, mismatches: [] };
  const native = runNative(arch, c);
  const probed = runProbed(arch, probe, c, prepared);
  const mismatches: string[] = [];
  try {
    const names = arch.wordSize === 8 ? REG_NAMES_64 : REG_NAMES_32;
    if (native.state.err !== probed.state.err) mismatches.push(`run error: native ${native.state.err} probed ${probed.state.err}`);
    native.state.regs.forEach((v, i) => {
      const w = probed.state.regs[i]!;
      if (v !== w) mismatches.push(`${names[i]}: native ${hex(v)} probed ${hex(w)}`);
    });
    if (native.state.events.join() !== probed.state.events.join()) {
      mismatches.push(`events: native [${native.state.events.join(', ')}] probed [${probed.state.events.join(', ')}]`);
    }
    compareRegion('text', native.e, probed.e, c.text.base, roundUp(c.text.bytes.length), c.addr, mismatches);
    compareRegion('data', native.e, probed.e, lay.data.base, lay.data.size, undefined, mismatches);
    compareRegion('stack', native.e, probed.e, lay.stack.base, lay.stack.size, undefined, mismatches);
  } finally {
    releaseEngine(native.e);
    releaseEngine(probed.e);
  }
  return { mode: prepared.mode, prepared, mismatches, native: native.state, probe: probed.state };
}
