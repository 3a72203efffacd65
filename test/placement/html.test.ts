/**
 * The HTML placement report: one self-contained file (nothing loaded from elsewhere), fib and main
 * on the five targets, every row coloured by the mode explain gives, its slot bytes or the
 * kernel's reason written out, hits from a verify run in a log-scaled heat column — and, in a
 * real browser (Debian's chromium driven by playwright-core) at 1400×900: no horizontal
 * scrollbar, the slot bytes and reasons are visible text, and the heat bars' widths and colours
 * follow log(1 + hits).
 * The browser part is skipped where no chromium is installed, except under CI, where that fails;
 * `npm test` installs Debian's chromium (scripts/ensure-deps.mjs --test-tools).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { explain, modeLabel, rowJson } from '../../src/placement/explain.js';
import { logHeat } from '../../src/placement/html.js';
import { verify } from '../../src/verify/verify.js';
import { repoRoot, skipWithout, supported } from '../helpers.js';
import type { Target } from '../../arch/types.js';

const bin = join(repoRoot, 'bin', 'uniprobe.mjs');
const dir = mkdtempSync(join(tmpdir(), 'uniprobe-html-'));
const out = join(dir, 'fib.html');
const kout = join(dir, 'kernel.html');
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function uniprobe(...args: string[]): string {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 240_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

let html = '';
let khtml = '';
beforeAll(() => {
  expect(uniprobe('explain', 'fixtures/x86_64/fib-nolibc', 'fib', 'main', '--html', out)).toBe(`wrote ${out}: 2 function(s) on ${supported.size} target(s)\n`);
  html = readFileSync(out, 'utf8');
  // do_exit has instructions the kernel refuses on ppc32, ppc64 and sparc64 (trap instructions).
  expect(uniprobe('explain', 'fixtures/x86_64/fib-nolibc', '--kernel', 'do_exit', '--html', kout)).toBe(`wrote ${kout}: 1 function(s) on ${supported.size} target(s)\n`);
  khtml = readFileSync(kout, 'utf8');
}, 480_000);

/** The part of `page` for one target of one function section. */
function column(page: string, fn: string, t: Target): string {
  const sec = page.slice(page.indexOf(`<h2 id="fn-${fn}">`));
  return sec.slice(sec.indexOf(`data-target="${t}"`)).split('</table>')[0]!;
}

/** What the text output says per row (slot bytes or errno and reason), from explain's JSON rows. */
function expectedDetail(r: Record<string, unknown>): string[] {
  if (r.allowed) return r.slot ? [`${r.slot}`] : [];
  return [`-${r.errname}: ${r.reason}`];
}

describe('explain --html', () => {
  it('is self-contained: no scripts, no links, no external resources', () => {
    for (const page of [html, khtml]) {
      expect(page.startsWith('<!doctype html>')).toBe(true);
      expect(page).not.toMatch(/<script|<link|src=|url\(|https?:/i);
    }
  });

  it('has fib and main on every target; each row is coloured by the mode explain gives, carries the hits of a verify run and writes out the slot bytes', async () => {
    for (const fn of ['fib', 'main']) {
      const sec = html.slice(html.indexOf(`<h2 id="fn-${fn}">`)).split('<h2')[1]!;
      const cols = [...sec.matchAll(/<div class="col" data-target="([\w]+)">/g)].map((m) => m[1]);
      expect(cols).toEqual([...supported]);
    }
    for (const t of supported as Set<Target>) {
      const path = `${repoRoot}/fixtures/${t}/fib-nolibc`;
      const [doc, run] = await Promise.all([explain(path, { symbols: ['fib', 'main'] }), verify(path, { probes: ['fib', 'main'] })]);
      for (const f of doc.functions) {
        const col = column(html, f.name, t);
        const rows = [...col.matchAll(/<tr data-addr="(0x[0-9a-f]+)"[^>]*>.*?<td class="mode ([a-z]+)[^"]*">.*?<td class="num hits">(\d*)<\/td>.*?<td class="detail">(.*?)<\/td><\/tr>/g)];
        expect(rows.map((m) => m[1])).toEqual(f.rows.map((r) => `0x${r.addr.toString(16)}`));
        expect(rows.map((m) => m[2])).toEqual(f.rows.map(modeLabel));
        const hits = new Map(run.probes.map((p) => [`0x${p.addr.toString(16)}`, p.hits]));
        for (const m of rows) expect(m[3] === '' ? undefined : Number(m[3])).toBe(hits.get(m[1]!));
        f.rows.forEach((r, i) => {
          for (const text of expectedDetail(rowJson(r))) expect(rows[i]![4]).toContain(esc(text));
        });
        expect(col).toContain(run.transparent ? '<span class="ok">transparent</span>' : '<span class="bad">NOT transparent</span>');
      }
    }
  }, 240_000);

  it('--kernel: refused rows write out the errno and the kernel reason explain gives', async () => {
    let refused = 0;
    for (const t of supported as Set<Target>) {
      const doc = await explain(`${repoRoot}/fixtures/${t}/fib-nolibc`, { kernel: true, symbols: ['do_exit'] });
      const col = column(khtml, 'do_exit', t);
      for (const r of doc.functions[0]!.rows.map(rowJson)) {
        for (const text of expectedDetail(r)) expect(col).toContain(esc(text));
        if (!r.allowed) refused++;
      }
    }
    expect(refused).toBeGreaterThanOrEqual(3);
  }, 120_000);

  it('the heat scale is log(1 + hits) / log(1 + hottest), and the legend says so', () => {
    expect(logHeat(0, 100)).toBe(0);
    expect(logHeat(100, 100)).toBe(1);
    expect(logHeat(1, 1)).toBe(1);
    expect(logHeat(9, 99)).toBeCloseTo(0.5, 12); // log 10 / log 100
    expect(logHeat(999, 999_999)).toBeCloseTo(0.5, 12); // log 1000 / log 1000000
    expect(html).toMatch(/heat = hits on a <b>log scale<\/b>/);
  });
});

// (Browser-side callbacks: the DOM types are not in this project's lib, hence `any`.)
describe.skipIf(skipWithout('chromium', CHROMIUM !== undefined))('explain --html in a real browser (chromium), 1400×900', () => {
  async function withPage<T>(file: string, fn: (page: any) => Promise<T>): Promise<T> {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      await page.goto(pathToFileURL(file).href);
      return await fn(page);
    } finally {
      await browser.close();
    }
  }

  it('fits the window (no horizontal scrollbar), shows every slot byte string as visible text, heat bars monotone in log(hits); screenshot', async () => {
    await withPage(out, async (page) => {
      expect(await page.title()).toBe('uniprobe explain: uprobes on fixtures/x86_64/fib-nolibc');
      expect(await page.locator('h2').allTextContents()).toEqual(['fib', 'main']);
      expect(await page.evaluate(() => (globalThis as any).document.scrollingElement.scrollWidth)).toBeLessThanOrEqual(1400);
      const boxes = await page.locator('.col').evaluateAll((els: any[]) => els.map((e) => e.getBoundingClientRect()).map((r: any) => ({ x: r.x as number, right: r.right as number, y: r.y as number })));
      expect(boxes).toHaveLength(2 * supported.size);
      for (const b of boxes as Array<{ right: number }>) expect(b.right).toBeLessThanOrEqual(1400);
      // Targets wrap: in reading order (top to bottom, left to right) they are in target order.
      const order = await page.locator('.col').evaluateAll((els: any[]) => els.map((e) => e.dataset.target as string));
      type Box = { x: number; right: number; y: number };
      const reading = (boxes as Box[]).map((b, i) => ({ ...b, t: (order as string[])[i] })).sort((a, b) => a.y - b.y || a.x - b.x).map((b) => b.t);
      expect(reading).toEqual([...supported, ...supported]);
      // The stylesheet applied: a step cell is yellow, an emulate cell green.
      const bg = (sel: string) => page.locator(sel).first().evaluate((e: any) => (globalThis as any).getComputedStyle(e).backgroundColor as string);
      expect(await bg('td.mode.step')).toBe('rgb(255, 241, 194)');
      expect(await bg('td.mode.emulate')).toBe('rgb(215, 245, 221)');
      // Visible text, not hover text: every slot the explain JSON lists.
      const text: string = await page.evaluate(() => (globalThis as any).document.body.innerText);
      let slots = 0;
      for (const t of supported as Set<Target>) {
        const doc = await explain(`${repoRoot}/fixtures/${t}/fib-nolibc`, { symbols: ['fib', 'main'] });
        for (const f of doc.functions) for (const r of f.rows.map(rowJson)) for (const s of expectedDetail(r)) expect(text).toContain(s), slots++;
      }
      expect(slots).toBeGreaterThan(100);
      // Heat: per column, the bar's rendered width is ∝ log(1 + hits) (the hottest fills the
      // cell), and its colour gets darker as hits grow.
      const cols = await page.locator('.col').evaluateAll((els: any[]) =>
        els.map((col) =>
          [...col.querySelectorAll('tr[data-hits]')].map((tr: any) => {
            const bar = tr.querySelector('.bar');
            const [r, g, b] = ((globalThis as any).getComputedStyle(bar).backgroundColor as string).match(/\d+/g)!.map(Number);
            return { hits: Number(tr.dataset.hits), width: bar.getBoundingClientRect().width as number, cell: tr.querySelector('td.heat').clientWidth as number, light: (Math.max(r!, g!, b!) + Math.min(r!, g!, b!)) / 2 };
          }),
        ),
      );
      let distinct = 0;
      for (const rows of cols as Array<Array<{ hits: number; width: number; cell: number; light: number }>>) {
        expect(rows.length).toBeGreaterThan(10);
        const max = Math.max(...rows.map((r) => r.hits));
        const full = Math.max(...rows.map((r) => r.width));
        for (const r of rows) expect(Math.abs(r.width / full - Math.log(1 + r.hits) / Math.log(1 + max))).toBeLessThan(0.02);
        const sorted = [...rows].sort((a, b) => a.hits - b.hits);
        for (let i = 1; i < sorted.length; i++) {
          const [a, b] = [sorted[i - 1]!, sorted[i]!];
          if (b.hits === a.hits) continue;
          distinct++;
          expect(b.width).toBeGreaterThan(a.width);
          // Colours are whole RGB steps: near-equal counts (1170 and 1177) may share one.
          expect(b.light).toBeLessThanOrEqual(a.light);
          if (Math.log(1 + b.hits) - Math.log(1 + a.hits) > 0.05 * Math.log(1 + max)) expect(b.light).toBeLessThan(a.light);
        }
      }
      expect(distinct).toBeGreaterThan(10);
      const shot = await page.screenshot({ path: join(tmpdir(), 'uniprobe-explain.png'), fullPage: true });
      expect([...shot.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      expect(shot.length).toBeGreaterThan(20_000);
    });
  }, 240_000);

  it('--kernel: the reasons for refused probes are visible text, and the page fits the window', async () => {
    await withPage(kout, async (page) => {
      expect(await page.evaluate(() => (globalThis as any).document.scrollingElement.scrollWidth)).toBeLessThanOrEqual(1400);
      const text: string = await page.evaluate(() => (globalThis as any).document.body.innerText);
      let reasons = 0;
      for (const t of supported as Set<Target>) {
        const doc = await explain(`${repoRoot}/fixtures/${t}/fib-nolibc`, { kernel: true, symbols: ['do_exit'] });
        for (const r of doc.functions[0]!.rows.map(rowJson)) {
          if (r.allowed) continue;
          expect(text).toContain(`-${r.errname}: ${r.reason}`);
          reasons++;
        }
      }
      expect(reasons).toBeGreaterThanOrEqual(3);
    });
  }, 120_000);
});
