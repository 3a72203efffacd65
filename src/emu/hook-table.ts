/**
 * An engine's hooks by the ids the engine hands out: Unicorn's hook handle and the koffi callback
 * behind each (a JavaScript hook), or a native trampoline's (trap-hook.ts). Deleting one takes it
 * out of Unicorn and releases its callback; the engine deletes them all when it closes or resets.
 */
import koffi from 'koffi';
import { big, check, load } from './ffi.js';
import type { NativeTrapHooks } from './trap-hook.js';

interface HookRecord {
  handle: bigint;
  callback: unknown; // the koffi registered callback, unregistered on delete (undefined: native trap hook)
}

export class HookTable {
  private readonly hooks = new Map<number, HookRecord>();
  private nextId = 1;

  /** `traps`: the engine's native trampolines, which own the native hooks' structs. */
  constructor(private readonly traps: NativeTrapHooks | undefined) {}

  /** uc_hook_add with `fn` registered as a koffi callback of type `proto`. */
  add(uc: bigint, type: number, proto: unknown, fn: (...a: never[]) => unknown, begin: bigint, end: bigint, extra: unknown[]): number {
    const cb = koffi.register(fn as never, proto as never);
    const out: unknown[] = [null];
    const err = load().uc_hook_add(uc, out, type, cb, null, begin, end, ...extra);
    if (err !== 0) {
      koffi.unregister(cb);
      check('uc_hook_add', err);
    }
    return this.record(big(out[0] as bigint), cb);
  }

  /** A trap hook through the native trampoline (already added to Unicorn by NativeTrapHooks). */
  addNative(handle: bigint): number {
    return this.record(handle, undefined);
  }

  private record(handle: bigint, callback: unknown): number {
    const id = this.nextId++;
    this.hooks.set(id, { handle, callback });
    return id;
  }

  /** `uc` = 0n: the engine is closing, Unicorn drops its hooks itself. */
  delete(uc: bigint, id: number): void {
    const rec = this.hooks.get(id);
    if (!rec) return;
    this.hooks.delete(id);
    if (uc !== 0n) load().uc_hook_del(uc, rec.handle);
    if (rec.callback === undefined) this.traps?.remove(rec.handle);
    else koffi.unregister(rec.callback as never);
  }

  deleteAll(uc: bigint): void {
    for (const [id] of this.hooks) this.delete(uc, id);
  }

  get size(): number {
    return this.hooks.size;
  }
}
