/**
 * The load-reserve reservation across a return from the kernel.
 *
 * lwarx/ldarx take a reservation that the next stwcx./stdcx. needs; Unicorn (QEMU) keeps one per
 * CPU, as an address and the value loaded, and a store-conditional succeeds when its address is the
 * reserved one and memory still holds that value. The reservation is CPU state, not task state:
 * Linux's interrupt and system-call exit paths clear it with a store-conditional to a kernel
 * address, so a task never completes a stwcx. on a reservation somebody else took. Without that,
 * a task preempted between its lwarx (which saw a free lock, 0) and its stwcx. resumes with the
 * reservation of the task that ran meanwhile (same lock word, now held: 2) and its stwcx. stores
 * 1 over a held lock — two owners (glibc's "mutex->__data.__owner == 0" assertion).
 *
 * Here the scheduler's return to a task (the end of the timer interrupt, a switch, a signal
 * handler's entry) runs one `stwcx. r0,0,r3` at a word of the engine-private trampoline page: an
 * address no user lwarx can reserve, so it always fails and only drops the reservation; a `b .+4`
 * after it ends the stub (Engine.runStub). The registers it touches (r3, CR0, PC) are put back.
 */
import type { Engine } from '../../src/emu/unicorn.js';
import { UniprobeError } from '../../src/errors.js';
import { UC_PPC_REG as R } from './ucregs.js';

/** Offset of the store-conditional in the trampoline page (after the sigreturn trampolines). */
export const DROP_RESERVATION_OFFSET = 0x40n;
/** stwcx. r0,0,r3 (X-form: opcode 31, XO 150, Rc = 1; rA = 0 means no base register). */
const STWCX_R0_0_R3 = 0x7c00192d;
/** b .+4: ends the stub's block (Engine.runStub). */
const B_NEXT = 0x48000004;

export function installDropReservation(e: Engine, page: bigint): void {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(0, STWCX_R0_0_R3);
  new DataView(b.buffer).setUint32(4, B_NEXT);
  e.memWrite(page + DROP_RESERVATION_OFFSET, b);
}

export function dropReservation(e: Engine, page: bigint): void {
  const at = page + DROP_RESERVATION_OFFSET;
  const saved = e.regReadBatch([R.R3, R.CR, R.PC]);
  e.regWrite(R.R3, at);
  // No end address: a new one would make Unicorn flush its translations.
  const err = e.runStub(at, 2);
  e.regWriteBatch([R.R3, R.CR, R.PC], saved);
  if (err !== 0) throw new UniprobeError('INTERNAL', `ppc: the reservation-dropping stwcx. at 0x${at.toString(16)} failed (Unicorn error ${err})`);
}
