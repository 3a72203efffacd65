/**
 * Debian's static busybox, bash, zsh and sash (amd64 and i386) run the corpus scripts as they do
 * under qemu-user: each case's output and status, then the whole run's exit status and stderr
 * (test/kernel/external-corpus.ts; fixtures/external/corpus/README.md has the figures).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { FULL, supported } from '../helpers.js';
import { excludedRuns, expectedCase, quickRuns, recording, runCorpus, splitCases, type CorpusOutput } from './external-corpus.js';

const runs = recording.runs.filter((r) => supported.has(r.target) && !excludedRuns[r.shell] && (FULL || quickRuns.has(`${r.target} ${r.shell}`)));

// Runs left out whole stay visible as skipped, with the reason.
for (const r of recording.runs.filter((r) => supported.has(r.target) && excludedRuns[r.shell])) {
  it.skip(`${r.target} ${r.shell}: excluded, ${excludedRuns[r.shell]}`, () => {});
}

describe.each(runs.map((r) => [`${r.target} ${r.shell}`, r] as const))('%s', (_n, run) => {
  let got: CorpusOutput;
  let cases: Map<number, string>;
  beforeAll(() => {
    got = runCorpus(run);
    cases = splitCases(got.stdout).cases;
  }, 120_000);
  const list = recording.cases[run.shell]!.filter((c) => !c.excluded);
  it.each(list.map((c) => [`${c.n} ${c.name}`, c] as const))('%s', (_c, c) => {
    expect(cases.get(c.n)).toBe(expectedCase(run, c));
  });
  it('runs to the end as under qemu-user', () => {
    expect(got.reports).toEqual([]);
    expect(splitCases(got.stdout).head).toBe(splitCases(run.stdout).head);
    expect(got.stderr).toBe(run.stderr);
    expect(got.status).toBe(run.exit);
  });
});
