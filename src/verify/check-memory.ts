/**
 * The memory checker: every writable page of every process at exit, word by word where bytes
 * differ; a word holding an XOL slot address where the unprobed run holds a probed instruction's
 * is a note (Linux leaves such values too), anything else a divergence.
 */
import type { ElfFile } from '../elf/index.js';
import { firstByteDiff, type Comparison } from './compare.js';
import { hex } from './types.js';

export function checkMemory(c: Comparison): void {
  const { base, probed } = c;
  let detail: string | undefined;
  let pages = 0;
  let leaks = 0;
  const w = c.plan.wordSize;
  for (const [pid, e] of base.ends) {
    const q = probed.ends.get(pid);
    if (!q || detail) continue;
    pages += e.pages.size;
    if (q.digest === e.digest) continue;
    for (const [addr, bytes] of e.pages) {
      const other = q.pages.get(addr);
      if (!other) {
        detail = `process ${pid}: page ${hex(addr)} not mapped at exit`;
        break;
      }
      for (let at = firstByteDiff(bytes, other); at >= 0 && at < bytes.length; ) {
        const word = at - (at % w);
        if (c.slotAddress(pid, readWord(c, bytes, word), readWord(c, other, word), undefined)) {
          leaks++;
          const next = firstByteDiff(bytes.subarray(word + w), other.subarray(word + w));
          at = next < 0 ? -1 : word + w + next;
          continue;
        }
        const a = addr + BigInt(at);
        detail = `process ${pid}: byte ${hex(a)}${dataSymbol(c.placer.elf, a)} = 0x${other[at]!.toString(16).padStart(2, '0')}, expected 0x${bytes[at]!.toString(16).padStart(2, '0')}`;
        break;
      }
      if (detail) break;
    }
    if (!detail) {
      const extra = [...q.pages.keys()].find((a) => !e.pages.has(a));
      if (extra !== undefined) detail = `process ${pid}: page ${hex(extra)} mapped writable only in the probed run`;
    }
  }
  c.checks.push({ name: 'writable memory at exit', ok: detail === undefined, summary: `${pages} pages`, detail });
  if (leaks > 0) c.notes.push(`${leaks} memory word(s) at exit held an XOL slot address where the unprobed run had a probed instruction's (a register value above, stored by the program)`);
}

function readWord(c: Comparison, bytes: Uint8Array, at: number): bigint {
  let v = 0n;
  const w = c.plan.wordSize;
  for (let k = 0; k < w; k++) {
    const byte = BigInt(bytes[c.plan.littleEndian ? at + w - 1 - k : at + k] ?? 0);
    v = (v << 8n) | byte;
  }
  return v;
}


/** ` (sym+0xoff)` for a data address inside an object symbol of the program, else ''. */
function dataSymbol(elf: ElfFile, a: bigint): string {
  for (const s of elf.symbols) {
    if (s.size > 0n && a >= s.value && a < s.value + s.size && s.name) return ` (${s.name}+0x${(a - s.value).toString(16)})`;
  }
  return '';
}
