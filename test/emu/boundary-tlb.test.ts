/**
 * The return to user mode and the TLB (src/emu/boundary.ts setView). Where the arch's CPU mode
 * switch also switches QEMU's MMU index (x86: the CPL), entries filled in kernel mode stay in the
 * kernel's TLB and the return to user mode skips the flush. What that must never leave behind is
 * a user entry with old permissions: a store to a page a system call just made read-only is
 * SIGSEGV in Linux, and an access to a page it unmapped faults. (Unicorn drops the TLB when a
 * region is protected or unmapped, and the boundary flushes after any mapping change as well.)
 * That kernel-mode entries stay out of user mode is test/kernel/boundary.test.ts's job: its
 * read-kernel and jump-kernel cases run after system calls that executed that kernel text, and
 * failed on sparc64 when the flush was skipped there without its MMU index following the mode
 * (arch/sparc/cpu-state.ts setCpuMode: both fail when the MMU-enable bits are left clear).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Boundary } from '../../src/emu/boundary.js';
import { Engine, UC_ARCH, UC_ERR, UC_HOOK, UC_MODE, UC_PROT } from '../../src/emu/unicorn.js';
import { UC_X86_REG as R } from '../../arch/x86/ucregs.js';
import { attachX86CpuState, setX86CpuMode, x86Cpl } from '../../arch/x86/cpu-state.js';

const CODE = 0x10000n;
const DATA = 0x20000n;
/** mov byte [rbx], 1; int3 (the "system call"); mov byte [rbx], 2; jmp $ */
const STORE_TRAP_STORE = [0xc6, 0x03, 0x01, 0xcc, 0xc6, 0x03, 0x02, 0xeb, 0xfe];
const SECOND_STORE = CODE + 4n;

const open: Engine[] = [];
afterEach(() => {
  for (const e of open.splice(0)) e.close();
});

/** A user-mode x86-64 engine whose int3 hook does `syscall` in kernel mode, as the trap path does. */
function machine(syscall: (e: Engine) => void): { e: Engine; b: Boundary; faults: bigint[]; switches: boolean[] } {
  const e = new Engine(UC_ARCH.X86, UC_MODE.MODE_64);
  open.push(e);
  const b = Boundary.attach(e, { physMask: (1n << 64n) - 1n, hole: 0x7fff_ffff_f000n, pageSize: 0x1000, denied: [[0x8000_0000_0000n, (1n << 64n) - 1n]] });
  expect(b).toBeDefined();
  attachX86CpuState(e, true);
  const switches: boolean[] = [];
  b!.onSwitch = (user) => {
    const apart = setX86CpuMode(e, user);
    switches.push(apart);
    return apart;
  };
  e.memMap(CODE, 0x1000, UC_PROT.READ | UC_PROT.EXEC);
  e.memMap(DATA, 0x1000, UC_PROT.READ | UC_PROT.WRITE);
  e.memWrite(CODE, Uint8Array.from(STORE_TRAP_STORE));
  e.regWrite(R.RBX, DATA);
  const faults: bigint[] = [];
  e.hookMemInvalid((_type, addr) => (faults.push(addr), false), UC_HOOK.MEM_WRITE_PROT);
  e.hookIntr(() => {
    b!.setUser(false);
    syscall(e);
    b!.setUser(true);
  });
  b!.setUser(true);
  return { e, b: b!, faults, switches };
}

describe('the return to user mode keeps the kernel TLB apart, never a stale user entry', () => {
  it('x86 switches its MMU index with the CPL: the switch reports a TLB apart', () => {
    const { e, switches } = machine(() => undefined);
    expect(x86Cpl(e)).toBe(3);
    const r = e.run(CODE, 1_000, () => e.regRead(R.RIP), true);
    expect(r.err).toBe(UC_ERR.OK);
    expect(switches.length).toBeGreaterThanOrEqual(3);
    expect(switches.every((s) => s)).toBe(true);
    expect(e.memRead(DATA, 1)[0]).toBe(2);
  });

  it('a store after a system call made its page read-only faults at the store (SIGSEGV in Linux)', () => {
    const { e, faults } = machine((en) => en.memProtect(DATA, 0x1000, UC_PROT.READ));
    const r = e.run(CODE, 1_000, () => e.regRead(R.RIP), true);
    expect(r.err).toBe(UC_ERR.WRITE_PROT);
    expect(faults).toEqual([DATA]);
    expect(e.regRead(R.RIP)).toBe(SECOND_STORE);
    expect(e.memRead(DATA, 1)[0]).toBe(1);
  });

  it('a page a system call unmapped is gone for the very next access', () => {
    const { e } = machine((en) => en.memUnmap(DATA, 0x1000));
    const r = e.run(CODE, 1_000, () => e.regRead(R.RIP), true);
    expect(r.err).toBe(UC_ERR.WRITE_UNMAPPED);
    expect(e.regRead(R.RIP)).toBe(SECOND_STORE);
  });
});
