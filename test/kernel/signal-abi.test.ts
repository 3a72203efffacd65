/**
 * Each target's signal ABI tables (arch/<family>/signal*.ts) against the kernel's own uapi
 * headers for that target (Debian's linux-libc-dev-<arch>-cross): signal numbers, sa_flags bits,
 * MINSIGSTKSZ, rt_sigprocmask's `how`; and what the generic core makes of sparc's renumbering
 * (a user sigset and sa_flags round-trip through the generic numbering).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kernelHeaders, preprocess } from './kernel-headers.js';
import { skipWithout } from '../helpers.js';
import { archFor } from '../../arch/index.js';
import type { SaFlagBits, SignalName, Target } from '../../arch/types.js';
import { GSIG } from '../../src/kernel/signal/numbers.js';
import { SignalNumbering } from '../../src/kernel/signal/numbering.js';

/** `#define NAME value` with C suffixes dropped and aliases (#define SA_ONSTACK _SV_SSTACK) followed. */
function defines(text: string): Map<string, number> {
  const raw = new Map<string, string>();
  for (const m of text.matchAll(/^\s*#\s*define\s+(\w+)\s+\(?([\w]+)\)?\s*(?:\/\*.*)?$/gm)) raw.set(m[1]!, m[2]!);
  const out = new Map<string, number>();
  const value = (v: string, depth = 0): number | undefined => {
    const n = /^(0[xX][0-9a-fA-F]+|\d+)[uUlL]*$/.exec(v);
    if (n) return /^0[xX]/.test(n[1]!) ? parseInt(n[1]!, 16) : parseInt(n[1]!, 10);
    const next = raw.get(v);
    return next !== undefined && depth < 8 ? value(next, depth + 1) : undefined;
  };
  for (const k of raw.keys()) {
    const v = value(raw.get(k)!);
    if (v !== undefined) out.set(k, v >>> 0);
  }
  return out;
}

const CASES: Array<{ target: Target; pkg: 'i386' | 'amd64' | 'powerpc' | 'ppc64' | 'sparc64'; triplet: string; defs: string[] }> = [
  { target: 'x86_64', pkg: 'amd64', triplet: 'x86_64-linux-gnu', defs: ['__x86_64__'] },
  { target: 'i386', pkg: 'i386', triplet: 'i686-linux-gnu', defs: ['__i386__'] },
  { target: 'ppc32', pkg: 'powerpc', triplet: 'powerpc-linux-gnu', defs: ['__powerpc__'] },
  { target: 'ppc64', pkg: 'ppc64', triplet: 'powerpc64-linux-gnu', defs: ['__powerpc__', '__powerpc64__'] },
  { target: 'sparc64', pkg: 'sparc64', triplet: 'sparc64-linux-gnu', defs: ['__sparc__', '__arch64__'] },
];

describe('signal ABI tables agree with the kernel headers', () => {
  it.each(CASES)('$target', (c) => {
    const inc = kernelHeaders(c.pkg, c.triplet);
    if (skipWithout(`linux-libc-dev-${c.pkg}-cross (apt-get download)`, inc !== undefined)) return;
    const read = (f: string): string => preprocess(readFileSync(join(inc!, f), 'utf8'), new Set(c.defs));
    const d = defines([read('asm-generic/signal-defs.h'), read('asm/signal.h')].join('\n'));
    const abi = archFor(c.target)!.signals;
    const num = new SignalNumbering(abi);
    // Every signal the header names maps to the generic signal of the same name.
    for (const name of Object.keys(GSIG) as SignalName[]) {
      const user = d.get(name);
      if (user === undefined) continue; // SIGSTKFLT: not on sparc
      expect([name, num.toGeneric(user)]).toEqual([name, GSIG[name as keyof typeof GSIG]]);
      expect(num.fromGeneric(GSIG[name as keyof typeof GSIG])).toBe(user);
    }
    for (const k of Object.keys(abi.saFlags) as Array<keyof SaFlagBits>) expect([k, abi.saFlags[k]]).toEqual([k, d.get(`SA_${k}`) ?? 0]);
    expect(abi.minSigStkSz).toBe(d.get('MINSIGSTKSZ'));
    const how = abi.sigprocmaskHow ?? { BLOCK: 0, UNBLOCK: 1, SETMASK: 2 };
    expect(how).toEqual({ BLOCK: d.get('SIG_BLOCK'), UNBLOCK: d.get('SIG_UNBLOCK'), SETMASK: d.get('SIG_SETMASK') });
  });
});

describe('the generic core and a renumbering target (sparc64)', () => {
  const num = new SignalNumbering(archFor('sparc64')!.signals);
  it('maps sets bit by bit and back, real-time signals unchanged', () => {
    const user = (1n << 19n) | (1n << 9n) | (1n << 6n) | (1n << 40n); // SIGCHLD 20, SIGBUS 10, SIGEMT 7, SIGRTMIN+9
    const gen = num.setToGeneric(user);
    expect(gen).toBe((1n << 16n) | (1n << 6n) | (1n << 15n) | (1n << 40n)); // generic 17, 7, 16 (SIGEMT's slot), 41
    expect(num.setFromGeneric(gen)).toBe(user);
  });
  it('maps sa_flags, keeping bits it gives no meaning to', () => {
    const { flags, unknown } = num.flagsToGeneric(0x200 | 0x1 | 0x2 | 0x40000);
    expect(flags).toBe(0x4 | 0x08000000 | 0x10000000);
    expect(unknown).toBe(0x40000);
    expect(num.flagsFromGeneric(flags, unknown)).toBe(0x200 | 0x1 | 0x2 | 0x40000);
  });
});
