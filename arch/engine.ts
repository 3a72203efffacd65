/**
 * An engine for an arch: the Unicorn architecture and mode, and the arch's address aliasing
 * (`Arch.addressAlias`) applied to every mapping by the engine itself. Every engine that runs
 * guest code for a target is opened here, so no caller can forget the alias.
 */
import { Engine } from '../src/emu/unicorn.js';
import type { Arch } from './types.js';

export function openEngine(arch: Arch, opts: { translationBufferBytes?: number } = {}): Engine {
  return new Engine(arch.ucArch, arch.ucMode, { addressAlias: arch.addressAlias?.bind(arch), fixedInsnBytes: arch.fixedInsnBytes, cpuOutsideContext: arch.cpuOutsideContext, readPc: (e) => arch.getPc(e), ...opts });
}
