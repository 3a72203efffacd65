/**
 * 64-bit fields that 32-bit targets' system calls write (sys/common.ts writeWords): struct
 * __kernel_timespec of clock_gettime64 (uapi linux/time_types.h: __kernel_time64_t tv_sec,
 * long long tv_nsec) and struct rlimit64 of prlimit64 are two 8-byte integers in the target's byte
 * order on every target. Every byte of the struct is written: a 32-bit target's glibc reads
 * tv_nsec from the low half (big-endian ppc32: bytes 12..15), and a stale half there made
 * pthread_cond_timedwait reject its own deadline (EINVAL) before it ever called futex.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { archFor } from '../../arch/index.js';
import type { Target } from '../../arch/types.js';
import { Mm } from '../../src/mm/mm.js';
import { PROT } from '../../src/mm/vma.js';
import { writeWords } from '../../src/kernel/sys/common.js';

const AT = 0x1000_0000n;
let mms: Mm[] = [];
afterEach(() => {
  for (const m of mms) m.destroy();
  mms = [];
});

describe.each(['i386', 'ppc32', 'x86_64', 'ppc64'] as Target[])('struct __kernel_timespec as written on %s', (target) => {
  it('is two 8-byte integers in the target byte order, every byte written', () => {
    const arch = archFor(target)!;
    const mm = new Mm(arch, []);
    mms.push(mm);
    expect(mm.mmap({ addr: AT, len: 0x1000n, prot: PROT.READ | PROT.WRITE, fixed: true, shared: false })).toBe(AT);
    mm.write(AT, new Uint8Array(16).fill(0xee));
    const sec = 0x1_2345_6789n; // past 2038: needs the high half
    const nsec = 999_999_999n;
    writeWords(mm, AT, [sec, nsec], 8);
    const v = new DataView(mm.read(AT, 16).buffer);
    const le = arch.endian === 'little';
    expect(v.getBigUint64(0, le)).toBe(sec);
    expect(v.getBigUint64(8, le)).toBe(nsec);
    // glibc's 32-bit struct __timespec64 keeps tv_nsec in the 4 bytes nearest the low end.
    expect(v.getUint32(le ? 8 : 12, le)).toBe(Number(nsec));
    expect(v.getUint32(le ? 12 : 8, le)).toBe(0);
  });
});
