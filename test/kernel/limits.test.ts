/**
 * The limits' pieces on their own: Machine option validation (UniprobeError USAGE instead of raw
 * RangeErrors), a closed machine refusing everything, the descriptor table's slot allocation
 * (alloc_fd's lowest free slot, RLIMIT_NOFILE), the emulator region count, the memory charge and
 * the size parser behind --max-memory.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Machine, type MachineOptions } from '../../src/kernel/machine.js';
import { UniprobeError } from '../../src/errors.js';
import { FdTable } from '../../src/kernel/fdtable.js';
import { DEFAULT_LIMITS, parseSize } from '../../src/kernel/limits.js';
import { MAX_ENGINE_REGIONS, RegionMap } from '../../src/mm/regions.js';
import { MemCharge } from '../../src/mm/charge.js';
import { HostMemory } from '../../src/emu/unicorn.js';
import type { OpenFile } from '../../src/kernel/task.js';
import { repoRoot } from '../helpers.js';
import { sparcRlimitResource } from '../../arch/sparc/resource.js';

const FIB = join(repoRoot, 'fixtures', 'x86_64', 'fib-nolibc');

function usageError(opts: Partial<MachineOptions>): UniprobeError {
  try {
    new Machine({ target: 'x86_64', ...opts }).close();
  } catch (e) {
    return e as UniprobeError;
  }
  throw new Error(`accepted ${JSON.stringify(opts)}`);
}

describe('Machine options', () => {
  it.each<[string, Partial<MachineOptions>]>([
    ['quantum 0', { quantum: 0 }],
    ['quantum NaN', { quantum: NaN }],
    ['loneSlice 0', { loneSlice: 0 }],
    ['loneSlice 2.5', { loneSlice: 2.5 }],
    ['loneSlice 2^40', { loneSlice: 2 ** 40 }],
    ['seed NaN', { seed: NaN }],
    ['seed 1.5', { seed: 1.5 }],
    ['maxInsns -1', { maxInsns: -1 }],
    ['maxMemory 1 KiB', { maxMemory: 1024 }],
    ['maxMemory 1 TiB', { maxMemory: 2 ** 40 }],
    ['maxTasks 0', { maxTasks: 0 }],
    ['maxTasks past the kernel stacks', { maxTasks: 257 }],
    ['maxFiles 2', { maxFiles: 2 }],
    ['maxFiles Infinity', { maxFiles: Infinity }],
  ])('%s is a USAGE UniprobeError', (_what, opts) => {
    const e = usageError(opts);
    expect(e).toBeInstanceOf(UniprobeError);
    expect(e.code).toBe('USAGE');
    expect(e.message).toMatch(/must be an integer from/);
  });

  it('limits default to 1 GiB, 128 tasks, 1024 descriptors and are reported', () => {
    const m = new Machine({ target: 'x86_64' });
    expect(m.limits).toEqual({ maxMemory: 1 << 30, maxTasks: 128, maxFiles: 1024 });
    expect(m.limits).toEqual(DEFAULT_LIMITS);
    m.close();
  });

  it('a closed machine refuses spawn, run and kernel calls', async () => {
    const m = new Machine({ target: 'x86_64' });
    m.close();
    for (const f of [() => m.spawn(FIB), () => m.run()]) {
      expect(f).toThrow(UniprobeError);
      expect(f).toThrow(/machine is closed/);
    }
    await expect(m.runAsync()).rejects.toThrow(/machine is closed/);
    await expect(m.callKernelFunction('ksys_write')).rejects.toThrow(/machine is closed/);
  });
});

describe('FdTable', () => {
  const f: OpenFile = { kind: 'stdio', hostFd: 1 };

  it('gives the lowest free descriptor ≥ min, and -1 at the limit', () => {
    const t = new FdTable(70);
    for (let i = 0; i < 70; i++) expect(t.install(f)).toBe(i);
    expect(t.install(f)).toBe(-1);
    t.delete(33);
    t.delete(64);
    expect(t.install(f, 40)).toBe(64);
    expect(t.install(f)).toBe(33);
    expect(t.install(f)).toBe(-1);
    t.delete(5);
    expect(t.install(f, 6)).toBe(-1); // nothing free at 6 or above
    expect(t.install(f, 0)).toBe(5);
  });

  it('set outside 0..limit-1 throws; clear frees everything', () => {
    const t = new FdTable(8);
    expect(() => t.set(8, f)).toThrow(RangeError);
    t.set(7, f);
    expect(t.install(f, 7)).toBe(-1);
    t.clear();
    expect(t.install(f, 7)).toBe(7);
  });

  it('finds free slots across full words and full summary words of a 2^20 table', () => {
    const t = new FdTable(1 << 20);
    const top = (1 << 20) - 1;
    for (let i = 0; i <= top; i++) t.set(i, f);
    expect(t.install(f)).toBe(-1);
    // Free slots at a word edge, inside a summary word, and at the very top.
    for (const fd of [top, 32 * 32 * 5 + 7, 31, 32]) {
      t.delete(fd);
      t.set(0, f); // set keeps the next_fd hint; delete(0) below moves it back to 0
      t.delete(0);
      t.set(0, f);
    }
    expect([t.install(f), t.install(f), t.install(f), t.install(f), t.install(f)]).toEqual([31, 32, 32 * 32 * 5 + 7, top, -1]);
    t.delete(100);
    expect(t.install(f, 101)).toBe(-1);
    expect(t.install(f, 100)).toBe(100);
  });
});

describe('RegionMap', () => {
  it('counts regions as uc_mem_unmap splits them', () => {
    const r = new RegionMap();
    r.add(0x1000n, 0x9000n);
    r.add(0x10000n, 0x11000n);
    expect(r.count).toBe(2);
    r.remove(0x3000n, 0x4000n); // a hole: one region becomes two
    expect(r.count).toBe(3);
    r.remove(0x0n, 0x20000n);
    expect(r.count).toBe(0);
    expect(r.hasRoom(MAX_ENGINE_REGIONS)).toBe(true);
    expect(r.hasRoom(MAX_ENGINE_REGIONS + 1)).toBe(false);
  });
});

describe('memory charge and sizes', () => {
  it('refuses past the limit unless forced', () => {
    const c = new MemCharge(100);
    expect(c.tryCharge(60)).toBe(true);
    expect(c.tryCharge(60)).toBe(false);
    expect(c.failures).toBe(1);
    expect(c.tryCharge(60, true)).toBe(true);
    expect(c.peak).toBe(120);
    c.uncharge(120);
    expect(c.used).toBe(0);
  });

  it('HostMemory refuses sizes past 4 GiB before calling mmap', () => {
    expect(() => HostMemory.alloc(8 * 2 ** 30)).toThrow(/refused/);
  });

  it.each<[string, number | undefined]>([
    ['64M', 64 << 20],
    ['1G', 1 << 30],
    ['512k', 512 << 10],
    ['4096', 4096],
    ['2GiB', 2 * 2 ** 30],
    ['1.5G', undefined],
    ['-1', undefined],
    ['lots', undefined],
  ])('parseSize(%s)', (text, n) => {
    expect(parseSize(text)).toBe(n);
  });
});

describe('rlimit resource numbers', () => {
  it('sparc swaps RLIMIT_NOFILE (6 there) and RLIMIT_NPROC (7 there); others keep their number', () => {
    // arch/sparc/include/uapi/asm/resource.h against include/uapi/asm-generic/resource.h.
    expect([0, 3, 6, 7, 9].map(sparcRlimitResource)).toEqual([0, 3, 7, 6, 9]);
  });
});
