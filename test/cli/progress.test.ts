/**
 * The run's progress line: only on a terminal, not in the first second, at most four redraws a
 * second, and erased at the end so the guest's output and the trace stay clean.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { progressLine } from '../../src/cli/progress.js';
import type { Machine } from '../../src/kernel/machine.js';

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { stream: { isTTY, write: (s: string) => (writes.push(s), true) } as unknown as NodeJS.WriteStream, writes };
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
});
