/**
 * struct siginfo as user space reads it (include/uapi/asm-generic/siginfo.h): 128 bytes; si_signo,
 * si_errno, si_code, then the union, which starts at the first word-aligned offset (12 on 32-bit
 * targets, 16 on 64-bit ones). Every target here uses this layout (sparc64 adds si_trapno after
 * si_addr, left 0).
 */
import type { SigInfo } from './pending.js';

export const SIGINFO_SIZE = 128;

export function encodeSiginfo(info: SigInfo, userSigno: number, wordSize: 4 | 8, littleEndian: boolean): Uint8Array {
  const b = new Uint8Array(SIGINFO_SIZE);
  const v = new DataView(b.buffer);
  const u = wordSize === 8 ? 16 : 12;
  const word = (off: number, x: bigint): void => {
    if (wordSize === 8) v.setBigUint64(off, BigInt.asUintN(64, x), littleEndian);
    else v.setUint32(off, Number(BigInt.asUintN(32, x)), littleEndian);
  };
  v.setInt32(0, userSigno, littleEndian);
  v.setInt32(4, info.errno ?? 0, littleEndian);
  v.setInt32(8, info.code, littleEndian);
  if (info.addr !== undefined) {
    word(u, info.addr); // _sigfault.si_addr
    return b;
  }
  // _kill, _rt and _sigchld all begin with si_pid, si_uid.
  v.setInt32(u, info.pid ?? 0, littleEndian);
  v.setUint32(u + 4, info.uid ?? 0, littleEndian);
  if (info.status !== undefined) {
    v.setInt32(u + 8, info.status, littleEndian);
    // si_utime, si_stime: clock_t (a long), word-aligned after si_status.
    const t = wordSize === 8 ? u + 16 : u + 12;
    word(t, info.utime ?? 0n);
    word(t + wordSize, info.stime ?? 0n);
  }
  return b;
}
