/**
 * A signal during a uprobe single-step on ppc32, ppc64 and sparc64 (signal-uprobe.test.ts does
 * x86_64, where the stepped instruction is the `syscall` itself). powerpc's uprobes refuse `sc`
 * (can_single_step), so here the probed instruction is the one before the system call in
 * getpid_() (ppc `li r8,0`, sparc64 `clr %o5`: objdump -d of fixtures/<target>/signals-nolibc):
 * on sparc64 an ordinary instruction stepped in the XOL slot, on ppc one that emulate_step carries
 * out at the hit (arch/ppc/kprobes/emulate-int.ts), after which the signal is delivered before
 * the next instruction runs. The consumer plays bpf_send_signal: once eintr()
 * has been entered twice, the second getpid_() of init after that (in errors(), where SIGUSR1's
 * handler is on_plain) gets SIGUSR1 from the probe handler, just before the step. Linux holds it
 * until the step is done (uprobe_deny_signal): on_plain's frame must save the instruction after
 * the probed one — the `sc`/`ta` — never an address in the "[uprobes]" page. The saved PC is read
 * at on_plain's entry from the target's own frame: ppc32 r5 = &uc, NIP = uc_mcontext.mc_gregs[32]
 * at uc + 192 + 128; ppc64 r5 = &uc, gp_regs[32] at uc + 168 + 64 + 256; sparc64 %o2 = &info,
 * pt_regs.tpc at info + 128 + 136. The program's output stays qemu-user's.
 *
 * Unlike x86_64's syscall step, an ordinary instruction's step has no return to user mode inside
 * it here (the copy and the trap after it run in one go), so removing the hold does not change the
 * result on these targets: what this pins is that the frame of a signal sent from a probe handler
 * saves where the program continues after the step (post_xol's vaddr + 4), not the probed
 * instruction (which would run twice) nor the slot.
 */
import { describe, expect, it } from 'vitest';
import { realpathSync } from 'node:fs';
import { readElfFileSync } from '../../src/elf/index.js';
import { Machine } from '../../src/kernel/machine.js';
import { Uprobes, type UprobeConsumer } from '../../src/uprobes/index.js';
import { fixturePath, supported } from '../helpers.js';
import { fileOffset } from '../uprobes/harness.js';
import type { Target } from '../../arch/types.js';

/** Where the interrupted PC sits, from the handler's third argument. */
const SAVED_PC: Record<string, { off: bigint; size: 4 | 8 }> = {
  ppc32: { off: 192n + 128n, size: 4 },
  ppc64: { off: 168n + 64n + 256n, size: 8 },
  sparc64: { off: 128n + 136n, size: 8 },
};
/** The system call instruction after the probed one (sc, ta 0x6d). */
const SYSCALL_WORD: Record<string, number> = { ppc32: 0x44000002, ppc64: 0x44000002, sparc64: 0x91d0206d };

function sites(target: Target, path: string): { probe: bigint; onPlain: bigint; eintr: bigint; text: [bigint, bigint] } {
  const elf = readElfFileSync(path);
  const sym = (n: string) => elf.symbols.find((s) => s.name === n)!;
  const getpid = sym('getpid_');
  const code = elf.textBytesAt(getpid.codeAddress, Number(getpid.size));
  const v = new DataView(code.buffer, code.byteOffset, code.byteLength);
  let sc = -1;
  for (let i = 0; i + 4 <= code.length; i += 4) if (v.getUint32(i) === SYSCALL_WORD[target]) sc = i;
  if (sc < 4) throw new Error('the system call is not in getpid_() any more: update the test');
  const funcs = elf.symbols.filter((s) => s.type === 2 /* STT_FUNC */ && s.size > 0n);
  const text: [bigint, bigint] = [funcs.reduce((a, s) => (s.codeAddress < a ? s.codeAddress : a), getpid.codeAddress), funcs.reduce((a, s) => (s.codeAddress + s.size > a ? s.codeAddress + s.size : a), 0n)];
  // eintr() is called directly: on ppc64 (ELFv2) through its local entry.
  const eintr = sym('eintr');
  return { probe: getpid.codeAddress + BigInt(sc - 4), onPlain: sym('on_plain').codeAddress, eintr: eintr.localEntry ?? eintr.codeAddress, text };
}

async function run(target: Target, withHold: boolean): Promise<{ saved: bigint[]; stdout: string; status: number }> {
  const path = realpathSync(fixturePath(target, 'signals-nolibc'));
  const site = sites(target, path);
  const out: string[] = [];
  const m = new Machine({ target, cpus: 1, seed: 1, stdout: (b) => out.push(Buffer.from(b).toString()), report: () => {} });
  try {
    const up = new Uprobes(m);
    if (!withHold) m.signalHoldHooks.length = 0;
    const inode = m.inodeFor(path);
    m.spawn(path, [path]);
    let sent = false;
    let eintrs = 0;
    let calls = 0;
    const phase: UprobeConsumer = { handler: () => (eintrs++, 0) };
    const sender: UprobeConsumer = {
      handler: (_c, regs) => {
        if (eintrs >= 2 && regs.task.process.pid === 1 && ++calls === 2) {
          // Machine.sendSignal takes the generic number; SIGUSR1 is 10 there.
          m.sendSignal(regs.task, 10);
          sent = true;
        }
        return 0;
      },
    };
    const saved: bigint[] = [];
    const pcAt = SAVED_PC[target]!;
    const watcher: UprobeConsumer = {
      handler: (_c, regs) => {
        // Only the delivery of the signal the probe sent: the fixture calls on_plain again later
        // (its plain-handler checks), for signals of its own.
        if (!sent || saved.length > 0) return 0;
        const b = regs.mem.read(regs.arg(2) + pcAt.off, pcAt.size);
        const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
        saved.push(pcAt.size === 8 ? dv.getBigUint64(0) : BigInt(dv.getUint32(0)));
        return 0;
      },
    };
    expect(await m.kernelCall('reg', (t) => up.register(t, inode, fileOffset(path, site.probe), sender))).toBe(0);
    expect(await m.kernelCall('reg', (t) => up.register(t, inode, fileOffset(path, site.onPlain), watcher))).toBe(0);
    expect(await m.kernelCall('reg', (t) => up.register(t, inode, fileOffset(path, site.eintr), phase))).toBe(0);
    const r = await m.runAsync();
    return { saved, stdout: out.join(''), status: r.status };
  } finally {
    m.close();
  }
}

const TARGETS = (['ppc32', 'ppc64', 'sparc64'] as const).filter((t) => supported.has(t));

describe.each(TARGETS)('a signal during a uprobe single-step (%s)', (target) => {
  it('sent from the probe handler before the step: the frame saves the system call after the stepped instruction', async () => {
    const path = realpathSync(fixturePath(target, 'signals-nolibc'));
    const site = sites(target, path);
    const r = await run(target, true);
    expect(r.saved).toHaveLength(1);
    expect(r.saved[0]).toBe(site.probe + 4n);
    expect(r.saved[0]! >= site.text[0] && r.saved[0]! < site.text[1]).toBe(true);
    expect(r.status).toBe(143);
  });
});

