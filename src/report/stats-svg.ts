/**
 * `--stats-svg FILE`: the run's per-probe counters (the rows `--stats` prints, as kprobe_profile
 * and uprobe_profile show them) as one standalone SVG bar chart — hits, and misses for kprobe
 * events. A pure function of the rows: no fonts, scripts or images from elsewhere.
 *
 * What it does not show: a cost per probe. The engine counts hits and misses per probe point,
 * not time or trap counts per probe, so the chart says so rather than drawing an estimate. Uprobe
 * events have no miss counter (uprobe_profile has no such column): their misses cell says n/a.
 *
 * Bars are on a linear scale, each panel against its own largest value, with the exact count
 * written at the end of the bar (so a bar too short to see still reads correctly).
 */
import type { ProfileRow } from '../trace/output.js';

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Geometry, in px. */
const ROW = 22;
const BAR = 14;
const PANEL = 300;
const NUM = 70; // room after a bar for its count
const PAD = 12;
const CHAR = 7; // average width of a 12 px sans-serif character, for the label column

export interface StatsSvgOptions {
  /** First line of the chart, e.g. `uniprobe run fixtures/x86_64/fib-nolibc`. */
  readonly title: string;
}

/** The label of a row: `GROUP/EVENT (kprobe)`, with the file for a uprobe. */
function label(r: ProfileRow): string {
  return `${r.group}/${r.event} (${r.flavor}${r.path ? ` on ${r.path}` : ''})`;
}

export function statsSvg(rows: readonly ProfileRow[], opts: StatsSvgOptions): string {
  const labels = rows.map(label);
  const labelW = Math.min(480, Math.max(120, ...labels.map((l) => l.length * CHAR))) + PAD;
  const hitsX = PAD + labelW;
  const missX = hitsX + PANEL + NUM + PAD;
  const width = missX + PANEL + NUM + PAD;
  const top = 64;
  const notes = [
    'Counts from the run (kprobe_profile / uprobe_profile: the same numbers as --stats). Linear scales, each panel against its largest value.',
    'Cost per probe: not shown — the engine counts hits and misses per probe, not time or traps. Uprobes have no miss counter (n/a).',
  ];
  const height = top + Math.max(1, rows.length) * ROW + PAD + notes.length * 16 + PAD;
  const maxHits = Math.max(0, ...rows.map((r) => r.hits));
  const maxMiss = Math.max(0, ...rows.filter((r) => r.flavor === 'kprobe').map((r) => r.misses));
  const len = (v: number, max: number): string => (max > 0 ? ((PANEL * v) / max).toFixed(1) : '0');
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<title>${esc(opts.title)}: hits and misses per probe</title>`);
  out.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  out.push(`<text x="${PAD}" y="22" font-size="15" font-weight="bold">${esc(opts.title)}</text>`);
  out.push(`<text x="${hitsX}" y="${top - 10}" font-weight="bold" fill="#57606a">hits</text>`);
  out.push(`<text x="${missX}" y="${top - 10}" font-weight="bold" fill="#57606a">misses</text>`);
  out.push(`<text x="${PAD}" y="${top - 10}" font-weight="bold" fill="#57606a">probe event</text>`);
  if (rows.length === 0) out.push(`<text x="${PAD}" y="${top + 15}" fill="#57606a">no probe events in this run</text>`);
  rows.forEach((r, i) => {
    const y = top + i * ROW;
    const mid = y + BAR / 2 + 4;
    const kprobe = r.flavor === 'kprobe';
    out.push(`<g class="probe" data-event="${esc(`${r.group}/${r.event}`)}" data-flavor="${r.flavor}" data-hits="${r.hits}"${kprobe ? ` data-misses="${r.misses}"` : ''}>`);
    out.push(`<text x="${PAD}" y="${mid}">${esc(labels[i]!)}</text>`);
    const hw = len(r.hits, maxHits);
    out.push(`<rect class="hits" x="${hitsX}" y="${y}" width="${hw}" height="${BAR}" fill="#e8590c"/>`);
    out.push(`<text class="hits-value" x="${(hitsX + Number(hw) + 4).toFixed(1)}" y="${mid}">${r.hits}</text>`);
    if (kprobe) {
      const mw = len(r.misses, maxMiss);
      out.push(`<rect class="misses" x="${missX}" y="${y}" width="${mw}" height="${BAR}" fill="#cf222e"/>`);
      out.push(`<text class="misses-value" x="${(missX + Number(mw) + 4).toFixed(1)}" y="${mid}">${r.misses}</text>`);
    } else {
      out.push(`<text class="misses-value" x="${missX}" y="${mid}" fill="#8c959f">n/a</text>`);
    }
    out.push('</g>');
  });
  const noteY = top + Math.max(1, rows.length) * ROW + PAD + 4;
  notes.forEach((n, i) => out.push(`<text x="${PAD}" y="${noteY + i * 16}" font-size="11" fill="#57606a">${esc(n)}</text>`));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
