/**
 * `--shard i/n`: split a suite over n machines (CI jobs), as vitest and playwright shard.
 *
 * The unit is the case, not the (case, target) pair: a case's targets stay in one shard, so
 * `--update` writes a shared golden from the case's first target and checks the others against it
 * exactly as a full run does. Cases are taken in the suite's stable order (file names sorted,
 * loadSuite) and cut into n contiguous blocks whose sizes differ by at most one, the larger ones
 * first (playwright's split). Every case is in exactly one shard, so the union of the n shards is
 * the full run; a shard past the number of cases is empty.
 */

export interface Shard {
  /** 1-based. */
  readonly index: number;
  readonly count: number;
}

/** The items of `shard` among `items` (in their order). */
export function shardOf<T>(items: readonly T[], shard: Shard): T[] {
  const base = Math.floor(items.length / shard.count);
  const extra = items.length % shard.count;
  const i = shard.index - 1;
  const start = i * base + Math.min(i, extra);
  return items.slice(start, start + base + (i < extra ? 1 : 0));
}
