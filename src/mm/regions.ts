/**
 * The emulator's memory regions of one engine, counted.
 *
 * Guest pages are mapped into Unicorn by pointer, one region per run of contiguous host memory
 * (Mm.mapPages), and unmapping a page inside a region splits it. Unicorn (QEMU's phys map)
 * aborts the whole host process once an engine has about 4096 sections (measured on 2.1.1:
 * `phys_section_add: Assertion map->sections_nb < TARGET_PAGE_SIZE` after ~4000 single-page
 * mmaps, or after writes to every other page of a forked 16 MiB mapping), and each change costs
 * time linear in the count (6 ms per mmap at 4000). So the mm keeps the count here and refuses,
 * the way Linux refuses past vm.max_map_count (ENOMEM), before an operation could pass
 * MAX_ENGINE_REGIONS.
 */
export const MAX_ENGINE_REGIONS = 2048;

/**
 * Regions past which a copy-on-write fault collapses its anonymous VMA into one region (Mm's
 * collapse) rather than adding a one-page region: measured on the fork-write hostile guest
 * (16 MiB written after fork): 22 s when collapsing only at MAX_ENGINE_REGIONS, 0.4 s at 256.
 */
export const COLLAPSE_AT = 256;

export class RegionMap {
  /** Disjoint [start, end) ranges sorted by start. */
  private readonly starts: bigint[] = [];
  private readonly ends: bigint[] = [];

  get count(): number {
    return this.starts.length;
  }

  /** Room for `extra` more regions under MAX_ENGINE_REGIONS? */
  hasRoom(extra: number): boolean {
    return this.starts.length + extra <= MAX_ENGINE_REGIONS;
  }

  /** Index of the first region whose end is past `addr`. */
  private firstEndingAfter(addr: bigint): number {
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ends[mid]! <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** A new region (uc_mem_map_ptr of a range nothing else maps). */
  add(start: bigint, end: bigint): void {
    const i = this.firstEndingAfter(start);
    this.starts.splice(i, 0, start);
    this.ends.splice(i, 0, end);
  }

  /** uc_mem_unmap of [start, end): whole regions go, regions cut at an edge keep their rest. */
  remove(start: bigint, end: bigint): void {
    const i = this.firstEndingAfter(start);
    let j = i;
    while (j < this.starts.length && this.starts[j]! < end) j++;
    if (j === i) return;
    const keepS: bigint[] = [];
    const keepE: bigint[] = [];
    if (this.starts[i]! < start) {
      keepS.push(this.starts[i]!);
      keepE.push(start);
    }
    if (this.ends[j - 1]! > end) {
      keepS.push(end);
      keepE.push(this.ends[j - 1]!);
    }
    this.starts.splice(i, j - i, ...keepS);
    this.ends.splice(i, j - i, ...keepE);
  }
}
