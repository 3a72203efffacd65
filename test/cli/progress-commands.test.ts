/**
 * The progress line of the long commands, end to end in this process: `verify`, `explain`,
 * `explain --html`, `scenario` and `run` with stderr made a (fake) terminal. Every write to stderr and every
 * write to a file descriptor (stdout listings, the guest's output) goes to one log, in order, so
 * the tests can see that the line appeared and that it was erased before anything else was
 * written: the verifier's report, explain's table, an error, the --max-insns message.
 *
 * Time is not measured: Date.now advances 300 ms per call, so the first-second delay and the
 * 250 ms redraw limit pass after a few calls whatever the machine's load.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { repoRoot } from '../helpers.js';

const log: Array<{ fd: number; text: string }> = [];

vi.mock('../../src/host-io.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/host-io.js')>();
  return { ...real, writeAll: (fd: number, bytes: Uint8Array) => void log.push({ fd, text: Buffer.from(bytes).toString('utf8') }) };
});

const { main } = await import('../../src/cli/main.js');

const ERASE = '\r\x1b[K';
const stderr = process.stderr as unknown as { isTTY?: boolean; columns?: number; write: unknown };
let saved: { isTTY?: boolean; columns?: number; write: unknown };
let cwd: string;

beforeEach(() => {
  log.length = 0;
  saved = { isTTY: stderr.isTTY, columns: stderr.columns, write: stderr.write };
  stderr.isTTY = true;
  stderr.columns = undefined;
  vi.stubEnv('FORCE_COLOR', '0'); // a terminal gets colour; the messages are compared as text
  stderr.write = (s: string | Uint8Array) => (log.push({ fd: 2, text: String(s) }), true);
  let t = Date.now();
  vi.spyOn(Date, 'now').mockImplementation(() => (t += 300));
  cwd = process.cwd();
  process.chdir(repoRoot);
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  Object.assign(stderr, saved);
  process.chdir(cwd);
});

/** What the command wrote to stderr besides the progress line: the reason of an unexpected status. */
const errorText = (): string => log.filter((w) => w.fd === 2 && !w.text.startsWith(ERASE)).map((w) => w.text).join('');

/** Indices of progress-line draws (those matching `re`) and of erases, and everything else. */
function shape(re: RegExp) {
  const draws = log.flatMap((w, i) => (w.fd === 2 && w.text.startsWith(ERASE) && w.text.length > ERASE.length ? [i] : []));
  for (const i of draws) expect(log[i]!.text.slice(ERASE.length)).toMatch(re);
  const erases = log.flatMap((w, i) => (w.fd === 2 && w.text === ERASE ? [i] : []));
  const others = log.flatMap((w, i) => (w.text.startsWith(ERASE) ? [] : [i]));
  return { draws, erases, others };
}

/** After every draw, the next write is another draw or an erase: no message ever follows the line directly. */
function expectErasedBeforeOtherOutput(draws: number[]): void {
  for (const i of draws) expect(log[i + 1]?.text.startsWith(ERASE), `write after draw ${i}: ${JSON.stringify(log[i + 1])}`).toBe(true);
}

describe('progress line of the long commands (fake terminal)', () => {
  it('verify: the phase and instruction count are shown, then erased before the report', async () => {
    const status = await main(['verify', 'fixtures/x86_64/fib-nolibc', '--probes', 'fib']);
    expect(status, errorText()).toBe(0);
    const { draws, erases, others } = shape(/^uniprobe: verify fixtures\/x86_64\/fib-nolibc: ((unprobed|probed) run, \d+(\.\d)?M? instructions|registering probes \d+\/\d+|comparing), \d+\.\d s$/);
    expect(draws.length).toBeGreaterThan(0);
    const seen = (re: RegExp) => log.some((w) => re.test(w.text));
    expect(seen(/: unprobed run, \d+ instructions/) && seen(/: probed run, \d+ instructions/) && seen(/: registering probes 0\/\d+/)).toBe(true);
    expectErasedBeforeOtherOutput(draws);
    // The report (stdout) comes after the last erase; nothing else went to stderr.
    const report = others.filter((i) => log[i]!.fd === 1);
    expect(report.length).toBeGreaterThan(3);
    expect(Math.min(...report)).toBeGreaterThan(Math.max(...erases));
    expect(log.at(-1)!.text).toBe('TRANSPARENT\n');
    expect(others.filter((i) => log[i]!.fd === 2)).toEqual([]);
  }, 120_000);

  it('scenario: the seeds swept so far and the findings, erased before the report', async () => {
    const status = await main(['scenario', 'notifier-alloc', '--variant', 'fixed', '--seeds', '8']);
    expect(status, errorText()).toBe(0);
    const { draws, erases, others } = shape(/^uniprobe: scenario notifier-alloc: \[[#.]+\] [0-7]\/8 seed [1-8], 0 found, \d+\.\d s$/);
    expect(draws.length).toBeGreaterThan(0);
    expectErasedBeforeOtherOutput(draws);
    const report = others.filter((i) => log[i]!.fd === 1);
    expect(report.length).toBeGreaterThan(0);
    expect(Math.min(...report)).toBeGreaterThan(Math.max(...erases));
  }, 120_000);

  it('explain: one update per function mapped, erased before the table', async () => {
    expect(await main(['explain', 'fixtures/x86_64/fib-nolibc'])).toBe(0);
    const { draws, erases, others } = shape(/^uniprobe: explain: mapping \w+ \(\d+\/\d+\), \d+\.\d s$/);
    expect(draws.length).toBeGreaterThan(1);
    expectErasedBeforeOtherOutput(draws);
    expect(Math.min(...others)).toBeGreaterThan(Math.max(...erases));
    expect(log[others[0]!]!.text).toMatch(/^# uprobes on fixtures\/x86_64\/fib-nolibc/);
  }, 120_000);

  it('explain --html: the error that ends a command midway starts on a line of its own', async () => {
    const status = await main(['explain', 'fixtures/x86_64/fib-nolibc', '--no-run', '--html', '/nonexistent-dir/report.html']);
    expect(status).toBe(1);
    const { draws } = shape(/^uniprobe: explain --html: \w+ \(\d\/\d\): mapping \w+ \(\d+\/\d+\), \d+\.\d s$/);
    expect(draws.length).toBeGreaterThan(1);
    expectErasedBeforeOtherOutput(draws);
    expect(log.at(-2)!.text).toBe(ERASE);
    expect(log.at(-1)!.text).toBe('uniprobe: error: /nonexistent-dir/report.html: cannot write (ENOENT)\n');
  }, 120_000);

  it('run: the --max-insns message is not run into the progress line (issue 18: "…12.5 suniprobe: stopped after…")', async () => {
    const status = await main(['run', 'fixtures/x86_64/spin-nolibc', '--max-insns', '40000000']);
    expect(status, errorText()).toBe(124);
    const { draws } = shape(/^uniprobe: [\d.]+M? guest instructions, 1 process running, \d+\.\d s$/);
    expect(draws.length).toBeGreaterThan(0);
    expectErasedBeforeOtherOutput(draws);
    const stop = log.findIndex((w) => w.text.startsWith('uniprobe: stopped after'));
    expect(stop).toBeGreaterThan(draws[0]!);
    expect(log[stop - 1]!.text).toBe(ERASE);
    expect(log.at(-1)!.text === ERASE || !log.at(-1)!.text.startsWith(ERASE)).toBe(true);
  }, 120_000);
});
