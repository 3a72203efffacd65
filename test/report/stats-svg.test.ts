/**
 * `--stats-svg FILE`: the per-probe chart of a run's kprobe_profile/uprobe_profile counters.
 * The writer on its own (rows in, SVG out), then real runs through the command line, where every
 * number in the SVG must equal what `--stats` printed for the same run, and finally chromium
 * (playwright-core): the file parses and renders as SVG, one hits bar per probe, a misses bar per
 * kprobe event, the drawn lengths in proportion to the counts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { statsSvg } from '../../src/report/stats-svg.js';
import type { ProfileRow } from '../../src/trace/output.js';
import { repoRoot, skipWithout } from '../helpers.js';

const bin = join(repoRoot, 'bin', 'uniprobe.mjs');
const dir = mkdtempSync(join(tmpdir(), 'uniprobe-svg-'));
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

interface SvgProbe {
  event: string;
  flavor: string;
  hits: number;
  misses?: number;
  hitsText: string;
  missesText: string;
  hitsWidth: number;
  missesWidth?: number;
}

/** The probes of an SVG as written: data attributes, the counts drawn as text, the bar lengths. */
function probes(svg: string): SvgProbe[] {
  return [...svg.matchAll(/<g class="probe" data-event="([^"]+)" data-flavor="(\w+)" data-hits="(\d+)"(?: data-misses="(\d+)")?>([\s\S]*?)<\/g>/g)].map((m) => {
    const body = m[5]!;
    const width = (cls: string) => {
      const w = new RegExp(`<rect class="${cls}"[^>]* width="([\\d.]+)"`).exec(body)?.[1];
      return w === undefined ? undefined : Number(w);
    };
    return {
      event: m[1]!,
      flavor: m[2]!,
      hits: Number(m[3]),
      ...(m[4] !== undefined ? { misses: Number(m[4]) } : {}),
      hitsText: /<text class="hits-value"[^>]*>([^<]*)</.exec(body)![1]!,
      missesText: /<text class="misses-value"[^>]*>([^<]*)</.exec(body)![1]!,
      hitsWidth: width('hits')!,
      missesWidth: width('misses'),
    };
  });
}

describe('statsSvg (the writer)', () => {
  const rows: ProfileRow[] = [
    { group: 'kprobes', event: 'w', flavor: 'kprobe', hits: 40, misses: 3 },
    { group: 'kprobes', event: 'r<&>"', flavor: 'kprobe', hits: 10, misses: 12 },
    { group: 'uprobes', event: 'fib', flavor: 'uprobe', path: '/tmp/a&b', hits: 1000, misses: 0 },
  ];
  const svg = statsSvg(rows, { title: 'uniprobe run x <1>' });

  it('one group per probe with its counters; hits for every probe, misses for kprobe events only (uprobes have no miss counter)', () => {
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).not.toMatch(/<script|href=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    const p = probes(svg);
    expect(p.map((x) => x.event)).toEqual(['kprobes/w', 'kprobes/r&lt;&amp;&gt;&quot;', 'uprobes/fib']);
    expect(p.map((x) => [x.hits, x.misses])).toEqual([[40, 3], [10, 12], [1000, undefined]]);
    expect(p.map((x) => [x.hitsText, x.missesText])).toEqual([['40', '3'], ['10', '12'], ['1000', 'n/a']]);
    expect(svg).toContain('uprobes/fib (uprobe on /tmp/a&amp;b)');
    expect(svg).toContain('<title>uniprobe run x &lt;1&gt;: hits and misses per probe</title>');
    expect(svg).toContain('Cost per probe: not shown');
  });

  it('bars are linear, each panel against its own largest count', () => {
    const p = probes(svg);
    const full = p[2]!.hitsWidth;
    expect(full).toBeGreaterThan(0);
    expect(p[0]!.hitsWidth / full).toBeCloseTo(40 / 1000, 3);
    expect(p[1]!.hitsWidth / full).toBeCloseTo(10 / 1000, 3);
    expect(p[0]!.missesWidth! / p[1]!.missesWidth!).toBeCloseTo(3 / 12, 3);
    expect(p[1]!.missesWidth).toBe(full); // both panels are PANEL px long at their maximum
    expect(p[2]!.missesWidth).toBeUndefined();
  });

  it('a run without probe events says so; zero counts draw empty bars', () => {
    expect(probes(statsSvg([], { title: 't' }))).toEqual([]);
    expect(statsSvg([], { title: 't' })).toContain('no probe events in this run');
    const z = probes(statsSvg([{ group: 'g', event: 'e', flavor: 'kprobe', hits: 0, misses: 0 }], { title: 't' }));
    expect(z).toEqual([{ event: 'g/e', flavor: 'kprobe', hits: 0, misses: 0, hitsText: '0', missesText: '0', hitsWidth: 0, missesWidth: 0 }]);
  });
});

/** `--stats` text: `# kprobe_profile` rows (event hits misses) and `# uprobe_profile` rows (path event hits). */
function parseStats(text: string): Map<string, { hits: number; misses?: number }> {
  const out = new Map<string, { hits: number; misses?: number }>();
  let section = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('# ')) section = line;
    else if (section.startsWith('# kprobe_profile') && /^ {2}\S/.test(line)) {
      const [event, hits, misses] = line.trim().split(/\s+/);
      out.set(event!, { hits: Number(hits), misses: Number(misses) });
    } else if (section.startsWith('# uprobe_profile') && /^ {2}\S/.test(line)) {
      const [, event, hits] = line.trim().split(/\s+/);
      out.set(event!, { hits: Number(hits) });
    }
  }
  return out;
}

const runs = [
  {
    target: 'x86_64',
    events: ['p:w ksys_write', 'r:wr ksys_write', 'p:f fixtures/x86_64/fib-nolibc:0x1050', 'r:myg/fr fixtures/x86_64/fib-nolibc:0x1050'],
  },
  { target: 'ppc32', events: ['p:w ksys_write', 'r:vw vfs_write', 'p:x do_exit'] },
] as const;

function runWithStats(target: string, events: readonly string[]): { stats: string; svg: string; file: string } {
  const stats = join(dir, `${target}.txt`);
  const file = join(dir, `${target}.svg`);
  const r = spawnSync(process.execPath, [bin, 'run', `fixtures/${target}/fib-nolibc`, ...events.flatMap((e) => ['-e', e]), '--stats', '-o', stats, '--stats-svg', file], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 120_000,
  });
  expect(r.status, r.stderr).toBe(55); // fib-nolibc's own status
  return { stats: readFileSync(stats, 'utf8'), svg: readFileSync(file, 'utf8'), file };
}

const results = new Map<string, { stats: string; svg: string; file: string }>();
describe('uniprobe run --stats-svg', () => {
  beforeAll(() => {
    for (const r of runs) results.set(r.target, runWithStats(r.target, r.events));
  }, 240_000);

  it('every number in the SVG equals what --stats printed for the same run', () => {
    for (const r of runs) {
      const { stats, svg } = results.get(r.target)!;
      const want = parseStats(stats);
      expect(want.size).toBe(r.events.length);
      const got = probes(svg);
      expect(got.map((p) => p.event.split('/')[1])).toEqual([...want.keys()]);
      for (const p of got) {
        const w = want.get(p.event.split('/')[1]!)!;
        expect(p.hits).toBe(w.hits);
        expect(p.hitsText).toBe(String(w.hits));
        expect(p.misses).toBe(w.misses);
        expect(p.missesText).toBe(w.misses === undefined ? 'n/a' : String(w.misses));
      }
      expect(got.some((p) => p.hits > 1)).toBe(true);
    }
  });

  it('a path that cannot be written fails before the program runs', () => {
    const r = spawnSync(process.execPath, [bin, 'run', 'fixtures/x86_64/fib-nolibc', '-e', 'p ksys_write', '--stats-svg', '/nonexistent-dir/x.svg'], { cwd: repoRoot, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('uniprobe: error: /nonexistent-dir/x.svg: cannot open for writing (ENOENT)\n');
  });
});

// (Browser-side callbacks: the DOM types are not in this project's lib, hence `any`.)
describe.skipIf(skipWithout('chromium', CHROMIUM !== undefined))('the --stats-svg chart in a real browser (chromium)', () => {
  it('renders as SVG: one hits bar per probe, one misses bar per kprobe event, drawn lengths in proportion to the counts', async () => {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      for (const r of runs) {
        const { stats, file } = results.get(r.target)!;
        const want = parseStats(stats);
        const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
        await page.goto(pathToFileURL(file).href);
        // Parsed as an SVG document (an XML error would give a parsererror page instead).
        expect(await page.evaluate(() => (globalThis as any).document.documentElement.namespaceURI)).toBe('http://www.w3.org/2000/svg');
        const bars = await page.evaluate(() =>
          [...(globalThis as any).document.querySelectorAll('g.probe')].map((g: any) => ({
            hits: Number(g.dataset.hits),
            hitsBar: g.querySelector('rect.hits').getBoundingClientRect().width as number,
            missesBar: (g.querySelector('rect.misses')?.getBoundingClientRect().width as number | undefined) ?? null,
            text: g.textContent as string,
          })),
        );
        expect(bars).toHaveLength(want.size);
        expect(await page.locator('rect.hits').count()).toBe(want.size);
        expect(await page.locator('rect.misses').count()).toBe([...want.values()].filter((w) => w.misses !== undefined).length);
        const max = Math.max(...bars.map((b: { hits: number }) => b.hits));
        const full = Math.max(...bars.map((b: { hitsBar: number }) => b.hitsBar));
        expect(full).toBeGreaterThan(100);
        for (const b of bars as Array<{ hits: number; hitsBar: number; text: string }>) {
          expect(Math.abs(b.hitsBar / full - b.hits / max)).toBeLessThan(0.01);
          expect(b.text).toContain(String(b.hits));
        }
        await page.close();
      }
    } finally {
      await browser.close();
    }
  }, 120_000);
});
