/**
 * Child process of ffi-twice.test.ts: evaluates the engine's FFI modules twice in one process,
 * as a test runner that resets its module registry does (or a program holding two copies of the
 * package), and loads Unicorn and the native trap hooks through each copy. Prints, as JSON, per
 * copy: whether Unicorn loaded, and why the native trap hooks are unavailable (null: available).
 */
const ffiUrl = new URL('../../src/emu/ffi.ts', import.meta.url).href;
const hookUrl = new URL('../../src/emu/trap-hook.ts', import.meta.url).href;
const out: Array<{ unicorn: boolean | string; trapHooksUnavailable: string | null }> = [];
for (const copy of ['a', 'b']) {
  const ffi = (await import(`${ffiUrl}?copy=${copy}`)) as typeof import('../../src/emu/ffi.js');
  let unicorn: boolean | string;
  try {
    unicorn = typeof ffi.load().uc_open === 'function';
  } catch (e) {
    unicorn = (e as Error).message;
  }
  const hooks = (await import(`${hookUrl}?copy=${copy}`)) as typeof import('../../src/emu/trap-hook.js');
  // Loads the trampolines' library (and defines their callback type) on first use.
  const opened = hooks.NativeTrapHooks.open({ cache: () => undefined, failed: () => undefined });
  out.push({ unicorn, trapHooksUnavailable: opened ? null : (hooks.nativeTrapHooksUnavailable() ?? 'unavailable') });
}
console.log(JSON.stringify(out));
