/**
 * Direct access to the parts of Unicorn 2.1.1's sparc64 CPU state that no API reaches: PSTATE.PEF,
 * FPRS and the FPU registers.
 *
 * Why: Unicorn never resets its sparc64 CPU (cpu_sparc_init skips QEMU's sparc_cpu_reset), so
 * PSTATE is 0: user mode, PEF clear, and every FP instruction raises fp_disabled. `wrpr %pstate` is
 * privileged, `uc_context_save` stores no CPU state for sparc64 (cpu_context_size is never set),
 * and `uc_reg_read/write` know only %g/%o/%l/%i and the PC (qemu/target/sparc/unicorn64.c). Real
 * Linux runs user code with PSTATE.PEF set and turns FPRS.FEF on at the first fp_disabled trap
 * (do_fpdis); the host does the same by writing the two fields in QEMU's CPUSPARCState itself.
 *
 * How the state is found, without trusting a compiled-in layout blindly:
 * - the CPUSPARCState: %g1–%g7 and the PC are set to sentinels through the API, and the words of
 *   `uc_struct` are followed as pointers until one leads to `gregs[8], regwptr, pc, npc` holding
 *   exactly those values (reads go through /proc/self/mem, which answers EIO instead of crashing
 *   on a wrong guess). The two offsets are remembered for the process and re-verified per engine.
 * - %asi and FPRS: the guest runs `wr %g0, 0x82, %asi ; wr %g0, FEF, %fprs` (both allowed in user
 *   mode) and the two words that changed are the fields. QEMU's struct puts pstate right after asi
 *   and 800 bytes before fprs (tl, maxtl, the five window counters, then 4 + 4 + 4 + 4 + 8 sets of
 *   8 global registers); both must agree or nothing is written and the FPU stays off.
 *   %asi = 0x82 (ASI_PNF) is also what Linux's start_thread gives a new user program.
 * - fsr and fpr[32] sit right after `cond` and `psr` at the start of the struct (offsets 144 and
 *   152, the same fields that put the PC at 72, which the sentinel check verified), gsr 40 bytes
 *   after fprs. test/arch/sparc64-fpu.test.ts checks them through guest loads and stores.
 */
import koffi from 'koffi';
import { hostMemcpy } from '../host-memcpy.js';
import { openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import type { Engine } from '../../src/emu/unicorn.js';
import { UniprobeError } from '../../src/errors.js';
import { UC_SPARC_REG as R } from './ucregs.js';
import { CpuWindowFile } from './window-file.js';

/** PSTATE.PEF and FPRS.FEF (SPARC V9). */
export const PSTATE_PEF = 0x10n;
export const FPRS_FEF = 0x4n;

const OFF_PC = 72;
const OFF_FSR = 144;
const OFF_FPR = 152;
const FPR_BYTES = 32 * 8;
/** How far pstate sits before fprs in QEMU 5's CPUSPARCState (see the module comment). */
const PSTATE_TO_FPRS = 800;
const FPRS_TO_GSR = 40;
/**
 * The data TLB (64 entries of {tag, tte}) ends 312 bytes before pstate (mmu_version, qt0, qt1,
 * fp_status, ts[8], xcc, asi between them); nwindows sits 1296 bytes before it and dmmu.tag_access
 * 1104 bytes before it (lsu, immu, dmmu, itlb[64]). `locate` checks the two values it can know.
 */
const PSTATE_TO_DTLB = 1336;
const DTLB_TO_NWINDOWS = 1296;
/** lsu, the u64 after nwindows (and its padding); tl, the u32 right after pstate. Both 0 until set. */
const DTLB_TO_LSU = 1288;
const PSTATE_TO_TL = 4;
/** LSU_CONTROL_REG's IMMU_E | DMMU_E: QEMU's MMU index then follows the trap level (setCpuMode). */
const LSU_MMU_ENABLED = 0x4n | 0x8n;
const DTLB_TO_TAG_ACCESS = 1104;
const DTLB_ENTRIES = 64;
/** A 4 MiB, valid, global, writable, cacheable TTE (sun4u layout, UltraSPARC IV's MMU). */
const TTE_4M = (1n << 63n) | (3n << 61n) | 0x30n | 0x2n | 0x1n;
const TTE_4M_MASK = ~((1n << 22n) - 1n) & ((1n << 41n) - 1n);
/** How much of the struct the probe diff looks at (fprs is at ~8 KB in 2.1.1). */
const ENV_SPAN = 0x4000;
/** How much of `uc_struct` is searched for the CPU pointer, and of the CPU for its env. */
const UC_SPAN = 0x4000;
const CPU_SPAN = 0x20000;

const SENTINELS = Array.from({ length: 7 }, (_, k) => 0x5eed_f00d_0000_0000n | BigInt(0x51 + k));
const SENTINEL_PC = 0x5eed_0000n;

/** Where uc_struct keeps the CPU pointer and where the env sits in the CPU: one layout per library. */
let layout: { cpuField: number; envInCpu: number } | undefined;

const libc = hostMemcpy;

/** Reads of guessed addresses: /proc/self/mem fails cleanly where a pointer guess is wrong. */
class SelfMemory {
  constructor(private readonly fd: number) {}
  read(addr: bigint, n: number): Buffer | undefined {
    const b = Buffer.alloc(n);
    try {
      return readSync(this.fd, b, 0, n, addr as unknown as number) === n ? b : undefined;
    } catch {
      return undefined;
    }
  }
}

/** One descriptor for the process, opened on first use and kept (engines come and go by thousands). */
let self: SelfMemory | null | undefined;
function selfMemory(): SelfMemory | undefined {
  if (self === undefined) {
    try {
      self = new SelfMemory(openSync('/proc/self/mem', 'r'));
    } catch {
      self = null;
    }
  }
  return self ?? undefined;
}

const plausible = (p: bigint): boolean => p >= 0x10000n && p < 0x8000_0000_0000n && (p & 7n) === 0n;

function isEnv(b: Buffer, j: number): boolean {
  if (j + OFF_PC + 16 > b.length || b.readBigUInt64LE(j) !== 0n) return false;
  for (let k = 0; k < 7; k++) if (b.readBigUInt64LE(j + 8 * (k + 1)) !== SENTINELS[k]) return false;
  return b.readBigUInt64LE(j + OFF_PC) === SENTINEL_PC && b.readBigUInt64LE(j + OFF_PC + 8) === SENTINEL_PC + 4n;
}

function findEnv(mem: SelfMemory, uc: bigint): bigint | undefined {
  if (layout) {
    // Same library, same process: the two offsets found once hold for every engine, so these
    // reads cannot miss and go through memcpy (a /proc/self/mem read costs ~50 µs here).
    const p = Buffer.alloc(8);
    libc().copyOut(p, uc + BigInt(layout.cpuField), 8);
    const env = p.readBigUInt64LE(0) + BigInt(layout.envInCpu);
    const b = Buffer.alloc(OFF_PC + 16);
    libc().copyOut(b, env, b.length);
    if (isEnv(b, 0)) return env;
  }
  const ucb = mem.read(uc, UC_SPAN);
  if (!ucb) return undefined;
  // %g1's sentinel found by a native search, then the full check at the word before it (%g0):
  // a JavaScript check at every word of every candidate block cost ~80 ms per process.
  const needle = Buffer.alloc(8);
  needle.writeBigUInt64LE(SENTINELS[0]!);
  for (let off = 0; off + 8 <= ucb.length; off += 8) {
    const p = ucb.readBigUInt64LE(off);
    if (!plausible(p)) continue;
    const blk = mem.read(p, CPU_SPAN);
    if (!blk) continue;
    for (let i = blk.indexOf(needle, 8); i >= 0; i = blk.indexOf(needle, i + 1)) {
      const j = i - 8;
      if (j % 8 === 0 && isEnv(blk, j)) {
        layout = { cpuField: off, envInCpu: j };
        return p + BigInt(j);
      }
    }
  }
  return undefined;
}

/**
 * The engine's CPUSPARCState: its address, found with sentinels in %g1–%g7 and the PC, and %g0
 * zero (Unicorn's register API writes %g0 like any other: an engine being reset may hold anything).
 */
function envOf(e: Engine, mem: SelfMemory): bigint | undefined {
  const ids = [R.G0, ...SENTINELS.map((_, k) => R.G1 + k), R.PC];
  const saved = e.regReadBatch(ids);
  e.regWriteBatch(ids, [0n, ...SENTINELS, SENTINEL_PC]);
  const env = findEnv(mem, e.nativeHandle());
  e.regWriteBatch(ids, saved);
  return env;
}

/** pstate's offset in the CPUSPARCState, once measured; or why it could not be. */
let pstateOff: number | undefined;
let failed: string | undefined;
const ASI_PNF = 0x82n;

/** Run the probe and find asi and fprs by what it changed (see the module comment). */
function measure(mem: SelfMemory, env: bigint, probe: () => void): string | undefined {
  const before = mem.read(env, ENV_SPAN);
  probe();
  const after = mem.read(env, ENV_SPAN);
  if (!before || !after) return 'its CPUSPARCState cannot be read';
  // Other words near the struct may change while the guest runs (TCG's own state): only a
  // pair at the distance QEMU's layout puts between asi and fprs counts, and only one.
  const fprsAt = new Set(changedTo(before, after, Number(FPRS_FEF)));
  const pairs = changedTo(before, after, Number(ASI_PNF)).filter((a) => fprsAt.has(a + 4 + PSTATE_TO_FPRS));
  if (pairs.length !== 1) return 'its CPUSPARCState layout is not the one of Unicorn 2.1.1';
  const p = pairs[0]! + 4;
  const dtlb = p - PSTATE_TO_DTLB;
  const tlb = after.subarray(dtlb, dtlb + 16 * DTLB_ENTRIES);
  const fresh = after.readBigUInt64LE(dtlb - DTLB_TO_LSU) === 0n && after.readUInt32LE(p + PSTATE_TO_TL) === 0;
  if (after.readUInt32LE(dtlb - DTLB_TO_NWINDOWS) !== 8 || tlb.some((x) => x !== 0) || !fresh) {
    return 'its data TLB is not where Unicorn 2.1.1 keeps it';
  }
  pstateOff = p;
  return undefined;
}

/** The 32-bit words of `before` that changed from 0 to `to` in `after` (little-endian host). */
function changedTo(before: Buffer, after: Buffer, to: number): number[] {
  const out: number[] = [];
  for (let j = 0; j < before.length; j += 4) {
    if (before.readUInt32LE(j) === 0 && after.readUInt32LE(j) === to) out.push(j);
  }
  return out;
}

/** One engine's CPUSPARCState, reached by address. */
export class SparcCpuState {
  private constructor(
    readonly env: bigint,
    readonly pstateOff: number,
    readonly fprsOff: number,
  ) {}

  /**
   * Find the engine's CPU state. `probe` must run `wr %g0, 0x82, %asi ; wr %g0, FEF, %fprs` in the
   * guest. Undefined (with the reason) when this Unicorn build does not look like 2.1.1's.
   */
  static locate(e: Engine, probe: () => void): SparcCpuState | string {
    if (endianness() !== 'LE') return 'the host is not little-endian';
    if (failed !== undefined) return failed;
    const mem = selfMemory();
    if (mem === undefined) return (failed = '/proc/self/mem cannot be read');
    const env = envOf(e, mem);
    if (env === undefined) return 'its CPUSPARCState was not found';
    // The field offsets are the library's: measured once per process, with the guest's help.
    if (pstateOff === undefined) {
      const why = measure(mem, env, probe);
      if (why !== undefined) return why;
    }
    const s = new SparcCpuState(env, pstateOff!, pstateOff! + PSTATE_TO_FPRS);
    s.writeU32(s.pstateOff - 4, Number(ASI_PNF)); // Linux's start_thread: %asi = ASI_PNF
    s.writeU64(s.fprsOff, 0n); // Linux: FEF off until the first FP instruction (do_fpdis)
    s.writeU32(s.pstateOff, s.readU32(s.pstateOff) | Number(PSTATE_PEF));
    return s;
  }

  /** The PC and NPC fields (u64 each, verified by locate's sentinels), for Engine.keepPcAt. */
  get pcCells(): { pc: bigint; npc: bigint } {
    return { pc: this.env + BigInt(OFF_PC), npc: this.env + BigInt(OFF_PC + 8) };
  }

  /** The CPU's trap level, reached in place: it changes at every system call (setCpuMode). */
  private tl: DataView | undefined;

  /**
   * Arch.setCpuMode for sparc64: TL = 0 in user mode, TL = 1 in the kernel, with the MMU-enable
   * bits of LSU_CONTROL_REG set. Why (emulator-forced: README, "Where uniprobe differs from
   * Linux"): QEMU's sparc64 MMU index is MMU_PHYS_IDX, one TLB for both modes, while IMMU_E/DMMU_E
   * are clear, and the return to user mode then had to flush it (src/emu/boundary.ts). With them set the index is
   * MMU_NUCLEUS_IDX at TL > 0 and MMU_USER_IDX at TL = 0 with PSTATE.PRIV clear, so kernel-mode
   * entries stay in a TLB of their own, as x86's CPL and ppc's MSR[PR] keep them. Translation does
   * not change: Unicorn's virtual TLB (the boundary's fill callback) serves every index. Linux runs
   * its kernel at TL = 0 with PSTATE.PRIV set; PRIV stays clear here because the host's window
   * spills take their user-or-kernel access from it (window-file.ts userMode), and the guest kernel
   * cannot tell: `rdpr %tl` is privileged, and QEMU's TL is read only by trap delivery, which the
   * engine's trap hook replaces (Unicorn calls the hook instead of QEMU's do_interrupt).
   */
  setCpuMode(user: boolean): void {
    if (this.tl === undefined) {
      this.writeU64(this.pstateOff - PSTATE_TO_DTLB - DTLB_TO_LSU, LSU_MMU_ENABLED);
      this.tl = new DataView(koffi.view((this.env + BigInt(this.pstateOff + PSTATE_TO_TL)) as never, 4) as ArrayBuffer);
    }
    this.tl.setUint32(0, user ? 0 : 1, true);
  }

  /** The CPU's register-window file (window-file.ts), or why its layout is not the expected one. */
  windowFile(): CpuWindowFile | string {
    return CpuWindowFile.open(this.env, this.pstateOff, (off, n) => this.read(off, n));
  }

  private read(off: number, n: number): Buffer {
    const b = Buffer.alloc(n);
    libc().copyOut(b, this.env + BigInt(off), n);
    return b;
  }
  private write(off: number, b: Buffer): void {
    libc().copyIn(this.env + BigInt(off), b, b.length);
  }
  private readU32(off: number): number {
    return this.read(off, 4).readUInt32LE(0);
  }
  private writeU32(off: number, v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.write(off, b);
  }
  private readU64(off: number): bigint {
    return this.read(off, 8).readBigUInt64LE(0);
  }
  private writeU64(off: number, v: bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, v));
    this.write(off, b);
  }

  private nextTte = 0;

  /**
   * The page of the last data-TLB miss (QEMU's dmmu.tag_access). Unicorn runs with the MMU off,
   * yet QEMU 5 sends loads with an explicit user ASI (ASI_PNF: glibc's strrchr, strlen …) through
   * the UltraSPARC TLB, which starts empty: they raise fast_data_access_MMU_miss (0x68).
   */
  get missAddress(): bigint {
    return this.readU64(this.pstateOff - PSTATE_TO_DTLB - DTLB_TO_TAG_ACCESS) & ~0x1fffn;
  }

  /**
   * Linux's TLB-miss handler loads a TTE and retries; here the TTE maps the 4 MiB around `va` to
   * the same physical address (Unicorn's physical = virtual with the MMU off), so the entry can
   * never disagree with a plain load. Entries are replaced round-robin; a replaced one may linger
   * in QEMU's softmmu cache, harmlessly, since every entry is the identity.
   */
  mapIdentity(va: bigint): void {
    const b = Buffer.alloc(16);
    const pa = va & TTE_4M_MASK;
    b.writeBigUInt64LE(pa, 0);
    b.writeBigUInt64LE(TTE_4M | pa, 8);
    this.write(this.pstateOff - PSTATE_TO_DTLB + 16 * this.nextTte, b);
    this.nextTte = (this.nextTte + 1) % DTLB_ENTRIES;
  }

  get pstate(): bigint {
    return BigInt(this.readU32(this.pstateOff));
  }
  get fprs(): bigint {
    return this.readU64(this.fprsOff);
  }
  set fprs(v: bigint) {
    this.writeU64(this.fprsOff, v);
  }

  /**
   * The per-thread state Linux keeps for the FPU and ASI (thread_info fpregs/xfsr/gsr/fpsaved and
   * TSTATE.ASI): fprs, fsr, gsr, %asi, then %d0..%d62 as 32 doublewords (36 values). %asi belongs
   * here because glibc's memset/memcpy switch it (ASI_BLK_P) and a thread switch may fall between.
   */
  saveFp(): bigint[] {
    const b = this.read(OFF_FSR, 8 + FPR_BYTES);
    const out = [this.fprs, b.readBigUInt64LE(0), this.readU64(this.fprsOff + FPRS_TO_GSR), BigInt(this.readU32(this.pstateOff - 4))];
    // QEMU keeps each double as a host-endian 64-bit value (CPU_DoubleU).
    for (let k = 0; k < 32; k++) out.push(b.readBigUInt64LE(8 + 8 * k));
    return out;
  }

  /**
   * Inverse of saveFp. Limit: fsr is written as a value, so QEMU's separate softfloat rounding
   * mode (set only by `ldfsr`/`ldxfsr`) keeps what the CPU last loaded: a task that changed the
   * rounding mode and is then switched with one that did not, or forked, rounds as before.
   */
  restoreFp(v: readonly bigint[]): void {
    const b = Buffer.alloc(8 + FPR_BYTES);
    b.writeBigUInt64LE(BigInt.asUintN(64, v[1]!), 0);
    for (let k = 0; k < 32; k++) b.writeBigUInt64LE(BigInt.asUintN(64, v[4 + k]!), 8 + 8 * k);
    this.write(OFF_FSR, b);
    this.fprs = v[0]!;
    this.writeU64(this.fprsOff + FPRS_TO_GSR, v[2]!);
    this.writeU32(this.pstateOff - 4, Number(v[3]! & 0xffn));
  }
}

/** A fresh program's state (Linux's flush_thread and start_thread: FEF off, registers zero, %asi ASI_PNF). */
export const FP_STATE_WORDS = 36;
export const FRESH_FP_STATE: readonly bigint[] = Array.from({ length: FP_STATE_WORDS }, (_, k) => (k === 3 ? ASI_PNF : 0n));

/**
 * The sparc64 CPU for Engine.reset, which uc_context_save does not hold: the CPUSPARCState from
 * its start through gsr. That is every field user code or the host changes (registers, windows
 * and their counters, PC/NPC, %y, %ccr, FSR and the FP registers, the data TLB, %asi, PSTATE,
 * FPRS, GSR); after it come the hyperprivileged and interrupt registers and the CPU model, which
 * nothing here touches. Pointers inside it (the window pointer, the tick timers) point into the
 * same engine, so its own saved bytes are valid when put back. Undefined before the first engine
 * of the process has measured the layout (SparcCpuState.locate).
 */
export const sparcCpuOutsideContext = {
  save(e: Engine): Uint8Array | undefined {
    const mem = selfMemory();
    const env = pstateOff === undefined || mem === undefined ? undefined : envOf(e, mem);
    if (env === undefined) return undefined;
    const b = Buffer.alloc(pstateOff! + PSTATE_TO_FPRS + FPRS_TO_GSR + 8);
    libc().copyOut(b, env, b.length);
    return b;
  },
  restore(e: Engine, saved: Uint8Array): void {
    const mem = selfMemory();
    const env = mem === undefined ? undefined : envOf(e, mem);
    if (env === undefined) throw new UniprobeError('INTERNAL', 'sparc64: the CPU state of an engine being reset cannot be found');
    libc().copyIn(env, Buffer.from(saved.buffer, saved.byteOffset, saved.length), saved.length);
  },
};
