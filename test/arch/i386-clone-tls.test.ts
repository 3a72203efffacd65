/**
 * i386 CLONE_SETTLS: Linux's copy_thread reads the struct user_desc the tls argument points to
 * during clone (do_set_thread_area(p, -1, tls, 0)), so what the child gets is the descriptor as it
 * was at the clone call, even when the parent reuses that memory before the child first runs
 * (glibc's descriptor is on pthread_create's stack); entry_number -1 is EINVAL there (no slot is
 * allocated for a clone), an unreadable pointer EFAULT. The descriptor's base is checked against
 * the x86 segment-descriptor format (SDM vol. 3, 3.4.5: base 15..0 in bytes 2-3, 23..16 in byte 4,
 * 31..24 in byte 7).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { i386 } from '../../arch/x86/i386.js';
import { E } from '../../src/kernel/errno.js';
import { Mm } from '../../src/mm/mm.js';
import { PROT } from '../../src/mm/vma.js';

const AT = 0x1000_0000n;
const GDT = 0xff00_0000n;
let mms: Mm[] = [];
afterEach(() => {
  for (const m of mms) m.destroy();
  mms = [];
});

function mm(): Mm {
  const m = new Mm(i386, []);
  mms.push(m);
  expect(m.mmap({ addr: AT, len: 0x1000n, prot: PROT.READ | PROT.WRITE, fixed: true, shared: false })).toBe(AT);
  return m;
}

/** struct user_desc: entry_number, base_addr, limit, flags (seg_32bit | limit_in_pages | useable). */
function userDesc(entry: number, base: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setInt32(0, entry, true);
  v.setUint32(4, base, true);
  v.setUint32(8, 0xfffff, true);
  v.setUint32(12, 0x51, true);
  return b;
}

function gdtBase(m: Mm, entry: number): number {
  const d = m.engine.memRead(GDT + BigInt(entry * 8), 8);
  return (d[2]! | (d[3]! << 8) | (d[4]! << 16) | (d[7]! << 24)) >>> 0;
}

describe('i386 clone TLS (CLONE_SETTLS)', () => {
  it('loads the descriptor read at the clone call, not what the memory holds later', () => {
    const m = mm();
    m.write(AT, userDesc(6, 0x0812_3440));
    const load = i386.cloneTls!(AT, m);
    expect(typeof load).toBe('function');
    m.write(AT, userDesc(6, 0x0dea_d000)); // the parent's next pthread_create reuses the slot
    (load as (e: typeof m.engine) => void)(m.engine);
    expect(gdtBase(m, 6)).toBe(0x0812_3440);
  });

  it('entry_number -1 is EINVAL (no allocation for clone), an unreadable pointer EFAULT', () => {
    const m = mm();
    m.write(AT, userDesc(-1, 0x0812_3440));
    expect(i386.cloneTls!(AT, m)).toBe(-BigInt(E.EINVAL));
    m.write(AT, userDesc(9, 0x0812_3440)); // past GDT_ENTRY_TLS_MAX (8)
    expect(i386.cloneTls!(AT, m)).toBe(-BigInt(E.EINVAL));
    expect(i386.cloneTls!(0x2000_0000n, m)).toBe(-BigInt(E.EFAULT));
  });
});
