/**
 * The shipped cross-architecture suite (test/regress/suite): every case on every target matches
 * its golden — one golden per case shared by all five targets, except where a target's compiler
 * made another choice (fnptr on ppc64 and sparc64: calls through a pointer are not tail calls
 * there, so op_max and op_neg return into apply) — and the runner itself: normalisation, the
 * case format's checks, --update.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkCase, goldenPath, loadSuite, parseCase, plan, runCase, runSuite } from '../../src/regress/regress.js';
import { repoRoot, supported } from '../helpers.js';

const dir = join(repoRoot, 'test', 'regress', 'suite');
const cases = loadSuite(dir);

describe('the shipped regression suite', () => {
  it.each(plan(cases).map(({ c, target }) => [c.name, target, c] as const))('%s on %s matches its golden', async (_n, target, c) => {
    const r = await checkCase(dir, c, target);
    expect(r.detail).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(r.lines.length).toBeGreaterThan(1);
  });

  it('goldens are shared: only the documented per-target overrides exist, and they differ from the shared golden only in return sites', () => {
    const overrides = readdirSync(dir).filter((f) => /\.[a-z0-9_]+\.golden\.jsonl$/.test(f) && f.split('.').length === 4);
    expect(overrides.sort()).toEqual(['fnptr.ppc64.golden.jsonl', 'fnptr.sparc64.golden.jsonl']);
    const shared = readFileSync(join(dir, 'fnptr.golden.jsonl'), 'utf8').split('\n');
    for (const f of overrides) {
      const own = readFileSync(join(dir, f), 'utf8').split('\n');
      expect(own.length).toBe(shared.length);
      const diff = own.map((l, i) => [l, shared[i]!] as const).filter(([a, b]) => a !== b);
      expect(diff.length).toBeGreaterThan(0);
      for (const [a, b] of diff) expect(a.replace('"ret_to":"apply"', '"ret_to":"main"')).toBe(b);
    }
  });

  it('values Linux and C define: fib(n) returns fib(n) for every call, fork: work(n) = n²+1 in parent (pid 1) and child (pid 2), exit statuses', async () => {
    const fib = (n: number): number => (n < 2 ? n : fib(n - 1) + fib(n - 2));
    const target = [...supported][0]!;
    const lines = (await runCase(cases.find((c) => c.name === 'fib')!, target, { dir })).map((l) => JSON.parse(l) as Record<string, any>);
    // Entries and returns pair up like parentheses; each return carries fib of its entry's n.
    const stack: number[] = [];
    for (const l of lines.slice(0, -1)) {
      if (l.event === 'fib_entry') stack.push(Number(l.args.n));
      else expect(Number(l.args.ret)).toBe(fib(stack.pop()!));
    }
    expect(stack).toEqual([]);
    expect(lines.at(-1)).toEqual({ exit: 55 });
    const work = (await runCase(cases.find((c) => c.name === 'fork')!, target, { dir })).map((l) => JSON.parse(l) as Record<string, any>);
    const byPid = (pid: number) => work.filter((l) => l.pid === pid && l.event === 'work').map((l) => Number(l.args.n));
    expect(byPid(1)).toEqual([3, 5]);
    expect(byPid(2)).toEqual([4]);
    for (const l of work.filter((x) => x.event === 'work_return')) expect(Number(l.args.ret)).toBe(Number(work[work.indexOf(l) - 1]!.args.n) ** 2 + 1);
  });

  it('the case format is checked: names, fetch sources, types, $retval only on return probes', () => {
    const bad = (o: unknown) => () => parseCase(JSON.stringify(o), 'x.case.json');
    const probe = { event: 'e', at: 'fib' };
    expect(bad({ name: 'a b', program: 'p', probes: [probe] })).toThrow(/"name"/);
    expect(bad({ name: 'a', program: 'p', probes: [] })).toThrow(/"probes"/);
    expect(bad({ name: 'a', program: 'p', probes: [{ ...probe, fetch: [{ name: 'x', arg: 1, type: 's33' }] }] })).toThrow(/unknown type "s33"/);
    expect(bad({ name: 'a', program: 'p', probes: [{ ...probe, fetch: [{ name: 'x', arg: 1, retval: true }] }] })).toThrow(/exactly one/);
    expect(bad({ name: 'a', program: 'p', probes: [{ ...probe, fetch: [{ name: 'x', retval: true }] }] })).toThrow(/needs a return probe/);
    expect(bad({ name: 'a', program: 'p', probes: [{ ...probe, return: true, fetch: [{ name: 'x', arg: 1 }] }] })).toThrow(/\$retval only/);
    expect(bad({ name: 'a', program: 'p', targets: ['arm'], probes: [probe] })).toThrow(/unknown target "arm"/);
  });

  it('--update writes one shared golden from the first target and checks the others against it; a changed golden fails with the first differing line', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'uniprobe-regress-'));
    const c = { ...cases.find((x) => x.name === 'jumptable')!, program: join(repoRoot, 'fixtures', '{target}', 'jumptable-nolibc') };
    writeFileSync(join(tmp, 'jumptable.case.json'), JSON.stringify(c));
    const first = await runSuite(tmp, { update: true });
    expect(first.every((r) => r.ok)).toBe(true);
    expect(first.filter((r) => r.updated)).toHaveLength(1);
    const golden = goldenPath(tmp, c, first[0]!.target);
    expect(existsSync(golden)).toBe(true);
    const lines = readFileSync(golden, 'utf8').split('\n');
    lines[2] = lines[2]!.replace('"op":"1"', '"op":"7"');
    writeFileSync(golden, lines.join('\n'));
    const second = await runSuite(tmp, {});
    expect(second.every((r) => !r.ok)).toBe(true);
    expect(second[0]!.detail).toMatch(/^line 3: expected .*"op":"7".*, got .*"op":"1"/);
  });
});
