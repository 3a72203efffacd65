/**
 * The CPU context as a host-side blob (uc_context_save / uc_context_restore): what Unicorn's
 * context holds is the engine's business; callers keep and compare opaque bytes. And what an
 * Engine.reset returns to: that blob, with the CPU state an arch keeps outside it.
 */
import koffi from 'koffi';
import { UniprobeError } from '../errors.js';
import { big, check, load } from './ffi.js';
import type { Engine } from './unicorn.js';

/** CPU state kept outside Unicorn's context, saved and put back by its arch (Arch.cpuOutsideContext). */
export interface CpuOutsideContext {
  save(e: Engine): Uint8Array | undefined;
  restore(e: Engine, saved: Uint8Array): void;
}

/** What Engine.reset gives an engine back: its state before the first run (Engine.resetPoint). */
export interface ResetPoint {
  readonly context: Uint8Array;
  readonly cpu: Uint8Array | undefined;
}

/** Run `fn` with a fresh uc_context of engine `h`, freed afterwards. */
function withContext<T>(h: bigint, fn: (ctx: bigint, size: number) => T): T {
  const l = load();
  const out: unknown[] = [null];
  check('uc_context_alloc', l.uc_context_alloc(h, out));
  const ctx = big(out[0] as bigint);
  try {
    return fn(ctx, Number(l.uc_context_size(h)));
  } finally {
    l.uc_free(ctx);
  }
}

export function contextSave(h: bigint): Uint8Array {
  return withContext(h, (ctx, size) => {
    check('uc_context_save', load().uc_context_save(h, ctx));
    return new Uint8Array(koffi.view(ctx as never, size) as ArrayBuffer).slice();
  });
}

export function contextRestore(h: bigint, blob: Uint8Array): void {
  withContext(h, (ctx, size) => {
    if (blob.length !== size) throw new UniprobeError('UNICORN', `context blob size ${blob.length} != ${size}`);
    new Uint8Array(koffi.view(ctx as never, size) as ArrayBuffer).set(blob);
    check('uc_context_restore', load().uc_context_restore(h, ctx));
  });
}
