/**
 * The one progress line of the long commands: only on a terminal, not in the first second, at
 * most four redraws a second, erased at the end and before any other write to its stream (a
 * warning, an error), so no message ever starts on the progress line's row.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { bar, progressLine } from '../../src/cli/progress.js';
import type { Machine } from '../../src/kernel/machine.js';

function fakeStream(isTTY: boolean, columns?: number) {
  const writes: string[] = [];
  return { stream: { isTTY, columns, write: (s: string) => (writes.push(s), true) } as unknown as NodeJS.WriteStream, writes };
}
const machine = (insns: number, live: number) => ({ insns, processes: Array.from({ length: live + 1 }, (_, i) => ({ zombie: i === live })) }) as unknown as Machine;

describe('progress line', () => {
  afterEach(() => vi.useRealTimers());

  it('is off when stderr is not a terminal or when disabled', () => {
    expect(progressLine(fakeStream(false).stream, true)).toBeUndefined();
    expect(progressLine(fakeStream(true).stream, false)).toBeUndefined();
  });

  it('waits a second, redraws at most every 250 ms, erases itself at the end', () => {
    vi.useFakeTimers();
    vi.setSystemTime(0);
    const { stream, writes } = fakeStream(true);
    const p = progressLine(stream, true)!;
    p.tick(machine(5, 1));
    vi.setSystemTime(999);
    p.tick(machine(5, 1));
    expect(writes).toEqual([]);
    vi.setSystemTime(1000);
    p.tick(machine(12_345_678, 2));
    expect(writes).toEqual(['\r\x1b[Kuniprobe: 12.3M guest instructions, 2 processes running, 1.0 s']);
    vi.setSystemTime(1100);
    p.tick(machine(13_000_000, 1));
    expect(writes).toHaveLength(1);
    vi.setSystemTime(1250);
    p.tick(machine(999, 1));
    expect(writes[1]).toBe('\r\x1b[Kuniprobe: 999 guest instructions, 1 process running, 1.3 s');
    p.done();
    expect(writes[2]).toBe('\r\x1b[K');
  });

  it('clear() erases a drawn line before other output, and the next tick waits 250 ms to redraw', () => {
    vi.useFakeTimers();
    vi.setSystemTime(0);
    const { stream, writes } = fakeStream(true);
    const p = progressLine(stream, true)!;
    p.clear(); // nothing drawn: nothing to erase
    expect(writes).toEqual([]);
    vi.setSystemTime(1000);
    p.tick(machine(7, 1));
    p.clear();
    expect(writes).toEqual(['\r\x1b[Kuniprobe: 7 guest instructions, 1 process running, 1.0 s', '\r\x1b[K']);
    vi.setSystemTime(1100);
    p.tick(machine(8, 1));
    expect(writes).toHaveLength(2);
    p.done(); // already erased
    expect(writes).toHaveLength(2);
  });

  it('a short run never draws and so erases nothing', () => {
    const { stream, writes } = fakeStream(true);
    const p = progressLine(stream, true)!;
    p.tick(machine(1, 1));
    p.done();
    expect(writes).toEqual([]);
  });

  it('update(): a status function is called only when a redraw is due; the elapsed time is appended', () => {
    vi.useFakeTimers();
    vi.setSystemTime(0);
    const { stream, writes } = fakeStream(true);
    const p = progressLine(stream)!;
    let calls = 0;
    const status = () => `verify x: probed run, ${++calls}`;
    p.update(status);
    vi.setSystemTime(1500);
    p.update(status);
    p.update(status);
    expect(calls).toBe(1);
    expect(writes).toEqual(['\r\x1b[Kuniprobe: verify x: probed run, 1, 1.5 s']);
  });

  it('any other write to the stream first erases a drawn line; the line comes back 250 ms later; done() restores write()', () => {
    vi.useFakeTimers();
    vi.setSystemTime(0);
    const { stream, writes } = fakeStream(true);
    const original = stream.write;
    const p = progressLine(stream)!;
    stream.write('before the first second\n'); // nothing drawn: nothing erased
    vi.setSystemTime(1000);
    p.update('mapping fib');
    stream.write('uniprobe: warning: something\n');
    expect(writes).toEqual(['before the first second\n', '\r\x1b[Kuniprobe: mapping fib, 1.0 s', '\r\x1b[K', 'uniprobe: warning: something\n']);
    vi.setSystemTime(1200);
    p.update('mapping main');
    expect(writes).toHaveLength(4);
    vi.setSystemTime(1250);
    p.update('mapping main');
    expect(writes[4]).toBe('\r\x1b[Kuniprobe: mapping main, 1.3 s');
    p.done();
    expect(writes[5]).toBe('\r\x1b[K');
    expect(stream.write).toBe(original);
    vi.setSystemTime(5000);
    p.update('after done'); // ignored
    stream.write('uniprobe: error: late\n');
    expect(writes.slice(6)).toEqual(['uniprobe: error: late\n']);
  });

  it('is cut to the terminal width, so the erase sequence (which clears one row) erases all of it', () => {
    vi.useFakeTimers();
    vi.setSystemTime(0);
    const { stream, writes } = fakeStream(true, 30);
    const p = progressLine(stream)!;
    vi.setSystemTime(2000);
    p.update('explain --html: sparc64 (5/5): probed run, 12.3M instructions');
    expect(writes).toEqual(['\r\x1b[Kuniprobe: explain --html: sp…']);
    expect(writes[0]!.length - 4).toBe(29);
  });

  it('bar(): items done out of a total', () => {
    expect(bar(0, 4, 'fib x86_64')).toBe('[........................] 0/4 fib x86_64');
    expect(bar(2, 4, 'fib ppc32')).toBe('[############............] 2/4 fib ppc32');
    expect(bar(3, 3, 'x', 4)).toBe('[####] 3/3 x');
  });
});
