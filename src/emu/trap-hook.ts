/**
 * Trap hooks with the register traffic in C (native/trap-hook.c): the engine's UC_HOOK_INTR and
 * UC_HOOK_INSN hooks go through a small C trampoline that does the trap register cache's batched
 * read before the JavaScript hook and its batched write after it, so a probe hit crosses from C
 * to JavaScript once instead of three times. What the hook sees is the same as with the cache
 * alone (src/emu/regcache.ts): the copy is read at the start of every trap hook instead of at its
 * first cached access, which changes no value (the CPU is paused in between).
 *
 * Built on first use like the instruction counter; without a C compiler, or with
 * `UNIPROBE_NATIVE_TRAP=0`, the engine calls its JavaScript hooks directly, as before.
 */
import koffi from 'koffi';
import { UniprobeError } from '../errors.js';
import { callbackType, check, load, UNICORN_LIBRARY } from './ffi.js';
import { symbolAddress } from './insn-counter.js';
import { buildNative, nativeSource } from './native-build.js';
import { giveBlock, takeBlock, type TrapRegisterCache } from './regcache.js';
import { UC_HOOK } from './uc-const.js';

/** Byte offsets of struct trap_hook's fields (native/trap-hook.c). */
const F = { readBatch: 0, writeBatch: 8, js: 16, n: 24, ndirty: 28, loaded: 32, err: 36, ids: 40, ptrs: 48, dirtyIds: 56, dirtyPtrs: 64, step: 72, pcCell: 80, npcCell: 88, pcReg: 96, pcBytes: 100 } as const;
/** Byte offsets of struct native_step's fields. */
const S = { armed: 0, done: 4, intno: 8, pcReg: 12, pcAt: 16, resume: 24 } as const;

interface TrapHookLib {
  intr: bigint;
  insn: bigint;
  size: number;
  stepSize: number;
  readBatch: bigint;
  writeBatch: bigint;
  jsProto: unknown;
}

let loaded: TrapHookLib | null | undefined;
let whyNot: string | undefined;

/** Why trap hooks call JavaScript directly (undefined when they do not, or before the first). */
export function nativeTrapHooksUnavailable(): string | undefined {
  return whyNot;
}

function trapHookLib(): TrapHookLib | undefined {
  if (loaded !== undefined) return loaded ?? undefined;
  loaded = null;
  load(); // Unicorn itself first: its batch calls are looked up in the loaded library
  const built = buildNative(nativeSource('trap-hook'), 'libuniprobe-trap-hook.so');
  if ('whyNot' in built) {
    whyNot = built.whyNot;
    return undefined;
  }
  try {
    const l = koffi.load(built.lib);
    loaded = {
      intr: symbolAddress(built.lib, 'uniprobe_trap_intr'),
      insn: symbolAddress(built.lib, 'uniprobe_trap_insn'),
      size: Number((l.func('uint64_t uniprobe_trap_hook_size(void)') as () => bigint)()),
      stepSize: Number((l.func('uint64_t uniprobe_native_step_size(void)') as () => bigint)()),
      readBatch: symbolAddress(UNICORN_LIBRARY, 'uc_reg_read_batch'),
      writeBatch: symbolAddress(UNICORN_LIBRARY, 'uc_reg_write_batch'),
      jsProto: callbackType('void', ['uint32_t']), // js_hook_t in native/trap-hook.c
    };
    return loaded;
  } catch (e) {
    whyNot = `cannot load ${built.lib}: ${(e as Error).message}`;
    return undefined;
  }
}

/** What the engine gives each hook: its register cache now, and how to report a failure. */
export interface TrapHookHost {
  /** The cache the hook's trampoline serves (undefined: none, nothing is read). */
  cache(): TrapRegisterCache | undefined;
  /** A hook threw: keep the error for the end of the run and stop it (Engine.hookFailed). */
  failed(e: unknown): void;
}

/**
 * Where the CPU keeps its PC in host memory (the arch's CPU state, Engine.keepPcAt): an interrupt
 * hook's trampoline then writes the PC there itself, without Unicorn restarting its CPU loop
 * (native/trap-hook.c says why that is the same). `npc`: sparc's NPC, set to PC + 4 alongside.
 */
export interface PcCells {
  /** Unicorn's id of the PC register. */
  reg: number;
  pc: bigint;
  npc?: bigint;
  bytes: 4 | 8;
}

/** One installed trampoline: its struct, its JavaScript callback and Unicorn's hook handle. */
interface NativeTrap {
  readonly kind: 'intr' | 'insn';
  readonly block: { ptr: bigint; bytes: Uint8Array };
  readonly i32: Int32Array;
  readonly view: DataView;
  readonly callback: unknown;
  handle: bigint;
}

/**
 * A single-step finished in C (native/trap-hook.c, struct native_step): the probe core arms it
 * when the step's post-step fix-up is only a PC move, and learns of the completion through
 * `onDone`, called before any other JavaScript of the engine runs (the next trap hook, or the end
 * of the run). Guest-visible state is the same as when the JavaScript trap path completes the
 * step: the same instructions run, the PC is written the same way at the same trap.
 */
export class NativeStepTrap {
  /** The core's completion, given what it armed the step for (set once per engine by the core). */
  onDone: ((owner: unknown) => void) | undefined;
  /** What the armed (or completed, not yet reported) step belongs to: the core's task state. */
  private owner: unknown;
  /** Steps finished here so far (tests and benchmarks tell the two paths apart by it). */
  completed = 0;
  /** UNIPROBE_NATIVE_STEP=0 (read when the engine opens): every step trap goes to JavaScript. */
  readonly usable = process.env.UNIPROBE_NATIVE_STEP !== '0';
  private readonly i32: Int32Array;
  private readonly u32: Uint32Array;
  private readonly u64: BigUint64Array;

  constructor(readonly block: { ptr: bigint; bytes: Uint8Array }) {
    const b = block.bytes;
    this.i32 = new Int32Array(b.buffer, b.byteOffset, 8);
    this.u32 = new Uint32Array(b.buffer, b.byteOffset, 8);
    this.u64 = new BigUint64Array(b.buffer, b.byteOffset, 4);
    this.i32.fill(0);
  }

  /** `arm` for addresses past 2^53 (kprobes in x86-64's kernel half): stored as they are. */
  armAt(intno: number, pcReg: number, pcAt: bigint, resume: bigint, owner: unknown): void {
    this.owner = owner;
    this.u32[S.intno >> 2] = intno;
    this.i32[S.pcReg >> 2] = pcReg;
    this.u64[S.pcAt >> 3] = pcAt;
    this.u64[S.resume >> 3] = resume;
    this.i32[S.armed >> 2] = 1;
  }

  /**
   * At trap `intno` with the PC (register `pcReg`) at `pcAt`, move the PC to `resume`. Addresses
   * as Numbers (user addresses, below 2^53), stored as 32-bit halves: no BigInt per hit.
   */
  arm(intno: number, pcReg: number, pcAt: number, resume: number, owner: unknown): void {
    this.owner = owner;
    const u = this.u32;
    u[S.intno >> 2] = intno;
    this.i32[S.pcReg >> 2] = pcReg;
    // Halves without a floating-point remainder: `>>> 0` is the low word of an integer below
    // 2^53, and what is left divides by 2^32 exactly.
    const pcLo = pcAt >>> 0;
    const resumeLo = resume >>> 0;
    u[S.pcAt >> 2] = pcLo;
    u[(S.pcAt >> 2) + 1] = (pcAt - pcLo) / 0x1_0000_0000;
    u[S.resume >> 2] = resumeLo;
    u[(S.resume >> 2) + 1] = (resume - resumeLo) / 0x1_0000_0000;
    this.i32[S.armed >> 2] = 1;
  }

  /** Report a completed step (if any) to the core. */
  settle(): void {
    if (this.i32[S.done >> 2] === 0) return;
    this.i32[S.done >> 2] = 0;
    this.completed++;
    const owner = this.owner;
    this.owner = undefined;
    this.onDone?.(owner);
  }

  /** Engine.reset: nothing armed or owed, no core attached, nothing counted. */
  reset(): void {
    this.i32.fill(0);
    this.owner = this.onDone = undefined;
    this.completed = 0;
  }

  /** The run ended: an armed step that did not come is the JavaScript path's again. */
  endRun(): void {
    this.i32[S.armed >> 2] = 0;
    this.settle();
    this.owner = undefined;
  }
}

/** An engine's native trap hooks (Engine.hookIntr / hookInsn when the library is there). */
export class NativeTrapHooks {
  private readonly traps = new Map<bigint, NativeTrap>();
  /** The engine's native step completion, shared by its UC_HOOK_INTR hooks. */
  readonly step: NativeStepTrap;
  /** The CPU's PC in host memory, for the interrupt hooks (keepPcAt). */
  private pcCells: PcCells | undefined;

  private constructor(
    private readonly lib: TrapHookLib,
    private readonly host: TrapHookHost,
  ) {
    this.step = new NativeStepTrap(takeBlock(lib.stepSize));
  }

  /** Undefined when the trampolines cannot be had (the engine then hooks JavaScript directly). */
  static open(host: TrapHookHost): NativeTrapHooks | undefined {
    // Read per engine, so that one process can compare both ways (test/emu/regcache.test.ts).
    if (process.env.UNIPROBE_NATIVE_TRAP === '0') return undefined;
    const lib = trapHookLib();
    return lib ? new NativeTrapHooks(lib, host) : undefined;
  }

  /**
   * Hook `fn` as UC_HOOK_INTR (arg: the interrupt number) or UC_HOOK_INSN for `insnId` (arg: 0).
   * Returns Unicorn's hook handle, for `remove`.
   */
  add(uc: bigint, kind: 'intr' | 'insn', fn: (arg: number) => void, insnId = 0): bigint {
    const lib = this.lib;
    const block = takeBlock(lib.size);
    const view = new DataView(block.bytes.buffer, block.bytes.byteOffset, lib.size);
    const i32 = new Int32Array(block.bytes.buffer, block.bytes.byteOffset, lib.size >> 2);
    const callback = koffi.register(this.wrap(fn, i32), lib.jsProto as never);
    const trap: NativeTrap = { kind, block, i32, view, callback, handle: 0n };
    view.setBigUint64(F.readBatch, lib.readBatch, true);
    view.setBigUint64(F.writeBatch, lib.writeBatch, true);
    view.setBigUint64(F.js, BigInt(koffi.address(callback) as bigint), true);
    view.setBigUint64(F.step, kind === 'intr' ? this.step.block.ptr : 0n, true);
    this.point(trap, this.host.cache());
    this.pointPc(trap);
    const out: unknown[] = [null];
    const l = load();
    const err =
      kind === 'intr'
        ? l.uc_hook_add_raw(uc, out, UC_HOOK.INTR, lib.intr, block.ptr, 1n, 0n)
        : l.uc_hook_add_raw_insn(uc, out, UC_HOOK.INSN, lib.insn, block.ptr, 1n, 0n, 'int', insnId);
    if (err !== 0) {
      this.release(trap);
      check('uc_hook_add(native trap hook)', err);
    }
    trap.handle = BigInt(out[0] as bigint);
    this.traps.set(trap.handle, trap);
    return trap.handle;
  }

  /**
   * The JavaScript half: the cache opens on what the trampoline read, and on return hands it the
   * dirty list (also after a throw: what the hook wrote before it is written back, as `end` does).
   */
  private wrap(fn: (arg: number) => void, i32: Int32Array): (arg: number) => void {
    const host = this.host;
    const step = this.step;
    return (arg: number): void => {
      step.settle();
      const rc = host.cache();
      if (rc !== undefined) rc.beginLoaded(i32[F.loaded >> 2] === 1);
      try {
        fn(arg);
      } catch (e) {
        host.failed(e);
      } finally {
        if (rc !== undefined) i32[F.ndirty >> 2] = rc.handOff();
      }
    };
  }

  /** The PC's cells from now on (undefined: through Unicorn's register API), for every interrupt hook. */
  keepPcAt(cells: PcCells | undefined): void {
    this.pcCells = cells;
    for (const t of this.traps.values()) this.pointPc(t);
  }

  private pointPc(t: NativeTrap): void {
    const c = t.kind === 'intr' ? this.pcCells : undefined;
    t.view.setBigUint64(F.pcCell, c?.pc ?? 0n, true);
    t.view.setBigUint64(F.npcCell, c?.npc ?? 0n, true);
    t.i32[F.pcReg >> 2] = c?.reg ?? -1;
    t.i32[F.pcBytes >> 2] = c?.bytes ?? 8;
  }

  /** The cached set changed (Engine.cacheTrapRegisters, never inside a hook): re-point every struct. */
  cacheChanged(): void {
    const rc = this.host.cache();
    for (const t of this.traps.values()) this.point(t, rc);
  }

  private point(t: NativeTrap, rc: TrapRegisterCache | undefined): void {
    const at = rc?.layout;
    t.i32[F.n >> 2] = at?.n ?? 0;
    t.view.setBigUint64(F.ids, BigInt(at?.idsAt ?? 0), true);
    t.view.setBigUint64(F.ptrs, BigInt(at?.ptrsAt ?? 0), true);
    t.view.setBigUint64(F.dirtyIds, BigInt(at?.dirtyIdsAt ?? 0), true);
    t.view.setBigUint64(F.dirtyPtrs, BigInt(at?.dirtyPtrsAt ?? 0), true);
  }

  /** After a run: a write-back that failed in C is an engine error (the ids are the cache's own). */
  checkWrites(): void {
    for (const t of this.traps.values()) {
      const err = t.i32[F.err >> 2]!;
      if (err === 0) continue;
      t.i32[F.err >> 2] = 0;
      throw new UniprobeError('UNICORN', `uc_reg_write_batch after a trap hook failed: ${load().uc_strerror(err)}`);
    }
  }

  /** Is `handle` one of these hooks? */
  has(handle: bigint): boolean {
    return this.traps.has(handle);
  }

  /**
   * Take a hook out (uc_hook_del already done by the engine, or the engine is closing). Not from
   * inside the hook itself: its trampoline still reads the struct after the JavaScript returns.
   * (The arch layers install their trap hooks once per engine; they go when the engine closes.)
   */
  remove(handle: bigint): void {
    const t = this.traps.get(handle);
    if (!t) return;
    this.traps.delete(handle);
    this.release(t);
  }

  /** The engine closed (its hooks are gone): give back the step block. */
  free(): void {
    giveBlock(this.step.block);
  }

  private release(t: NativeTrap): void {
    koffi.unregister(t.callback as never);
    giveBlock(t.block);
  }
}
