/**
 * What a uprobe does on the program's behalf with the program's pointers is a user access
 * (Linux: put_user/copy_to_user in the x86 branch emulation and fix-ups, which fail for a kernel
 * address): a hostile program under a tracer cannot make the emulated `call` write kernel memory.
 * x86-64: %rsp = a kernel text address, then a probed `call` — the emulated push fails, the
 * emulation declines (branch_emulate_op → the step), the copy's push faults in the slot, and the
 * program gets SIGSEGV at the probed instruction, with the kernel text unchanged. The same with
 * %rsp on an unmapped user page (the emulation declines before the task has an XOL area: the
 * area is made after the hit, without running the handlers again — this looped for ever before).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import { Uprobes } from '../../src/uprobes/index.js';
import { x86_64 } from '../../arch/x86/x86_64.js';
import { buildElf } from '../elf/builder.js';

const BASE = 0x401000n;

function program(rsp: bigint): Uint8Array {
  const movRsp = new Uint8Array(10);
  movRsp.set([0x48, 0xbc]);
  new DataView(movRsp.buffer).setBigUint64(2, rsp, true); // movabs $rsp, %rsp
  const rest = [0xe8, 0, 0, 0, 0, /* call next */ 0xb8, 60, 0, 0, 0, /* mov $60, %eax */ 0x31, 0xff, /* xor %edi, %edi */ 0x0f, 0x05 /* syscall */];
  return Uint8Array.from([...movRsp, ...rest]);
}

describe('uprobe emulation writes as the user program', () => {
  const kernel = x86_64.layout.kernelBase + 0x2000n;
  it.each([
    ['in kernel text', kernel],
    ['on an unmapped user page', 0x10000n],
  ])('x86-64: a probed call with %%rsp %s is SIGSEGV after one hit, and nothing is written there', async (_what, rsp) => {
    const code = program(rsp);
    const { bytes, layout } = buildElf({ class: 64, endian: 'little', machine: 62, entry: BASE, segments: [{ flags: 5, vaddr: BASE, data: code }], sections: false });
    const path = join(mkdtempSync(join(tmpdir(), 'uprobe-user-')), 'call-kernel-rsp');
    writeFileSync(path, bytes, { mode: 0o755 });
    const reports: string[] = [];
    const m = new Machine({ target: 'x86_64', report: (l) => reports.push(l), maxInsns: 100_000 });
    try {
      const up = new Uprobes(m);
      const p = m.spawn(path, [path]);
      const callOffset = BigInt(layout.segmentOffsets[0]! + 10);
      let hits = 0;
      const rc = await m.kernelCall('register', (t) => up.register(t, m.inodeFor(path), callOffset, { handler: () => (hits++, 0) }));
      expect(rc).toBe(0);
      const before = rsp === kernel ? p.mm.read(kernel - 8n, 8) : undefined;
      const r = await m.runAsync();
      expect(hits).toBe(1);
      expect(r.status).toBe(128 + 11);
      expect(reports.join('\n')).toMatch(/SIGSEGV/);
      if (before) expect(p.mm.read(kernel - 8n, 8)).toEqual(before);
      expect(reports.join('\n')).toContain(`at address 0x${(rsp - 8n).toString(16)}, pc 0x${(BASE + 10n).toString(16)}`);
    } finally {
      m.close();
    }
  });
});
