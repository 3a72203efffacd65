/**
 * The int3 handler's emulation of instructions that cannot run from a slot followed by a trap:
 * everything that changes IP (jmp/call/ret/jcc/loop/jcxz, indirect call/jmp through a register)
 * and the IF modifiers (cli/sti/pushf/popf). As in Linux, every IP is computed from the probed
 * instruction's own address, so a call pushes addr + len, never a slot address.
 */
import type { HitRegisters, ProbeCpu } from '../../probes.js';
import { UC_X86_REG as R } from '../ucregs.js';
import type { X86Insn } from './decode.js';
import type { EmulateKind } from './tables.js';

/** Register ids in hardware encoding order (ModRM rm / REX.B). */
const GPR64 = [R.RAX, R.RCX, R.RDX, R.RBX, R.RSP, R.RBP, R.RSI, R.RDI, R.R8, R.R9, R.R10, R.R11, R.R12, R.R13, R.R14, R.R15];
const GPR32 = [R.EAX, R.ECX, R.EDX, R.EBX, R.ESP, R.EBP, R.ESI, R.EDI];

export interface X86RegIds {
  readonly ip: number;
  readonly sp: number;
  readonly flags: number;
  readonly cx: number;
  readonly gpr: readonly number[];
  readonly bits: 32 | 64;
}

export const REGS_64: X86RegIds = { ip: R.RIP, sp: R.RSP, flags: R.RFLAGS, cx: R.RCX, gpr: GPR64, bits: 64 };
export const REGS_32: X86RegIds = { ip: R.EIP, sp: R.ESP, flags: R.EFLAGS, cx: R.ECX, gpr: GPR32, bits: 32 };

/**
 * The hit registers of a task of this width (arch/probes.ts HitRegisters): IP and the general
 * registers (sp among them). Not EFLAGS: Unicorn normalises it on write (bit 1 set, upper half
 * dropped), so a cached copy could differ from what reading it back gives.
 */
export function x86HitRegisters(regs: X86RegIds): HitRegisters {
  return [regs.ip, ...regs.gpr].map((id) => ({ id, bits: regs.bits }));
}

export const FLAG = { CF: 1n, PF: 4n, AF: 0x10n, ZF: 0x40n, SF: 0x80n, TF: 0x100n, IF: 0x200n, DF: 0x400n, OF: 0x800n, RF: 0x10000n, VM: 0x20000n } as const;
/** Bits popf may change at CPL 0 (arithmetic flags, TF, IF, DF, IOPL, NT, AC, ID). */
const POPF_WRITABLE = 0x247fd5n;
/** Bits popf leaves alone (VM, VIF, VIP); RF is cleared, bit 1 always reads 1. */
const POPF_KEPT = 0x1a0000n;
const FLAGS_FIXED1 = 2n;

// Little-endian words through one scratch DataView: a byte-by-byte BigInt loop costs more than
// the stack write it feeds (emulated pushes and calls run at every hit).
const scratch = new DataView(new ArrayBuffer(8));
const scratchBytes = new Uint8Array(scratch.buffer);

/** The low `size` bytes (at most 8) of `value`, little-endian. */
export function leBytes(size: number, value: bigint): Uint8Array {
  scratch.setBigUint64(0, BigInt.asUintN(64, value), true);
  return scratchBytes.slice(0, size);
}

/** The little-endian value of `b` (at most 8 bytes). */
export function leValue(b: Uint8Array): bigint {
  scratchBytes.fill(0);
  scratchBytes.set(b);
  return scratch.getBigUint64(0, true);
}

const SIZE = [0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n];

function push(cpu: ProbeCpu, regs: X86RegIds, size: number, value: bigint): void {
  const sp = BigInt.asUintN(regs.bits, cpu.engine.regRead(regs.sp) - SIZE[size]!);
  cpu.mem.write(sp, leBytes(size, value));
  cpu.engine.regWrite(regs.sp, sp);
}

function pop(cpu: ProbeCpu, regs: X86RegIds, size: number): bigint {
  const sp = cpu.engine.regRead(regs.sp);
  const v = leValue(cpu.mem.read(sp, size));
  cpu.engine.regWrite(regs.sp, BigInt.asUintN(regs.bits, sp + SIZE[size]!));
  return v;
}

/** Jcc condition `cc` (opcode & 0xF) against EFLAGS. */
export function conditionHolds(cc: number, flags: bigint): boolean {
  const cf = (flags & FLAG.CF) !== 0n;
  const zf = (flags & FLAG.ZF) !== 0n;
  const sf = (flags & FLAG.SF) !== 0n;
  const of = (flags & FLAG.OF) !== 0n;
  const pf = (flags & FLAG.PF) !== 0n;
  let r: boolean;
  switch (cc >> 1) {
    case 0: r = of; break;
    case 1: r = cf; break;
    case 2: r = zf; break;
    case 3: r = cf || zf; break;
    case 4: r = sf; break;
    case 5: r = pf; break;
    case 6: r = sf !== of; break;
    default: r = zf || sf !== of; break;
  }
  return (cc & 1) === 0 ? r : !r;
}

/** Push/pop size of near branches and pushf/popf: 16 bits with 0x66, else the native word. */
function stackSize(insn: X86Insn, regs: X86RegIds): number {
  return insn.prefixes.includes(0x66) ? 2 : regs.bits / 8;
}

/** A branch target: 16-bit operand size truncates IP to 16 bits, as the CPU does. */
function target(insn: X86Insn, regs: X86RegIds, next: bigint, rel: bigint): bigint {
  const t = BigInt.asUintN(regs.bits, next + rel);
  return insn.prefixes.includes(0x66) ? t & 0xffffn : t;
}

/**
 * The emulation of `insn` at its own (fixed) address, with everything that does not depend on the
 * registers worked out once: a kprobe's instruction never moves, so a relative call, jmp or jcc
 * has constant targets, and a call pushes a constant return address. Other kinds go through
 * emulateX86 at each hit.
 */
export function emulatorFor(insn: X86Insn, op: EmulateKind, regs: X86RegIds): (cpu: ProbeCpu) => void {
  const next = BigInt.asUintN(regs.bits, insn.addr + BigInt(insn.length));
  switch (op.kind) {
    case 'call': {
      const size = stackSize(insn, regs);
      const ret = leBytes(size, next);
      const to = target(insn, regs, next, op.rel);
      return (cpu) => {
        const e = cpu.engine;
        const sp = BigInt.asUintN(regs.bits, e.regRead(regs.sp) - SIZE[size]!);
        cpu.mem.write(sp, ret);
        e.regWrite(regs.sp, sp);
        e.regWrite(regs.ip, to);
      };
    }
    case 'jmp': {
      const to = target(insn, regs, next, op.rel);
      return (cpu) => cpu.engine.regWrite(regs.ip, to);
    }
    case 'jcc': {
      const to = target(insn, regs, next, op.rel);
      return (cpu) => cpu.engine.regWrite(regs.ip, conditionHolds(op.cc, cpu.engine.regRead(regs.flags)) ? to : next);
    }
    default:
      return (cpu) => emulateX86(cpu, insn, op, regs);
  }
}

/** Apply the effect of `insn` (at its original address) to the CPU, IP included. */
export function emulateX86(cpu: ProbeCpu, insn: X86Insn, op: EmulateKind, regs: X86RegIds): void {
  const e = cpu.engine;
  const next = BigInt.asUintN(regs.bits, insn.addr + BigInt(insn.length));
  let ip = next;
  switch (op.kind) {
    case 'ifmod': {
      const flags = e.regRead(regs.flags);
      const size = stackSize(insn, regs);
      if (op.op === 'cli') e.regWrite(regs.flags, flags & ~FLAG.IF);
      else if (op.op === 'sti') e.regWrite(regs.flags, flags | FLAG.IF);
      else if (op.op === 'pushf') push(cpu, regs, size, flags & ~(FLAG.RF | FLAG.VM));
      else {
        let v = pop(cpu, regs, size);
        if (size === 2) v = (flags & ~0xffffn) | v;
        e.regWrite(regs.flags, (flags & POPF_KEPT) | (v & POPF_WRITABLE) | FLAGS_FIXED1);
      }
      break;
    }
    case 'ret': {
      // Linux's int3_emulate_ret pops only IP, also for `ret imm16` and `lret`; the CPU also
      // releases imm16 bytes and (far) pops CS. uniprobe does what the CPU does.
      const size = op.far ? farSize(insn, regs) : stackSize(insn, regs);
      ip = pop(cpu, regs, size);
      if (op.far) {
        const cs = pop(cpu, regs, size) & 0xffffn;
        const R_CS = R.CS;
        if (cs !== e.regRead(R_CS)) e.regWrite(R_CS, cs);
      }
      if (op.imm !== 0) e.regWrite(regs.sp, BigInt.asUintN(regs.bits, e.regRead(regs.sp) + BigInt(op.imm)));
      break;
    }
    case 'call':
      push(cpu, regs, stackSize(insn, regs), next);
      ip = target(insn, regs, next, op.rel);
      break;
    case 'jmp':
      ip = target(insn, regs, next, op.rel);
      break;
    case 'jcc':
      if (conditionHolds(op.cc, e.regRead(regs.flags))) ip = target(insn, regs, next, op.rel);
      break;
    case 'loop': {
      // The counter is CX/ECX/RCX by address size. LOOPcc decrements first and branches on the
      // new count (and ZF for loope/loopne); JCXZ only tests.
      const bits = insn.addrSize * 8;
      const full = e.regRead(regs.cx);
      let count = BigInt.asUintN(bits, full);
      let taken: boolean;
      if (op.type === 3) taken = count === 0n;
      else {
        count = BigInt.asUintN(bits, count - 1n);
        // A 16-bit counter keeps the upper bits; a 32-bit one in 64-bit mode zero-extends.
        e.regWrite(regs.cx, bits === 16 ? (full & ~0xffffn) | count : count);
        const zf = (e.regRead(regs.flags) & FLAG.ZF) !== 0n;
        taken = count !== 0n && (op.type === 2 || (op.type === 1 ? zf : !zf));
      }
      if (taken) ip = target(insn, regs, next, op.rel);
      break;
    }
    case 'callIndirect': {
      const dest = BigInt.asUintN(regs.bits, e.regRead(regs.gpr[op.reg]!));
      push(cpu, regs, stackSize(insn, regs), next);
      ip = dest;
      break;
    }
    case 'jmpIndirect':
      ip = BigInt.asUintN(regs.bits, e.regRead(regs.gpr[op.reg]!));
      break;
  }
  e.regWrite(regs.ip, ip);
}

/** Far return operand size: 32 bits by default even in 64-bit mode (REX.W makes it 64). */
function farSize(insn: X86Insn, regs: X86RegIds): number {
  if (insn.prefixes.includes(0x66)) return 2;
  if (regs.bits === 64 && (insn.rex & 8) !== 0) return 8;
  return 4;
}
