/**
 * Shared set-up for the uprobes tests: a machine with the uprobes core, fixture programs, file
 * offsets of their symbols, and an independent ground truth (a one-address UC_HOOK_CODE count on
 * an unprobed run of the same program).
 */
import { realpathSync } from 'node:fs';
import { Machine, type MachineOptions } from '../../src/kernel/machine.js';
import { readElfFileSync } from '../../src/elf/index.js';
import { Uprobes } from '../../src/uprobes/index.js';
import type { Inode } from '../../src/mm/inode.js';
import { manifest, repoRoot, supported, type ManifestEntry } from '../helpers.js';
import type { Target } from '../../arch/types.js';
import { countExecutions } from '../arch/executions.js';

export const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as Target[]).filter((t) => supported.has(t));

export function entry(target: Target, name: string): ManifestEntry {
  const e = manifest.find((m) => m.target === target && m.name === name);
  if (!e) throw new Error(`no fixture ${name} for ${target}`);
  return e;
}

export const fixtureFile = (e: ManifestEntry): string => realpathSync(`${repoRoot}/fixtures/${e.path}`);

/** The probe address of a function: its (local) entry, where direct calls land. */
export function symbolVaddr(path: string, name: string): bigint {
  const elf = readElfFileSync(path);
  const s = elf.symbolByName(name);
  if (!s) throw new Error(`${path}: no symbol ${name}`);
  return s.localEntry;
}

/** File offset of a virtual address of the program (what uprobe_events' PATH:OFFSET means). */
export function fileOffset(path: string, vaddr: bigint): bigint {
  const off = readElfFileSync(path).vaddrToOffset(vaddr);
  if (off === undefined) throw new Error(`${path}: 0x${vaddr.toString(16)} is not in a PT_LOAD`);
  return off;
}

/** A fixture and one of its functions: the manifest entry, the file, the probe address and offset. */
export function site(target: Target, program: string, symbol: string): { e: ManifestEntry; path: string; vaddr: bigint; off: bigint } {
  const e = entry(target, program);
  const path = fixtureFile(e);
  const vaddr = symbolVaddr(path, symbol);
  return { e, path, vaddr, off: fileOffset(path, vaddr) };
}

export interface UprobeMachine {
  m: Machine;
  up: Uprobes;
  out: string[];
  reports: string[];
  inode(path: string): Inode;
  spawn(e: ManifestEntry, args?: string[]): number;
  close(): void;
}

export function uprobeMachine(target: Target, opts: Partial<MachineOptions> = {}): UprobeMachine {
  const out: string[] = [];
  const reports: string[] = [];
  const dec = new TextDecoder();
  const m = new Machine({
    target,
    cpus: 1,
    seed: 1,
    stdout: (s) => out.push(dec.decode(s)),
    report: (l) => reports.push(l),
    ...opts,
  });
  const up = new Uprobes(m);
  return {
    m,
    up,
    out,
    reports,
    inode: (path) => m.inodeFor(realpathSync(path)),
    spawn: (e, args) => m.spawn(fixtureFile(e), [e.path, ...(args ?? e.args)]).pid,
    close: () => m.close(),
  };
}

/**
 * How many times the instruction at `vaddr` runs in an unprobed run of the program: Unicorn's
 * own one-address code hook, which counts as QEMU's breakpoints do, less sparc64's window-trap
 * retries (test/arch/executions.ts).
 */
export async function groundTruth(target: Target, e: ManifestEntry, vaddrs: bigint[], args?: string[]): Promise<Map<bigint, number>> {
  const m = new Machine({ target, stdout: () => {}, report: () => {} });
  try {
    const p = m.spawn(fixtureFile(e), [e.path, ...(args ?? e.args)]);
    const counts = countExecutions(p.mm.engine, vaddrs);
    await m.runAsync();
    return counts;
  } finally {
    m.close();
  }
}
