/** Pipe semantics as pipe(7) and fs/pipe.c define them. */
import { describe, expect, it } from 'vitest';
import { BLOCK, PIPE_BUF, PIPE_DEF_CAPACITY, Pipe } from '../../src/vfs/pipe.js';
import { E } from '../../src/kernel/errno.js';

function pipe(): Pipe {
  const p = new Pipe();
  p.open('read');
  p.open('write');
  return p;
}

describe('pipes (pipe(7))', () => {
  it('uses Linux constants: PIPE_BUF 4096, default capacity 65536', () => {
    expect(PIPE_BUF).toBe(4096);
    expect(new Pipe().capacity).toBe(PIPE_DEF_CAPACITY);
    expect(PIPE_DEF_CAPACITY).toBe(16 * 4096);
  });

  it('reads what is there, in order, across writes', () => {
    const p = pipe();
    p.write(Buffer.from('hello '), false);
    p.write(Buffer.from('world'), false);
    expect(Buffer.from(p.read(8, false) as Uint8Array).toString()).toBe('hello wo');
    expect(Buffer.from(p.read(100, false) as Uint8Array).toString()).toBe('rld');
  });

  it('an empty pipe blocks a reader while a writer exists, EAGAIN under O_NONBLOCK, EOF once the last writer is gone', () => {
    const p = pipe();
    expect(p.read(1, false)).toBe(BLOCK);
    expect(p.read(1, true)).toBe(-E.EAGAIN);
    let woken = 0;
    p.onChange(() => woken++);
    p.close('write');
    expect(woken).toBe(1);
    expect((p.read(1, false) as Uint8Array).length).toBe(0);
  });

  it('a write with no reader fails with EPIPE and raises SIGPIPE', () => {
    const p = pipe();
    p.close('read');
    expect(p.write(Uint8Array.of(1), false)).toEqual({ result: -E.EPIPE, sigpipe: true });
  });

  it('writes of at most PIPE_BUF bytes are atomic: they wait for room for all of it', () => {
    const p = pipe();
    expect(p.write(new Uint8Array(PIPE_DEF_CAPACITY - 100), false)).toEqual({ result: PIPE_DEF_CAPACITY - 100, sigpipe: false });
    expect(p.write(new Uint8Array(200), false)).toEqual({ block: BLOCK, done: 0 });
    expect(p.available).toBe(PIPE_DEF_CAPACITY - 100); // nothing of it went in
    expect(p.write(new Uint8Array(200), true)).toEqual({ result: -E.EAGAIN, sigpipe: false });
    p.read(100, false);
    expect(p.write(new Uint8Array(200), false)).toEqual({ result: 200, sigpipe: false });
  });

  it('larger writes are split: what fits goes in, the writer waits for the rest (O_NONBLOCK returns the partial count)', () => {
    const p = pipe();
    const big = new Uint8Array(PIPE_DEF_CAPACITY + 10).map((_, i) => i & 255);
    const r = p.write(big, false);
    expect(r).toEqual({ block: BLOCK, done: PIPE_DEF_CAPACITY });
    const first = p.read(PIPE_DEF_CAPACITY, false) as Uint8Array;
    expect(first.length).toBe(PIPE_DEF_CAPACITY);
    expect(p.write(big, false, PIPE_DEF_CAPACITY)).toEqual({ result: PIPE_DEF_CAPACITY + 10, sigpipe: false });
    expect([...(p.read(10, false) as Uint8Array)]).toEqual([...big.subarray(PIPE_DEF_CAPACITY)]);
    const q = pipe();
    expect(q.write(big, true)).toEqual({ result: PIPE_DEF_CAPACITY, sigpipe: false });
  });

  it('a blocked writer whose reader goes away returns what it wrote and gets SIGPIPE', () => {
    const p = pipe();
    const r = p.write(new Uint8Array(PIPE_DEF_CAPACITY + 1), false) as { done: number };
    p.close('read');
    expect(p.write(new Uint8Array(PIPE_DEF_CAPACITY + 1), false, r.done)).toEqual({ result: PIPE_DEF_CAPACITY, sigpipe: true });
  });
});
