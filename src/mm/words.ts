/**
 * Word, u32 and C-string accessors over an address space's byte read/write, in the target's
 * word size and byte order (Mm extends this).
 */
import type { Arch } from '../../arch/types.js';
import { MmFault } from './fault.js';

export abstract class GuestWords {
  abstract readonly arch: Arch;
  abstract read(addr: bigint, len: number): Uint8Array;
  abstract write(addr: bigint, bytes: Uint8Array, force?: boolean): void;

  readWord(addr: bigint): bigint {
    const b = this.read(addr, this.arch.wordSize);
    const v = new DataView(b.buffer);
    const le = this.arch.endian === 'little';
    return this.arch.wordSize === 8 ? v.getBigUint64(0, le) : BigInt(v.getUint32(0, le));
  }

  writeWord(addr: bigint, value: bigint): void {
    const b = new Uint8Array(this.arch.wordSize);
    const v = new DataView(b.buffer);
    const le = this.arch.endian === 'little';
    if (this.arch.wordSize === 8) v.setBigUint64(0, BigInt.asUintN(64, value), le);
    else v.setUint32(0, Number(BigInt.asUintN(32, value)), le);
    this.write(addr, b);
  }

  readU32(addr: bigint): number {
    const b = this.read(addr, 4);
    return new DataView(b.buffer).getUint32(0, this.arch.endian === 'little');
  }

  /** A NUL-terminated string of at most `max` bytes. */
  readCString(addr: bigint, max = 4096): string {
    const parts: number[] = [];
    for (let i = 0; i < max; i++) {
      const c = this.read(addr + BigInt(i), 1)[0]!;
      if (c === 0) return Buffer.from(parts).toString('utf8');
      parts.push(c);
    }
    throw new MmFault(addr, 'string too long');
  }
}
