/**
 * kmalloc/kfree with poisoning, so that use-after-free is caught the way KASAN catches it.
 *
 * An allocation is an ordinary object behind a Proxy. kfree poisons it: from then on any read or
 * write through a reference someone kept records a report naming the object, the accessor and
 * who freed it, and throws `UseAfterFree` (the accessing thread dies; the scenario sees the
 * report). Allocation with GFP_KERNEL goes through lockdep's fs_reclaim model, so allocating
 * under a lock that reclaim takes is reported.
 */
import { codePath, type ExecContext } from './context.js';
import type { Gfp } from './lockdep.js';
import type { Scheduler } from './scheduler.js';

export class UseAfterFree extends Error {
  constructor(readonly report: string) {
    super(report.split('\n')[0]);
    this.name = 'UseAfterFree';
  }
}

interface Meta {
  readonly cache: string;
  freedBy?: string;
}

export class Slab {
  private readonly meta = new WeakMap<object, Meta>();
  readonly reports: string[] = [];
  allocated = 0;
  freed = 0;

  constructor(
    private readonly sched: Scheduler,
    /** Who is running now, for reports (the scheduler's thread, or a trap context). */
    private readonly current: () => ExecContext | undefined = () => sched.running,
  ) {}

  alloc<T extends object>(ctx: ExecContext, cache: string, gfp: Gfp, where: string, init: T): T {
    this.sched.lockdep.mightAlloc(ctx, gfp, where);
    const meta: Meta = { cache };
    const check = (prop: PropertyKey, access: 'read' | 'write'): void => {
      if (meta.freedBy === undefined) return;
      const who = this.current();
      const r = [
        `BUG: KASAN: use-after-free: ${access} of ${cache}.${String(prop)}`,
        `accessed by ${who ? `${who.name} at ${codePath(who)}` : 'the host'}`,
        `freed by ${meta.freedBy}`,
      ].join('\n');
      this.reports.push(r);
      throw new UseAfterFree(r);
    };
    const proxy = new Proxy(init, {
      get: (o, p, recv) => {
        check(p, 'read');
        return Reflect.get(o, p, recv);
      },
      set: (o, p, v, recv) => {
        check(p, 'write');
        return Reflect.set(o, p, v, recv);
      },
    });
    this.meta.set(proxy, meta);
    this.allocated++;
    return proxy;
  }

  free(ctx: ExecContext, obj: object, where: string): void {
    const m = this.meta.get(obj);
    if (!m) throw new Error(`kfree of an object this slab did not allocate (${where})`);
    if (m.freedBy !== undefined) {
      const r = `BUG: KASAN: double-free in ${codePath(ctx, where)} of ${m.cache}, first freed by ${m.freedBy}`;
      this.reports.push(r);
      throw new UseAfterFree(r);
    }
    m.freedBy = `${ctx.name} at ${codePath(ctx, where)}`;
    this.freed++;
  }

  isFreed(obj: object): boolean {
    return this.meta.get(obj)?.freedBy !== undefined;
  }

  get live(): number {
    return this.allocated - this.freed;
  }
}
