/**
 * The x86 CPU's privilege level (CPL), which Unicorn 2.1.1's API cannot set: user code runs at
 * CPL 3, the guest kernel at CPL 0, as under Linux.
 *
 * Why direct access: QEMU keeps the CPL in bits 0-1 of `CPUX86State.hflags`, and everything that
 * depends on it reads it there: the translator (`cli`, `sti`, `hlt`, `wrmsr`, `rdmsr`, `mov %crN`,
 * `lgdt` … raise #GP when CPL != 0 or CPL > IOPL), the translation-block lookup key (so code
 * translated at one level is never reused at the other) and the MMU index. `uc_reg_write` of
 * CS/SS changes the selectors but not the CPL from CPL 0 (docs/unicorn.md, the spike), a hooked
 * `syscall` never changes it, and switching through `uc_context_restore` at every system call
 * costs a context copy and ~40 register transfers. Writing the two bits costs one 4-byte copy.
 *
 * How the field is found, without trusting a compiled-in layout blindly (as arch/sparc/cpu-state.ts
 * finds CPUSPARCState): the general registers are set to sentinels through the API and the words of
 * `uc_struct` are followed as pointers until one leads to `regs[]` holding exactly them (reads go
 * through /proc/self/mem, which answers EIO instead of crashing on a wrong guess). The two offsets
 * are remembered for the process and re-verified per engine. QEMU 5's struct (Unicorn builds one
 * x86_64 target, so target_ulong is 8 bytes for i386 guests too) starts with regs[16], eip, eflags,
 * cc_dst, cc_src, cc_src2, cc_op (u32), df (i32), hflags (u32): hflags at byte 176. Before any
 * write, eip must equal the API's PC and hflags must hold the mode bits the engine's mode implies
 * (PE, CS32, SS32 always; LMA and CS64 exactly on x86-64) with CPL 0. Otherwise nothing is written
 * and the CPU stays at CPL 0 (the older behaviour).
 *
 * The same state holds QEMU's `old_exception`, which the interrupt hook must reset (afterException).
 */
import koffi from 'koffi';
import { hostMemcpy } from '../host-memcpy.js';
import { openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import type { Engine } from '../../src/emu/unicorn.js';
import { UC_X86_REG as R } from './ucregs.js';

const OFF_EIP = 128;
const OFF_HFLAGS = 176;
/** QEMU's HF_* bits (target/i386/cpu.h). */
const HF_CPL_MASK = 3;
const HF_CS32 = 1 << 4;
const HF_SS32 = 1 << 5;
const HF_PE = 1 << 7;
const HF_LMA = 1 << 14;
const HF_CS64 = 1 << 15;

/** QEMU's order of regs[]: EAX ECX EDX EBX ESP EBP ESI EDI, then R8–R15. */
const REGS_64 = [R.RAX, R.RCX, R.RDX, R.RBX, R.RSP, R.RBP, R.RSI, R.RDI, R.R8, R.R9, R.R10, R.R11, R.R12, R.R13, R.R14, R.R15];
const REGS_32 = [R.EAX, R.ECX, R.EDX, R.EBX, R.ESP, R.EBP, R.ESI, R.EDI];
/** 32-bit sentinels: an i386 write sets only the low half of QEMU's 64-bit register. */
const SENTINEL = (k: number): bigint => BigInt(0x5eed_0c00 + k);

const UC_SPAN = 0x4000;
/** How much of CPUX86State is searched for old_exception (it sits before end_reset_fields). */
const ENV_SPAN = 0x2000;
/** old_exception's offset in CPUX86State once measured (per process). */
let oldExceptionOff: number | undefined;
/** Where the measurement finds it in Unicorn 2.1.1's build. */
const OLD_EXCEPTION_HINT = 5464;
/** `uc_struct.cpu` and the env's offset in X86CPU as the walk finds them in Unicorn 2.1.1. */
const HINT = { cpuField: 416, envInCpu: 35408 };
const CPU_SPAN = 0x20000;

/** Where uc_struct keeps the CPU pointer and where the env sits in the CPU: one layout per library. */
let layout: { cpuField: number; envInCpu: number } | undefined;
/** Why the CPL cannot be set in this process (reported once by the caller), once known. */
let failed: string | undefined;

const libc = hostMemcpy;

/** One /proc/self/mem descriptor for the process; reads of a wrong guess fail instead of crashing. */
let selfFd: number | null | undefined;
function readSelf(addr: bigint, n: number): Buffer | undefined {
  if (selfFd === undefined) {
    try {
      selfFd = openSync('/proc/self/mem', 'r');
    } catch {
      selfFd = null;
    }
  }
  if (selfFd === null) return undefined;
  const b = Buffer.alloc(n);
  try {
    return readSync(selfFd, b, 0, n, addr as unknown as number) === n ? b : undefined;
  } catch {
    return undefined;
  }
}

const plausible = (p: bigint): boolean => p >= 0x10000n && p < 0x8000_0000_0000n && (p & 7n) === 0n;

function holdsSentinels(b: Buffer, j: number, n: number): boolean {
  if (j + 8 * n > b.length) return false;
  for (let k = 0; k < n; k++) if ((b.readBigUInt64LE(j + 8 * k) & 0xffff_ffffn) !== SENTINEL(k)) return false;
  return true;
}

function findEnv(uc: bigint, n: number): bigint | undefined {
  if (layout) {
    // Same library, same process: the offsets found once hold for every engine, so these reads
    // cannot miss and go through memcpy (a /proc/self/mem read costs ~50 µs).
    const p = Buffer.alloc(8);
    libc().copyOut(p, uc + BigInt(layout.cpuField), 8);
    const env = p.readBigUInt64LE(0) + BigInt(layout.envInCpu);
    const b = Buffer.alloc(8 * n);
    libc().copyOut(b, env, b.length);
    if (holdsSentinels(b, 0, n)) return env;
  }
  // Where the walk finds them in Unicorn 2.1.1's x86 build: tried first, through the safe reads,
  // since the walk reads ~45 candidate blocks of 128 KiB before it (~50 ms at start-up).
  const hinted = readSelf(uc + BigInt(HINT.cpuField), 8);
  const hp = hinted?.readBigUInt64LE(0);
  if (hp !== undefined && plausible(hp)) {
    const b = readSelf(hp + BigInt(HINT.envInCpu), 8 * n);
    if (b && holdsSentinels(b, 0, n)) {
      layout = { ...HINT };
      return hp + BigInt(HINT.envInCpu);
    }
  }
  const needle = Buffer.alloc(4);
  needle.writeUInt32LE(Number(SENTINEL(0)));
  const ucb = readSelf(uc, UC_SPAN);
  if (!ucb) return undefined;
  for (let off = 0; off + 8 <= ucb.length; off += 8) {
    const p = ucb.readBigUInt64LE(off);
    if (!plausible(p)) continue;
    const blk = readSelf(p, CPU_SPAN);
    if (!blk) continue;
    // Native search for the first sentinel, then the full check (a JS loop over every word
    // of every candidate block cost ~180 ms more).
    for (let j = blk.indexOf(needle); j >= 0; j = blk.indexOf(needle, j + 4)) {
      if (j % 8 === 0 && holdsSentinels(blk, j, n)) {
        layout = { cpuField: off, envInCpu: j };
        return p + BigInt(j);
      }
    }
  }
  return undefined;
}

/** One engine's CPUX86State (hflags, old_exception), reached by address. */
export class X86CpuState {
  private readonly word = Buffer.alloc(4);
  private readonly at: bigint;
  /**
   * hflags itself, as a view of the engine's memory (koffi.view, as arch/sparc/window-file.ts
   * reaches its window file): every system call switches the CPL twice, and two memcpy calls
   * through the FFI per switch were ~0.6 µs of each call. Valid while the engine is open, as the
   * address itself is.
   */
  private readonly hflags: Uint32Array;

  private constructor(
    env: bigint,
    private minusOnes: number[] | undefined,
  ) {
    this.at = env + BigInt(OFF_HFLAGS);
    this.hflags = new Uint32Array(koffi.view(this.at as never, 4) as ArrayBuffer);
  }

  /** The host address of QEMU's eip (verified against the API's PC by locate). */
  get eipCell(): bigint {
    return this.at - BigInt(OFF_HFLAGS - OFF_EIP);
  }

  /** Find and verify the engine's state (see the module comment), or say why it cannot be used. */
  static locate(e: Engine, mode64: boolean): X86CpuState | string {
    if (failed !== undefined) return failed;
    if (endianness() !== 'LE') return (failed = 'the host is not little-endian');
    const ids = mode64 ? REGS_64 : REGS_32;
    const saved = e.regReadBatch(ids);
    e.regWriteBatch(ids, ids.map((_, k) => SENTINEL(k)));
    let env: bigint | undefined;
    try {
      env = findEnv(e.nativeHandle(), ids.length);
    } finally {
      e.regWriteBatch(ids, saved);
    }
    if (env === undefined) return (failed = 'its CPUX86State was not found');
    const b = Buffer.alloc(OFF_HFLAGS + 4);
    libc().copyOut(b, env, b.length);
    const pc = e.regRead(mode64 ? R.RIP : R.EIP);
    const h = b.readUInt32LE(OFF_HFLAGS);
    const want = HF_PE | HF_CS32 | HF_SS32 | (mode64 ? HF_LMA | HF_CS64 : 0);
    if (b.readBigUInt64LE(OFF_EIP) !== pc || (h & (want | HF_LMA | HF_CS64 | HF_CPL_MASK)) !== want) {
      return (failed = `its CPUX86State does not have Unicorn 2.1.1's layout (hflags 0x${h.toString(16)})`);
    }
    // QEMU's reset leaves old_exception at -1: until its offset is known, remember this engine's
    // -1 words (see afterException).
    let minusOnes: number[] | undefined;
    if (oldExceptionOff === undefined) {
      // 2.1.1's offset alone when it holds -1 (an 8 KiB read per engine costs ~100 µs).
      const span = readSelf(env + BigInt(OLD_EXCEPTION_HINT), 4)?.readInt32LE(0) === -1 ? undefined : readSelf(env, ENV_SPAN);
      if (!span) minusOnes = [OLD_EXCEPTION_HINT];
      else {
        minusOnes = [];
        for (let j = 0; j + 4 <= span.length; j += 4) if (span.readInt32LE(j) === -1) minusOnes.push(j);
      }
    }
    return new X86CpuState(env, minusOnes);
  }

  /**
   * After an exception reached the interrupt hook: clear QEMU's `old_exception` (-1), as
   * delivering it through the IDT (do_interrupt_all) would. Unicorn's hook skips that, so a
   * second contributory exception (#DE, #TS-#GP) or #PF would turn into #DF, and the next one
   * into a triple fault (the CPU halts: the run ends on the instruction, for ever). The field's
   * offset is measured at the first such exception: a word that was -1 when the state was
   * located and now holds the vector (5464 in 2.1.1, preferred; else the only one).
   */
  afterException(vector: number): void {
    if (!canDoubleFault(vector)) return;
    const env = this.at - BigInt(OFF_HFLAGS);
    if (oldExceptionOff === undefined) {
      if (!this.minusOnes) return;
      const span = readSelf(env, ENV_SPAN);
      const hits = span ? this.minusOnes.filter((j) => span.readInt32LE(j) === vector) : [];
      // Where 2.1.1 keeps it wins among the candidates; else exactly one must be left. A #DE
      // (vector 0) may leave many (-1 words that are 0 now): measured at the next exception.
      if (hits.includes(OLD_EXCEPTION_HINT)) oldExceptionOff = OLD_EXCEPTION_HINT;
      else if (hits.length === 1) oldExceptionOff = hits[0]!;
      else {
        if (vector !== 0) {
          this.minusOnes = undefined;
          warnOnce(`x86: QEMU's old_exception not found (${hits.length} candidates): a second fault in a row may become a double fault`);
        }
        return;
      }
    }
    // Written only where the vector is: a wrong offset then changes nothing.
    const at = env + BigInt(oldExceptionOff);
    libc().copyOut(this.word, at, 4);
    if (this.word.readInt32LE(0) !== vector) return;
    this.word.writeInt32LE(-1);
    libc().copyIn(at, this.word, 4);
  }

  /** The current privilege level (QEMU's hflags bits 0-1). */
  get cpl(): number {
    return this.hflags[0]! & HF_CPL_MASK;
  }

  /**
   * Set the CPL. Only between translation blocks: inside the `syscall` hook (its TB ends after
   * the helper), an interrupt hook (the CPU loop looks the next TB up afresh) or between runs.
   */
  setCpl(cpl: 0 | 3): void {
    const h = this.hflags[0]!;
    const next = ((h & ~HF_CPL_MASK) | cpl) >>> 0;
    if (next !== h) this.hflags[0] = next;
  }
}

/** Per engine: its state, or why there is none (reported once per process). */
const states = new WeakMap<Engine, X86CpuState | string>();
const warned = new Set<string>();
function warnOnce(msg: string): void {
  if (warned.has(msg)) return;
  warned.add(msg);
  process.emitWarning(`uniprobe: ${msg}`);
}

/** Find the engine's CPL field at engine setup (outside any hook: it writes registers). */
export function attachX86CpuState(e: Engine, mode64: boolean): void {
  const s = X86CpuState.locate(e, mode64);
  states.set(e, s);
  if (typeof s === 'string') warnOnce(`x86 user code runs at CPL 0 (privileged instructions do not fault): ${s}`);
  // Trap hooks move the PC in QEMU's eip themselves (a u64 for i386 too: EIP zero-extended, as
  // Unicorn's own write stores it), without the restart of Unicorn's CPU loop (Engine.keepPcAt).
  else e.keepPcAt({ reg: mode64 ? R.RIP : R.EIP, pc: s.eipCell, bytes: 8 });
}

/** #DE, #DF and the contributory faults #TS-#PF: the vectors whose old_exception matters. */
function canDoubleFault(vector: number): boolean {
  return vector === 0 || vector === 8 || (vector >= 10 && vector <= 14);
}

/** Call first in the x86 interrupt hook: see X86CpuState.afterException. */
export function x86ExceptionTaken(e: Engine, vector: number): void {
  // The breakpoint and syscall vectors of every probe hit and system call skip the lookup.
  if (!canDoubleFault(vector)) return;
  const s = states.get(e);
  if (s !== undefined && typeof s !== 'string') s.afterException(vector);
}

/**
 * Arch.setCpuMode for x86: CPL 3 for user mode, 0 for the kernel. QEMU's x86 MMU index follows
 * the CPL (MMU_USER_IDX at 3): true when the CPL could be set.
 */
export function setX86CpuMode(e: Engine, user: boolean): boolean {
  const s = states.get(e);
  if (s === undefined || typeof s === 'string') return false;
  s.setCpl(user ? 3 : 0);
  return true;
}

/** The engine's CPL, or undefined when it cannot be reached (tests). */
export function x86Cpl(e: Engine): number | undefined {
  const s = states.get(e);
  return s !== undefined && typeof s !== 'string' ? s.cpl : undefined;
}
