/**
 * Typed binding to Unicorn 2.1 (Debian trixie's libunicorn.so.2, see library.ts) through koffi:
 * the Engine. Beside it: ffi.ts (library loading, C signatures, UnicornError), uc-const.ts
 * (unicorn.h's constants), host-memory.ts (mmap'd memory guest pages live in), insn-counter.ts
 * (the native instruction counter), regcache.ts (the trap register cache), hook-table.ts (hooks).
 * The files of src/emu are the only places that touch the C ABI. Everything above sees an `Engine` with
 * bigint addresses and register values (64-bit guest values must survive intact), typed hooks, and
 * `UnicornError` (a UniprobeError with code 'UNICORN') carrying Unicorn's own message.
 *
 * Invariants kept here:
 * - A JS exception thrown inside a hook never unwinds through C: it is caught, the run is stopped
 *   with uc_emu_stop, and the exception is re-thrown by `start()` once Unicorn has returned.
 * - Every registered koffi callback is unregistered when its hook is deleted or the engine closes
 *   or resets, so no engine keeps callbacks it no longer uses (koffi has a fixed pool of 8192).
 */
import { UniprobeError } from '../errors.js';
import { nativeCounter } from './insn-counter.js';
import { Runs, type BudgetRun } from './runs.js';
import { mergeRegisters, TrapRegisterCache, type CachedRegister } from './regcache.js';
import { NativeTrapHooks, type NativeStepTrap, type PcCells } from './trap-hook.js';
import { RegisterIo } from './registers.js';
import { addr64, big, check, load, UNICORN_LIBRARY } from './ffi.js';
import { HostMemory } from './host-memory.js';
import { HookTable } from './hook-table.js';
import { DEFAULT_TRANSLATION_BUFFER, ctlWrite, UC_CTL_TB_FLUSH, UC_CTL_TB_REMOVE_CACHE, UC_CTL_TCG_BUFFER_SIZE, UC_ERR, UC_HOOK, UC_HOOK_MEM_INVALID } from './uc-const.js';
import { contextRestore, contextSave, type CpuOutsideContext, type ResetPoint } from './context.js';
import { mappedRegions } from './regions.js';
import type { EngineMmu } from './mmu.js';

export { DEFAULT_TRANSLATION_BUFFER, UC_ARCH, UC_ERR, UC_HOOK, UC_HOOK_MEM_INVALID, UC_MEM, UC_MODE, UC_PROT } from './uc-const.js';
export { UNICORN_LIBRARY, UnicornError, unicornAvailable, unicornVersionLoaded } from './ffi.js';
export { HostMemory } from './host-memory.js';

export type IntrHook = (intno: number) => void;
export type InsnHook = () => void;
export type CodeHook = (address: bigint, size: number) => void;
/** Return true when the hook fixed the access (mapped the page) and the access should be retried. */
export type MemInvalidHook = (type: number, address: bigint, size: number, value: bigint) => boolean;
export type MemHook = (type: number, address: bigint, size: number, value: bigint) => void;
export type InsnInvalidHook = () => boolean;

export interface StartResult {
  /** uc_err of the run: 0, or the fault that ended it (READ_UNMAPPED, INSN_INVALID, …). */
  err: number;
}

let liveEngines = 0;
/** A stub's blocks lie in its 4 KiB (a range from an unmapped page removes nothing). */
const STUB_REACH = 0xfffn;

export interface EngineOptions {
  /**
   * Where the emulator really accesses memory for a virtual address, when it differs (the arch's
   * `addressAlias`: Unicorn drops high address bits on x86-64, ppc64 real mode and sparc64 with the
   * MMU off). Every mapping made at such an address is made at the alias too, from the same host
   * memory, so the engine's own reads and writes (at the virtual address) and the guest's
   * accesses (at the alias) see the same bytes.
   */
  addressAlias?: (addr: bigint) => bigint | undefined;
  /** Size of the engine's translation buffer in bytes (DEFAULT_TRANSLATION_BUFFER). */
  translationBufferBytes?: number;
  /**
   * Bytes per instruction on a fixed-width ISA (ppc, sparc: 4), so the instruction counter
   * derives a block's count from its size; absent = variable length (x86: Unicorn's own count).
   */
  fixedInsnBytes?: number;
  /** CPU state uc_context_save leaves out (Arch.cpuOutsideContext), for resetPoint and reset. */
  cpuOutsideContext?: CpuOutsideContext;
  /** The arch's PC (Engine.start reruns a faulting instruction there: src/emu/mmu.ts). */
  readPc?: (e: Engine) => bigint;
}

export type { BudgetRun } from './runs.js';
export type { CpuOutsideContext, ResetPoint } from './context.js';

/** One Unicorn engine: in uniprobe, one per address space (mm). */
export class Engine {
  private handle: bigint;
  private pendingError: unknown = undefined;
  private readonly regs = new RegisterIo(); // registers outside the trap cache (registers.ts)
  private handleNum: number; // the handle as a Number (a host pointer, below 2^47), for regs
  readonly arch: number;
  readonly mode: number;
  private running = false;
  /** Writes to apply once the current run has stopped (stopThen). */
  private readonly afterStop: Array<() => void> = [];

  /** EngineOptions.addressAlias: every mapping change is applied at both addresses. */
  private readonly alias: ((addr: bigint) => bigint | undefined) | undefined;
  private readonly readPc: ((e: Engine) => bigint) | undefined;
  private readonly cpuOutside: CpuOutsideContext | undefined;
  /** Host memory the engine allocated itself for aliased `memMap`s, freed on close. */
  private readonly owned: HostMemory[] = [];
  private readonly runs: Runs; // budgets, the native counter, refusals (runs.ts)
  private readonly traps = NativeTrapHooks.open({ cache: () => this.rc, failed: (e) => this.hookFailed(e) }); // trap-hook.ts
  private readonly hooks = new HookTable(this.traps); // hook-table.ts
  /** Registers served from one batched read per trap hook (cacheTrapRegisters), if any. */
  private rc: TrapRegisterCache | undefined;
  private mmu: EngineMmu | undefined; // the TLB-fill callback that makes faults precise (mmu.ts)
  private mappedAny = false; // the MMU's copy must see every mapping
  private stopRequested = false; // a hook asked this run to stop (stop())
  private countHookLive = false; // Unicorn's counting hook is installed (the last run was counted)
  private uncountedCode = false; // translated without it since the last flush (an uncounted run)
  /** A store refused on a mapped page: true when its owner (Mm) copies it on write (Runs). */
  onWriteRefusal: ((page: bigint) => boolean) | undefined;

  constructor(arch: number, mode: number, opts: EngineOptions = {}) {
    const l = load();
    const out: unknown[] = [null];
    check('uc_open', l.uc_open(arch, mode, out));
    this.handle = big(out[0] as bigint);
    this.handleNum = Number(this.handle);
    this.arch = arch;
    this.mode = mode;
    this.alias = opts.addressAlias;
    const self = this;
    this.runs = new Runs({
      handle: () => self.h(),
      emuStart: (begin, count, stub) => self.emuStart(begin, count, 0n, stub),
      get mmu() {
        return self.mmu;
      },
      get stopRequested() {
        return self.stopRequested;
      },
      get onWriteRefusal() {
        return self.onWriteRefusal;
      },
    });
    this.readPc = opts.readPc;
    this.cpuOutside = opts.cpuOutsideContext;
    liveEngines++;
    try {
      // Must precede anything that initialises the emulator (the buffer is sized once, at init).
      const tcg = opts.translationBufferBytes ?? DEFAULT_TRANSLATION_BUFFER;
      check('uc_ctl(TCG_BUFFER_SIZE)', l.uc_ctl(this.handle, ctlWrite(UC_CTL_TCG_BUFFER_SIZE, 1), 'uint32_t', tcg));
      // The block hook must exist before the first translation: Unicorn decides at translation
      // time whether a block calls it.
      const lib = nativeCounter();
      if (lib) this.runs.attachCounter(lib, opts.fixedInsnBytes ?? 0);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  private aliasOf(address: bigint): bigint | undefined {
    const a = this.alias?.(address);
    return a === undefined || a === address ? undefined : a;
  }

  static get live(): number { return liveEngines; } // prettier-ignore

  get closed(): boolean { return this.handle === 0n; } // prettier-ignore

  /** The last run was counted (Unicorn's counting hook is in its translated code). */
  get counting(): boolean { return this.countHookLive; } // prettier-ignore

  /** True while `start()` is on the stack: patching text is not allowed then (see DESIGN). */
  get isRunning(): boolean { return this.running; } // prettier-ignore

  /** The native uc_engine pointer, for CPU state no API reaches (sparc64's PSTATE: arch/sparc/cpu-state.ts). */
  nativeHandle(): bigint {
    return this.h();
  }

  private h(): bigint {
    if (this.handle === 0n) throw new UniprobeError('UNICORN', 'engine is closed');
    return this.handle;
  }

  private hn(): number {
    if (this.handleNum === 0) throw new UniprobeError('UNICORN', 'engine is closed');
    return this.handleNum;
  }

  close(): void {
    if (this.handle === 0n) return;
    const l = load();
    this.hooks.deleteAll(this.handle);
    l.uc_close(this.handle);
    this.handle = 0n;
    this.handleNum = 0;
    this.regs.free();
    this.rc?.free();
    this.rc = undefined;
    this.traps?.free();
    for (const m of this.owned.splice(0)) m.free();
    this.runs.free();
    liveEngines--;
  }

  /**
   * Where reset() brings the engine back to: taken before its first run. Undefined when the arch
   * keeps CPU state outside Unicorn's context and cannot reach it (Arch.cpuOutsideContext).
   */
  resetPoint(): ResetPoint | undefined {
    const cpu = this.cpuOutside?.save(this);
    return this.cpuOutside && !cpu ? undefined : { context: this.contextSaveBytes(), cpu };
  }

  /**
   * Back to the engine at `point`, for callers that open engines by the thousand (the differential
   * tests; an open and a close cost ~3 ms, most of it Unicorn building its translation tables).
   * Hooks and mappings go (and host memory the engine owned), the CPU and the instruction counter
   * start again, translations are flushed. test/emu/engine-reset.test.ts holds it to a fresh engine.
   */
  reset(point: ResetPoint): void {
    if (!this.resettable) throw new UniprobeError('INTERNAL', 'Engine.reset while running, closed or with an MMU attached');
    this.hooks.deleteAll(this.handle);
    for (const r of mappedRegions(this.h())) check('uc_mem_unmap (reset)', load().uc_mem_unmap(this.h(), r.begin, Number(r.end - r.begin + 1n)));
    for (const m of this.owned.splice(0)) m.free();
    this.rc?.free();
    this.rc = undefined;
    this.traps?.cacheChanged();
    this.traps?.step.reset();
    this.contextRestoreBytes(point.context);
    if (point.cpu) this.cpuOutside?.restore(this, point.cpu);
    this.flushAllTranslations();
    this.runs.reset();
    this.retryHooks.length = this.afterStop.length = 0;
    this.privileged = this.onWriteRefusal = this.pendingError = undefined;
    this.mappedAny = this.uncountedCode = this.stopRequested = false;
  }

  /** reset() is possible: open, not running, no MMU attached (Unicorn's TLB mode is not set back). */
  get resettable(): boolean {
    return !this.running && !this.mmu && this.handle !== 0n;
  }

  /** Single-steps completed by the native trap hook (trap-hook.ts); undefined without it or with UNIPROBE_NATIVE_STEP=0. */
  get nativeSteps(): NativeStepTrap | undefined {
    return this.traps?.step.usable ? this.traps.step : undefined;
  }
  /** Where the CPU state holds the PC (the arch's): interrupt hooks write it there (PcCells; UNIPROBE_DIRECT_PC=0: never). */
  keepPcAt(cells: PcCells): void {
    if (process.env.UNIPROBE_DIRECT_PC !== '0') this.traps?.keepPcAt(cells);
  }

  // --- runs: budgets, instruction counting, refused accesses (runs.ts) -------------------------

  /** True when runs are counted exactly (the native block counter), not charged their budget. */
  get countsNatively(): boolean {
    return this.runs.countsNatively;
  }

  /** Instructions counted so far by the native counter (0 without it). */
  get retired(): number {
    return this.runs.retired;
  }

  /** `retired` without the block running now (src/kernel/run-clock.ts). */
  get retiredBeforeBlock(): number {
    return this.runs.retiredBeforeBlock;
  }

  /** Run from `begin` for at most `budget` instructions (Runs.run). */
  run(begin: bigint, budget: number, pcAfter: () => bigint, uncounted = false, setPc?: (pc: bigint) => void): BudgetRun {
    return this.runs.run(begin, budget, pcAfter, uncounted, setPc);
  }

  /** Run a host stub that ends in a branch (Runs.runStub). */
  runStub(begin: bigint, insns: number): number {
    return this.runs.runStub(begin, insns, this.countHookLive);
  }

  /**
   * Observers of retries (verify's recorder, tests counting executions with a code hook): a trap
   * hook served a trap transparently and lets the CPU run the instruction at `pc` again — sparc64
   * window spills and fills, the lazily enabled FPU, the identity TLB entry — so a code hook saw
   * that instruction start once already. Linux's handlers `retry` the same way; one execution.
   */
  readonly retryHooks: Array<(pc: bigint) => void> = [];

  /** A trap hook lets the CPU run the instruction at `pc` again (see retryHooks). */
  retry(pc: bigint): void {
    // The CPU enters a new block at `pc`, counted again: `pc` on never ran in this one, even
    // when `pc` began it (a `save` opening a function).
    this.runs.takeBack(pc, true);
    for (const h of this.retryHooks) h(pc);
  }

  /**
   * A trap hook carried out the instruction before `next` itself and will not come back to `next`
   * through this block (sparc64 register-window traps emulated on the host): the counted block's
   * instructions from `next` on never ran. Without this, resuming elsewhere inside the block
   * would count them twice.
   */
  blockLeftAt(next: bigint): void {
    this.runs.takeBack(next, false);
  }

  /** Unicorn's translated block at `pc` (uc_ctl TB_REQUEST_CACHE): its instruction count and size. */
  requestBlock(pc: bigint): { pc: bigint; icount: number; size: number } | undefined {
    return this.runs.requestBlock(pc);
  }

  // --- memory ---------------------------------------------------------------------------------

  memMap(address: bigint, size: number, perms: number): void {
    if (this.aliasOf(address) !== undefined) {
      // Both addresses must see the same bytes: back them with host memory we own.
      const mem = HostMemory.alloc(size, false);
      this.owned.push(mem);
      this.memMapPtr(address, size, perms, mem);
      return;
    }
    check(`uc_mem_map(0x${address.toString(16)}, 0x${size.toString(16)})`, load().uc_mem_map(this.h(), address, size, perms));
    this.noteMap(address, size, perms);
  }

  /** The MMU's copy of the mappings follows every change (at the alias too). */
  private noteMap(address: bigint, size: number, perms: number | undefined): void {
    this.mappedAny = true;
    const m = this.mmu;
    if (!m) return;
    const last = address + BigInt(size) - 1n;
    if (perms === undefined) m.unmapped(address, last);
    else m.mapped(address, last, perms);
  }

  /** Attach the TLB-fill callback (before anything is mapped or translated). */
  attachMmu(mmu: EngineMmu): void {
    if (this.mappedAny) throw new UniprobeError('INTERNAL', 'Engine.attachMmu after memory was mapped');
    this.mmu = mmu;
  }

  /** Map host memory (not owned by the engine) at `address`; writes through either side are shared. */
  memMapPtr(address: bigint, size: number, perms: number, mem: HostMemory, offset = 0): void {
    if (offset + size > mem.size) throw new UniprobeError('INTERNAL', 'memMapPtr beyond host memory');
    const ptr = mem.ptr + BigInt(offset);
    check(`uc_mem_map_ptr(0x${address.toString(16)}, 0x${size.toString(16)})`, load().uc_mem_map_ptr(this.h(), address, size, perms, ptr));
    const alias = this.aliasOf(address);
    if (alias !== undefined) {
      const err = load().uc_mem_map_ptr(this.h(), alias, size, perms, ptr);
      if (err !== 0) load().uc_mem_unmap(this.h(), address, size);
      check(`uc_mem_map_ptr(alias 0x${alias.toString(16)} of 0x${address.toString(16)}, 0x${size.toString(16)})`, err);
      this.noteMap(alias, size, perms);
    }
    this.noteMap(address, size, perms);
  }

  memUnmap(address: bigint, size: number): void {
    check(`uc_mem_unmap(0x${address.toString(16)}, 0x${size.toString(16)})`, load().uc_mem_unmap(this.h(), address, size));
    this.noteMap(address, size, undefined);
    const alias = this.aliasOf(address);
    if (alias !== undefined) {
      check(`uc_mem_unmap(alias 0x${alias.toString(16)})`, load().uc_mem_unmap(this.h(), alias, size));
      this.noteMap(alias, size, undefined);
    }
  }

  memProtect(address: bigint, size: number, perms: number): void {
    check(`uc_mem_protect(0x${address.toString(16)}, 0x${size.toString(16)})`, load().uc_mem_protect(this.h(), address, size, perms));
    this.noteMap(address, size, perms);
    const alias = this.aliasOf(address);
    if (alias !== undefined) {
      check(`uc_mem_protect(alias 0x${alias.toString(16)})`, load().uc_mem_protect(this.h(), alias, size, perms));
      this.noteMap(alias, size, perms);
    }
  }

  memRead(address: bigint, size: number): Uint8Array {
    const buf = new Uint8Array(size);
    if (size === 0) return buf;
    check(`uc_mem_read(0x${address.toString(16)}, ${size})`, load().uc_mem_read(this.h(), address, buf, size));
    return buf;
  }

  /** Like memRead but returns undefined instead of throwing when the range is not mapped. */
  tryMemRead(address: bigint, size: number): Uint8Array | undefined {
    const buf = new Uint8Array(size);
    if (size === 0) return buf;
    return load().uc_mem_read(this.h(), address, buf, size) === 0 ? buf : undefined;
  }

  memWrite(address: bigint, bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    check(`uc_mem_write(0x${address.toString(16)}, ${bytes.length})`, load().uc_mem_write(this.h(), address, bytes, bytes.length));
  }

  tryMemWrite(address: bigint, bytes: Uint8Array): boolean {
    if (bytes.length === 0) return true;
    return load().uc_mem_write(this.h(), address, bytes, bytes.length) === 0;
  }

  // --- registers (little-endian host: Unicorn stores register values in host order) -------------

  regRead(reg: number): bigint {
    if (this.rc?.open) {
      const v = this.rc.tryRead(reg);
      if (v !== undefined) return v;
    }
    return this.regs.read(this.hn(), reg);
  }

  regWrite(reg: number, value: bigint): void {
    if (this.rc?.open && this.rc.tryWrite(reg, value)) return;
    this.regs.write(this.hn(), reg, value);
  }

  /** The low 32 bits of a register as a Number (32-bit targets' hit paths: no BigInt when cached). */
  regReadU32(reg: number): number {
    if (this.rc?.open) {
      const v = this.rc.tryReadLow(reg);
      if (v !== undefined) return v;
    }
    return Number(BigInt.asUintN(32, this.regs.read(this.hn(), reg)));
  }

  /** Write a 32-bit value given as a Number (regReadU32's counterpart; a wide register's upper half becomes 0). */
  regWriteU32(reg: number, value: number): void {
    if (this.rc?.open && this.rc.tryWriteU32(reg, value)) return;
    this.regs.write(this.hn(), reg, BigInt(value >>> 0));
  }

  /** dst = src (a whole register; in the trap cache no BigInt is made). */
  regCopy(dst: number, src: number): void {
    if (!(this.rc?.open && this.rc.tryCopy(dst, src))) this.regWrite(dst, this.regRead(src));
  }

  /** Raw register bytes (for registers wider than 64 bits, or the sparc64 CWP/window state). */
  regReadBytes(reg: number, size: number): Uint8Array {
    if (this.rc?.open) this.rc.flush();
    const buf = new Uint8Array(Math.max(size, 64));
    check('uc_reg_read', load().uc_reg_read(this.h(), reg, buf));
    return buf.slice(0, size);
  }

  regWriteBytes(reg: number, bytes: Uint8Array): void {
    if (this.rc?.open) this.rc.invalidate();
    const buf = new Uint8Array(Math.max(bytes.length, 64));
    buf.set(bytes);
    check('uc_reg_write', load().uc_reg_write(this.h(), reg, buf));
  }

  regReadBatch(regs: readonly number[]): bigint[] {
    const cached = this.rc?.open ? this.rc.tryReadBatch(regs) : undefined;
    return cached ?? this.regs.readBatch(this.hn(), regs);
  }

  regWriteBatch(regs: readonly number[], values: readonly bigint[]): void {
    if (this.rc?.open && this.rc.tryWriteBatch(regs, values)) return;
    this.regs.writeBatch(this.hn(), regs, values);
  }

  // --- execution --------------------------------------------------------------------------------

  /**
   * Run from `begin` until `until` (not honoured on sparc64: see the reference) or `count`
   * instructions (0 = unlimited). A guest fault ends the run and is returned, not thrown: the guest
   * kernel decides what a fault means. An exception thrown by a hook is re-thrown here.
   */
  start(begin: bigint, until: bigint, count = 0): StartResult {
    const err = this.emuStart(begin, count, until);
    const pc = this.readPc;
    return { err: pc ? this.runs.afterRefusal(err, () => pc(this)) : err };
  }

  /**
   * One uc_emu_start. Blocks translated for an uncounted run would ignore a later count: a counted
   * run after uncounted ones flushes first (Unicorn flushes when it takes the hook out). Flushes
   * are costly (docs/unicorn.md): a `stub` run (Runs.runStub) drops only its own blocks.
   */
  private emuStart(begin: bigint, count: number, until = 0n, stub = false): number {
    if (this.running) throw new UniprobeError('INTERNAL', 'Engine.start re-entered');
    if (count > 0 && this.uncountedCode) {
      this.flushAllTranslations();
      this.uncountedCode = false;
    }
    if (count > 0 || !stub) this.countHookLive = count > 0;
    if (count === 0 && !stub) this.uncountedCode = true;
    try {
      return this.emuStartRaw(begin, count, until);
    } finally {
      if (count === 0 && stub) this.flushTranslations(begin & ~STUB_REACH, (begin & ~STUB_REACH) + STUB_REACH + 1n);
    }
  }

  private emuStartRaw(begin: bigint, count: number, until: bigint): number {
    this.running = true;
    this.stopRequested = false;
    this.pendingError = undefined;
    let err: number;
    this.mmu?.beginRun();
    try {
      err = load().uc_emu_start(this.h(), begin, until, 0, count);
    } finally {
      this.mmu?.endRun();
      this.running = false;
      this.traps?.step.endRun(); // a step completed in C is the core's before anything else
      const writes = this.afterStop.splice(0);
      for (const w of writes) w();
    }
    if (this.pendingError !== undefined) {
      const e = this.pendingError;
      this.pendingError = undefined;
      throw e;
    }
    this.traps?.checkWrites();
    return err;
  }

  stop(): void {
    this.stopRequested = true;
    check('uc_emu_stop', load().uc_emu_stop(this.h()));
  }

  /**
   * End the run, then apply `write` (typically: set the PC) once `uc_emu_start` has returned; at
   * once when not running. Unicorn 2 drops a stop requested in a hook that also writes the PC:
   * the PC write's quit_request restarts the CPU loop at the new PC and clears stop_request, so
   * the run would go on. Trap hooks that must both redirect and stop (TrapAction {pc, stop}) use
   * this instead of regWrite + stop.
   */
  stopThen(write: () => void): void {
    if (!this.running) return write();
    this.afterStop.push(write);
    this.stop();
  }

  strerror(err: number): string {
    return load().uc_strerror(err);
  }

  // --- hooks ------------------------------------------------------------------------------------

  private guard<A extends unknown[], R>(fn: (...a: A) => R, onError: R): (...a: A) => R {
    return (...a: A): R => {
      try {
        return fn(...a);
      } catch (e) {
        this.hookFailed(e);
        return onError;
      }
    };
  }

  /**
   * guard() for the trap hooks (INTR, INSN, INSN_INVALID), with the register cache around the
   * call. A wrapper of its own, two fixed arguments: it runs at every probe hit, and a wrapper
   * shared with the code and memory hooks gets compiled with no feedback for the cache branch
   * (generic property loads at every trap).
   */
  private guardTrap<R>(fn: (a: unknown, b: unknown) => R, onError: R): (a: unknown, b: unknown) => R {
    return (a: unknown, b: unknown): R => {
      const rc = this.rc;
      if (rc !== undefined) rc.begin();
      try {
        return fn(a, b);
      } catch (e) {
        this.hookFailed(e);
        return onError;
      } finally {
        if (rc !== undefined) this.endTrap(rc);
      }
    };
  }

  private endTrap(rc: TrapRegisterCache): void {
    try {
      rc.end();
    } catch (e) {
      this.hookFailed(e);
    }
  }

  private hookFailed(e: unknown): void {
    if (this.pendingError === undefined) this.pendingError = e;
    try {
      load().uc_emu_stop(this.handle);
    } catch {
      /* already stopping */
    }
  }

  /**
   * Serve `regs` from one batched read per trap hook and write the changed ones back with one
   * batched write when the hook returns (src/emu/regcache.ts says why that is the same as direct
   * access). The probe cores ask for this with their arch's hit registers (ProbeArch /
   * UprobeArch.hitRegisters); a second call adds to the set. Not from inside a hook.
   */
  cacheTrapRegisters(regs: readonly CachedRegister[]): void {
    const old = this.rc;
    if (old?.open) throw new UniprobeError('INTERNAL', 'cacheTrapRegisters inside a hook');
    const merged = mergeRegisters(old?.regs ?? [], regs);
    if (old && merged.every((r, i) => r === old.regs[i])) return;
    const l = load();
    this.rc = new TrapRegisterCache(merged, {
      // A host pointer (below 2^47): exact as a Number. The cache is freed before uc_close.
      handle: Number(this.h()),
      readBatch: l.uc_reg_read_batch_n,
      writeBatch: l.uc_reg_write_batch_n,
      check,
    });
    this.traps?.cacheChanged();
    old?.free();
  }

  /** The trap cache's batched reads and writes so far (tests). */
  get trapRegisterBatches(): { reads: number; writes: number } {
    return { reads: this.rc?.reads ?? 0, writes: this.rc?.writes ?? 0 };
  }

  private addHook(type: number, proto: unknown, fn: (...a: never[]) => unknown, begin: bigint, end: bigint, extra: unknown[]): number {
    return this.hooks.add(this.h(), type, proto, fn, begin, end, extra);
  }

  hookIntr(fn: IntrHook): number {
    if (this.traps) return this.hooks.addNative(this.traps.add(this.h(), 'intr', fn));
    return this.addHook(UC_HOOK.INTR, load().protos.intr, this.guardTrap((_uc, intno) => fn(intno as number), undefined), 1n, 0n, []);
  }

  /**
   * UC_HOOK_INSN for an instruction id (x86 syscall/sysenter/cpuid). `plain`: Unicorn calls this
   * instruction's hook with (uc, user_data) only, as for x86 `syscall`, so it may go through the
   * native trampoline (trap-hook.ts); others (in/out: port, size, value) stay JavaScript hooks.
   */
  hookInsn(insnId: number, fn: InsnHook, plain = false): number {
    if (this.traps && plain) return this.hooks.addNative(this.traps.add(this.h(), 'insn', () => fn(), insnId));
    return this.addHook(UC_HOOK.INSN, load().protos.insn, this.guardTrap(() => fn(), undefined), 1n, 0n, ['int', insnId]);
  }

  /** UC_HOOK_CODE on [begin, end] (inclusive; begin > end = everywhere). */
  hookCode(fn: CodeHook, begin = 1n, end = 0n): number {
    const cb = (_uc: bigint, address: bigint | number, size: number): void => fn(addr64(address), size);
    return this.addHook(UC_HOOK.CODE, load().protos.code, this.guard(cb, undefined), begin, end, []);
  }

  hookMemInvalid(fn: MemInvalidHook, types = UC_HOOK_MEM_INVALID): number {
    const cb = (_uc: bigint, type: number, address: bigint | number, size: number, value: bigint | number): boolean => fn(type, addr64(address), size, big(value));
    return this.addHook(types, load().protos.memInvalid, this.guard(cb, false), 1n, 0n, []);
  }

  hookMem(types: number, fn: MemHook, begin = 1n, end = 0n): number {
    const cb = (_uc: bigint, type: number, address: bigint | number, size: number, value: bigint | number): void => fn(type, addr64(address), size, big(value));
    return this.addHook(types, load().protos.mem, this.guard(cb, undefined), begin, end, []);
  }

  hookInsnInvalid(fn: InsnInvalidHook): number {
    return this.addHook(UC_HOOK.INSN_INVALID, load().protos.insnInvalid, this.guardTrap(() => fn(), false), 1n, 0n, []);
  }

  hookDel(id: number): void {
    this.hooks.delete(this.handle, id);
  }

  get hookCount(): number {
    return this.hooks.size;
  }

  // --- context and control ----------------------------------------------------------------------

  /** Save the CPU context into a host-side blob (used for ppc64's MSR[HV] fix-up, see arch/ppc). */
  contextSaveBytes(): Uint8Array {
    if (this.rc?.open) this.rc.flush();
    return contextSave(this.h());
  }

  contextRestoreBytes(blob: Uint8Array): void {
    if (this.rc?.open) this.rc.invalidate();
    contextRestore(this.h(), blob);
  }

  /** The emulator's flush_icache_range: drop translated blocks covering [begin, end). */
  flushTranslations(begin: bigint, end: bigint): void {
    // Instruction boundaries may have changed (a breakpoint written): forget cached block counts.
    this.runs.flushed();
    const remove = (): void => {
      check('uc_ctl(TB_REMOVE_CACHE)', load().uc_ctl(this.h(), ctlWrite(UC_CTL_TB_REMOVE_CACHE, 2), 'uint64_t', begin, 'uint64_t', end));
      const alias = this.aliasOf(begin);
      if (alias !== undefined) {
        const end2 = alias + (end - begin);
        check('uc_ctl(TB_REMOVE_CACHE alias)', load().uc_ctl(this.h(), ctlWrite(UC_CTL_TB_REMOVE_CACHE, 2), 'uint64_t', alias, 'uint64_t', end2));
      }
    };
    // Unicorn finds the blocks through the TLB (virtual to physical): kernel text must be seen
    // as the kernel sees it, not through a user-mode refusal (src/emu/boundary.ts).
    const seen = (): void => (this.privileged ? this.privileged(remove) : remove());
    if (this.mmu) this.mmu.loosely(seen);
    else seen();
  }

  /** Run `fn` with the CPU's view of memory in kernel mode (set by the user/kernel boundary). */
  privileged: ((fn: () => void) => void) | undefined;

  flushAllTranslations(): void {
    this.runs.flushed();
    check('uc_ctl(TB_FLUSH)', load().uc_ctl(this.h(), ctlWrite(UC_CTL_TB_FLUSH, 0)));
  }

  pageSize(): number {
    const out: unknown[] = [null];
    check('uc_query', load().uc_query(this.h(), 2, out));
    return Number(out[0]);
  }
}

