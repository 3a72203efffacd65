/**
 * The placement report as one self-contained HTML file: for each function, its placement map on
 * every target (the same C function compiled for five instruction sets), rows coloured by mode,
 * the slot bytes or the kernel's reason written out in every row, and a heat column with the hits
 * of a run (from `verify`, which also says whether that run was transparent). No scripts, fonts
 * or images from elsewhere: the file can be mailed or archived as it is.
 *
 * Layout: a function's targets sit in a grid that wraps (two to a row in a 1,400 px window, one
 * in a narrow one, all five side by side on a very wide screen), and every table is laid out to
 * its column's width (fixed layout, long cells wrap), so the page never needs a horizontal
 * scrollbar. The heat bar is log-scaled: a recursive function's hot instructions run thousands of
 * times more often than its prologue, and on a linear scale everything but the hottest rows would
 * be invisible.
 */
import type { Target } from '../../arch/types.js';
import type { VerifyReport } from '../verify/types.js';
import { modeLabel, type ExplainDoc } from './explain.js';
import { errnoLabel, hexBytes, type Placement } from './placement.js';

/** One target's column: its map, and the run's hits when there was one. */
export interface HtmlColumn {
  readonly doc: ExplainDoc;
  readonly run?: VerifyReport;
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const hex = (a: bigint): string => `0x${a.toString(16)}`;

/**
 * Where `hits` falls between 0 and `max` on a log scale, in (0, 1] for hits ≥ 1: log(1 + hits) /
 * log(1 + max). 1 + hits keeps a single hit visible and the scale defined for max = 1.
 */
export function logHeat(hits: number, max: number): number {
  if (hits <= 0 || max <= 0) return 0;
  return Math.log1p(hits) / Math.log1p(Math.max(hits, max));
}

/** The bar for a row: width and colour both from the log scale (pale orange → deep red). */
function heatBar(hits: number, max: number): string {
  const f = logHeat(hits, max);
  const width = (100 * f).toFixed(1);
  const light = (88 - 48 * f).toFixed(1); // hsl lightness: 88% (1 hit) … 40% (the hottest)
  return `<div class="bar" style="width:${width}%;background:hsl(20, 90%, ${light}%)"></div>`;
}

const CSS = `
body { font: 13px/1.35 system-ui, sans-serif; margin: 1.5em; color: #1b1f24; background: #fff; }
h1 { font-size: 1.4em; margin: 0 0 .3em; overflow-wrap: anywhere; } h2 { font-size: 1.15em; margin: 1.6em 0 .5em; }
p.about { max-width: 110em; }
.legend span, td.mode { padding: 0 .4em; border-radius: 3px; }
.emulate { background: #d7f5dd; } .boost { background: #d6e9ff; } .step { background: #fff1c2; }
.refused { background: #ffd6d6; } .warn { outline: 2px dashed #c0392b; outline-offset: -2px; }
.grid { display: grid; gap: 1em; align-items: start; grid-template-columns: repeat(auto-fit, minmax(min(100%, 600px), 1fr)); }
.col { border: 1px solid #d0d7de; border-radius: 6px; overflow: hidden; min-width: 0; }
.col h3 { margin: 0; padding: .4em .6em; font-size: 1em; background: #f6f8fa; border-bottom: 1px solid #d0d7de; }
.col .sum { padding: .3em .6em; color: #57606a; font-size: .9em; }
.col h3 .sum { padding: 0; font-weight: normal; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
td, th { padding: 1px .4em; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
th { font-weight: 600; color: #57606a; border-bottom: 1px solid #d0d7de; white-space: nowrap; overflow: hidden; overflow-wrap: normal; }
tr + tr td { border-top: 1px solid #f0f2f4; }
td.code, code { font-family: ui-monospace, monospace; font-size: .95em; } td.num { text-align: right; font-family: ui-monospace, monospace; }
td.heat { padding-top: .3em; } .bar { height: .8em; border-radius: 2px; }
td.detail { color: #1b1f24; } td.detail .why { color: #57606a; } td.detail .warntext { color: #c0392b; }
.ok { color: #1a7f37; font-weight: 600; } .bad { color: #cf222e; font-weight: 600; }
col.off { width: 4.2em; } col.insn { width: 21%; } col.mode { width: 6.9em; } col.cost { width: 3.4em; }
col.hits { width: 3.8em; } col.heat { width: 4em; }
`;

/** Why the row runs as it does (or is refused), written out: the slot bytes and the reason. */
function detail(r: Placement): string {
  const v = r.verdict;
  const parts: string[] = [];
  if (!v.ok) parts.push(`<span class="why">-${errnoLabel(v.errno)}: ${esc(v.reason)}</span>`);
  else {
    if (v.slot) parts.push(`slot <code class="slot">${hexBytes(v.slot)}</code>`);
    const how = { emulate: 'emulated, no slot', boost: 'copy + jump back', step: 'copy + step trap', optimize: 'jump to a detour, no trap' }[v.mode];
    parts.push(`<span class="why">${how}</span>`);
    if (v.modeWithPostHandler && v.modeWithPostHandler !== v.mode) parts.push(`<span class="why">(${v.modeWithPostHandler} if a post handler)</span>`);
  }
  if (r.warning) parts.push(`<span class="warntext">warning: ${esc(r.warning)}</span>`);
  return parts.join(' ');
}

function column(target: Target, name: string, col: HtmlColumn | undefined): string {
  if (!col) return `<div class="col" data-target="${target}"><h3>${target}</h3><div class="sum">no such program for this target</div></div>`;
  const f = col.doc.functions.find((x) => x.name === name);
  if (!f) return `<div class="col" data-target="${target}"><h3>${target}</h3><div class="sum">no function ${esc(name)}</div></div>`;
  const hits = new Map((col.run?.probes ?? []).map((p) => [p.addr, p.hits]));
  const max = Math.max(1, ...f.rows.map((r) => hits.get(r.addr) ?? 0));
  const counts = new Map<string, number>();
  for (const r of f.rows) counts.set(modeLabel(r), (counts.get(modeLabel(r)) ?? 0) + 1);
  const run = col.run
    ? ` · run: <span class="${col.run.transparent ? 'ok' : 'bad'}">${col.run.transparent ? 'transparent' : 'NOT transparent'}</span>, hottest ${max} hits`
    : '';
  // No run (kprobes, --no-run): no hits or heat columns, more room for the slot bytes and reasons.
  const rows = f.rows
    .map((r) => {
      const m = modeLabel(r);
      const h = hits.get(r.addr);
      const v = r.verdict;
      const cost = v.ok ? `${v.cost.crossings}/${v.cost.slotInsns}` : '-';
      const off = r.fileOffset !== undefined ? ` title="file offset ${hex(r.fileOffset)}"` : '';
      const heat = col.run ? `<td class="num hits">${h ?? ''}</td><td class="heat">${h ? heatBar(h, max) : ''}</td>` : '';
      return `<tr data-addr="${hex(r.addr)}"${h ? ` data-hits="${h}"` : ''}><td class="code"${off}>+0x${(r.addr - f.start).toString(16)}</td><td class="code">${esc(r.text)}</td><td class="mode ${m}${r.warning ? ' warn' : ''}">${m}</td><td class="num">${cost}</td>${heat}<td class="detail">${detail(r)}</td></tr>`;
    })
    .join('\n');
  const sum = [...counts].map(([k, n]) => `${n} ${k}`).join(', ');
  return `<div class="col" data-target="${target}"><h3>${target} <span class="sum">${hex(f.start)}, ${f.size} bytes</span></h3><div class="sum">${f.rows.length} instructions: ${sum}${run}</div>
<table><colgroup><col class="off"><col class="insn"><col class="mode"><col class="cost">${col.run ? '<col class="hits"><col class="heat">' : ''}<col class="detail"></colgroup>
<thead><tr><th>off</th><th>instruction</th><th>placement</th><th>cost</th>${col.run ? '<th>hits</th><th>heat</th>' : ''}<th>slot bytes / reason</th></tr></thead><tbody>
${rows}
</tbody></table></div>`;
}

const HEAT_LEGEND = ` hits = a run with a probe on every instruction (uniprobe verify) ·
heat = hits on a <b>log scale</b>: bar width and colour ∝ log(1 + hits) / log(1 + the function's hottest) ·`;

/**
 * The report: `columns` by target (one ELF per target); `functions` = the functions shown, each
 * a section with one block per target.
 */
export function explainHtml(title: string, functions: readonly string[], columns: ReadonlyMap<Target, HtmlColumn>): string {
  const targets = [...columns.keys()];
  const kind = [...columns.values()][0]?.doc.kind ?? 'uprobe';
  const runs = [...columns.values()].some((c) => c.run);
  const sections = functions
    .map((name) => `<h2 id="fn-${esc(name)}">${esc(name)}</h2>\n<div class="grid">\n${targets.map((t) => column(t, name, columns.get(t))).join('\n')}\n</div>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${esc(title)}</title><style>${CSS}</style></head>
<body>
<h1>${esc(title)}</h1>
<p class="about">${kind === 'uprobe' ? 'uprobes' : 'kprobes (guest kernel)'} · cost = host crossings / guest instructions in the slot per hit ·${runs ? HEAT_LEGEND : ''}
<span class="legend"><span class="emulate">emulate</span> the handler performs the instruction <span class="boost">boost</span> slot copy + jump back <span class="step">step</span> slot copy + step trap <span class="refused">refused</span> with the kernel's errno and reason <span class="warn">warning</span></span></p>
${sections}
</body></html>
`;
}
