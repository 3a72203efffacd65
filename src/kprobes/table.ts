/**
 * kprobe_table: Linux's 64 RCU hlists hashed with hash_ptr, plus an exact index by address that
 * the trap path reads instead of walking a bucket.
 *
 * The hlists are the truth. Every change to them is an RCU publication made here —
 * hlist_add_head_rcu (`add`), hlist_replace_rcu (`replace`), hlist_del_rcu (`del`) — by a writer
 * holding kprobe_mutex, and writers look probes up by walking them (`walk`, get_kprobe under the
 * mutex). The index (address → the probe that owns that address in the table) is changed in the
 * same synchronous step as each publication, by the same writer under the same mutex. That makes
 * `get` answer exactly what the walk of `addr`'s bucket would at the same instant:
 * - the walk returns the first node whose probe sits at `addr`, and the table never holds two
 *   nodes for one address (a second probe there turns the first into an aggregate that *replaces*
 *   its node), so "first match" is "the match", which is what the index holds;
 * - a reader cannot observe a state between the two updates: trap handlers run inside a guest run,
 *   and writers run in kernel threads between runs, each publication step without a yield;
 * - what a reader does with the probe it found is unchanged: it keeps using that object until its
 *   read-side section ends (rcu_read_unlock after the single-step), and an unregistered probe's
 *   slot is freed only after synchronize_rcu, exactly as with a pointer taken from the walk.
 * The walk of a bucket with ~N/64 entries (N registered probes) was the 10,000-probe slowdown: ~160
 * nodes chased through two nested generators per hit, on objects the emulator run between two hits
 * has evicted from the CPU caches. `verify` (tests) makes every `get` walk too and compare.
 */
import { RcuHashTable, type ExecContext, type Lockdep, type RcuHlist } from '../sync/index.js';
import type { Kprobe } from './kprobe.js';

export const KPROBE_TABLE_SIZE = 64;
const KPROBE_HASH_BITS = 6n;

/** include/linux/hash.h: hash_64 / hash_32 with GOLDEN_RATIO_64 / _32 (facts, not code). */
function hashPtr(wordSize: number): (addr: bigint) => number {
  if (wordSize === 8) return (a) => Number(BigInt.asUintN(64, a * 0x61c8864680b583ebn) >> (64n - KPROBE_HASH_BITS));
  return (a) => Number(BigInt.asUintN(32, a * 0x61c88647n) >> (32n - KPROBE_HASH_BITS));
}

export class KprobeTable {
  /** The RCU hlists (listings, tests and writers walk them). */
  readonly hlists: RcuHashTable<bigint, Kprobe>;
  /** address → owner (lone probe or aggregate); changed only with the hlists, see above. */
  private readonly index = new Map<bigint, Kprobe>();
  /** Tests: every `get` also walks the bucket and throws if the answers differ. */
  verify = false;

  constructor(
    wordSize: number,
    private readonly lockdep: Lockdep,
  ) {
    // hash_ptr(addr, KPROBE_HASH_BITS), as Linux: the multiplicative golden-ratio hash of the
    // kernel's word size, top bits kept. (Kept in BigInt: Number() of a 64-bit kernel address
    // rounds away its low bits and would put every probe in one bucket.)
    this.hlists = new RcuHashTable(KPROBE_TABLE_SIZE, hashPtr(wordSize), lockdep);
  }

  get buckets(): readonly RcuHlist<Kprobe>[] {
    return this.hlists.buckets;
  }

  bucket(addr: bigint): RcuHlist<Kprobe> {
    return this.hlists.bucket(addr);
  }

  /** hlist_add_head_rcu of a new owner at p.addr (kprobe_mutex held). */
  add(p: Kprobe): void {
    p.node = this.hlists.bucket(p.addr!).addHead(p);
    this.index.set(p.addr!, p);
  }

  /** hlist_replace_rcu: `fresh` (the aggregate) takes `old`'s node (kprobe_mutex held). */
  replace(old: Kprobe, fresh: Kprobe): void {
    fresh.node = this.hlists.bucket(old.addr!).replace(old.node!, fresh);
    old.node = undefined;
    this.index.set(fresh.addr!, fresh);
  }

  /** hlist_del_rcu of an owner (kprobe_mutex held). */
  del(p: Kprobe): void {
    this.hlists.bucket(p.addr!).del(p.node!);
    p.node = undefined;
    if (this.index.get(p.addr!) === p) this.index.delete(p.addr!);
  }

  /**
   * get_kprobe for the trap path: `ctx` must be an RCU reader (lockdep's "suspicious RCU usage"
   * otherwise, as for the walk). One hash lookup, whatever the number of probes.
   */
  get(ctx: ExecContext, addr: bigint): Kprobe | undefined {
    if (ctx.rcuDepth === 0) this.lockdep.warn(ctx, 'suspicious-rcu', 'WARNING: suspicious RCU usage', ['RCU-list traversed in non-reader section!!'], 'get_kprobe');
    const p = this.index.get(addr);
    if (this.verify) {
      const w = this.walk(ctx, addr, true);
      if (w !== p) throw new Error(`kprobe index at 0x${addr.toString(16)}: ${p?.addr?.toString(16)} but the hlist walk finds ${w?.addr?.toString(16)}`);
    }
    return p;
  }

  /** get_kprobe by walking the bucket (writers, under kprobe_mutex: `writer`). */
  walk(ctx: ExecContext, addr: bigint, writer = false): Kprobe | undefined {
    for (const p of this.hlists.walk(ctx, addr, writer, 'get_kprobe')) if (p.addr === addr) return p;
    return undefined;
  }

  /** Every owner (lone probes and aggregates). */
  all(): Generator<Kprobe> {
    return this.hlists.all();
  }
}
