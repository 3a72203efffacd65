/**
 * A minimal static ELF64 big-endian executable writer for the arch tests: one PT_LOAD (R+W+X)
 * holding `image` at `base`, no sections. Enough for the engine's exec path; written here so the
 * tests depend only on the ELF format, not on the project's ELF reader or another test's builder.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface MiniElf {
  machine: number; // e_machine: 21 ppc64, 43 sparcv9
  flags?: number; // e_flags (ppc64: 1 = ELFv1, 2 = ELFv2)
  base: bigint; // vaddr of the segment (page aligned)
  image: Uint8Array; // segment contents (file-backed)
  memsz?: number; // >= image.length (the rest is .bss)
  entry: bigint;
  align?: number;
}

const EHDR = 64;
const PHDR = 56;

export function buildElf64BE(e: MiniElf): Uint8Array {
  const align = e.align ?? 0x10000;
  const off = align; // segment contents at file offset `align` (congruent with base modulo align)
  const out = new Uint8Array(off + e.image.length);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2 /* 64-bit */, 2 /* big-endian */, 1, 0]);
  v.setUint16(16, 2); // ET_EXEC
  v.setUint16(18, e.machine);
  v.setUint32(20, 1);
  v.setBigUint64(24, e.entry);
  v.setBigUint64(32, BigInt(EHDR)); // e_phoff
  v.setBigUint64(40, 0n); // e_shoff
  v.setUint32(48, e.flags ?? 0);
  v.setUint16(52, EHDR);
  v.setUint16(54, PHDR);
  v.setUint16(56, 1); // e_phnum
  v.setUint16(58, 64); // e_shentsize
  v.setUint16(60, 0);
  v.setUint16(62, 0);
  const p = EHDR;
  v.setUint32(p, 1); // PT_LOAD
  v.setUint32(p + 4, 7); // R W X
  v.setBigUint64(p + 8, BigInt(off));
  v.setBigUint64(p + 16, e.base);
  v.setBigUint64(p + 24, e.base);
  v.setBigUint64(p + 32, BigInt(e.image.length));
  v.setBigUint64(p + 40, BigInt(Math.max(e.memsz ?? 0, e.image.length)));
  v.setBigUint64(p + 48, BigInt(align));
  out.set(e.image, off);
  return out;
}

/** Write the ELF to a fresh temporary file and return its path. */
export function writeTempElf(name: string, e: MiniElf): string {
  const dir = mkdtempSync(join(tmpdir(), 'uniprobe-arch-'));
  const path = join(dir, name);
  writeFileSync(path, buildElf64BE(e), { mode: 0o755 });
  return path;
}

/** Big-endian instruction words → bytes. */
export function words(...ws: number[]): Uint8Array {
  const b = new Uint8Array(ws.length * 4);
  const v = new DataView(b.buffer);
  ws.forEach((w, i) => v.setUint32(i * 4, w >>> 0));
  return b;
}
