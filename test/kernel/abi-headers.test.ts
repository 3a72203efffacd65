/**
 * Each target's ABI tables against the kernel's own headers for that target (Debian's
 * linux-libc-dev-<arch>-cross): struct stat / stat64 (arch/<family>/stat.ts) laid out from the
 * header with C's rules and the target's type sizes (its psABI), field by field; the open(2) flag
 * bits (arch/<family>/fcntl.ts) from asm/fcntl.h over asm-generic/fcntl.h; and the encoder's
 * overflow rules from fs/stat.c.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kernelHeaders, layout, numericDefines, preprocess, typedefs } from './kernel-headers.js';
import { GENERIC_OPEN_FLAGS, type OpenFlagBits } from '../../src/kernel/abi/open-flags.js';
import { PPC_OPEN_FLAGS } from '../../arch/ppc/fcntl.js';
import { SPARC_OPEN_FLAGS } from '../../arch/sparc/fcntl.js';
import { skipWithout } from '../helpers.js';
import { encodeStat, encodeStatx, type StatField, type StatLayout } from '../../src/kernel/abi/stat-layout.js';
import { STAT64_I386, STAT_I386, STAT_X86_64 } from '../../arch/x86/stat.js';
import { STAT64_PPC32, STAT_PPC32, STAT_PPC64 } from '../../arch/ppc/stat.js';
import { STAT64_SPARC64, STAT_SPARC64 } from '../../arch/sparc/stat.js';
import { E } from '../../src/kernel/errno.js';
import type { Stat } from '../../src/vfs/stat.js';

/** psABI sizes and alignments of C's base types; the kernel's typedefs come from its own headers. */
function baseTypes(wordSize: 4 | 8, longLongAlign: 4 | 8): Record<string, [number, number]> {
  const w: [number, number] = [wordSize, wordSize];
  const ll: [number, number] = [8, longLongAlign];
  return {
    'unsigned long': w,
    long: w,
    'unsigned long long': ll,
    'long long': ll,
    'unsigned int': [4, 4],
    int: [4, 4],
    short: [2, 2],
    'unsigned short': [2, 2],
    'unsigned char': [1, 1],
  };
}

const FIELD: Record<string, StatField> = {
  st_dev: 'dev',
  st_ino: 'ino',
  __st_ino: 'ino_lo',
  st_mode: 'mode',
  st_nlink: 'nlink',
  st_uid: 'uid',
  st_gid: 'gid',
  st_rdev: 'rdev',
  st_size: 'size',
  st_blksize: 'blksize',
  st_blocks: 'blocks',
  st_atime: 'atime',
  st_atime_nsec: 'atime_nsec',
  st_mtime: 'mtime',
  st_mtime_nsec: 'mtime_nsec',
  st_ctime: 'ctime',
  st_ctime_nsec: 'ctime_nsec',
};

const CASES: Array<{
  what: string;
  pkg: 'i386' | 'amd64' | 'powerpc' | 'ppc64' | 'sparc64';
  triplet: string;
  defines: string[];
  struct: string;
  types: Record<string, [number, number]>;
  /** The header that defines the arch's posix types (before asm-generic/posix_types.h). */
  posix: string;
  table: StatLayout;
}> = [
  { what: 'x86_64 stat', pkg: 'amd64', triplet: 'x86_64-linux-gnu', defines: ['__x86_64__'], struct: 'stat', types: baseTypes(8, 8), posix: 'asm/posix_types_64.h', table: STAT_X86_64 },
  { what: 'i386 stat', pkg: 'i386', triplet: 'i686-linux-gnu', defines: ['__i386__'], struct: 'stat', types: baseTypes(4, 4), posix: 'asm/posix_types_32.h', table: STAT_I386 },
  { what: 'i386 stat64', pkg: 'i386', triplet: 'i686-linux-gnu', defines: ['__i386__'], struct: 'stat64', types: baseTypes(4, 4), posix: 'asm/posix_types_32.h', table: STAT64_I386 },
  { what: 'ppc32 stat', pkg: 'powerpc', triplet: 'powerpc-linux-gnu', defines: ['__powerpc__'], struct: 'stat', types: baseTypes(4, 8), posix: 'asm/posix_types.h', table: STAT_PPC32 },
  { what: 'ppc32 stat64', pkg: 'powerpc', triplet: 'powerpc-linux-gnu', defines: ['__powerpc__'], struct: 'stat64', types: baseTypes(4, 8), posix: 'asm/posix_types.h', table: STAT64_PPC32 },
  { what: 'ppc64 stat', pkg: 'ppc64', triplet: 'powerpc64-linux-gnu', defines: ['__powerpc__', '__powerpc64__'], struct: 'stat', types: baseTypes(8, 8), posix: 'asm/posix_types.h', table: STAT_PPC64 },
  { what: 'sparc64 stat', pkg: 'sparc64', triplet: 'sparc64-linux-gnu', defines: ['__sparc__', '__arch64__'], struct: 'stat', types: baseTypes(8, 8), posix: 'asm/posix_types.h', table: STAT_SPARC64 },
  { what: 'sparc64 stat64', pkg: 'sparc64', triplet: 'sparc64-linux-gnu', defines: ['__sparc__', '__arch64__'], struct: 'stat64', types: baseTypes(8, 8), posix: 'asm/posix_types.h', table: STAT64_SPARC64 },
];

describe('struct stat layouts agree with the kernel headers', () => {
  it.each(CASES)('$what', (c) => {
    const inc = kernelHeaders(c.pkg, c.triplet);
    if (skipWithout(`linux-libc-dev-${c.pkg}-cross (apt-get download)`, inc !== undefined)) return;
    const defs = new Set(c.defines);
    const read = (f: string): string => preprocess(readFileSync(join(inc!, f), 'utf8'), defs);
    const types = typedefs([read(c.posix), read('asm-generic/posix_types.h')], c.types);
    const l = layout(read('asm/stat.h'), c.struct, types);
    expect(c.table.size).toBe(l.size);
    const fromHeader = l.fields.filter((f) => FIELD[f.name]).map((f) => [FIELD[f.name], f.offset, f.size]);
    expect([...c.table.fields].map((f) => [...f]).sort((a, b) => (a[1] as number) - (b[1] as number))).toEqual(fromHeader);
  });

  it('statx is 256 bytes in the generic header, with the fields where the encoder writes them', () => {
    const inc = kernelHeaders('amd64', 'x86_64-linux-gnu');
    if (skipWithout('linux-libc-dev-amd64-cross (apt-get download)', inc !== undefined)) return;
    const text = preprocess(readFileSync(join(inc!, 'linux', 'stat.h'), 'utf8'), new Set());
    const types = { ...baseTypes(8, 8), __u64: [8, 8], __s64: [8, 8], __u32: [4, 4], __s32: [4, 4], __u16: [2, 2], 'struct statx_timestamp': [16, 8] } as Record<string, [number, number]>;
    const l = layout(text, 'statx', types);
    expect(l.size).toBe(256);
    const at = (n: string): number => l.fields.find((f) => f.name === n)!.offset;
    const st: Stat = { dev: 0x801n, ino: 77n, mode: 0o100644, nlink: 3, uid: 1000, gid: 100, rdev: 0n, size: 5n, blksize: 4096, blocks: 8n, atimeNs: 1_500_000_000n, mtimeNs: 2_000_000_007n, ctimeNs: 3n };
    const b = encodeStatx(st, 25n, true);
    const v = new DataView(b.buffer);
    expect(v.getUint32(at('stx_nlink'), true)).toBe(3);
    expect(v.getUint16(at('stx_mode'), true)).toBe(0o100644);
    expect(v.getBigUint64(at('stx_ino'), true)).toBe(77n);
    expect(v.getBigInt64(at('stx_mtime'), true)).toBe(2n);
    expect(v.getUint32(at('stx_mtime') + 8, true)).toBe(7);
    expect(v.getUint32(at('stx_dev_major'), true)).toBe(8);
    expect(v.getUint32(at('stx_dev_minor'), true)).toBe(1);
    expect(v.getBigUint64(at('stx_mnt_id'), true)).toBe(25n);
  });
});

describe('open(2) flag bits agree with the kernel headers', () => {
  it.each([
    { what: 'x86', pkg: 'amd64' as const, triplet: 'x86_64-linux-gnu', defines: ['__x86_64__'], table: GENERIC_OPEN_FLAGS },
    { what: 'powerpc', pkg: 'powerpc' as const, triplet: 'powerpc-linux-gnu', defines: ['__powerpc__'], table: PPC_OPEN_FLAGS },
    { what: 'sparc64', pkg: 'sparc64' as const, triplet: 'sparc64-linux-gnu', defines: ['__sparc__', '__arch64__'], table: SPARC_OPEN_FLAGS },
  ])('$what', (c) => {
    const inc = kernelHeaders(c.pkg, c.triplet);
    if (skipWithout(`linux-libc-dev-${c.pkg}-cross (apt-get download)`, inc !== undefined)) return;
    const defs = new Set(c.defines);
    const arch = preprocess(readFileSync(join(inc!, 'asm', 'fcntl.h'), 'utf8'), defs);
    const generic = preprocess(readFileSync(join(inc!, 'asm-generic', 'fcntl.h'), 'utf8'), defs);
    const values = numericDefines(`${arch}\n${generic}`);
    for (const [name, bit] of Object.entries(c.table) as Array<[keyof OpenFlagBits, number]>) {
      expect([name, bit]).toEqual([name, values.get(name)]);
    }
  });
});

describe('copying a kstat out (fs/stat.c)', () => {
  const st: Stat = { dev: 0x803n, ino: 5n, mode: 0o100644, nlink: 1, uid: 0, gid: 0, rdev: 0n, size: 10n, blksize: 4096, blocks: 8n, atimeNs: 0n, mtimeNs: 0n, ctimeNs: 0n };
  it('a 32-bit struct stat gives EOVERFLOW for an inode number, size or device that does not fit', () => {
    expect(encodeStat({ ...st, ino: 1n << 32n }, STAT_I386, true)).toBe(-E.EOVERFLOW);
    expect(encodeStat({ ...st, size: 1n << 31n }, STAT_I386, true)).toBe(-E.EOVERFLOW); // MAX_NON_LFS
    expect(encodeStat({ ...st, dev: 0x10100n }, STAT_I386, true)).toBe(-E.EOVERFLOW); // minor 256: not old_valid_dev
    expect(encodeStat({ ...st, size: 1n << 31n }, STAT64_I386, true)).toBeInstanceOf(Uint8Array);
  });
  it('stat64 on i386 keeps the low 32 bits in __st_ino and the whole number at the end', () => {
    const b = encodeStat({ ...st, ino: 0x1_0000_0005n }, STAT64_I386, true) as Uint8Array;
    const v = new DataView(b.buffer);
    expect(v.getUint32(12, true)).toBe(5);
    expect(v.getBigUint64(88, true)).toBe(0x1_0000_0005n);
  });
  it('a 16-bit uid that does not fit becomes the overflow id 65534', () => {
    const b = encodeStat({ ...st, uid: 100000 }, STAT_I386, true) as Uint8Array;
    expect(new DataView(b.buffer).getUint16(12, true)).toBe(65534);
  });
  it('big-endian targets write big-endian fields', () => {
    const b = encodeStat(st, STAT64_SPARC64, false) as Uint8Array;
    expect(new DataView(b.buffer).getUint32(24, false)).toBe(0o100644);
  });
});
