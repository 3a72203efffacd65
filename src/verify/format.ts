/**
 * A verify report for people (text lines) and for tools (JSON; integers as hex strings).
 */
import { errnoLabel } from '../placement/placement.js';
import { hex, type VerifyReport } from './types.js';

/** The report as text lines. */
export function verifyText(r: VerifyReport): string[] {
  const out: string[] = [];
  out.push(`uniprobe verify: ${r.file} (${r.target}), seed ${r.seed}`);
  out.push(`probes: ${r.probes.length} uprobes on ${r.functions.length} function(s), ${r.refused.length} instruction(s) refused, ${r.skipped.length} not probed; ${r.executed} instructions executed unprobed`);
  for (const c of r.checks) out.push(`  ${c.ok ? 'same' : 'DIFF'}  ${c.name}: ${c.summary}${c.detail ? ` — ${c.detail}` : ''}`);
  for (const n of r.notes) out.push(`note: ${n}`);
  if (r.skipped.length > 0) {
    out.push('not probed:');
    for (const x of r.skipped) out.push(`  ${x.where} (${hex(x.addr)}): ${x.why}`);
  }
  if (r.refused.length > 0) {
    out.push('refused (the kernel would refuse these too):');
    for (const x of r.refused) out.push(`  ${x.where} (${hex(x.addr)}): -${errnoLabel(x.errno)} ${x.reason}`);
  }
  out.push(r.transparent ? 'TRANSPARENT' : `NOT TRANSPARENT — first divergence: ${r.firstDivergence}`);
  return out;
}

export function verifyJson(r: VerifyReport): string {
  return JSON.stringify(
    {
      file: r.file,
      target: r.target,
      seed: r.seed,
      transparent: r.transparent,
      firstDivergence: r.firstDivergence ?? null,
      executed: r.executed,
      functions: r.functions,
      checks: r.checks,
      notes: r.notes,
      skipped: r.skipped.map((x) => ({ addr: hex(x.addr), where: x.where, why: x.why })),
      refused: r.refused.map((x) => ({ addr: hex(x.addr), where: x.where, errno: -x.errno, errname: errnoLabel(x.errno), reason: x.reason })),
      probes: r.probes.map((p) => ({ addr: hex(p.addr), where: p.where, hits: p.hits, executed: p.executed })),
    },
    null,
    2,
  );
}
