/**
 * Corrupted ELF programs executed, not only parsed (issue 14): the program headers of a real
 * static fixture get random sizes (huge p_memsz / p_filesz), addresses (overlapping segments, the
 * kernel half, page 0), offsets past the file, flags and types, from fixed seeds. Property: the
 * program loads and runs (any status), or loading fails with a UniprobeError — never another
 * exception, never a host abort, never an unbounded run. Three of them (1 TiB p_memsz, 8 GiB
 * p_filesz, two segments at one address) also go through the CLI on one target: a clean run or
 * one `uniprobe: error:` line, never "internal error" or a stack trace.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { UniprobeError } from '../../src/errors.js';
import { Machine } from '../../src/kernel/machine.js';
import { parseElf } from '../../src/elf/index.js';
import type { Target } from '../../arch/types.js';
import { fixturePath, repoRoot, supported } from '../helpers.js';
import { phdrFieldOffsets } from './builder.js';

const dir = mkdtempSync(join(tmpdir(), 'uniprobe-exec-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Values that hurt: 0, tiny, page-ish, huge (8 GiB, 1 TiB, all ones), and one from the file. */
const VALUES = [0n, 1n, 0xfffn, 0x1000n, 0x20000000n, 0x200000000n, 0x10000000000n, -1n, 0xffffffff81000000n];

interface Edit {
  phdr: number;
  /** An index into the header's fields (fuzzed) or a field's name. */
  field: number | string;
  value: number;
  raw: bigint;
}
const edit = fc.record({ phdr: fc.nat(), field: fc.nat(), value: fc.nat(), raw: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) });

function corrupt(base: Uint8Array, edits: Edit[]): Uint8Array {
  const bytes = base.slice();
  const elf = parseElf(base, 'base');
  const cls = elf.header.class;
  const le = elf.header.endianness === 'little';
  const dv = new DataView(bytes.buffer);
  const fields = Object.entries(phdrFieldOffsets(cls));
  for (const e of edits) {
    const [name, off] = typeof e.field === 'string' ? fields.find(([n]) => n === e.field)! : fields[e.field % fields.length]!;
    const at = Number(elf.header.phoff) + (e.phdr % elf.phdrs.length) * elf.header.phentsize + off;
    const v = e.value % (VALUES.length + 1) === VALUES.length ? e.raw : VALUES[e.value % VALUES.length]!;
    if (name === 'type' || name === 'flags' || cls === 32) dv.setUint32(at, Number(BigInt.asUintN(32, v)), le);
    else dv.setBigUint64(at, BigInt.asUintN(64, v), le);
  }
  return bytes;
}

const targets = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as Target[]).filter((t) => supported.has(t));

describe.each(targets)('corrupted program headers executed on %s', (target) => {
  const base = new Uint8Array(readFileSync(fixturePath(target, 'fib-nolibc')));

  it('load and run, or fail to load with a UniprobeError (60 cases)', () => {
    let n = 0;
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 3 }), (edits) => {
        const path = join(dir, `${target}-${n++}`);
        writeFileSync(path, corrupt(base, edits), { mode: 0o755 });
        const m = new Machine({ target, maxInsns: 200_000, stdout: () => {}, stderr: () => {}, report: () => {} });
        try {
          try {
            m.spawn(path, [path]);
          } catch (e) {
            expect(e).toBeInstanceOf(UniprobeError);
            return;
          }
          const r = m.run();
          expect(['exit', 'signal', 'budget', 'deadlock']).toContain(r.reason);
        } finally {
          m.close();
        }
      }),
      { seed: 0x5eed + targets.indexOf(target), numRuns: 60 },
    );
  });

  // Node's start-up per case: the CLI path is the same code on every target, so one target does.
  it.runIf(target === targets[0])('through the CLI: a clean run or one error line (3 cases)', () => {
    const cases: Edit[][] = [
      [{ phdr: 0, field: 'memsz', value: 6, raw: 0n }], // 1 TiB
      [{ phdr: 0, field: 'filesz', value: 5, raw: 0n }], // 8 GiB
      [{ phdr: 1, field: 'vaddr', value: 3, raw: 0n }, { phdr: 0, field: 'vaddr', value: 3, raw: 0n }], // two segments at 0x1000
    ];
    for (const [k, edits] of cases.entries()) {
      const path = join(dir, `${target}-cli-${k}`);
      writeFileSync(path, corrupt(base, edits), { mode: 0o755 });
      const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'uniprobe.mjs'), 'run', '--max-insns', '200000', path], { encoding: 'utf8', timeout: 60_000 });
      expect(r.signal, r.stderr).toBeNull();
      expect(r.stderr).not.toMatch(/internal error|\n\s+at |FATAL|Aborted/);
      if (r.status === 1 && /uniprobe: error:/.test(r.stderr)) expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('uniprobe: error:'))).toHaveLength(1);
      else expect(r.status).toBeGreaterThanOrEqual(0);
    }
  });
});
