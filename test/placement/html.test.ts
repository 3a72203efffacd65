/**
 * The HTML placement report: one self-contained file (nothing loaded from elsewhere), fib on the
 * five targets side by side, every row coloured by the mode explain gives, hits from a verify run
 * in the heat column — and, in a real browser (Debian's chromium driven by playwright-core), the
 * page loads, shows that content, renders the colours, and takes a screenshot.
 * The browser part is skipped where no chromium is installed, except under CI, where that fails;
 * `npm test` installs Debian's chromium (scripts/ensure-deps.mjs --test-tools).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { explain, modeLabel } from '../../src/placement/explain.js';
import { verify } from '../../src/verify/verify.js';
import { repoRoot, skipWithout, supported } from '../helpers.js';
import type { Target } from '../../arch/types.js';

const bin = join(repoRoot, 'bin', 'uniprobe.mjs');
const out = join(mkdtempSync(join(tmpdir(), 'uniprobe-html-')), 'fib.html');
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

let html = '';
beforeAll(() => {
  const r = spawnSync(process.execPath, [bin, 'explain', 'fixtures/x86_64/fib-nolibc', 'fib', '--html', out], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toBe(`wrote ${out}: 1 function(s) on ${supported.size} target(s)\n`);
  html = readFileSync(out, 'utf8');
}, 120_000);

describe('explain --html', () => {
  it('is self-contained: no scripts, no links, no external resources', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script|<link|src=|url\(|https?:/i);
  });

  it('has fib on every target side by side; each row is coloured by the mode explain gives and carries the hits of a verify run', async () => {
    const cols = [...html.matchAll(/<div class="col" data-target="([\w]+)">/g)].map((m) => m[1]);
    expect(cols).toEqual([...supported]);
    for (const t of supported as Set<Target>) {
      const path = `${repoRoot}/fixtures/${t}/fib-nolibc`;
      const [doc, run] = await Promise.all([explain(path, { symbols: ['fib'] }), verify(path, { probes: ['fib'] })]);
      const col = html.slice(html.indexOf(`data-target="${t}"`)).split('</table>')[0]!;
      const rows = [...col.matchAll(/<tr data-addr="(0x[0-9a-f]+)"[^>]*>.*?<td class="mode ([a-z]+)[^"]*">.*?<td class="num hits">(\d*)<\/td>/g)];
      expect(rows.map((m) => m[1])).toEqual(doc.functions[0]!.rows.map((r) => `0x${r.addr.toString(16)}`));
      expect(rows.map((m) => m[2])).toEqual(doc.functions[0]!.rows.map(modeLabel));
      const hits = new Map(run.probes.map((p) => [`0x${p.addr.toString(16)}`, p.hits]));
      for (const m of rows) expect(m[3] === '' ? undefined : Number(m[3])).toBe(hits.get(m[1]!));
      expect(col).toContain(run.transparent ? '<span class="ok">transparent</span>' : '<span class="bad">NOT transparent</span>');
    }
  }, 120_000);
});

describe.skipIf(skipWithout('chromium', CHROMIUM !== undefined))('explain --html in a real browser (chromium)', () => {
  it('loads, shows five columns with fib, renders the mode colours and heat bars; screenshot', async () => {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1800, height: 1000 } });
      await page.goto(pathToFileURL(out).href);
      expect(await page.title()).toBe('uniprobe explain: uprobes on fixtures/x86_64/fib-nolibc');
      expect(await page.locator('h2').allTextContents()).toEqual(['fib']);
      // (Browser-side callbacks: the DOM types are not in this project's lib, hence `any`.)
      const targets = await page.locator('.col').evaluateAll((els: any[]) => els.map((e) => e.dataset.target as string));
      expect(targets).toEqual([...supported]);
      // Side by side: every column starts on the same line, left to right.
      const boxes = await page.locator('.col').evaluateAll((els: any[]) => els.map((e) => e.getBoundingClientRect()).map((r: any) => ({ x: r.x as number, y: r.y as number })));
      expect(new Set(boxes.map((b) => Math.round(b.y))).size).toBe(1);
      expect(boxes.map((b) => b.x)).toEqual([...boxes.map((b) => b.x)].sort((a, b) => a - b));
      // The stylesheet applied: a step cell is yellow, an emulate cell green.
      const bg = (sel: string) => page.locator(sel).first().evaluate((e: any) => (globalThis as any).getComputedStyle(e).backgroundColor as string);
      expect(await bg('td.mode.step')).toBe('rgb(255, 241, 194)');
      expect(await bg('td.mode.emulate')).toBe('rgb(215, 245, 221)');
      // The heat column has bars, the hottest as wide as its cell.
      const widths = await page.locator('.bar').evaluateAll((els: any[]) => els.map((e) => e.style.width as string));
      expect(widths.length).toBeGreaterThan(20);
      expect(widths).toContain('100%');
      const shot = await page.screenshot({ path: join(tmpdir(), 'uniprobe-explain.png'), fullPage: true });
      expect([...shot.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      expect(shot.length).toBeGreaterThan(20_000);
    } finally {
      await browser.close();
    }
  }, 120_000);
});
