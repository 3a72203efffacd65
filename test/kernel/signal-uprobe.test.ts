/**
 * Uprobes and signals (x86_64), as Linux handles them: a signal that arrives while a task
 * single-steps a probed instruction's copy in the XOL slot is held until the step is done
 * (uprobe_deny_signal), so the handler's frame saves the instruction after the probed one, never
 * an address in the "[uprobes]" page. The window is widest when the stepped instruction is a
 * system call: its return to user mode is a delivery point inside the step. Without the hold (the
 * hook removed) the frame saves the slot's address: the test checks that too, so it can fail.
 *
 * The program is signals-nolibc. The probe is on the `syscall` of getpid_() (x86_64 objdump -d:
 * `401c44: 0f 05 syscall`), found by its bytes inside the symbol. A BPF program's
 * bpf_send_signal is played by the consumer: once eintr() has been entered twice (a probe on it
 * counts), the second getpid_() of init after that (the first in errors(), where SIGUSR1's handler
 * is on_plain and nothing prints its counter) gets SIGUSR1 sent from the probe handler, i.e. just
 * before the step. A probe on on_plain's entry reads the saved RIP from its ucontext (rdx = &uc;
 * uc_mcontext at +40, rip at +128 in it). The program's output stays qemu-user's.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, realpathSync } from 'node:fs';
import { readElfFileSync } from '../../src/elf/index.js';
import { Machine } from '../../src/kernel/machine.js';
import { Uprobes, type UprobeConsumer } from '../../src/uprobes/index.js';
import { fixturePath, supported } from '../helpers.js';
import { fileOffset } from '../uprobes/harness.js';
import signals from '../../fixtures/signals.json' with { type: 'json' };

const SIGUSR1 = 10;
const UC_RIP = 40n + 128n;

function probeSites(path: string): { store: bigint; storeLen: number; onPlain: bigint; eintr: bigint; text: [bigint, bigint] } {
  const elf = readElfFileSync(path);
  const sym = (n: string) => elf.symbols.find((s) => s.name === n)!;
  const eintr = sym('eintr');
  const getpid = sym('getpid_');
  const bytes = readFileSync(path);
  const pattern = Buffer.from([0x0f, 0x05]);
  const start = Number(fileOffset(path, getpid.codeAddress));
  const at = bytes.subarray(start, start + Number(getpid.size)).indexOf(pattern);
  if (at < 0) throw new Error('the probed syscall is not in getpid_() any more: update the test');
  const funcs = elf.symbols.filter((s) => s.type === 2 /* STT_FUNC */ && s.size > 0n);
  const text: [bigint, bigint] = [funcs.reduce((a, s) => (s.codeAddress < a ? s.codeAddress : a), eintr.codeAddress), funcs.reduce((a, s) => (s.codeAddress + s.size > a ? s.codeAddress + s.size : a), 0n)];
  return { store: getpid.codeAddress + BigInt(at), storeLen: pattern.length, onPlain: sym('on_plain').codeAddress, eintr: eintr.codeAddress, text };
}

async function run(withHold: boolean): Promise<{ saved: bigint[]; stdout: string; status: number }> {
  const path = realpathSync(fixturePath('x86_64', 'signals-nolibc'));
  const site = probeSites(path);
  const out: string[] = [];
  const m = new Machine({ target: 'x86_64', cpus: 1, seed: 1, stdout: (b) => out.push(Buffer.from(b).toString()), report: () => {} });
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
          m.sendSignal(regs.task, SIGUSR1);
          sent = true;
        }
        return 0;
      },
    };
    const saved: bigint[] = [];
    const watcher: UprobeConsumer = {
      handler: (_c, regs) => {
        if (sent) saved.push(regs.mem.readWord(regs.arg(2) + UC_RIP));
        return 0;
      },
    };
    expect(await m.kernelCall('reg', (t) => up.register(t, inode, fileOffset(path, site.store), sender))).toBe(0);
    expect(await m.kernelCall('reg', (t) => up.register(t, inode, fileOffset(path, site.onPlain), watcher))).toBe(0);
    expect(await m.kernelCall('reg', (t) => up.register(t, inode, fileOffset(path, site.eintr), phase))).toBe(0);
    const r = await m.runAsync();
    return { saved, stdout: out.join(''), status: r.status };
  } finally {
    m.close();
  }
}

describe.skipIf(!supported.has('x86_64'))('a signal during a uprobe single-step (x86_64)', () => {
  const rec = (signals as Array<{ target: string; name: string; stdout: string }>).find((s) => s.target === 'x86_64' && s.name === 'signals-nolibc')!;

  it('is held until the step is done: the frame saves the instruction after the syscall, outside [uprobes]', async () => {
    const site = probeSites(realpathSync(fixturePath('x86_64', 'signals-nolibc')));
    const r = await run(true);
    expect(r.saved[0]).toBe(site.store + BigInt(site.storeLen));
    expect(r.saved[0]! >= site.text[0] && r.saved[0]! < site.text[1]).toBe(true);
    expect(r.stdout).toBe(rec.stdout);
    expect(r.status).toBe(143);
  });

  it('without uprobe_deny_signal the frame would save the XOL slot (the test can fail)', async () => {
    const site = probeSites(realpathSync(fixturePath('x86_64', 'signals-nolibc')));
    const r = await run(false);
    expect(r.saved[0]).toBeDefined();
    // The slot's address, in the "[uprobes]" page: nowhere in the program's own code.
    expect(r.saved[0]! >= site.text[0] && r.saved[0]! < site.text[1]).toBe(false);
  });
});
