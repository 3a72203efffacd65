/**
 * The one Capstone instance (`@alexaltea/capstone-js`, an emscripten build with a 3.3 MB wasm)
 * every back-end shares: x86's decoder (validity and length) and the fixed-width families'
 * listings.
 *
 * Its factory is asynchronous (it instantiates WebAssembly) and costs a large part of a CLI start,
 * so nothing loads it at import time except `arch/decoders-ready.ts`, which the modules that
 * decode instructions (kprobes, uprobes, placement) import: a `uniprobe run` without probes, or
 * `--help`, never loads it.
 */
import { createRequire } from 'node:module';

/** What the back-ends use of the emscripten module: the Capstone class and its constants. */
export interface CapstoneModule {
  Capstone: new (arch: number, mode: number) => unknown;
  [k: string]: unknown;
}

let loading: Promise<CapstoneModule> | undefined;
let loaded: CapstoneModule | undefined;

/** Load Capstone once (idempotent); rejects only if the package is missing or broken. */
export function loadCapstone(): Promise<CapstoneModule> {
  loading ??= (async () => {
    const require = createRequire(import.meta.url);
    const factory = require('@alexaltea/capstone-js') as () => Promise<CapstoneModule>;
    return (loaded = await factory());
  })();
  return loading;
}

/** The module once loadCapstone() has resolved, else undefined. */
export function capstoneIfLoaded(): CapstoneModule | undefined {
  return loaded;
}
