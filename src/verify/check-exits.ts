/**
 * What the program showed the outside: exit statuses (the run's and each process's), stdout and
 * stderr byte for byte, and the fault reports the machine printed.
 */
import { firstByteDiff, type Comparison } from './compare.js';

/** The run's status and each process's exit status. */
export function checkExits(c: Comparison): void {
  const { base, probed } = c;
  const diffs: string[] = [];
  if (base.status !== probed.status) diffs.push(`run status ${probed.status}, expected ${base.status}`);
  for (const [pid, e] of base.ends) {
    const q = probed.ends.get(pid);
    if (!q) diffs.push(`process ${pid} missing`);
    else if (q.status !== e.status) diffs.push(`process ${pid} exited ${q.status}, expected ${e.status}`);
  }
  c.checks.push({ name: 'exit status', ok: diffs.length === 0, summary: `${base.status} (${base.ends.size} process(es))`, detail: diffs[0] });
}

/** stdout, stderr (first differing byte) and the fault report lines. */
export function checkOutputs(c: Comparison): void {
  const { base, probed } = c;
  for (const [name, b, p] of [
    ['stdout', base.stdoutText, probed.stdoutText],
    ['stderr', base.stderrText, probed.stderrText],
  ] as const) {
    const at = firstByteDiff(b, p);
    c.checks.push({
      name,
      ok: at < 0,
      summary: `${b.length} bytes`,
      detail: at < 0 ? undefined : `byte ${at}: ${JSON.stringify(p.subarray(at, at + 20).toString('utf8'))}, expected ${JSON.stringify(b.subarray(at, at + 20).toString('utf8'))}`,
    });
  }
  const ok = base.reports.join('\n') === probed.reports.join('\n');
  c.checks.push({ name: 'fault reports', ok, summary: `${base.reports.length} line(s)`, detail: ok ? undefined : `probed: ${probed.reports[0] ?? '(none)'}; unprobed: ${base.reports[0] ?? '(none)'}` });
}
