/**
 * uprobes_tree: every uprobe, ordered by (inode, offset).
 *
 * Writers (insert, erase) hold uprobes_treelock. Readers on the hit path do not lock: the sorted
 * array is replaced on every change and published as a whole, so a reader sees either the old
 * or the new array — the lockless, RCU-protected lookup newer kernels use (the v5.8 baseline takes
 * the spinlock; both give the same answers, this one cannot make a trap wait).
 * `range` is build_probe_list's lookup for uprobe_mmap: every uprobe of an inode whose offset
 * falls inside a VMA.
 *
 * `find` (the hit path's find_uprobe) reads an exact index, inode → offset → uprobe, instead of
 * binary-searching the array, so a hit costs the same with 1 or 10,000 uprobes. The index is
 * updated in the same synchronous step as the array is replaced, by the same writer (under the
 * treelock), and holds exactly the array's keys. `find` runs synchronously (a trap handler, or a
 * writer), so it never sees one updated without the other, and answers what the search of the
 * current array would. (The array itself stays copy-on-write: `range`'s callers keep a result
 * across sleeps; nobody keeps the index.)
 */
import type { Inode } from '../mm/inode.js';
import type { Uprobe } from './uprobe.js';

function cmp(ino: number, offset: bigint, u: Uprobe): number {
  if (ino !== u.inode.ino) return ino < u.inode.ino ? -1 : 1;
  return offset === u.offset ? 0 : offset < u.offset ? -1 : 1;
}

export class UprobeTree {
  private nodes: readonly Uprobe[] = [];
  /** inode → offset → uprobe: the same keys as `nodes`, changed with it. */
  private readonly index = new Map<Inode, Map<bigint, Uprobe>>();

  get size(): number {
    return this.nodes.length;
  }

  /** First index whose key is ≥ (ino, offset). */
  private lowerBound(nodes: readonly Uprobe[], ino: number, offset: bigint): number {
    let lo = 0;
    let hi = nodes.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cmp(ino, offset, nodes[mid]!) > 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  find(inode: Inode, offset: bigint): Uprobe | undefined {
    return this.index.get(inode)?.get(offset);
  }

  /** Uprobes of `inode` with first ≤ offset ≤ last, in offset order. */
  range(inode: Inode, first: bigint, last: bigint): Uprobe[] {
    const nodes = this.nodes;
    const out: Uprobe[] = [];
    for (let i = this.lowerBound(nodes, inode.ino, first); i < nodes.length; i++) {
      const u = nodes[i]!;
      if (u.inode !== inode || u.offset > last) break;
      out.push(u);
    }
    return out;
  }

  /** Caller holds the treelock and checked that the key is absent. */
  insert(u: Uprobe): void {
    const i = this.lowerBound(this.nodes, u.inode.ino, u.offset);
    this.nodes = [...this.nodes.slice(0, i), u, ...this.nodes.slice(i)];
    let m = this.index.get(u.inode);
    if (!m) this.index.set(u.inode, (m = new Map()));
    m.set(u.offset, u);
  }

  /** Caller holds the treelock. */
  erase(u: Uprobe): void {
    const before = this.nodes.length;
    this.nodes = this.nodes.filter((n) => n !== u);
    if (this.nodes.length === before) return;
    const m = this.index.get(u.inode);
    m?.delete(u.offset);
    if (m?.size === 0) this.index.delete(u.inode);
  }

  all(): readonly Uprobe[] {
    return this.nodes;
  }
}
