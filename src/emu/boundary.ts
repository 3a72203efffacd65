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
 * Measured (docs/unicorn.md): about +1.5–2 µs per system call round trip, nothing on compute
 * whose pages stay in the TLB. Without a C compiler there is no boundary (`boundaryUnavailable`).
 */
import koffi from 'koffi';
import { UniprobeError } from '../errors.js';
import { check, load } from './ffi.js';
import { HostMemory } from './host-memory.js';
import { symbolAddress } from './insn-counter.js';
import { buildNative, nativeSource } from './native-build.js';
import type { Engine } from './unicorn.js';
import { ctlWrite } from './uc-const.js';

/** Byte offsets of struct boundary's fields (native/boundary.c). */
const B = { user: 0, physMask: 8, hole: 16, deniedPage: 24, deniedSinceFlush: 32, denied: 40, fills: 48, nranges: 56, ranges: 64 } as const;
const MAX_RANGES = 8;
const UC_HOOK_TLB_FILL = 1 << 17;
const UC_CTL_TLB_FLUSH = 11;
const UC_CTL_TLB_TYPE = 12;
const UC_TLB_VIRTUAL = 1;

interface BoundaryLib {
  fillHook: bigint;
  size: number;
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
    loaded = { fillHook: symbolAddress(built.lib, 'uniprobe_tlb_fill'), size };
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

export class Boundary {
  private user = false;

  private constructor(
    private readonly engine: Engine,
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
    const b = new Boundary(engine, mem, view, cfg);
    b.setDenied(cfg.denied);
    engine.privileged = (fn) => b.asKernel(fn);
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
    this.setView(user);
    this.onSwitch?.(user);
  }

  /** Called at every switch of setUser (not for asKernel's memory-only switch). */
  onSwitch: ((user: boolean) => void) | undefined;

  private setView(user: boolean): void {
    this.user = user;
    const v = this.view;
    v.setBigUint64(B.user, user ? 1n : 0n, true);
    // To user: kernel-mode entries must go. To kernel: only hole entries would hurt.
    if (user || v.getBigUint64(B.deniedSinceFlush, true) !== 0n) this.flush();
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

  /** Fills and refusals so far (statistics, tests). */
  get stats(): { fills: number; denied: number } {
    return { fills: Number(this.view.getBigUint64(B.fills, true)), denied: Number(this.view.getBigUint64(B.denied, true)) };
  }

  /** After uc_close. */
  free(): void {
    this.mem.free();
  }
}
