/**
 * The engine's mapped regions as Unicorn lists them (uc_mem_regions): what Engine.reset unmaps.
 * Unicorn allocates the array; it is copied out and freed here.
 */
import koffi from 'koffi';
import { big, check, load } from './ffi.js';

/** One region: inclusive bounds, as uc_mem_region holds them. */
export interface MappedRegion {
  begin: bigint;
  end: bigint;
  perms: number;
}

/** struct uc_mem_region: uint64_t begin, uint64_t end, uint32_t perms, padded to 24 bytes. */
const REGION_BYTES = 24;

export function mappedRegions(h: bigint): MappedRegion[] {
  const l = load();
  const out: unknown[] = [null];
  const count = new Uint32Array(1);
  check('uc_mem_regions', l.uc_mem_regions(h, out, count));
  const ptr = big(out[0] as bigint);
  if (count[0] === 0 || ptr === 0n) {
    if (ptr !== 0n) l.uc_free(ptr);
    return [];
  }
  try {
    const bytes = new Uint8Array(koffi.view(ptr as never, count[0]! * REGION_BYTES) as ArrayBuffer);
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const regions: MappedRegion[] = [];
    for (let i = 0; i < count[0]!; i++) {
      const o = i * REGION_BYTES;
      regions.push({ begin: v.getBigUint64(o, true), end: v.getBigUint64(o + 8, true), perms: v.getUint32(o + 16, true) });
    }
    return regions;
  } finally {
    l.uc_free(ptr);
  }
}
