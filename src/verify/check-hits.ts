/**
 * The hits checker: a probe is hit exactly once per execution of its instruction (Linux counts
 * every hit; a restart or an extra step must not double one, a lost trap must not drop one).
 */
import { hex, type Check, type ProbeResult } from './types.js';

export function checkHits(probes: readonly ProbeResult[]): Check {
  const bad = probes.filter((x) => x.hits !== x.executed);
  const first = bad[0];
  return {
    name: 'hits == executed',
    ok: bad.length === 0,
    summary: `${probes.length - bad.length}/${probes.length} probes`,
    detail: first ? `${first.where} (${hex(first.addr)}): hit ${first.hits}, executed ${first.executed}${bad.length > 1 ? ` (and ${bad.length - 1} more)` : ''}` : undefined,
  };
}
