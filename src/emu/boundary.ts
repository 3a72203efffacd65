/**
 * The user/kernel boundary of one engine (native/boundary.c says how it works and why).
 *
 * Linux's page tables make kernel pages supervisor-only; Unicorn has no such bit for memory the
 * host maps. Unicorn 2.1's virtual TLB lets a C callback translate every TLB miss: in user mode,
 * a miss on a kernel range is sent to a physical page nothing is mapped at, so the access fails
 * like an unmapped one and the run ends with the engine's usual fault (`translateFault` gives back
 * the virtual address). The engine says which mode the CPU is in (`setUser`) at every entry to and
 * exit from the guest kernel; the TLB is flushed on the way to user mode (kernel-mode entries
 * would let user code through), and on the way in only if a refused entry may be cached.
 *
 * The same callback makes faults precise while a run is on (EngineMmu, src/emu/mmu.ts): fills
 * carry each page's real permissions from the engine's mapping table and refuse what they forbid,
 * so Unicorn raises the fault at the faulting instruction (native/boundary.c, point 2).
 *
 * Measured (docs/unicorn.md): about +1.5–2 µs per system call round trip, nothing on compute
 * whose pages stay in the TLB. Without a C compiler there is no boundary (`boundaryUnavailable`).
 */
import koffi from 'koffi';
import { UniprobeError } from '../errors.js';
import { check, load } from './ffi.js';
import { HostMemory } from './host-memory.js';
import { symbolAddress } from './insn-counter.js';
import { buildNative, nativeSource } from './native-build.js';
import type { EngineMmu, Refusal } from './mmu.js';
import type { Engine } from './unicorn.js';
import { ctlWrite } from './uc-const.js';

/** Byte offsets of struct boundary's fields (native/boundary.c). */
const B = {
  user: 0,
  physMask: 8,
  hole: 16,
  deniedPage: 24,
  deniedSinceFlush: 32,
  denied: 40,
  fills: 48,
  nranges: 56,
  ranges: 64,
  strict: 192,
  refused: 200,
  refusedPage: 208,
  refusedType: 216,
  refusedPerms: 224,
  refusedDenied: 232,
  loose: 240,
} as const;
/** uniprobe_mmu_set's "unmapped". */
const UNMAPPED = (1n << 64n) - 1n;
const MAX_RANGES = 8;
const UC_HOOK_TLB_FILL = 1 << 17;
const UC_CTL_TLB_FLUSH = 11;
const UC_CTL_TLB_TYPE = 12;
const UC_TLB_VIRTUAL = 1;

interface BoundaryLib {
  fillHook: bigint;
  size: number;
  set: (b: bigint, first: bigint, last: bigint, perms: bigint) => number;
  free: (b: bigint) => void;
}

let loaded: BoundaryLib | null | undefined;
let whyNot: string | undefined;

/** Why engines run without the boundary (undefined when they have it, or before the first). */
export function boundaryUnavailable(): string | undefined {
  return whyNot;
}

function boundaryLib(): BoundaryLib | undefined {
  if (loaded !== undefined) return loaded ?? undefined;
  loaded = null;
  if (process.env.UNIPROBE_BOUNDARY === '0') {
    whyNot = 'turned off by UNIPROBE_BOUNDARY=0';
    return undefined;
  }
  const built = buildNative(nativeSource('boundary'), 'libuniprobe-boundary.so');
  if ('whyNot' in built) {
    whyNot = built.whyNot;
    return undefined;
  }
  try {
    const l = koffi.load(built.lib);
    const size = Number((l.func('uint64_t uniprobe_boundary_size(void)') as () => bigint)());
    const set = l.func('int uniprobe_mmu_set(uint64_t b, uint64_t first, uint64_t last, uint64_t perms)') as BoundaryLib['set'];
    const free = l.func('void uniprobe_mmu_free(uint64_t b)') as BoundaryLib['free'];
    loaded = { fillHook: symbolAddress(built.lib, 'uniprobe_tlb_fill'), size, set, free };
    return loaded;
  } catch (e) {
    whyNot = `cannot load ${built.lib}: ${(e as Error).message}`;
    return undefined;
  }
}

export interface BoundaryConfig {
  /** physical = virtual & physMask (the CPU's own truncation of high address bits). */
  physMask: bigint;
  /** A physical page with nothing mapped at it, ever. */
  hole: bigint;
  pageSize: number;
  /** Inclusive [first, last] ranges user mode may not touch (kernel space, kernel aliases). */
  denied: Array<[bigint, bigint]>;
}

export class Boundary implements EngineMmu {
  private user = false;
  /** A run is on (beginRun … endRun), and how many loosely() calls are open. */
  private inRun = false;
  private looseDepth = 0;

  private constructor(
    private readonly engine: Engine,
    private readonly lib: BoundaryLib,
    private readonly mem: HostMemory,
    private readonly view: DataView,
    private readonly cfg: BoundaryConfig,
  ) {}

  /**
   * Switch `engine` to the virtual TLB with the boundary's fill callback. Must come before the
   * engine translates anything. Undefined (no boundary) when the C helper cannot be had.
   */
  static attach(engine: Engine, cfg: BoundaryConfig): Boundary | undefined {
    const lib = boundaryLib();
    if (!lib) return undefined;
    const mem = HostMemory.alloc(lib.size, false);
    const view = new DataView(mem.bytes.buffer, mem.bytes.byteOffset, lib.size);
    view.setBigUint64(B.physMask, cfg.physMask, true);
    view.setBigUint64(B.hole, cfg.hole, true);
    const b = new Boundary(engine, lib, mem, view, cfg);
    b.setDenied(cfg.denied);
    engine.privileged = (fn) => b.asKernel(fn);
    // UNIPROBE_PRECISE_TLB=0: Unicorn's own (imprecise) checks only, and every run counted.
    if (process.env.UNIPROBE_PRECISE_TLB !== '0') engine.attachMmu(b);
    const l = load();
    const h = engine.nativeHandle();
    try {
      check('uc_ctl(TLB_TYPE)', l.uc_ctl(h, ctlWrite(UC_CTL_TLB_TYPE, 1), 'int', UC_TLB_VIRTUAL));
      const out: unknown[] = [null];
      check('uc_hook_add(tlb fill)', l.uc_hook_add_raw(h, out, UC_HOOK_TLB_FILL, lib.fillHook, mem.ptr, 1n, 0n));
    } catch (e) {
      mem.free();
      throw e;
    }
    return b;
  }

  /** Replace the ranges user mode may not touch (inclusive [first, last]). */
  setDenied(ranges: Array<[bigint, bigint]>): void {
    if (ranges.length > MAX_RANGES) throw new UniprobeError('INTERNAL', `boundary: at most ${MAX_RANGES} ranges`);
    const v = this.view;
    v.setBigUint64(B.nranges, 0n, true);
    ranges.forEach(([first, last], i) => {
      v.setBigUint64(B.ranges + 16 * i, first, true);
      v.setBigUint64(B.ranges + 16 * i + 8, last, true);
    });
    v.setBigUint64(B.nranges, BigInt(ranges.length), true);
  }

  get isUser(): boolean {
    return this.user;
  }

  /**
   * The CPU now runs user code (true) or the guest kernel (false): the memory view switches, and
   * the CPU's own privilege level where the arch can set it (`onSwitch`, Arch.setCpuMode).
   */
  setUser(user: boolean): void {
    if (user === this.user) return;
    const tlbApart = this.onSwitch?.(user) === true;
    this.setView(user, tlbApart);
  }

  /**
   * Called at every switch of setUser (not for asKernel's memory-only switch): switch the CPU's
   * own mode; true when that gave it a TLB of its own for the mode (Arch.setCpuMode).
   */
  onSwitch: ((user: boolean) => boolean) | undefined;

  /**
   * To user mode: entries filled in kernel mode must go, unless the CPU keeps them apart
   * (`tlbApart`: its MMU index changed with the mode) and no mapping changed meanwhile (a system
   * call's mprotect, munmap or copy-on-write copy: `loose`). A flush there was ~1 µs of every
   * system call in TLB refills (README, "System calls"). To kernel mode: only hole entries hurt.
   */
  private setView(user: boolean, tlbApart = false): void {
    this.user = user;
    const v = this.view;
    v.setBigUint64(B.user, user ? 1n : 0n, true);
    const stale = user && (!tlbApart || v.getBigUint64(B.loose, true) !== 0n);
    if (stale || v.getBigUint64(B.deniedSinceFlush, true) !== 0n) this.flush();
  }

  /** Run `fn` in kernel mode, then go back to the mode before. */
  asKernel(fn: () => void): void {
    const was = this.user;
    if (was) this.setView(false);
    try {
      fn();
    } finally {
      if (was) this.setView(true);
    }
  }

  private flush(): void {
    this.view.setBigUint64(B.deniedSinceFlush, 0n, true);
    this.view.setBigUint64(B.loose, 0n, true);
    check('uc_ctl(TLB_FLUSH)', load().uc_ctl(this.engine.nativeHandle(), ctlWrite(UC_CTL_TLB_FLUSH, 0)));
  }

  /**
   * An unmapped-access address the emulator reported: inside the hole, the refused virtual
   * address (same offset in the page); else undefined (an ordinary fault).
   */
  translateFault(addr: bigint): bigint | undefined {
    const ps = BigInt(this.cfg.pageSize);
    if (addr < this.cfg.hole || addr >= this.cfg.hole + ps) return undefined;
    return this.view.getBigUint64(B.deniedPage, true) + (addr - this.cfg.hole);
  }

  // --- precise faults (EngineMmu; native/boundary.c, point 2) ----------------------------------

  // A changed mapping may be in the TLB with its old permissions: the next run starts with a flush.
  mapped(first: bigint, last: bigint, perms: number): void {
    if (this.lib.set(this.mem.ptr, first, last, BigInt(perms)) !== 0) throw new UniprobeError('INTERNAL', 'boundary: out of memory for the mapping table');
    this.view.setBigUint64(B.loose, 1n, true);
  }

  unmapped(first: bigint, last: bigint): void {
    this.lib.set(this.mem.ptr, first, last, UNMAPPED);
    this.view.setBigUint64(B.loose, 1n, true);
  }

  beginRun(): void {
    const v = this.view;
    if (this.looseDepth === 0 && v.getBigUint64(B.loose, true) !== 0n) this.flush();
    v.setBigUint64(B.refused, 0n, true);
    this.inRun = true;
    v.setBigUint64(B.strict, this.looseDepth === 0 ? 1n : 0n, true);
  }

  endRun(): void {
    this.inRun = false;
    this.view.setBigUint64(B.strict, 0n, true);
  }

  takeRefusal(): Refusal | undefined {
    const v = this.view;
    if (v.getBigUint64(B.refused, true) === 0n) return undefined;
    v.setBigUint64(B.refused, 0n, true);
    return {
      page: v.getBigUint64(B.refusedPage, true),
      type: Number(v.getBigUint64(B.refusedType, true)),
      perms: Number(v.getBigUint64(B.refusedPerms, true)),
      denied: v.getBigUint64(B.refusedDenied, true) !== 0n,
    };
  }

  loosely<T>(fn: () => T): T {
    const v = this.view;
    this.looseDepth++;
    v.setBigUint64(B.strict, 0n, true);
    try {
      return fn();
    } finally {
      this.looseDepth--;
      const strict = this.inRun && this.looseDepth === 0;
      v.setBigUint64(B.strict, strict ? 1n : 0n, true);
      // Inside a run, loose entries must not outlive the call (the run goes on strictly).
      if (strict && v.getBigUint64(B.loose, true) !== 0n) this.flush();
    }
  }

  /** Fills and refusals so far (statistics, tests). */
  get stats(): { fills: number; denied: number } {
    return { fills: Number(this.view.getBigUint64(B.fills, true)), denied: Number(this.view.getBigUint64(B.denied, true)) };
  }

  /** After uc_close. */
  free(): void {
    this.lib.free(this.mem.ptr);
    this.mem.free();
  }
}
