/**
 * The sequence checker: per thread, the probed run must execute the same instructions in the same
 * order as the unprobed run, with the same registers at every probe hit and at every system call
 * entry. Divergences of different threads are ordered by when the unprobed run reached them.
 */
import type { Comparison } from './compare.js';
import { hex } from './types.js';

/**
 * Per thread, one pass over both instruction sequences, aligned (a repeat made by a run
 * boundary is skipped — on the probed side only where the code hook, not a handler, recorded
 * it, since a handler that runs twice is a real double hit), with the system calls in place:
 * the order of execution, the registers at every probe hit, the registers at every system call.
 */
export function checkSequences(c: Comparison): void {
  const { base, probed, plan } = c;
  // Divergences of different threads are ordered by when the unprobed run reached them.
  const seq = { detail: undefined as string | undefined, at: Infinity, steps: 0, regChecks: 0 };
  const sys = { detail: undefined as string | undefined, at: Infinity, calls: 0 };
  const note = (o: { detail: string | undefined; at: number }, when: number, text: string): void => {
    if (when < o.at) {
      o.at = when;
      o.detail = text;
    }
  };
  let leaks = 0;
  let unseen = 0;
  let firstLeak: string | undefined;
  const pcIds = plan.regset.pcIds ?? new Set<number>();
  const tids = [...new Set([...base.threads.keys(), ...probed.threads.keys()])].sort((x, y) => x - y);
  for (const tid of tids) {
    const b = base.threads.get(tid);
    const p = probed.threads.get(tid);
    for (const a of b?.addrs ?? []) c.executed.set(a, (c.executed.get(a) ?? 0) + 1);
    if (p) p.addrs.forEach((a, i) => p.regRow[i]! >= 0 && c.hits.set(a, (c.hits.get(a) ?? 0) + 1));
    if (!b || !p) {
      note(seq, b?.clock[0] ?? Infinity, `thread ${tid} ${b ? `never ran in the probed run${c.fate(tid)}` : 'exists only in the probed run'}`);
      continue;
    }
    const when = (i: number): number => b.clock[Math.min(i, b.clock.length - 1)] ?? Infinity;
    let sysDone = false;
    const pid = c.pidOf(tid);
    // Registers found holding a slot address, by index: [unprobed value, probed value].
    const leaked = new Map<number, [bigint, bigint]>();
    const classify = (want: BigUint64Array, got: BigUint64Array, stepped: number | undefined, skipPc: boolean): string | undefined => {
      for (let r = 0; r < want.length; r++) {
        const w = want[r]!;
        const g = got[r]!;
        if (w === g || (skipPc && pcIds.has(plan.regset.ids[r]!))) {
          leaked.delete(r);
          continue;
        }
        const known = leaked.get(r);
        if (known && known[0] === w && known[1] === g) continue;
        // The stepped instruction's own address, or (a value carried over, e.g. into a forked
        // child) any probed instruction's.
        if ((stepped !== undefined && c.slotAddress(pid, w, g, BigInt(stepped))) || c.slotAddress(pid, w, g, undefined) || c.slotAddress(c.parentPid(pid), w, g, undefined)) {
          leaked.set(r, [w, g]);
          leaks++;
          firstLeak ??= `thread ${tid}: %${plan.regset.names[r]} = ${hex(g)} (in the XOL slot) where the unprobed run has ${hex(w)}${stepped !== undefined ? `, after ${c.where(stepped)}` : ''}`;
          continue;
        }
        return `%${plan.regset.names[r]} = ${hex(g)}, expected ${hex(w)}`;
      }
      return undefined;
    };
    let i = 0;
    let j = 0;
    let sc = 0;
    let diverged = false;
    const nsc = Math.min(b.syscalls.length, p.syscalls.length);
    for (;;) {
      // System calls the unprobed thread made after i instructions.
      for (; sc < nsc && b.syscalls[sc]!.at <= i && !sysDone; sc++) {
        const bs = b.syscalls[sc]!;
        const qs = p.syscalls[sc]!;
        sys.calls++;
        if (qs.name !== bs.name) {
          note(sys, when(i), `thread ${tid}, system call #${sc}: ${qs.name}, expected ${bs.name}`);
          sysDone = true;
          break;
        }
        const d = classify(base.regs.row(bs.row), probed.regs.row(qs.row), i > 0 ? b.addrs[i - 1] : undefined, false);
        if (d) {
          note(sys, when(i), `thread ${tid}, system call #${sc} (${bs.name}): ${d}`);
          sysDone = true;
        }
      }
      if (i >= b.addrs.length || j >= p.addrs.length) break;
      const a = b.addrs[i]!;
      if (a !== p.addrs[j]) {
        if (base.isBoundaryRepeat(b, i)) {
          c.executed.set(a, c.executed.get(a)! - 1);
          i++;
          continue;
        }
        if (p.regRow[j]! < 0 && probed.isBoundaryRepeat(p, j)) {
          j++;
          continue;
        }
        // A probe hit where the unprobed run executed a copy of that very instruction outside
        // the text (an arch trampoline): the same execution, seen at two places.
        const copy = p.regRow[j]! >= 0 ? c.foreignCopy(b, i, p.addrs[j]!) : undefined;
        if (copy) {
          copy.used = true;
          const h = p.addrs[j]!;
          c.executed.set(h, (c.executed.get(h) ?? 0) + 1);
          seq.regChecks++;
          const d = classify(base.regs.row(copy.row), probed.regs.row(p.regRow[j]!), i > 0 ? b.addrs[i - 1] : undefined, true);
          if (d) {
            note(seq, when(i), `thread ${tid}, step ${i}: at ${c.where(h)} (run from a trampoline when unprobed): ${d}`);
            diverged = true;
            break;
          }
          j++;
          continue;
        }
        // A probe hit on the instruction right after the previous one, after which both runs go
        // on together: the unprobed run executed it too, but not where a hook sees it — the arch
        // layer carried it out itself (sparc64 skips the `nop` in the delay slot of a `return`
        // it emulates). Counted as executed, noted, registers not comparable.
        if (p.regRow[j]! >= 0 && i > 0 && p.addrs[j] === c.fallThrough(b.addrs[i - 1]!) && p.addrs[j + 1] === a) {
          c.executed.set(p.addrs[j]!, (c.executed.get(p.addrs[j]!) ?? 0) + 1);
          unseen++;
          j++;
          continue;
        }
        const prev = i > 0 ? `after ${c.where(b.addrs[i - 1]!)} [${c.mode(b.addrs[i - 1]!)}], ` : '';
        note(seq, when(i), `thread ${tid}, step ${i}: ${prev}executed ${c.where(p.addrs[j]!)} instead of ${c.where(a)}`);
        diverged = true;
        break;
      }
      if (c.registered.has(a) && b.regRow[i]! >= 0 && p.regRow[j]! >= 0) {
        seq.regChecks++;
        const d = classify(base.regs.row(b.regRow[i]!), probed.regs.row(p.regRow[j]!), i > 0 ? b.addrs[i - 1] : undefined, true);
        if (d) {
          const prev = i > 0 ? ` after ${c.where(b.addrs[i - 1]!)} [${c.mode(b.addrs[i - 1]!)}]` : '';
          note(seq, when(i), `thread ${tid}, step ${i}: at ${c.where(a)}${prev}: ${d}`);
          diverged = true;
          break;
        }
      }
      i++;
      j++;
    }
    seq.steps += i;
    // Trailing boundary repeats are no divergence either.
    while (i < b.addrs.length && base.isBoundaryRepeat(b, i)) c.executed.set(b.addrs[i]!, c.executed.get(b.addrs[i]!)! - 1), i++;
    while (j < p.addrs.length && p.regRow[j]! < 0 && probed.isBoundaryRepeat(p, j)) j++;
    if (!diverged && (i < b.addrs.length || j < p.addrs.length)) {
      const prev = i > 0 ? `after ${c.where(b.addrs[i - 1]!)} [${c.mode(b.addrs[i - 1]!)}], ` : '';
      const longer = i < b.addrs.length ? `the probed run stopped${c.fate(tid)}; the unprobed run went on at ${c.where(b.addrs[i]!)}` : `the probed run went on at ${c.where(p.addrs[j]!)}`;
      note(seq, when(i), `thread ${tid}, step ${i}: ${prev}${longer} (${b.addrs.length} vs ${p.addrs.length} steps)`);
      diverged = true;
    }
    if (!diverged && !sysDone && b.syscalls.length !== p.syscalls.length) note(sys, when(i), `thread ${tid}: ${p.syscalls.length} system calls, expected ${b.syscalls.length}`);
  }
  c.checks.push({ name: 'instruction sequence', ok: seq.detail === undefined, summary: `${seq.steps} steps in ${tids.length} thread(s), registers compared at ${seq.regChecks} hits`, detail: seq.detail });
  c.checks.push({ name: 'registers at system calls', ok: sys.detail === undefined, summary: `${sys.calls} calls (the exit call included)`, detail: sys.detail });
  if (unseen > 0) {
    c.notes.push(`${unseen} execution(s) of probed instructions that the unprobed run carried out without a code hook seeing them at their address (the arch layer ran them itself, e.g. the delay slot of an emulated sparc64 \`return\`); counted as executed`);
  }
  if (leaks > 0) c.notes.push(`${leaks} register value(s) held an XOL slot address where the unprobed run had the stepped instruction's (Linux does the same); first: ${firstLeak}`);
}
