/**
 * How the engine runs guest code for a budget (Engine.run) and what a run did: the native block
 * counter's exact count (insn-counter.ts), runs without Unicorn's count, and the accesses the MMU
 * refused (mmu.ts). The Engine owns the emulator; this file owns the accounting around each
 * `uc_emu_start`.
 */
import { HostMemory } from './host-memory.js';
import { check, load, UNICORN_LIBRARY } from './ffi.js';
import { COUNTER, symbolAddress, takeBackBlock, type NativeCounterLib } from './insn-counter.js';
import type { EngineMmu } from './mmu.js';
import { ctlCode, UC_CTL_IO_READ_WRITE, UC_CTL_TB_REQUEST_CACHE, UC_ERR, UC_HOOK, UC_MEM } from './uc-const.js';

/** What one budgeted run did (see `Runs.run`). */
export interface BudgetRun {
  err: number;
  /** Instructions executed (exact with the native counter; else the budget, an upper bound). */
  retired: number;
}

/** The engine's side: one uc_emu_start, and what the runs need to know about it. */
export interface RunHost {
  handle(): bigint;
  /** `stub`: a host stub's run (runStub), whose uncounted blocks are dropped afterwards. */
  emuStart(begin: bigint, count: number, stub?: boolean): number;
  readonly mmu: EngineMmu | undefined;
  /** A hook asked the last run to stop (Engine.stop). */
  readonly stopRequested: boolean;
  /** See Engine.onWriteRefusal. */
  readonly onWriteRefusal: ((page: bigint) => boolean) | undefined;
}

export class Runs {
  /** The native instruction counter's state (struct counter), when it is in use. */
  private counter: { lib: NativeCounterLib; mem: HostMemory; view: DataView } | undefined;

  constructor(private readonly host: RunHost) {}

  /** Attach the counter's UC_HOOK_BLOCK (before the first translation). */
  attachCounter(lib: NativeCounterLib, fixedWidth: number): void {
    const mem = HostMemory.alloc(lib.size, false);
    const view = new DataView(mem.bytes.buffer, mem.bytes.byteOffset, lib.size);
    // Fixed widths are powers of two (4 on ppc and sparc): the hook shifts instead of dividing.
    if (fixedWidth !== 0 && (fixedWidth & (fixedWidth - 1)) !== 0) throw new Error(`INTERNAL: instruction width ${fixedWidth} is not a power of two`);
    view.setBigUint64(COUNTER.fixedWidth, BigInt(fixedWidth), true);
    view.setBigUint64(COUNTER.fixedShift, BigInt(fixedWidth === 0 ? 0 : Math.log2(fixedWidth)), true);
    view.setBigUint64(COUNTER.ctl, symbolAddress(UNICORN_LIBRARY, 'uc_ctl'), true);
    view.setBigUint64(COUNTER.emuStop, symbolAddress(UNICORN_LIBRARY, 'uc_emu_stop'), true);
    view.setBigUint64(COUNTER.ctlRequest, BigInt(ctlCode(UC_CTL_TB_REQUEST_CACHE, 2, UC_CTL_IO_READ_WRITE)), true);
    this.counter = { lib, mem, view };
    const out: unknown[] = [null];
    const err = load().uc_hook_add_raw(this.host.handle(), out, UC_HOOK.BLOCK, fixedWidth === 0 ? lib.blockHook : lib.blockHookFixed, mem.ptr, 1n, 0n);
    if (err !== 0) {
      this.counter = undefined;
      mem.free();
      check('uc_hook_add(block counter)', err);
    }
  }

  /** Translations were flushed: forget the cached block counts (boundaries may have moved). */
  flushed(): void {
    if (this.counter) this.counter.lib.flush(this.counter.mem.ptr);
  }

  /** Engine.reset: the counter's run state back to zero, its cached block counts dropped. */
  reset(): void {
    const c = this.counter;
    if (!c) return;
    for (const f of [COUNTER.retired, COUNTER.stopAt, COUNTER.lastPc, COUNTER.lastSize, COUNTER.lastIcount, COUNTER.misses, COUNTER.stopped, COUNTER.stoppedPc]) c.view.setBigUint64(f, 0n, true);
    c.lib.flush(c.mem.ptr);
  }

  /** After uc_close. */
  free(): void {
    this.counter?.mem.free();
    this.counter = undefined;
  }

  get countsNatively(): boolean {
    return this.counter !== undefined;
  }

  get retired(): number {
    return this.counter ? Number(this.counter.view.getBigUint64(COUNTER.retired, true)) : 0;
  }

  /** `retired` less the block counted last (the one running now, inside a hook): see RunClock. */
  get retiredBeforeBlock(): number {
    const v = this.counter?.view;
    return v ? Number(v.getBigUint64(COUNTER.retired, true) - v.getBigUint64(COUNTER.lastIcount, true)) : 0;
  }

  /**
   * Run from `begin` for at most `budget` instructions. `retired` is what really ran: with the
   * native counter, counted per block, less what a run that ended inside its last block never
   * reached (`pcAfter` reads the PC once the run is over); without it, the whole budget (an upper
   * bound when the run ended early).
   *
   * Counted (the default): Unicorn's count, an exact stop, at the price of a hook before every
   * instruction (about 3x on all code). `uncounted` (a task alone on the machine, whose slice end
   * nobody observes): no count; the native counter ends the run at the first block entered once
   * the budget is spent, so it may run up to one block (at most 512 instructions) over. Faults are
   * exact either way (mmu.ts). `setPc` puts the PC where such a stop left it (see `stoppedAt`).
   */
  run(begin: bigint, budget: number, pcAfter: () => bigint, uncounted: boolean, setPc?: (pc: bigint) => void): BudgetRun {
    const c = this.counter;
    const count = Math.max(1, budget);
    if (!c) return { err: this.afterRefusal(this.host.emuStart(begin, count), pcAfter), retired: count };
    const v = c.view;
    const before = v.getBigUint64(COUNTER.retired, true);
    const free = uncounted && this.host.mmu !== undefined;
    if (free) v.setBigUint64(COUNTER.stopAt, before + BigInt(count), true);
    let err = this.runCounted(begin, free ? 0 : count, pcAfter, setPc);
    if (free) v.setBigUint64(COUNTER.stopAt, 0n, true);
    err = this.afterRefusal(err, pcAfter);
    let after = v.getBigUint64(COUNTER.retired, true);
    // A run that ended without error yet retired nothing executed one instruction that trapped
    // and was resumed at itself (a probe's breakpoint whose hit must wait): it did run, and
    // counting it keeps a task that traps forever moving towards its instruction budget.
    if (after === before && err === UC_ERR.OK) v.setBigUint64(COUNTER.retired, (after += 1n), true);
    return { err, retired: Number(after - before) };
  }

  /**
   * Run a host stub: straight-line code whose last instruction is a branch; `insns` counts them.
   * Returns the uc_err. Unicorn's count would add its hook to the translated code and drop every
   * translation when it is taken out again, so while runs go uncounted (`counted` false) the
   * native counter ends this run instead, as the block after the stub is entered, before it runs.
   * That block is translated though: the branch target must hold code that is never rewritten
   * (Unicorn keeps a translation across uc_mem_write) and lie in the same 4 KiB as `begin` (the
   * stub's uncounted blocks are dropped after the run, so a counted run never reuses them). The
   * stub's instructions are not the task's: not counted.
   */
  runStub(begin: bigint, insns: number, counted: boolean): number {
    const c = this.counter;
    if (counted || !c) return this.host.emuStart(begin, insns, true);
    const v = c.view;
    const before = v.getBigUint64(COUNTER.retired, true);
    // Blocks may end inside the stub (a write to %asi does on sparc64): stop once all ran.
    v.setBigUint64(COUNTER.stopAt, before + BigInt(insns), true);
    try {
      return this.host.emuStart(begin, 0, true);
    } finally {
      v.setBigUint64(COUNTER.stopAt, 0n, true);
      v.setBigUint64(COUNTER.retired, before, true);
    }
  }

  /** One uc_emu_start, then the last block from the PC the run stopped at on never ran. */
  private runCounted(begin: bigint, count: number, pcAfter: () => bigint, setPc?: (pc: bigint) => void): number {
    if (!this.counter) return this.host.emuStart(begin, count);
    const v = this.counter.view;
    v.setBigUint64(COUNTER.lastSize, 0n, true);
    v.setBigUint64(COUNTER.stopped, 0n, true);
    const err = this.host.emuStart(begin, count);
    if (setPc) this.stoppedAt(pcAfter, setPc);
    if (v.getBigUint64(COUNTER.lastSize, true) > 0n) this.takeBack(pcAfter(), true);
    return err;
  }

  /**
   * The counter ended the run at the entry of a block (an uncounted run's budget): the CPU is at
   * that block's first instruction, none of it ran. Unicorn 2.1.1 puts the PC there only if no
   * hook of the run wrote the PC before (`quit_request`, set by any PC write, is not cleared until
   * the run ends) and no access error was noted meanwhile (`invalid_error`): cpu_tb_exec skips its
   * synchronize_from_tb otherwise. The PC then still holds the last value a translated block
   * stored, not the block the run stopped at: on x86 the return address of the last `ret`, since
   * a chained jump stores no EIP. A task resumed there skipped the block (an i386 program stepped
   * by a uprobe, stopped at a `call` block, returned from a call it never made: stack 16 bytes off,
   * test/kernel/slice-stop.test.ts). So the engine puts the PC where the counter stopped.
   */
  private stoppedAt(pcAfter: () => bigint, setPc: (pc: bigint) => void): void {
    const v = this.counter!.view;
    if (v.getBigUint64(COUNTER.stopped, true) === 0n) return;
    v.setBigUint64(COUNTER.stopped, 0n, true);
    const at = v.getBigUint64(COUNTER.stoppedPc, true);
    if (pcAfter() !== at) setPc(at);
  }

  /**
   * A run that ended in UC_ERR_EXCEPTION may have ended at an access the MMU refused, with the
   * CPU exactly at the faulting instruction. A store to a page its owner will make writable
   * (copy-on-write) is an ordinary WRITE_PROT; any other refusal is a real fault, whose exact
   * address only Unicorn's own checks report: that one instruction runs again, counted and
   * loosely, and ends as it always did (the memory hooks see the address, the PC stays there).
   */
  afterRefusal(err: number, pcAfter: () => bigint): number {
    if (err !== UC_ERR.EXCEPTION) return err;
    const mmu = this.host.mmu;
    const r = mmu?.takeRefusal();
    if (!mmu || !r) return err;
    // A hook stopped the run (a trap), and Unicorn looked up the next block before leaving: that
    // fetch never happened for the program (a counted run stops before it).
    if (this.host.stopRequested) return UC_ERR.OK;
    if (r.type === UC_MEM.WRITE && r.perms !== 0 && !r.denied && this.host.onWriteRefusal?.(r.page)) return UC_ERR.WRITE_PROT;
    const pc = pcAfter();
    return mmu.loosely(() => this.runCounted(pc, 1, pcAfter));
  }

  /** `next` = the first instruction of the counted block that did not run; `fromStart`: it may be the block's first. */
  takeBack(next: bigint, fromStart: boolean): void {
    if (this.counter) takeBackBlock(this.counter.view, next, fromStart, this.blockAt);
  }

  /** requestBlock as a value, made once: sparc64's traps give back a block at every trap. */
  private readonly blockAt = (pc: bigint): { pc: bigint; icount: number; size: number } | undefined => this.requestBlock(pc);

  /** Unicorn's translated block at `pc` (uc_ctl TB_REQUEST_CACHE): its instruction count and size. */
  requestBlock(pc: bigint): { pc: bigint; icount: number; size: number } | undefined {
    const buf = new Uint8Array(16);
    // Unicorn looks the block up through the TLB: a strict fill refused there would unwind
    // through this call (mmu.ts), so the engine's own lookups fill loosely.
    const ask = (): number => load().uc_ctl(this.host.handle(), ctlCode(UC_CTL_TB_REQUEST_CACHE, 2, UC_CTL_IO_READ_WRITE), 'uint64_t', pc, 'uint8_t *', buf);
    const mmu = this.host.mmu;
    const err = mmu ? mmu.loosely(ask) : ask();
    if (err !== 0) return undefined;
    const dv = new DataView(buf.buffer);
    return { pc: dv.getBigUint64(0, true), icount: dv.getUint16(8, true), size: dv.getUint16(10, true) };
  }
}
