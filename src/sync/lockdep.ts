/**
 * lockdep: the kernel's runtime lock validator, in the shape uniprobe needs.
 *
 * Like Linux's, it reasons about lock *classes* (every `mm->mmap_lock` is one class), not
 * instances: each acquisition made while other locks are held adds "held → new" edges to one
 * global dependency graph, across every vCPU and thread. A new edge that closes a cycle is a
 * possible deadlock even if this run never deadlocked — which is what lets a test see an AB-BA
 * inversion from one interleaving. It also reports recursive locking, sleeping in atomic
 * context, and allocations that may enter reclaim while holding a lock reclaim itself takes
 * (the `fs_reclaim` pseudo-lock: a GFP_KERNEL allocation "acquires" it; reclaim's rmap walk is
 * declared to take i_mmap_rwsem and anon_vma locks under it).
 *
 * Reports are plain data, deterministic for a given interleaving (no host stack traces): the
 * lock names and the code paths given by `ctx.frames` + the `where` of each acquisition. Each
 * distinct problem is reported once (Linux turns lockdep off after the first report; we keep
 * going so one run can show every problem, and deduplicate instead).
 */
import { codePath, type ExecContext } from './context.js';

export type LockKind = 'mutex' | 'rwsem' | 'spinlock' | 'rcu' | 'srcu' | 'pseudo';

export class LockClass {
  constructor(
    readonly name: string,
    readonly kind: LockKind,
  ) {}
  toString(): string {
    return this.name;
  }
}

export interface HeldLock {
  readonly cls: LockClass;
  readonly instance: object;
  /** Code path of the acquisition. */
  readonly where: string;
  readonly read: boolean;
}

export type LockdepReportKind = 'circular' | 'recursive' | 'sleep-in-atomic' | 'bad-unlock' | 'suspicious-rcu' | 'deadlock';

export interface LockdepReport {
  readonly kind: LockdepReportKind;
  /** The kernel's headline, e.g. "WARNING: possible circular locking dependency detected". */
  readonly title: string;
  /** Lock class names involved, in the report's order. */
  readonly locks: string[];
  /** The whole report, kernel-like, deterministic. */
  readonly text: string;
}

interface Edge {
  readonly from: LockClass;
  readonly to: LockClass;
  /** Who first took `to` while holding `from`, and where. */
  readonly holder: string;
  readonly fromWhere: string;
  readonly toWhere: string;
}

const DOCUMENTED = 'documented order';

export type Gfp = 'GFP_KERNEL' | 'GFP_NOWAIT' | 'GFP_ATOMIC';

export class Lockdep {
  /** The pseudo-lock a GFP_KERNEL allocation acquires: reclaim may run under it. */
  readonly fsReclaim = new LockClass('fs_reclaim', 'pseudo');
  readonly reports: LockdepReport[] = [];
  /** Listeners (tests, the CLI) see each report as it is made. */
  readonly onReport: Array<(r: LockdepReport) => void> = [];
  private readonly edges = new Map<LockClass, Map<LockClass, Edge>>();
  private readonly seen = new Set<string>();
  enabled = true;

  /** Reclaim (kswapd, direct reclaim's rmap walk) takes `cls`: record fs_reclaim → cls. */
  reclaimTakes(cls: LockClass, path = 'kswapd > shrink_page_list > rmap_walk'): void {
    this.addEdge({ from: this.fsReclaim, to: cls, holder: 'kswapd0', fromWhere: 'balance_pgdat', toWhere: path });
  }

  /**
   * A documented order "outer before inner" (src/sync/lock-order.ts), recorded as if observed.
   * Throws if it contradicts what is already known: the documentation itself would be cyclic.
   */
  declareOrder(outer: LockClass, inner: LockClass, path: string): void {
    if (this.edges.get(outer)?.has(inner)) return;
    if (this.findPath(inner, outer)) throw new Error(`lock order ${outer.name} -> ${inner.name} (${path}) contradicts a known dependency`);
    this.addEdge({ from: outer, to: inner, holder: DOCUMENTED, fromWhere: path, toWhere: path });
  }

  /**
   * Called before a (possibly blocking) acquisition, like lock_acquire(): checks, then records
   * the lock as held. `trylock` acquisitions never wait, so they add no dependency edges.
   * `nestLock`: a held lock that serialises taking several locks of one class (Linux's
   * *_nest_lock, used by mm_take_all_locks) — no recursion report then.
   */
  acquire(ctx: ExecContext, cls: LockClass, instance: object, where: string, opts: { read?: boolean; trylock?: boolean; nestLock?: object } = {}): void {
    const path = codePath(ctx, where);
    if (this.enabled) {
      const nested = opts.nestLock !== undefined && ctx.held.some((h) => h.instance === opts.nestLock);
      const same = ctx.held.find((h) => h.cls === cls);
      if (same && !nested && !opts.trylock) this.reportRecursive(ctx, cls, path, same);
      if (!opts.trylock) {
        for (const h of ctx.held) {
          if (h.cls === cls) continue;
          this.checkAndAdd(ctx, h, cls, path);
        }
      }
    }
    ctx.held.push({ cls, instance, where: path, read: opts.read ?? false });
  }

  release(ctx: ExecContext, instance: object, where = 'unlock'): void {
    for (let i = ctx.held.length - 1; i >= 0; i--) {
      if (ctx.held[i]!.instance === instance) {
        ctx.held.splice(i, 1);
        return;
      }
    }
    this.report(
      'bad-unlock',
      'WARNING: bad unlock balance detected!',
      [],
      `${ctx.name} is trying to release a lock it does not hold at: ${codePath(ctx, where)}`,
      `bad-unlock:${ctx.name}:${where}`,
    );
  }

  /** might_sleep(): a context that is atomic (or cannot sleep at all) must not get here. */
  mightSleep(ctx: ExecContext, where: string): void {
    if (!this.enabled) return;
    const atomic = !ctx.canSleep || ctx.preempt > 0 || ctx.rcuDepth > 0;
    if (!atomic) return;
    const path = codePath(ctx, where);
    const why = !ctx.canSleep ? 'trap context' : ctx.rcuDepth > 0 ? 'inside rcu_read_lock()' : 'preemption disabled';
    this.report(
      'sleep-in-atomic',
      'BUG: sleeping function called from invalid context',
      ctx.held.map((h) => h.cls.name),
      [
        `BUG: sleeping function called from invalid context at ${path}`,
        `in_atomic(): 1 (${why}), preempt_count: ${ctx.preempt}, rcu depth: ${ctx.rcuDepth}, name: ${ctx.name}`,
        ...this.heldLines(ctx),
      ].join('\n'),
      `sleep:${path}:${why}`,
    );
  }

  /**
   * might_alloc(gfp): a sleeping allocation may enter direct reclaim, which behaves like taking
   * fs_reclaim (and, through it, every lock reclaim takes).
   */
  mightAlloc(ctx: ExecContext, gfp: Gfp, where: string): void {
    if (gfp !== 'GFP_KERNEL') return;
    this.mightSleep(ctx, where);
    const token = {};
    this.acquire(ctx, this.fsReclaim, token, `${where} > kmalloc(GFP_KERNEL)`);
    this.release(ctx, token);
  }

  /**
   * A misuse found by a primitive rather than by the graph: "suspicious RCU usage" (an RCU list
   * walked outside a reader, synchronize_srcu inside its own domain's reader), a real deadlock.
   */
  warn(ctx: ExecContext, kind: 'suspicious-rcu' | 'deadlock', title: string, detail: string[], where: string): void {
    const path = codePath(ctx, where);
    this.report(kind, title, ctx.held.map((h) => h.cls.name), [title, `${ctx.name} at ${path}`, ...detail, ...this.heldLines(ctx)].join('\n'), `${kind}:${title}:${path}`);
  }

  /** Every dependency recorded so far, "A -> B" (tests, `uniprobe list --locks`). */
  dependencies(): string[] {
    const out: string[] = [];
    for (const m of this.edges.values()) for (const e of m.values()) out.push(`${e.from.name} -> ${e.to.name}`);
    return out.sort();
  }

  // --- internals -------------------------------------------------------------------------------

  private checkAndAdd(ctx: ExecContext, held: HeldLock, cls: LockClass, path: string): void {
    const known = this.edges.get(held.cls)?.get(cls);
    if (known) {
      // A documented order seen for real: reports show the real acquisition from now on.
      if (known.holder === DOCUMENTED) this.edges.get(held.cls)!.set(cls, { from: held.cls, to: cls, holder: ctx.name, fromWhere: held.where, toWhere: path });
      return;
    }
    const back = this.findPath(cls, held.cls);
    const edge: Edge = { from: held.cls, to: cls, holder: ctx.name, fromWhere: held.where, toWhere: path };
    if (back) this.reportCircular(ctx, edge, back);
    else this.addEdge(edge);
  }

  private addEdge(e: Edge): void {
    let m = this.edges.get(e.from);
    if (!m) this.edges.set(e.from, (m = new Map()));
    if (!m.has(e.to)) m.set(e.to, e);
  }

  /** Breadth-first: the shortest recorded chain from → … → to, or undefined. */
  private findPath(from: LockClass, to: LockClass): Edge[] | undefined {
    const prev = new Map<LockClass, Edge>();
    const queue: LockClass[] = [from];
    const seen = new Set<LockClass>([from]);
    while (queue.length) {
      const c = queue.shift()!;
      if (c === to) {
        const chain: Edge[] = [];
        for (let at = to; at !== from; ) {
          const e = prev.get(at)!;
          chain.unshift(e);
          at = e.from;
        }
        return chain;
      }
      const out = this.edges.get(c);
      if (!out) continue;
      // Sorted by name so that the chain reported does not depend on insertion order.
      for (const [next, e] of [...out].sort((a, b) => a[0].name.localeCompare(b[0].name))) {
        if (seen.has(next)) continue;
        seen.add(next);
        prev.set(next, e);
        queue.push(next);
      }
    }
    return undefined;
  }

  private reportCircular(ctx: ExecContext, edge: Edge, existing: Edge[]): void {
    const a = edge.from;
    const b = edge.to;
    const lines = [
      'WARNING: possible circular locking dependency detected',
      `${ctx.name} is trying to acquire lock:`,
      `  (${b.name}) at: ${edge.toWhere}`,
      'but task is already holding lock:',
      `  (${a.name}) at: ${edge.fromWhere}`,
      'which lock already depends on the new lock.',
      'the existing dependency chain (in reverse order) is:',
    ];
    existing.forEach((e, i) => {
      lines.push(`-> #${existing.length - i} (${e.to.name}): taken by ${e.holder} at ${e.toWhere}`);
      lines.push(`       while holding (${e.from.name}) taken at ${e.fromWhere}`);
    });
    lines.push(`-> #0 (${b.name}): taken by ${ctx.name} at ${edge.toWhere}`, `       while holding (${a.name}) taken at ${edge.fromWhere}`);
    lines.push(
      ' Possible unsafe locking scenario:',
      '       CPU0                    CPU1',
      '       ----                    ----',
      `  lock(${a.name});`,
      `                               lock(${b.name});`,
      `                               lock(${a.name});`,
      `  lock(${b.name});`,
      ' *** DEADLOCK ***',
      ...this.heldLines(ctx),
    );
    const locks = [a.name, b.name, ...existing.map((e) => e.to.name).filter((n) => n !== a.name && n !== b.name)];
    this.report('circular', lines[0]!, locks, lines.join('\n'), `circular:${[a.name, b.name].sort().join('|')}`);
  }

  private reportRecursive(ctx: ExecContext, cls: LockClass, path: string, held: HeldLock): void {
    const lines = [
      'WARNING: possible recursive locking detected',
      `${ctx.name} is trying to acquire lock:`,
      `  (${cls.name}) at: ${path}`,
      'but task is already holding lock:',
      `  (${cls.name}) at: ${held.where}`,
      ' Possible unsafe locking scenario:',
      '       CPU0',
      '       ----',
      `  lock(${cls.name});`,
      `  lock(${cls.name});`,
      ' *** DEADLOCK ***',
      ...this.heldLines(ctx),
    ];
    this.report('recursive', lines[0]!, [cls.name], lines.join('\n'), `recursive:${cls.name}:${path}`);
  }

  private heldLines(ctx: ExecContext): string[] {
    if (!ctx.held.length) return [`no locks held by ${ctx.name}.`];
    return [`${ctx.held.length} lock(s) held by ${ctx.name}:`, ...ctx.held.map((h, i) => ` #${i}: (${h.cls.name}) at: ${h.where}`)];
  }

  private report(kind: LockdepReportKind, title: string, locks: string[], text: string, key: string): void {
    if (this.seen.has(key)) return;
    this.seen.add(key);
    const r: LockdepReport = { kind, title, locks, text };
    this.reports.push(r);
    for (const l of this.onReport) l(r);
  }
}
