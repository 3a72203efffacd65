/**
 * ppc32's emulations of emulate-int.ts with every value a Number.
 *
 * On a 32-bit target a register, an effective address and the next PC all fit a Number exactly,
 * so the hit path needs no BigInt: registers come from the trap cache as their low words
 * (Engine.regReadU32), addresses wrap with `>>> 0` (what BigInt.asUintN(32, …) gives), and the
 * store goes to guest memory by Number address (GuestMemoryAccess.writeAt). A `stwu r1,-N(r1)`,
 * the first instruction of nearly every ppc32 function, is what most ppc32 probes emulate: its
 * cost inside a kprobe hit went from 278 to 166 ns, ~45 ns of each the timer's (README,
 * "Benchmarks"). The semantics are emulate-int.ts's: the same instructions, the same refusals (a
 * store crossing a page or faulting is stepped instead), the same registers written;
 * test/arch/ppc-kprobes and ppc-uprobes compare them with the CPU.
 */
import type { ProbeCpu } from '../../probes.js';
import { UniprobeError } from '../../../src/errors.js';
import { UC_PPC_REG as R } from '../ucregs.js';
import type { IntEmulator, IntOp } from './emulate-int.js';

// One scratch word for the stored value (a fresh small typed array per hit costs more than the
// rest of the emulation).
const scratch = new DataView(new ArrayBuffer(4));
const scratch4 = new Uint8Array(scratch.buffer);

/** `op` (ppc32: 4-byte stores only, intOp gives no others) as a Number-valued emulation. */
export function intEmulator32(op: IntOp, pageSize: number): IntEmulator {
  // The PC after the instruction, for the last `at` (a kprobe has one, a uprobe one per mapping).
  let lastAt = -1n;
  let next = 0;
  const nextOf = (at: bigint): number => (at === lastAt ? next : ((lastAt = at), (next = Number(BigInt.asUintN(32, at + 4n)))));
  /** The register-to-register forms: rD = value(engine), then the PC. */
  const setReg = (rd: number, value: (e: ProbeCpu['engine']) => number): IntEmulator => {
    const id = R.R0 + rd;
    return (cpu, at) => {
      const e = cpu.engine;
      e.regWriteU32(id, value(e));
      e.regWriteU32(R.PC, nextOf(at));
      return true;
    };
  };
  switch (op.k) {
    case 'add': {
      const src = R.R0 + op.ra;
      const imm = Number(op.imm); // ±2^31 at most (addis): the sum wraps exactly with >>> 0
      return setReg(op.rd, op.ra === 0 ? () => imm >>> 0 : (e) => (e.regReadU32(src) + imm) >>> 0);
    }
    case 'or': {
      const rs = R.R0 + op.rs;
      const rb = R.R0 + op.rb;
      return setReg(op.ra, (e) => (rb === rs ? e.regReadU32(rs) : (e.regReadU32(rs) | e.regReadU32(rb)) >>> 0));
    }
    case 'mflr':
      return setReg(op.rd, (e) => e.regReadU32(R.LR));
    case 'store': {
      if (op.size !== 4) throw new Error('intEmulator32: ppc32 has no 8-byte stores');
      const rs = R.R0 + op.rs;
      const ra = R.R0 + op.ra;
      const d = Number(op.d);
      const pageMask = pageSize - 1;
      return (cpu, at) => {
        const e = cpu.engine;
        const v = e.regReadU32(rs);
        const ea = ((op.ra === 0 ? 0 : e.regReadU32(ra)) + d) >>> 0;
        if ((ea & pageMask) + 4 > pageSize) return false;
        scratch.setUint32(0, v);
        const mem = cpu.mem;
        try {
          if (mem.writeAt) mem.writeAt(ea, scratch4);
          else mem.write(BigInt(ea), scratch4);
        } catch (err) {
          // The step from the slot raises the fault where the task can get its signal.
          if (err instanceof UniprobeError && err.code === 'MM') return false;
          throw err;
        }
        if (op.update) e.regWriteU32(ra, ea);
        e.regWriteU32(R.PC, nextOf(at));
        return true;
      };
    }
  }
}
