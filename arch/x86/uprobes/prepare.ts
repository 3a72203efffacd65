/**
 * arch_uprobe_analyze_insn and the xol ops for x86 (reference §1.12, §4), in Linux's order:
 *
 * 1. uprobe_init_insn: undecodable → -ENOEXEC; an ES/CS/SS/DS override or LOCK prefix → -ENOTSUPP;
 *    `mov ss`/`pop ss` (they mask the single-step trap for one instruction) → -ENOTSUPP; an opcode
 *    the good-instruction table of the task's mode refuses → -ENOTSUPP (tables.ts).
 * 2. branch_xol_ops, emulated: the kernel's NOPs and `prefix* 90`, jmp rel8/rel32, call rel32,
 *    jcc rel8/rel32; any other of those with a 0x66 prefix → -ENOTSUPP. A call whose push faults
 *    is stepped instead, as a `call +0` (Linux's branch_clear_offset) that only raises the fault;
 *    if it does not fault, postXol drops what it pushed and restarts at the probe (-ERESTART).
 * 3. push_xol_ops, emulated: `push reg` (50–57, and 41 50–57 in a 64-bit task).
 * 4. default_xol_ops, stepped: the copy, then int3. postXol sets the IP after it to vaddr + len
 *    (UPROBE_FIX_IP); x86-64 RIP-relative operands run through a scratch register — modrm becomes
 *    mod=10 rm=scratch (si, else di, else bx: whichever the instruction does not name), REX.B /
 *    VEX.B cleared, the displacement kept; scratch = vaddr + len during the step, restored by
 *    postXol/abortXol. i386 has no RIP-relative form (mod=00 rm=101 is absolute).
 *
 * Where this engine differs from Linux, and why:
 * - The step ends at a trailing int3, not a TF trap, so a copy must never leave its slot. Linux
 *   steps ret/lret, loop/jcxz, indirect and far call/jmp and fixes the state afterwards; here
 *   ret, loop/loopz/loopnz/jcxz and call/jmp through a register are emulated; a call through
 *   memory is stepped as `push r/m` and a jmp as `mov reg, r/m` (same operand, so the CPU computes
 *   the target, faults included) and postXol completes the transfer; ret falls back to
 *   `push [sp]` if its read faults. Far transfers (lret, lcall/ljmp, 9A/EA) would load CS:
 *   refused with -ENOTSUPP.
 * - A TF single-step of a `rep` string instruction traps after every iteration with the IP still
 *   on the instruction, so Linux's probe fires once per iteration. The slot copy runs one
 *   iteration (the count is set to 1 for the step and the rest put back afterwards) and postXol
 *   leaves the IP on the probe while iterations remain: the same hits and the same state.
 * - `41 90` is `xchg eax, r8d`, not a NOP (Linux's "prefix* + 90" check emulates it as one);
 *   VEX-encoded opcodes that share a byte with jcc/jmp/call/nop are not branches (Linux's OPCODE1
 *   test would take VEX 74 for `je`); an instruction behind a Xen/KVM emulate prefix (a `ud2` that
 *   raises SIGILL in user mode) is never emulated. All three are stepped.
 * - UPROBE_FIX_SETF (popf) exists for TF bookkeeping only and has nothing to do here.
 */
import type { DecodedInsn, PreparedUprobe, ProbeCpu, ProbeRefusal } from '../../probes.js';
import { decodeX86, hasEmulatePrefix, EMULATE_PREFIX_LEN, modrmOf, readSigned, type X86Insn } from '../kprobes/decode.js';
import { conditionHolds, emulateX86, FLAG, leBytes, leValue, type X86RegIds } from '../kprobes/emulate.js';
import type { EmulateKind } from '../kprobes/tables.js';
import { BAD_PREFIXES, ERRNO, INT3, isKernelNop, refusedOpcode, repString } from './tables.js';

const refuse = (errno: number, reason: string): ProbeRefusal => ({ refused: true, errno, reason });

/** What runs at a hit. */
type Plan =
  | { kind: 'nop' }
  | { kind: 'jmp'; rel: bigint }
  | { kind: 'jcc'; cc: number; rel: bigint }
  | { kind: 'call'; rel: bigint }
  | { kind: 'push'; reg: number }
  | { kind: 'kemu'; op: EmulateKind; fallback?: 'indirect' | 'ret' }
  | { kind: 'indirect'; call: boolean }
  | { kind: 'default' };

/** Where the step's copy came from, for postXol. */
type StepKind = 'default' | 'callFallback' | 'indirectCall' | 'indirectJmp' | 'ret';

interface XolState {
  scratch?: { id: number; old: bigint };
  /** Iterations a rep string instruction still owes after this step. */
  rep?: { rest: bigint };
}

const NO_STATE: XolState = Object.freeze({});

/** Register number (0–15) → Unicorn id, and the width in bits, of a task. */
interface Regs extends X86RegIds {
  readonly word: number;
}

const mask = (bits: number, v: bigint): bigint => BigInt.asUintN(bits, v);


/** The rel8/rel32 of a relative branch: the bytes after the opcode. */
function relOf(insn: X86Insn): bigint {
  const off = insn.opcodeOffset + 1;
  return readSigned(insn.bytes, off, insn.length - off);
}

/** uprobe_init_insn's refusals after decoding. */
function initRefusal(insn: X86Insn): ProbeRefusal | undefined {
  for (const p of insn.prefixes) {
    const bad = BAD_PREFIXES.get(p);
    if (bad !== undefined) return refuse(ERRNO.ENOTSUPP, `${bad} (0x${p.toString(16)})`);
  }
  if (insn.map === 'one' && insn.opcode === 0x17) return refuse(ERRNO.ENOTSUPP, 'pop ss masks the single-step trap for one instruction');
  if (insn.map === 'one' && insn.opcode === 0x8e && modrmOf(insn).reg === 2) {
    return refuse(ERRNO.ENOTSUPP, 'mov to ss masks the single-step trap for one instruction');
  }
  // 0F-map instructions pass: Linux marks the escape byte itself good (see tables.ts).
  if (insn.map === 'one' || insn.map === 'vex' || insn.map === 'evex' || insn.map === 'xop') {
    const why = refusedOpcode(insn.opcode, insn.long);
    if (why !== undefined) return refuse(ERRNO.ENOTSUPP, `opcode 0x${insn.opcode.toString(16)}: ${why}`);
  }
  return undefined;
}

/** Choose how the instruction runs (branch_setup_xol_ops, push_setup_xol_ops, then the default). */
function plan(insn: X86Insn, bytes: Uint8Array): Plan | ProbeRefusal {
  if (hasEmulatePrefix(bytes)) return { kind: 'default' };
  const one = insn.map === 'one';
  const op = insn.opcode;
  // branch_xol_ops: the kernel's NOPs are a jump by zero, whatever their prefixes.
  if (isKernelNop(insn.bytes, insn.long)) return { kind: 'nop' };
  if (one && op === 0x90 && (insn.rex & 1) === 0) return { kind: 'nop' };
  let branch: Plan | undefined;
  if (one && (op === 0xeb || op === 0xe9)) branch = { kind: 'jmp', rel: relOf(insn) };
  else if (one && op === 0xe8) branch = { kind: 'call', rel: relOf(insn) };
  else if (one && op >= 0x70 && op <= 0x7f) branch = { kind: 'jcc', cc: op & 0xf, rel: relOf(insn) };
  else if (insn.map === '0f' && op >= 0x80 && op <= 0x8f) branch = { kind: 'jcc', cc: op & 0xf, rel: relOf(insn) };
  if (branch !== undefined) {
    if (insn.prefixes.includes(0x66)) return refuse(ERRNO.ENOTSUPP, 'relative branch with a 0x66 operand-size prefix (16-bit branches are not supported)');
    return branch;
  }
  // push_xol_ops: `push reg`, alone or with exactly REX 0x41 (r8–r15) in a 64-bit task.
  if (one && op >= 0x50 && op <= 0x57) {
    if (insn.length === 1) return { kind: 'push', reg: op - 0x50 };
    if (insn.length === 2 && insn.long && insn.rex === 0x41 && insn.prefixes.length === 0) return { kind: 'push', reg: op - 0x50 + 8 };
  }
  if (!one) return { kind: 'default' };
  switch (op) {
    case 0xc2:
    case 0xc3: {
      const imm = op === 0xc2 ? Number(leValue(insn.bytes.subarray(insn.opcodeOffset + 1, insn.opcodeOffset + 3))) : 0;
      return { kind: 'kemu', op: { kind: 'ret', far: false, imm }, fallback: 'ret' };
    }
    case 0xca:
    case 0xcb:
      return refuse(ERRNO.ENOTSUPP, 'far return (lret): this engine single-steps with a trailing int3 and cannot follow a CS-changing transfer out of the slot');
    case 0x9a:
    case 0xea:
      return refuse(ERRNO.ENOTSUPP, 'far call/jmp ptr16:32: this engine single-steps with a trailing int3 and cannot follow a CS-changing transfer out of the slot');
    case 0xe0:
    case 0xe1:
    case 0xe2:
    case 0xe3:
      return { kind: 'kemu', op: { kind: 'loop', type: (op & 3) as 0 | 1 | 2 | 3, rel: relOf(insn) } };
    case 0xff: {
      const { mod, reg, rm } = modrmOf(insn);
      if (reg === 3 || reg === 5) {
        return refuse(ERRNO.ENOTSUPP, 'far indirect call/jmp: this engine single-steps with a trailing int3 and cannot follow a CS-changing transfer out of the slot');
      }
      if (reg === 2 || reg === 4) {
        // Through a register: emulated (the CPU would read the same register). A 16-bit (0x66)
        // one is stepped through the rewritten copy, which gets the CPU's 16-bit rules for free.
        if (mod === 3 && !insn.prefixes.includes(0x66)) {
          const r = rm + ((insn.rex & 1) !== 0 ? 8 : 0);
          const kind: EmulateKind = reg === 2 ? { kind: 'callIndirect', reg: r } : { kind: 'jmpIndirect', reg: r };
          return { kind: 'kemu', op: kind, fallback: 'indirect' };
        }
        return { kind: 'indirect', call: reg === 2 };
      }
      return { kind: 'default' };
    }
    default:
      return { kind: 'default' };
  }
}

/** Offset of the REX or VEX/EVEX/XOP escape byte: right after the legacy prefixes. */
function prefixEnd(insn: X86Insn, bytes: Uint8Array): number {
  return (hasEmulatePrefix(bytes) ? EMULATE_PREFIX_LEN : 0) + insn.prefixes.length;
}

/**
 * riprel_analyze: the scratch register (6 si, 7 di, 3 bx) that neither modrm.reg nor VEX.vvvv
 * names, looked at in their low three bits as Linux does. It is chosen for the original
 * instruction (the indirect call/jmp rewrite puts /6 in modrm.reg, an opcode extension).
 */
function scratchFor(insn: X86Insn, bytes: Uint8Array): number {
  const reg = modrmOf(insn).reg;
  let vvvv = 0xff;
  const at = prefixEnd(insn, bytes);
  // Linux reads vex_prefix.bytes[2]: a 2-byte VEX has none there (it reads 0), XOP's is not read.
  if (insn.map === 'vex' && bytes[at] === 0xc4) vvvv = bytes[at + 2] ?? 0;
  else if (insn.map === 'vex') vvvv = 0;
  else if (insn.map === 'evex') vvvv = bytes[at + 2] ?? 0;
  const reg2 = ((vvvv >> 3) & 7) ^ 7;
  if (reg !== 6 && reg2 !== 6) return 6;
  if (reg !== 7 && reg2 !== 7) return 7;
  return 3;
}

/** The step copy: the instruction with its RIP-relative operand (and, for indirect branches, its opcode) rewritten. */
function stepCopy(insn: X86Insn, bytes: Uint8Array, kind: StepKind, scratch: number | undefined): Uint8Array {
  const out = insn.bytes.slice(0, insn.length);
  const m = insn.modrmOffset;
  if (kind === 'callFallback') {
    // branch_clear_offset: `call +0`, only there to raise the push's fault from the slot.
    out.fill(0, insn.opcodeOffset + 1);
    return out;
  }
  if (kind === 'ret') {
    // `push [sp]` (FF /6, SIB base=sp): reads the return address exactly as ret would.
    const lead = insn.prefixes.includes(0x66) ? [0x66] : [];
    return Uint8Array.from([...lead, 0xff, 0x34, 0x24]);
  }
  if (kind === 'indirectJmp') return jmpLoad(insn, scratch);
  if (kind === 'indirectCall') out[m] = (out[m]! & ~0x38) | (6 << 3); // FF /2 → FF /6
  if (scratch !== undefined) {
    const at = prefixEnd(insn, bytes);
    if (insn.rex !== 0) out[at] = out[at]! & 0xfe;
    if ((insn.map === 'vex' && out[at] === 0xc4) || insn.map === 'evex' || insn.map === 'xop') out[at + 1] = out[at + 1]! | 0x60;
    out[m] = 0x80 | (out[m]! & 0x38) | scratch;
  }
  return out;
}

/**
 * `jmp r/m` as `mov dest, r/m` (8B /r, same operand): the CPU computes the target, faults
 * included, and nothing is written (a `push` would clobber the word below sp, which on x86-64
 * may be live red-zone data). dest = the RIP-relative scratch register when there is one (it is
 * also the base: mov reads before it writes), else ax; postXol takes the target from it and
 * restores it. Segment, address-size and operand-size prefixes stay: with 0x66 the jump and the
 * load are both 16-bit (Unicorn honours 0x66 on a 64-bit near branch, as AMD CPUs do); without
 * it a 64-bit task needs REX.W for the 64-bit load the jump does.
 */
function jmpLoad(insn: X86Insn, scratch: number | undefined): Uint8Array {
  const dest = scratch ?? JMP_DEST;
  const o16 = insn.prefixes.includes(0x66);
  const keep = insn.prefixes.filter((x) => x === 0x64 || x === 0x65 || x === 0x67 || x === 0x66);
  const xb = (insn.rex & 0x02) | (scratch === undefined ? insn.rex & 0x01 : 0);
  const rex = insn.long && (!o16 || xb !== 0) ? [0x40 | (o16 ? 0 : 0x08) | xb] : [];
  const body = insn.bytes.slice(insn.modrmOffset, insn.length);
  const { mod, rm } = modrmOf(insn);
  body[0] = scratch === undefined ? (mod << 6) | (dest << 3) | rm : 0x80 | (dest << 3) | scratch;
  return Uint8Array.from([...keep, ...rex, 0x8b, ...body]);
}

/** The register an indirect jmp's target is loaded into when no scratch register is in play. */
const JMP_DEST = 0;

export function analyzeX86Uprobe(vaddr: bigint, bytes: Uint8Array, regs: Regs): PreparedUprobe | ProbeRefusal {
  const long = regs.bits === 64;
  const insn = decodeX86(vaddr, bytes, long);
  if (insn === undefined) return refuse(ERRNO.ENOEXEC, 'cannot decode the instruction');
  const init = initRefusal(insn);
  if (init !== undefined) return init;
  const p = plan(insn, bytes);
  if ('refused' in p) return p;

  const len = BigInt(insn.length);
  const word = regs.word;
  const e = (cpu: ProbeCpu) => cpu.engine;

  const wordBig = BigInt(word);
  // The pushed word goes through one buffer per probe (Mm.write copies it, or slices it when the
  // write must wait for the run to stop): an emulated push allocates no bytes at the hit.
  const pushView = new DataView(new ArrayBuffer(8));
  const pushBytes = new Uint8Array(pushView.buffer, 0, word);
  const pushWord = (cpu: ProbeCpu, value: bigint): void => {
    const sp = mask(regs.bits, e(cpu).regRead(regs.sp) - wordBig);
    pushView.setBigUint64(0, BigInt.asUintN(64, value), true);
    cpu.mem.write(sp, pushBytes);
    e(cpu).regWrite(regs.sp, sp);
  };

  // --- what runs at the hit (at `at`, where this mm maps the instruction) -----------------------
  let emulate: ((cpu: ProbeCpu, at: bigint) => void) | undefined;
  let kind: StepKind = 'default';
  // The addresses after and (for a relative branch) at the target of the instruction, for the
  // address `at` where an mm maps it: worked out once per address (most uprobes are mapped at
  // one address in every mm), not at every hit.
  const rel = p.kind === 'jmp' || p.kind === 'jcc' || p.kind === 'call' ? p.rel : 0n;
  let memoAt = -1n;
  let memoAfter = 0n;
  let memoTarget = 0n;
  const at1 = (at: bigint): void => {
    if (at === memoAt) return;
    memoAfter = mask(regs.bits, at + len);
    memoTarget = mask(regs.bits, memoAfter + rel);
    memoAt = at;
  };
  const after = (at: bigint): bigint => (at1(at), memoAfter);
  const branchTarget = (at: bigint): bigint => (at1(at), memoTarget);
  switch (p.kind) {
    case 'nop':
      emulate = (cpu, at) => e(cpu).regWrite(regs.ip, after(at));
      break;
    case 'jmp':
      emulate = (cpu, at) => e(cpu).regWrite(regs.ip, branchTarget(at));
      break;
    case 'jcc':
      emulate = (cpu, at) => e(cpu).regWrite(regs.ip, conditionHolds(p.cc, e(cpu).regRead(regs.flags)) ? branchTarget(at) : after(at));
      break;
    case 'call':
      emulate = (cpu, at) => {
        pushWord(cpu, after(at));
        e(cpu).regWrite(regs.ip, branchTarget(at));
      };
      kind = 'callFallback';
      break;
    case 'push':
      emulate = (cpu, at) => {
        // The register's value before the push: `push rsp` pushes the old stack pointer.
        pushWord(cpu, e(cpu).regRead(regs.gpr[p.reg]!));
        e(cpu).regWrite(regs.ip, after(at));
      };
      break;
    case 'kemu':
      // The kprobe emulation computes from insn.addr: hand it the instruction where it is mapped.
      emulate = (cpu, at) => emulateX86(cpu, at === insn.addr ? insn : { ...insn, addr: at }, p.op, regs);
      if (p.fallback === 'ret') kind = 'ret';
      else if (p.fallback === 'indirect') kind = p.op.kind === 'callIndirect' ? 'indirectCall' : 'indirectJmp';
      break;
    case 'indirect':
      kind = p.call ? 'indirectCall' : 'indirectJmp';
      break;
    case 'default':
      break;
  }

  // --- the step -------------------------------------------------------------------------------
  const ripRel = long && insn.ripRelative && kind !== 'callFallback' && kind !== 'ret';
  if (ripRel) {
    const { mod, rm } = modrmOf(insn);
    if (mod !== 0 || rm !== 5) return refuse(ERRNO.EINVAL, 'cannot locate the RIP-relative operand');
  }
  const scratch = ripRel ? scratchFor(insn, bytes) : undefined;
  const copy = stepCopy(insn, bytes, kind, scratch);
  const slot = Uint8Array.from([...copy, INT3]);
  const rep =
    kind === 'default' && insn.map === 'one' && repString(insn.opcode) !== undefined
      ? insn.prefixes.filter((x) => x === 0xf2 || x === 0xf3).pop()
      : undefined;
  const repZf = rep !== undefined && repString(insn.opcode) === 'zf';
  const countBits = insn.addrSize * 8;
  /** Size of what an indirect call/jmp pushes and reads: 16 bits with 0x66, as the CPU does it. */
  const branchSize = insn.prefixes.includes(0x66) ? 2 : word;

  const readCount = (cpu: ProbeCpu): bigint => mask(countBits, e(cpu).regRead(regs.cx));
  const writeCount = (cpu: ProbeCpu, v: bigint): void => {
    // A 16-bit count keeps the rest of the register; a 32-bit one in a 64-bit task zero-extends,
    // as the CPU's own update of ecx does.
    const full = e(cpu).regRead(regs.cx);
    e(cpu).regWrite(regs.cx, countBits === 16 ? (full & ~0xffffn) | mask(16, v) : mask(countBits, v));
  };

  const keepsState = scratch !== undefined || kind === 'indirectJmp' || rep !== undefined;

  const restoreScratch = (cpu: ProbeCpu, st: XolState): void => {
    if (st.scratch) e(cpu).regWrite(st.scratch.id, st.scratch.old);
  };

  const prepared: PreparedUprobe = {
    insn: insn as DecodedInsn,
    mode: emulate !== undefined ? 'emulate' : 'step',
    ...(emulate !== undefined
      ? {
          emulate(cpu: ProbeCpu, at: bigint = vaddr): boolean {
            try {
              emulate!(cpu, at);
              return true;
            } catch {
              // The access faulted: nothing was changed (memory is written before registers);
              // the step from the slot raises the fault where the task can get its signal.
              return false;
            }
          },
        }
      : {}),
    slotBytes: () => slot.slice(),
    stepTrapOffset: copy.length,
    // default_post_xol_op of an instruction with nothing to fix up: IP = vaddr + len.
    ...(kind === 'default' && scratch === undefined && rep === undefined ? { plainStepNext: insn.length } : {}),
    preXol(cpu: ProbeCpu, slotAddr: bigint, vaddrNow: bigint): XolState {
      // Most copies put nothing aside: they share one empty state (no allocation per hit).
      const st: XolState = keepsState ? {} : NO_STATE;
      if (scratch !== undefined) {
        const id = regs.gpr[scratch]!;
        st.scratch = { id, old: e(cpu).regRead(id) };
        e(cpu).regWrite(id, mask(64, vaddrNow + len));
      } else if (kind === 'indirectJmp') {
        const id = regs.gpr[JMP_DEST]!;
        st.scratch = { id, old: e(cpu).regRead(id) };
      }
      if (rep !== undefined) {
        const c = readCount(cpu);
        if (c > 1n) {
          st.rep = { rest: c - 1n };
          writeCount(cpu, 1n);
        }
      }
      e(cpu).regWrite(regs.ip, slotAddr);
      return st;
    },
    postXol(cpu: ProbeCpu, _slotAddr: bigint, vaddrNow: bigint, state: unknown): void {
      const st = (state ?? {}) as XolState;
      const en = e(cpu);
      if (kind === 'indirectJmp') {
        // The copy loaded the target into the scratch (or ax): jump there, put the register back.
        const loaded = en.regRead(regs.gpr[scratch ?? JMP_DEST]!);
        restoreScratch(cpu, st);
        en.regWrite(regs.ip, mask(branchSize * 8, loaded));
        return;
      }
      restoreScratch(cpu, st);
      const next = after(vaddrNow);
      switch (kind) {
        case 'callFallback':
          // branch_post_xol_op: the mangled call did push; drop it and restart (-ERESTART).
          en.regWrite(regs.sp, mask(regs.bits, en.regRead(regs.sp) + BigInt(word)));
          en.regWrite(regs.ip, vaddrNow);
          return;
        case 'indirectCall': {
          // The copy pushed the target where the call pushes its return address.
          const sp = en.regRead(regs.sp);
          const target = leValue(cpu.mem.read(sp, branchSize));
          cpu.mem.write(sp, leBytes(branchSize, next));
          en.regWrite(regs.ip, target);
          return;
        }
        case 'ret': {
          // `push [sp]` copied the return address; pop it, then do what ret does.
          const size = insn.prefixes.includes(0x66) ? 2 : word;
          const imm = p.kind === 'kemu' && p.op.kind === 'ret' ? p.op.imm : 0;
          const sp = en.regRead(regs.sp);
          const target = leValue(cpu.mem.read(sp, size));
          en.regWrite(regs.sp, mask(regs.bits, sp + BigInt(2 * size + imm)));
          en.regWrite(regs.ip, target);
          return;
        }
        default:
          break;
      }
      if (st.rep !== undefined) {
        // One iteration ran (count 1 → 0). Put the rest back; a TF step would stop here with the
        // IP still on the instruction if it goes on.
        writeCount(cpu, st.rep.rest);
        const zf = (en.regRead(regs.flags) & FLAG.ZF) !== 0n;
        const goesOn = !repZf || (rep === 0xf3 ? zf : !zf);
        en.regWrite(regs.ip, goesOn ? vaddrNow : next);
        return;
      }
      en.regWrite(regs.ip, next);
    },
    abortXol(cpu: ProbeCpu, _slotAddr: bigint, vaddrNow: bigint, state: unknown): void {
      const st = (state ?? {}) as XolState;
      restoreScratch(cpu, st);
      if (st.rep !== undefined) writeCount(cpu, readCount(cpu) + st.rep.rest);
      e(cpu).regWrite(regs.ip, vaddrNow);
    },
  };
  return prepared;
}
