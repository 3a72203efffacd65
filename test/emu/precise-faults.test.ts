/**
 * Runs without Unicorn's per-instruction count (src/emu/mmu.ts, docs/unicorn.md): a store the
 * MMU forbids ends the run exactly at the store, with nothing after it run, and a real fault still
 * reports its exact address; an uncounted run's budget ends it at a block boundary with an exact
 * count. Unicorn 2.1.1 alone (no strict fills, no count) ends such a run with the PC at the
 * block's start though the instructions before the store ran: the last case pins that, so the
 * first ones are not true by accident.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Boundary } from '../../src/emu/boundary.js';
import { Engine, UC_ARCH, UC_ERR, UC_HOOK, UC_MODE, UC_PROT } from '../../src/emu/unicorn.js';
import { UC_X86_REG as R } from '../../arch/x86/ucregs.js';

const CODE = 0x10000n;
const DATA = 0x20000n;
/** mov eax, 1; mov [rbx], al; mov ecx, 2; mov edx, 3; jmp $ — one translated block up to the jmp. */
const STORE_THEN_MORE = [0xb8, 1, 0, 0, 0, 0x88, 0x03, 0xb9, 2, 0, 0, 0, 0xba, 3, 0, 0, 0, 0xeb, 0xfe];
const STORE_AT = CODE + 5n;

const open: Engine[] = [];
afterEach(() => {
  for (const e of open.splice(0)) e.close();
});

function engine(code: number[], strict: boolean): { e: Engine; faults: Array<{ type: number; addr: bigint }> } {
  const e = new Engine(UC_ARCH.X86, UC_MODE.MODE_64);
  open.push(e);
  const saved = process.env.UNIPROBE_PRECISE_TLB;
  process.env.UNIPROBE_PRECISE_TLB = strict ? '1' : '0';
  try {
    const b = Boundary.attach(e, { physMask: (1n << 64n) - 1n, hole: 0x7fff_ffff_f000n, pageSize: 0x1000, denied: [] });
    expect(b).toBeDefined();
  } finally {
    if (saved === undefined) delete process.env.UNIPROBE_PRECISE_TLB;
    else process.env.UNIPROBE_PRECISE_TLB = saved;
  }
  e.memMap(CODE, 0x1000, UC_PROT.READ | UC_PROT.EXEC);
  e.memMap(DATA, 0x1000, UC_PROT.READ); // the store's page: read-only
  e.memWrite(CODE, Uint8Array.from(code));
  e.regWrite(R.RBX, DATA + 0x123n);
  const faults: Array<{ type: number; addr: bigint }> = [];
  e.hookMemInvalid((type, addr) => (faults.push({ type, addr }), false), UC_HOOK.MEM_WRITE_PROT | UC_HOOK.MEM_WRITE_UNMAPPED);
  return { e, faults };
}

const pc = (e: Engine) => (): bigint => e.regRead(R.RIP);

describe('faults in uncounted runs (strict TLB fills)', () => {
  it('a copy-on-write store ends the run at the store: nothing after it ran, the store counts once', () => {
    const { e, faults } = engine(STORE_THEN_MORE, true);
    const cow: bigint[] = [];
    e.onWriteRefusal = (page) => (cow.push(page), true);
    const r = e.run(CODE, 1_000_000, pc(e), true);
    expect(r.err).toBe(UC_ERR.WRITE_PROT);
    expect(cow).toEqual([DATA]);
    expect(faults).toEqual([]); // resolved without running anything again
    expect(e.regRead(R.RIP)).toBe(STORE_AT);
    expect(e.regRead(R.RAX)).toBe(1n);
    expect(e.regRead(R.RCX)).toBe(0n);
    expect(e.regRead(R.RDX)).toBe(0n);
    expect(r.retired).toBe(1); // mov eax, 1
  });

  it('a real fault: same exact state, and the memory hook sees the exact byte address', () => {
    const { e, faults } = engine(STORE_THEN_MORE, true);
    e.onWriteRefusal = () => false;
    const r = e.run(CODE, 1_000_000, pc(e), true);
    expect(r.err).toBe(UC_ERR.WRITE_PROT);
    expect(faults).toEqual([{ type: 22 /* UC_MEM_WRITE_PROT */, addr: DATA + 0x123n }]);
    expect(e.regRead(R.RIP)).toBe(STORE_AT);
    expect([e.regRead(R.RAX), e.regRead(R.RCX), e.regRead(R.RDX)]).toEqual([1n, 0n, 0n]);
    expect(r.retired).toBe(1);
  });

  it("an uncounted run's budget ends it on a block boundary, at most one block over, counted exactly", () => {
    // inc rax; inc rax; jmp back to the first: a 3-instruction block forever.
    const { e } = engine([0x48, 0xff, 0xc0, 0x48, 0xff, 0xc0, 0xeb, 0xf8], true);
    const r = e.run(CODE, 10_000, pc(e), true);
    expect(r.err).toBe(UC_ERR.OK);
    expect(r.retired).toBeGreaterThanOrEqual(10_000);
    expect(r.retired).toBeLessThan(10_000 + 512);
    expect(r.retired % 3).toBe(0); // whole blocks
    expect(e.regRead(R.RAX)).toBe(BigInt((r.retired / 3) * 2));
    expect(e.regRead(R.RIP)).toBe(CODE);
  });

  it("without strict fills, an uncounted run's fault leaves the PC at the block's start (why they exist)", () => {
    const { e, faults } = engine(STORE_THEN_MORE, false);
    const err = e.start(CODE, 0n, 0).err;
    expect(err).toBe(UC_ERR.WRITE_PROT);
    expect(faults.map((f) => f.addr)).toEqual([DATA + 0x123n]);
    // `mov eax, 1` ran, but the PC says it did not: resuming there would run it twice.
    expect(e.regRead(R.RAX)).toBe(1n);
    expect(e.regRead(R.RIP)).toBe(CODE);
  });
});
