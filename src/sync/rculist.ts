/**
 * RCU-safe lists and hash tables (hlist_add_head_rcu / hlist_del_rcu / hlist_for_each_entry_rcu).
 *
 * Writers (serialised by the caller's lock) publish a node by linking it in front; a removed node
 * keeps its `next` pointer so a reader standing on it can walk on, and must not be freed before a
 * grace period. Readers must be inside rcu_read_lock (or hold the writers' lock, as Linux's
 * lockdep-checked iterators allow): otherwise "suspicious RCU usage" is reported.
 */
import type { ExecContext } from './context.js';
import type { Lockdep } from './lockdep.js';

export interface RcuNode<T> {
  value: T;
  next: RcuNode<T> | undefined;
  /** Unlinked (hlist_unhashed after del): a second delete is a no-op. */
  unlinked: boolean;
}

export class RcuHlist<T> {
  first: RcuNode<T> | undefined;

  /** hlist_add_head_rcu. */
  addHead(value: T): RcuNode<T> {
    const n: RcuNode<T> = { value, next: this.first, unlinked: false };
    this.first = n;
    return n;
  }

  /** hlist_del_rcu: unlink, leave `next` intact for readers in flight. */
  del(node: RcuNode<T>): boolean {
    if (node.unlinked) return false;
    if (this.first === node) this.first = node.next;
    else {
      let p = this.first;
      while (p && p.next !== node) p = p.next;
      if (!p) return false;
      p.next = node.next;
    }
    node.unlinked = true;
    return true;
  }

  /** hlist_replace_rcu: `fresh` takes `old`'s place. */
  replace(old: RcuNode<T>, value: T): RcuNode<T> {
    const n: RcuNode<T> = { value, next: old.next, unlinked: false };
    if (this.first === old) this.first = n;
    else {
      let p = this.first;
      while (p && p.next !== old) p = p.next;
      if (!p) throw new Error('hlist_replace_rcu: node not in list');
      p.next = n;
    }
    old.unlinked = true;
    return n;
  }

  *nodes(): Generator<RcuNode<T>> {
    for (let n = this.first; n; n = n.next) yield n;
  }

  *values(): Generator<T> {
    for (let n = this.first; n; n = n.next) yield n.value;
  }
}

/**
 * A fixed-size table of RCU hlists (kprobe_table has 64 buckets: KPROBE_HASH_BITS = 6).
 * `checkReader` enforces the read-side rule for walks.
 */
export class RcuHashTable<K, T> {
  readonly buckets: RcuHlist<T>[];

  constructor(
    readonly size: number,
    private readonly hash: (k: K) => number,
    private readonly lockdep?: Lockdep,
  ) {
    this.buckets = Array.from({ length: size }, () => new RcuHlist<T>());
  }

  bucket(k: K): RcuHlist<T> {
    return this.buckets[this.hash(k) % this.size]!;
  }

  /**
   * Walk a bucket as a reader. `ctx` must be in an RCU read-side section or be a writer holding
   * `writerHeld` (Linux: hlist_for_each_entry_rcu(..., lockdep_is_held(&kprobe_mutex))).
   */
  *walk(ctx: ExecContext, k: K, writerHeld = false, where = 'hlist_for_each_entry_rcu'): Generator<T> {
    if (ctx.rcuDepth === 0 && !writerHeld) this.lockdep?.warn(ctx, 'suspicious-rcu', 'WARNING: suspicious RCU usage', ['RCU-list traversed in non-reader section!!'], where);
    yield* this.bucket(k).values();
  }

  *all(): Generator<T> {
    for (const b of this.buckets) yield* b.values();
  }
}
