/**
 * Host files read through the read-ahead window (src/vfs/read-ahead.ts) give exactly the host's
 * bytes, for any offset and length (within and across windows, at and past the end), and a node
 * looked up after the host changed the file reads the new contents.
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { RegNode, type VfsContext } from '../../src/vfs/node.js';

const dir = mkdtempSync(join(tmpdir(), 'uniprobe-read-ahead-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ctx: VfsContext = { now: () => 0n, charge: () => true, uncharge: () => undefined, nextIno: () => 1n, memDev: 1n, uid: 0, gid: 0 };
const node = (path: string): RegNode => RegNode.fromHost(ctx, path, lstatSync(path, { bigint: true }));

describe('read-ahead of host files', () => {
  const path = join(dir, 'data');
  const bytes = randomBytes(300 * 1024 + 123);
  writeFileSync(path, bytes);

  it('returns the host bytes for random reads, sequential runs and reads past the end', () => {
    const n = node(path);
    const scratch = new Uint8Array(64 * 1024);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(bytes.length + 100), fc.integer({ min: 1, max: 40 * 1024 }), fc.boolean()), { minLength: 1, maxLength: 30 }), (reads) => {
        for (const [off, len, useScratch] of reads) {
          const got = n.read(BigInt(off), len, useScratch ? scratch : undefined);
          expect(Buffer.from(got).equals(bytes.subarray(off, off + len))).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
    // A program reading 4 KiB at a time from the start, through the read(2) buffer.
    const out: Buffer[] = [];
    for (let off = 0; off < bytes.length; off += 4096) out.push(Buffer.from(n.read(BigInt(off), 4096, scratch)));
    expect(Buffer.concat(out).equals(bytes)).toBe(true);
  });

  it('a node looked up after the host rewrote the file reads the new bytes', () => {
    const p = join(dir, 'rewritten');
    writeFileSync(p, 'first version');
    expect(Buffer.from(node(p).read(0n, 5)).toString()).toBe('first');
    writeFileSync(p, 'again version');
    expect(Buffer.from(node(p).read(0n, 5)).toString()).toBe('again');
  });
});
