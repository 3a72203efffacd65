/**
 * The Engine's trap-time register cache (src/emu/regcache.ts): inside a trap hook the cached set
 * is read with one batch and written back with one, and what the guest and later readers see is
 * exactly what direct register accesses would have left — aliases, narrow widths, exceptions in
 * the hook and PC redirects included.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Engine, UC_ARCH, UC_MODE } from '../../src/emu/unicorn.js';
import { UC_X86_REG as R } from '../../arch/x86/ucregs.js';
import { nativeTrapHooksUnavailable } from '../../src/emu/trap-hook.js';

const CODE = 0x10000n;
const HIT64 = [R.RIP, R.RSP, R.RAX, R.RBX, R.RCX, R.RDX, R.RSI, R.RDI].map((id) => ({ id, bits: 64 as const }));

/** x86-64 engine with `code` at CODE and an int3 hook. */
function engine(code: number[], hook: (e: Engine) => void, cache = true): Engine {
  const e = new Engine(UC_ARCH.X86, UC_MODE.MODE_64);
  e.memMap(CODE, 0x1000, 7);
  e.memWrite(CODE, Uint8Array.from(code));
  if (cache) e.cacheTrapRegisters(HIT64);
  e.hookIntr(() => hook(e));
  return e;
}

// Every case runs with the trap hooks' native trampoline (src/emu/trap-hook.ts: the batches done
// in C around the JavaScript hook) and without it (the JavaScript hook reads and writes itself).
describe.each(['native', 'js'] as const)('trap register cache (%s trap hooks)', (mode) => {
  beforeEach(() => {
    if (mode === 'js') process.env.UNIPROBE_NATIVE_TRAP = '0';
    else delete process.env.UNIPROBE_NATIVE_TRAP;
  });
  afterEach(() => {
    delete process.env.UNIPROBE_NATIVE_TRAP;
  });

  it('uses the trampoline when it can be built (a C compiler is part of the set-up)', () => {
    const e = engine([0xcc], () => undefined);
    try {
      e.start(CODE, CODE + 1n);
      expect(nativeTrapHooksUnavailable()).toBeUndefined();
    } finally {
      e.close();
    }
  });

  it('serves a hook from one batched read and writes back once, with the PC redirect honoured', () => {
    // int3; mov eax, 1 (skipped by the redirect); nop; nop (lands here)
    const code = [0xcc, 0xb8, 1, 0, 0, 0, 0x90, 0x90];
    const e = engine(code, (en) => {
      const rip = en.regRead(R.RIP);
      expect(rip).toBe(CODE + 1n);
      en.regWrite(R.RAX, en.regRead(R.RAX) + 41n);
      en.regWrite(R.RBX, 0xffff_ffff_ffff_fff0n);
      expect(en.regRead(R.RBX)).toBe(0xffff_ffff_ffff_fff0n);
      en.regWrite(R.RIP, CODE + 6n);
    });
    try {
      e.regWrite(R.RAX, 1n);
      e.start(CODE, CODE + 8n);
      expect(e.regRead(R.RAX)).toBe(42n);
      expect(e.regRead(R.RBX)).toBe(0xffff_ffff_ffff_fff0n);
      expect(e.regRead(R.RIP)).toBe(CODE + 8n);
      expect(e.trapRegisterBatches).toEqual({ reads: 1, writes: 1 });
    } finally {
      e.close();
    }
  });

  it('writes nothing back for values Unicorn already holds, so an unchanged PC keeps a stop', () => {
    // int3; int3; mov eax, 7; nop: the first hook rewrites what it read, the second stops the run
    // after writing its own PC back; a written PC would restart the CPU loop and drop that stop.
    let traps = 0;
    const e = engine([0xcc, 0xcc, 0xb8, 7, 0, 0, 0, 0x90], (en) => {
      traps++;
      en.regWrite(R.RIP, en.regRead(R.RIP));
      en.regWrite(R.RAX, en.regRead(R.RAX));
      if (traps === 2) en.stop();
    });
    try {
      e.start(CODE, CODE + 8n);
      expect(traps).toBe(2);
      expect(e.regRead(R.RIP)).toBe(CODE + 2n);
      expect(e.regRead(R.RAX)).toBe(0n);
      expect(e.trapRegisterBatches).toEqual({ reads: 2, writes: 0 });
    } finally {
      e.close();
    }
  });

  it('serves the Number and copy accessors of 32-bit and ppc hit paths from the same copy, as Unicorn would hold them', () => {
    // int3; nop: the hook reads low words, writes 32-bit values and copies registers.
    const e = engine([0xcc, 0x90], (en) => {
      expect(en.regReadU32(R.RAX)).toBe(0x8765_4321);
      expect(en.regReadU32(R.R15)).toBe(0xffff_fffe); // outside the set: read from Unicorn
      en.regWriteU32(R.RCX, 0xdead_beef); // a 64-bit register: the upper half becomes 0
      en.regCopy(R.RBX, R.RAX); // both cached: the whole 64-bit value
      en.regCopy(R.R14, R.RAX); // R14 outside the set: written through
      en.regCopy(R.RDX, R.R15); // R15 outside the set: read through
      expect(en.regRead(R.RBX)).toBe(0x1234_5678_8765_4321n);
    });
    try {
      e.regWriteBatch([R.RAX, R.RCX, R.R15], [0x1234_5678_8765_4321n, 0xffff_ffff_ffff_ffffn, 0x1_ffff_fffen]);
      e.start(CODE, CODE + 2n);
      expect(e.regReadBatch([R.RBX, R.RCX, R.R14, R.RDX])).toEqual([0x1234_5678_8765_4321n, 0xdead_beefn, 0x1234_5678_8765_4321n, 0x1_ffff_fffen]);
    } finally {
      e.close();
    }
  });

  it('writes back before an aliasing register is read, and re-reads after one is written', () => {
    const e = engine([0xcc, 0x90], (en) => {
      en.regRead(R.RIP);
      en.regWrite(R.RAX, 0x1_2345_6789n);
      // EAX is outside the set: RAX must reach Unicorn first.
      expect(en.regRead(R.EAX)).toBe(0x2345_6789n);
      en.regWrite(R.AX, 0xbeefn);
      expect(en.regRead(R.RAX)).toBe(0x1_2345_beefn);
      en.regWriteBatch([R.RCX, R.RDX], [7n, 8n]);
      expect(en.regReadBatch([R.RDX, R.RCX])).toEqual([8n, 7n]);
      expect(en.regReadBatch([R.RCX, R.R15])).toEqual([7n, 0n]);
    });
    try {
      e.start(CODE, CODE + 2n);
      expect(e.regReadBatch([R.RAX, R.RCX, R.RDX])).toEqual([0x1_2345_beefn, 7n, 8n]);
    } finally {
      e.close();
    }
  });

  it('masks a narrow register as Unicorn does, and a hook that throws still writes back', () => {
    const e = new Engine(UC_ARCH.X86, UC_MODE.MODE_32);
    try {
      e.memMap(CODE, 0x1000, 7);
      e.memWrite(CODE, Uint8Array.of(0xcc, 0x90));
      e.cacheTrapRegisters([R.EIP, R.EAX].map((id) => ({ id, bits: 32 as const })));
      e.hookIntr(() => {
        e.regWrite(R.EAX, e.regRead(R.EAX) - 1n);
        expect(e.regRead(R.EAX)).toBe(0xffff_ffffn);
        throw new Error('handler bug');
      });
      expect(() => e.start(CODE, CODE + 2n)).toThrow('handler bug');
      expect(e.regRead(R.EAX)).toBe(0xffff_ffffn);
    } finally {
      e.close();
    }
  });

  it('leaves engines without a cached set and hooks other than traps alone', () => {
    const e = engine([0xcc, 0x90], (en) => en.regWrite(R.RAX, en.regRead(R.RIP)), false);
    try {
      e.hookCode(() => void e.regRead(R.RSP), CODE + 1n, CODE + 1n);
      e.start(CODE, CODE + 2n);
      expect(e.regRead(R.RAX)).toBe(CODE + 1n);
      expect(e.trapRegisterBatches).toEqual({ reads: 0, writes: 0 });
    } finally {
      e.close();
    }
  });
});
