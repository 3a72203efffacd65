/**
 * The arch registry: the one place that maps a target name to its back-end.
 * Generic code calls `archFor(target)` and then only the Arch interface.
 */
import type { Arch, Target } from './types.js';
import { x86_64 } from './x86/x86_64.js';
import { i386 } from './x86/i386.js';
import { ppc32 } from './ppc/ppc32.js';
import { ppc64 } from './ppc/ppc64.js';
import { sparc64 } from './sparc/sparc64.js';
import type { ProbeArch, UprobeArch } from './probes.js';
import { x86ProbeArch } from './x86/kprobes/index.js';
import { ppcProbeArch } from './ppc/kprobes/index.js';
import { sparcProbeArch } from './sparc/kprobes/index.js';
import { x86UprobeArch } from './x86/uprobes/index.js';
import { ppcUprobeArch } from './ppc/uprobes/index.js';
import { sparcUprobeArch } from './sparc/uprobes/index.js';

const registry = new Map<Target, Arch>([
  ['x86_64', x86_64],
  ['i386', i386],
  ['ppc32', ppc32],
  ['ppc64', ppc64],
  ['sparc64', sparc64],
]);

export function archFor(target: Target): Arch | undefined {
  return registry.get(target);
}

const probeFactories = { x86: x86ProbeArch, ppc: ppcProbeArch, sparc: sparcProbeArch } as const;
const probeArchs = new Map<Arch, ProbeArch>();

/** The instruction-level probe hooks (arch/probes.ts) of `arch`'s family. */
export function probeArchFor(arch: Arch): ProbeArch {
  let p = probeArchs.get(arch);
  if (!p) probeArchs.set(arch, (p = probeFactories[arch.family](arch)));
  return p;
}

const uprobeFactories = { x86: x86UprobeArch, ppc: ppcUprobeArch, sparc: sparcUprobeArch } as const;
const uprobeArchs = new Map<Arch, UprobeArch>();

/** The uprobe hooks (arch/probes.ts: UprobeArch) of `arch`'s family, one instance per arch. */
export function uprobeArchFor(arch: Arch): UprobeArch {
  let u = uprobeArchs.get(arch);
  if (!u) uprobeArchs.set(arch, (u = uprobeFactories[arch.family](arch)));
  return u;
}

/**
 * Load what the back-ends need to list instructions (Capstone for the fixed-width families, whose
 * decode falls back to `.long 0x…` until it is loaded). Tools that print listings await it once.
 */
export { loadDisassembler as loadProbeDisassemblers } from './ppc/kprobes/disasm.js';

export function supportedTargets(): Target[] {
  return [...registry.keys()];
}

export type { Arch, Target } from './types.js';
