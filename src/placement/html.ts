/**
 * The placement report as one self-contained HTML file: for each function, its placement map on
 * every target side by side (the same C function compiled for five instruction sets), rows
 * coloured by mode, and a heat column with the hits of a run (from `verify`, which also says
 * whether that run was transparent). No scripts, fonts or images from elsewhere: the file can be
 * mailed or archived as it is.
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

const CSS = `
body { font: 13px/1.35 system-ui, sans-serif; margin: 1.5em; color: #1b1f24; background: #fff; }
h1 { font-size: 1.4em; margin: 0 0 .3em; } h2 { font-size: 1.15em; margin: 1.6em 0 .5em; }
.legend span, td.mode { padding: 0 .4em; border-radius: 3px; }
.emulate { background: #d7f5dd; } .boost { background: #d6e9ff; } .step { background: #fff1c2; }
.refused { background: #ffd6d6; } .warn { outline: 2px dashed #c0392b; }
.grid { display: grid; gap: 1em; align-items: start; }
.col { border: 1px solid #d0d7de; border-radius: 6px; overflow: hidden; }
.col h3 { margin: 0; padding: .4em .6em; font-size: 1em; background: #f6f8fa; border-bottom: 1px solid #d0d7de; }
.col .sum { padding: .3em .6em; color: #57606a; font-size: .9em; }
table { border-collapse: collapse; width: 100%; } td, th { padding: 1px .4em; white-space: nowrap; text-align: left; }
th { font-weight: 600; color: #57606a; border-bottom: 1px solid #d0d7de; }
td.code { font-family: ui-monospace, monospace; } td.num { text-align: right; font-family: ui-monospace, monospace; }
td.heat { width: 5em; } .bar { height: .8em; background: #e8590c; border-radius: 2px; }
.ok { color: #1a7f37; font-weight: 600; } .bad { color: #cf222e; font-weight: 600; }
`;

function rowTitle(r: Placement): string {
  const v = r.verdict;
  const parts = v.ok ? [`${v.mode}`, v.slot ? `slot: ${hexBytes(v.slot)}` : 'no slot', `cost: ${v.cost.crossings} crossings, ${v.cost.slotInsns} slot insns`] : [`refused -${errnoLabel(v.errno)}: ${v.reason}`];
  if (r.warning) parts.push(`warning: ${r.warning}`);
  return parts.join(' — ');
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
    ? ` · run: <span class="${col.run.transparent ? 'ok' : 'bad'}">${col.run.transparent ? 'transparent' : 'NOT transparent'}</span>`
    : '';
  const rows = f.rows
    .map((r) => {
      const m = modeLabel(r);
      const h = hits.get(r.addr);
      const v = r.verdict;
      const cost = v.ok ? `${v.cost.crossings}/${v.cost.slotInsns}` : `-${errnoLabel(v.errno)}`;
      const bar = h ? `<div class="bar" style="width:${Math.max(4, Math.round((100 * h) / max))}%"></div>` : '';
      return `<tr data-addr="${hex(r.addr)}" title="${esc(rowTitle(r))}"><td class="code">+0x${(r.addr - f.start).toString(16)}</td><td class="code">${esc(r.text)}</td><td class="mode ${m}${r.warning ? ' warn' : ''}">${m}</td><td class="num">${cost}</td><td class="num hits">${h ?? ''}</td><td class="heat">${bar}</td></tr>`;
    })
    .join('\n');
  const sum = [...counts].map(([k, n]) => `${n} ${k}`).join(', ');
  return `<div class="col" data-target="${target}"><h3>${target} <span class="sum">${hex(f.start)}, ${f.size} bytes</span></h3><div class="sum">${f.rows.length} instructions: ${sum}${run}</div>
<table><thead><tr><th>off</th><th>instruction</th><th>placement</th><th>cost</th><th>hits</th><th>heat</th></tr></thead><tbody>
${rows}
</tbody></table></div>`;
}

/**
 * The report: `columns` by target (one ELF per target); `functions` = the functions shown, each
 * as one row of side-by-side columns.
 */
export function explainHtml(title: string, functions: readonly string[], columns: ReadonlyMap<Target, HtmlColumn>): string {
  const targets = [...columns.keys()];
  const kind = [...columns.values()][0]?.doc.kind ?? 'uprobe';
  const sections = functions
    .map((name) => `<h2 id="fn-${esc(name)}">${esc(name)}</h2>\n<div class="grid" style="grid-template-columns: repeat(${targets.length}, max-content)">\n${targets.map((t) => column(t, name, columns.get(t))).join('\n')}\n</div>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${CSS}</style></head>
<body>
<h1>${esc(title)}</h1>
<p>${kind === 'uprobe' ? 'uprobes' : 'kprobes (guest kernel)'} · cost = host crossings / guest instructions in the slot per hit · hits = a run with a probe on every instruction (uniprobe verify) ·
<span class="legend"><span class="emulate">emulate</span> <span class="boost">boost</span> <span class="step">step</span> <span class="refused">refused</span> <span class="warn">warning</span></span> · hover a row for the slot bytes or the kernel's reason</p>
${sections}
</body></html>
`;
}
