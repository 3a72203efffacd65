/**
 * Child process of engine-lifetime.test.ts (a fresh process: a worker that already freed memory
 * would hide a leak by reusing it). Opens, maps, runs three nops and closes engines of one target
 * and prints the resident set size after a warm-up and after the churn, in KiB, as JSON.
 * Usage: engine-churn.ts <target> <engines>
 */
import { readFileSync } from 'node:fs';
import { openEngine } from '../../arch/engine.js';
import { archFor } from '../../arch/index.js';
import type { Target } from '../../arch/types.js';
import { UC_PROT } from '../../src/emu/unicorn.js';

const NOP: Record<Target, number[]> = {
  x86_64: [0x90],
  i386: [0x90],
  ppc32: [0x60, 0, 0, 0],
  ppc64: [0x60, 0, 0, 0],
  sparc64: [0x01, 0, 0, 0],
};
const rssKiB = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
const TEXT = 0x400000n;
const target = process.argv[2] as Target;
const arch = archFor(target);
if (!arch) throw new Error(`engine-churn: unknown target ${target}`);
const text = Uint8Array.from({ length: 4 * NOP[target].length }, (_, i) => NOP[target][i % NOP[target].length]!);

function churn(n: number): void {
  for (let i = 0; i < n; i++) {
    const e = openEngine(arch!, { translationBufferBytes: 1 << 20 });
    try {
      e.memMap(TEXT, 0x10000, UC_PROT.ALL);
      e.memWrite(TEXT, text);
      e.hookCode(() => {});
      e.start(TEXT, 0n, 3);
    } finally {
      e.close();
    }
  }
}

const n = Number(process.argv[3] ?? 300);
churn(30);
const before = rssKiB();
churn(n);
console.log(JSON.stringify({ target, engines: n, before, after: rssKiB() }));
