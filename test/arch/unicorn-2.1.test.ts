/**
 * What Unicorn 2.1.1 really does where uniprobe works around it (docs/unicorn.md). Each test
 * pins one measured behaviour on a bare engine, so a different Unicorn that changes it fails here
 * first, naming the workaround that may go.
 */
import { describe, expect, it } from 'vitest';
import { Engine, UC_ARCH, UC_ERR, UC_MODE, UC_PROT, unicornVersionLoaded } from '../../src/emu/unicorn.js';
import { openEngine } from '../../arch/engine.js';
import { x86_64 } from '../../arch/x86/x86_64.js';
import { UC_X86_REG as X } from '../../arch/x86/ucregs.js';

const be32 = (words: number[]): Uint8Array => {
  const b = new Uint8Array(words.length * 4);
  const dv = new DataView(b.buffer);
  words.forEach((w, i) => dv.setUint32(i * 4, w >>> 0, false));
  return b;
};

describe('Unicorn 2.1.1 (the engine the project pins)', () => {
  it('is the library loaded', () => {
    new Engine(UC_ARCH.X86, UC_MODE.MODE_64).close();
    expect(unicornVersionLoaded).toBe('2.1.1');
  });
});

describe('x86-64: kernel addresses fetch from their 52-bit physical alias', () => {
  // mov eax, 42 ; nop
  const code = Uint8Array.from([0xb8, 0x2a, 0x00, 0x00, 0x00, 0x90]);
  const KBASE = 0xffffffff81000000n;

  it('without the alias, a fetch at 0xffffffff81000000 misses: Unicorn looks at 0x000fffff81000000', () => {
    const e = new Engine(x86_64.ucArch, x86_64.ucMode);
    try {
      e.memMap(KBASE, 0x1000, UC_PROT.ALL);
      e.memWrite(KBASE, code);
      let missed: bigint | undefined;
      e.hookMemInvalid((_t, addr) => {
        missed = addr;
        return false;
      });
      const r = e.start(KBASE, KBASE + 5n, 0);
      expect(r.err).toBe(UC_ERR.FETCH_UNMAPPED);
      expect(missed).toBe(0x000fffff81000000n);
    } finally {
      e.close();
    }
  });

  it('with the arch alias applied by the engine, the same code runs', () => {
    expect(x86_64.addressAlias!(KBASE)).toBe(0x000fffff81000000n);
    expect(x86_64.addressAlias!(0x401000n)).toBeUndefined();
    const e = openEngine(x86_64);
    try {
      e.memMap(KBASE, 0x1000, UC_PROT.ALL);
      e.memWrite(KBASE, code);
      const r = e.start(KBASE, KBASE + 5n, 0);
      expect(r.err).toBe(UC_ERR.OK);
      expect(e.regRead(X.RAX)).toBe(42n);
      // The engine's own reads at the virtual address see what the guest sees at the alias.
      expect([...e.memRead(KBASE, 2)]).toEqual([0xb8, 0x2a]);
    } finally {
      e.close();
    }
  });
});

describe('x86-64: after a faulting access the PC is exact only with a hook on every instruction', () => {
  // mov ecx, 5 ; mov [0x10000], al (a read-only page: a copy-on-write write) ; mov ebx, 7 ; nop
  const code = Uint8Array.from([0xb9, 0x05, 0, 0, 0, 0x88, 0x04, 0x25, 0x00, 0x00, 0x01, 0x00, 0xbb, 0x07, 0x00, 0x00, 0x00, 0x90]);

  function run(count: number): { err: number; rbx: bigint; rcx: bigint; rip: bigint } {
    const e = new Engine(UC_ARCH.X86, UC_MODE.MODE_64);
    try {
      e.memMap(0x1000n, 0x1000, UC_PROT.ALL);
      e.memWrite(0x1000n, code);
      e.memMap(0x10000n, 0x1000, UC_PROT.READ);
      const r = e.start(0x1000n, 0x1000n + BigInt(code.length), count);
      return { err: r.err, rbx: e.regRead(X.RBX), rcx: e.regRead(X.RCX), rip: e.regRead(X.RIP) };
    } finally {
      e.close();
    }
  }

  it("with Unicorn's instruction count the run stops on the faulting store, PC on it", () => {
    expect(run(100)).toEqual({ err: UC_ERR.WRITE_PROT, rcx: 5n, rbx: 0n, rip: 0x1005n });
  });

  it('without it the PC is left at the start of the block while the registers moved on: why runs stay counted (docs/unicorn.md)', () => {
    // Restarting there would run `mov ecx, 5` twice; glibc's __libc_start_main re-ran its pushes.
    expect(run(0)).toEqual({ err: UC_ERR.WRITE_PROT, rcx: 5n, rbx: 0n, rip: 0x1000n });
  });
});

describe('sparc64: the FPU stays off', () => {
  const NOP = 0x01000000;
  const FMOVS = 0x83a00020; // fmovs %f0, %f1
  const WR_FPRS_FEF = 0x8d802004; // wr %g0, 4, %fprs
  const WRPR_PSTATE = 0x8d902014; // wrpr %g0, PEF|PRIV, %pstate

  function firstTrap(words: number[]): number | undefined {
    const e = new Engine(UC_ARCH.SPARC, UC_MODE.SPARC64 | UC_MODE.BIG_ENDIAN);
    try {
      e.memMap(0x10000n, 0x2000, UC_PROT.ALL);
      e.memWrite(0x10000n, be32(words));
      let trap: number | undefined;
      e.hookIntr((n) => {
        trap ??= n;
        e.stop();
      });
      e.start(0x10000n, 0n, words.length);
      return trap;
    } finally {
      e.close();
    }
  }

  it('an FP instruction raises fp_disabled (0x20), with or without FPRS.FEF set', () => {
    expect(firstTrap([FMOVS, NOP])).toBe(0x20);
    expect(firstTrap([WR_FPRS_FEF, FMOVS, NOP])).toBe(0x20);
  });

  it('PSTATE cannot be written (privileged_opcode 0x11: the CPU runs in user mode)', () => {
    expect(firstTrap([WRPR_PSTATE, FMOVS, NOP])).toBe(0x11);
  });

  it('the saved context holds no CPU state to patch (only its 24-byte header)', () => {
    const e = new Engine(UC_ARCH.SPARC, UC_MODE.SPARC64 | UC_MODE.BIG_ENDIAN);
    try {
      expect(e.contextSaveBytes().length).toBe(24);
    } finally {
      e.close();
    }
  });
});
