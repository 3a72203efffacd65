/**
 * uprobes_tree against a plain model: a list sorted by (ino, offset) that is re-sorted after
 * every change. Random inserts and erases over three inodes, enough to split runs and merge
 * them again; after every step `find`, `range`, `all` and `size` answer as the model does.
 */
import { describe, expect, it } from 'vitest';
import { UprobeTree } from '../../src/uprobes/tree.js';
import type { Uprobe } from '../../src/uprobes/uprobe.js';
import type { Inode } from '../../src/mm/inode.js';

/** The tree reads only `inode` (its identity and ino) and `offset` of a node. */
const node = (inode: Inode, offset: bigint): Uprobe => ({ inode, offset }) as unknown as Uprobe;
const inodes = [7, 3, 12].map((ino) => ({ ino }) as unknown as Inode);

/** A small deterministic generator (mulberry32), so a failure replays. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const key = (u: Uprobe): string => `${u.inode.ino}:${u.offset}`;
const order = (a: Uprobe, b: Uprobe): number => a.inode.ino - b.inode.ino || (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0);

describe('uprobes tree', () => {
  it('answers find, range, all and size as a sorted list does, through splits and merges', () => {
    const next = rng(18);
    const tree = new UprobeTree();
    let model: Uprobe[] = [];
    const live = new Map<string, Uprobe>();
    const check = (): void => {
      expect(tree.size).toBe(model.length);
      expect(tree.all().map(key)).toEqual(model.map(key));
      for (let k = 0; k < 3; k++) {
        const inode = inodes[Math.floor(next() * 3)]!;
        const a = BigInt(Math.floor(next() * 3000));
        const b = a + BigInt(Math.floor(next() * 800));
        expect(tree.range(inode, a, b)).toEqual(model.filter((u) => u.inode === inode && u.offset >= a && u.offset <= b));
        const off = BigInt(Math.floor(next() * 3000));
        expect(tree.find(inode, off)).toBe(live.get(`${inode.ino}:${off}`));
      }
    };
    // Grow to ~1,500 nodes (runs split), then shrink to a few (runs empty and merge), twice.
    for (const [steps, pInsert] of [[2500, 0.8], [2500, 0.2], [1500, 0.8], [2000, 0.1]] as const) {
      for (let s = 0; s < steps; s++) {
        const inode = inodes[Math.floor(next() * 3)]!;
        const off = BigInt(Math.floor(next() * 3000));
        const k = `${inode.ino}:${off}`;
        if (next() < pInsert) {
          if (live.has(k)) continue; // the caller's rule: insert only absent keys
          const u = node(inode, off);
          tree.insert(u);
          live.set(k, u);
          model = [...model, u].sort(order);
        } else {
          const present = [...live.values()];
          if (present.length === 0) continue;
          const u = present[Math.floor(next() * present.length)]!;
          tree.erase(u);
          live.delete(key(u));
          model = model.filter((x) => x !== u);
        }
        if (s % 50 === 0) check();
      }
      check();
    }
  });

  it('erasing a node that is not in the tree (same key, another node) changes nothing', () => {
    const tree = new UprobeTree();
    const a = node(inodes[0]!, 0x40n);
    tree.insert(a);
    tree.erase(node(inodes[0]!, 0x40n));
    expect(tree.size).toBe(1);
    expect(tree.find(inodes[0]!, 0x40n)).toBe(a);
    tree.erase(a);
    expect(tree.size).toBe(0);
    expect(tree.find(inodes[0]!, 0x40n)).toBeUndefined();
    expect(tree.all()).toEqual([]);
  });
});
