/**
 * uprobes_tree: every uprobe, ordered by (inode, offset).
 *
 * Linux keeps an rb-tree, so insert, erase and lookup cost O(log n) and registering 100,000
 * uprobes (perf probe on every line of a big binary, `verify --probes all` on static glibc) costs
 * each probe the same as the first. This is an ordered list of short sorted runs (at most
 * 2 × RUN uprobes each, kept in key order run after run): a change binary-searches the runs, then
 * the run, and moves at most 2 × RUN references — flat per probe in practice from 1 to 10^6, as
 * the rb-tree. (It was one sorted array replaced by a copy on every change: O(n) per insert, so
 * registration was quadratic and, at ~10^4 arrays of 10^4 entries, mostly garbage collection.)
 *
 * Writers (insert, erase) hold uprobes_treelock and change the runs in place. Every access is
 * synchronous JavaScript, so no reader ever sees a change half done. `range` is build_probe_list's
 * lookup for uprobe_mmap (every uprobe of an inode whose offset falls inside a VMA); it returns a
 * fresh array, which its caller may keep across sleeps.
 *
 * `find` (the hit path's find_uprobe) reads an exact index, inode → offset → uprobe, without the
 * treelock — the lockless, RCU-protected lookup newer kernels use (the v5.8 baseline takes the
 * spinlock; both give the same answers, this one cannot make a trap wait). The index is changed in
 * the same synchronous step as the runs, by the same writer, and holds exactly their keys, so a
 * hit costs the same with 1 or 100,000 uprobes.
 */
import type { Inode } from '../mm/inode.js';
import type { Uprobe } from './uprobe.js';

/** Half the longest run: a run that grows past 2 × RUN is split in two. */
const RUN = 128;

function cmp(ino: number, offset: bigint, u: Uprobe): number {
  if (ino !== u.inode.ino) return ino < u.inode.ino ? -1 : 1;
  return offset === u.offset ? 0 : offset < u.offset ? -1 : 1;
}

/** First index of `run` whose key is ≥ (ino, offset). */
function lowerBound(run: readonly Uprobe[], ino: number, offset: bigint): number {
  let lo = 0;
  let hi = run.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cmp(ino, offset, run[mid]!) > 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class UprobeTree {
  /** Non-empty sorted runs; every key of runs[i] ≤ every key of runs[i + 1]. */
  private readonly runs: Uprobe[][] = [];
  private count = 0;
  /**
   * inode → offset → uprobe: the same keys as the runs, changed with them. Offsets as Numbers
   * (exact: uprobe_register refuses one past the file's size); a BigInt key costs a hash of the
   * BigInt at every hit.
   */
  private readonly index = new Map<Inode, Map<number, Uprobe>>();

  get size(): number {
    return this.count;
  }

  /** The first run whose last key is ≥ (ino, offset); runs.length when there is none. */
  private runFor(ino: number, offset: bigint): number {
    const runs = this.runs;
    let lo = 0;
    let hi = runs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const run = runs[mid]!;
      if (cmp(ino, offset, run[run.length - 1]!) > 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  find(inode: Inode, offset: bigint): Uprobe | undefined {
    return this.index.get(inode)?.get(Number(offset));
  }

  /** Uprobes of `inode` with first ≤ offset ≤ last, in offset order. */
  range(inode: Inode, first: bigint, last: bigint): Uprobe[] {
    const out: Uprobe[] = [];
    const runs = this.runs;
    let r = this.runFor(inode.ino, first);
    if (r === runs.length) return out;
    for (let i = lowerBound(runs[r]!, inode.ino, first); r < runs.length; r++, i = 0) {
      const run = runs[r]!;
      for (; i < run.length; i++) {
        const u = run[i]!;
        // Another inode may share the number (the old array's order had the same ties).
        if (u.inode.ino !== inode.ino || u.offset > last) return out;
        if (u.inode === inode) out.push(u);
      }
    }
    return out;
  }

  /** Caller holds the treelock and checked that the key is absent. */
  insert(u: Uprobe): void {
    const runs = this.runs;
    if (runs.length === 0) runs.push([u]);
    else {
      // Past every run's last key: it goes at the end of the last run.
      const r = Math.min(this.runFor(u.inode.ino, u.offset), runs.length - 1);
      const run = runs[r]!;
      run.splice(lowerBound(run, u.inode.ino, u.offset), 0, u);
      if (run.length > 2 * RUN) runs.splice(r, 1, run.slice(0, RUN), run.slice(RUN));
    }
    this.count++;
    let m = this.index.get(u.inode);
    if (!m) this.index.set(u.inode, (m = new Map()));
    m.set(Number(u.offset), u);
  }

  /** Caller holds the treelock. Erasing a uprobe that is not in the tree does nothing. */
  erase(u: Uprobe): void {
    const runs = this.runs;
    let r = this.runFor(u.inode.ino, u.offset);
    let i = r < runs.length ? lowerBound(runs[r]!, u.inode.ino, u.offset) : 0;
    // Equal keys (same ino) may run on into the next run: look for this very node.
    for (; r < runs.length; r++, i = 0) {
      const run = runs[r]!;
      while (i < run.length && run[i] !== u && cmp(u.inode.ino, u.offset, run[i]!) === 0) i++;
      if (i < run.length) break;
    }
    const run = runs[r];
    if (!run || run[i] !== u) return;
    run.splice(i, 1);
    this.count--;
    if (run.length === 0) runs.splice(r, 1);
    else if (run.length < RUN / 4) this.mergeSmall(r);
    const m = this.index.get(u.inode);
    if (m?.get(Number(u.offset)) === u) m.delete(Number(u.offset));
    if (m?.size === 0) this.index.delete(u.inode);
  }

  /** A run shrunk by erases joins a neighbour when both fit in one, so runs stay few. */
  private mergeSmall(r: number): void {
    const runs = this.runs;
    const run = runs[r]!;
    if (r + 1 < runs.length && run.length + runs[r + 1]!.length <= 2 * RUN) runs.splice(r, 2, run.concat(runs[r + 1]!));
    else if (r > 0 && runs[r - 1]!.length + run.length <= 2 * RUN) runs.splice(r - 1, 2, runs[r - 1]!.concat(run));
  }

  /** Every uprobe in key order (a fresh array: for listings). */
  all(): readonly Uprobe[] {
    return this.runs.flat();
  }
}
