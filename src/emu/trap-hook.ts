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
import { check, load, UNICORN_LIBRARY } from './ffi.js';
import { symbolAddress } from './insn-counter.js';
import { buildNative, nativeSource } from './native-build.js';
import { giveBlock, takeBlock, type TrapRegisterCache } from './regcache.js';
import { UC_HOOK } from './uc-const.js';

/** Byte offsets of struct trap_hook's fields (native/trap-hook.c). */
const F = { readBatch: 0, writeBatch: 8, js: 16, n: 24, ndirty: 28, loaded: 32, err: 36, ids: 40, ptrs: 48, dirtyIds: 56, dirtyPtrs: 64 } as const;

interface TrapHookLib {
  intr: bigint;
  insn: bigint;
  size: number;
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
      readBatch: symbolAddress(UNICORN_LIBRARY, 'uc_reg_read_batch'),
      writeBatch: symbolAddress(UNICORN_LIBRARY, 'uc_reg_write_batch'),
      jsProto: koffi.pointer(koffi.proto('void uniprobe_trap_js(uint32_t arg)')),
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

/** One installed trampoline: its struct, its JavaScript callback and Unicorn's hook handle. */
interface NativeTrap {
  readonly block: { ptr: bigint; bytes: Uint8Array };
  readonly i32: Int32Array;
  readonly view: DataView;
  readonly callback: unknown;
  handle: bigint;
}

/** An engine's native trap hooks (Engine.hookIntr / hookInsn when the library is there). */
export class NativeTrapHooks {
  private readonly traps = new Map<bigint, NativeTrap>();

  private constructor(
    private readonly lib: TrapHookLib,
    private readonly host: TrapHookHost,
  ) {}

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
    const trap: NativeTrap = { block, i32, view, callback, handle: 0n };
    view.setBigUint64(F.readBatch, lib.readBatch, true);
    view.setBigUint64(F.writeBatch, lib.writeBatch, true);
    view.setBigUint64(F.js, BigInt(koffi.address(callback) as bigint), true);
    this.point(trap, this.host.cache());
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
    return (arg: number): void => {
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

  private release(t: NativeTrap): void {
    koffi.unregister(t.callback as never);
    giveBlock(t.block);
  }
}
