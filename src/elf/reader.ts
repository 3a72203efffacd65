/**
 * Bounds-checked, endianness-aware reads from an ELF image.
 *
 * Every read is checked against the buffer before it happens; a read that would leave the buffer
 * fails with UniprobeError('ELF', `${file}: …`) naming what was being read. Addresses and sizes
 * from the file are bigints (64-bit words do not fit a JS number); offsets used to index the buffer
 * are converted with `offsetOf`, which refuses anything beyond the buffer.
 */
import { UniprobeError } from '../errors.js';

export type Endianness = 'little' | 'big';
export type ElfClass = 32 | 64;

/** The one way this module family fails: code 'ELF', message starting with the file name. */
export function elfError(file: string, defect: string): UniprobeError {
  return new UniprobeError('ELF', `${file}: ${defect}`);
}

export function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

export class ByteReader {
  readonly file: string;
  readonly bytes: Uint8Array;
  readonly little: boolean;
  readonly length: number;
  private readonly view: DataView;

  constructor(bytes: Uint8Array, file: string, endianness: Endianness) {
    this.bytes = bytes;
    this.file = file;
    this.little = endianness === 'little';
    this.length = bytes.length;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(defect: string): never {
    throw elfError(this.file, defect);
  }

  /** True if [off, off+n) lies inside the buffer (exact integer arithmetic on bigints). */
  contains(off: bigint | number, n: bigint | number): boolean {
    const o = BigInt(off);
    const len = BigInt(n);
    return o >= 0n && len >= 0n && o + len <= BigInt(this.length);
  }

  /** Checks [off, off+n) is in the buffer and returns `off` as a number; fails naming `what`. */
  range(off: bigint | number, n: bigint | number, what: string): number {
    if (!this.contains(off, n)) {
      this.fail(
        `${what} (file offset ${hex(off)}, ${BigInt(n)} bytes) extends past the end of the file (${this.length} bytes)`,
      );
    }
    return Number(off);
  }

  u8(off: number, what: string): number {
    return this.view.getUint8(this.range(off, 1, what));
  }

  u16(off: number, what: string): number {
    return this.view.getUint16(this.range(off, 2, what), this.little);
  }

  u32(off: number, what: string): number {
    return this.view.getUint32(this.range(off, 4, what), this.little);
  }

  u64(off: number, what: string): bigint {
    return this.view.getBigUint64(this.range(off, 8, what), this.little);
  }

  /** A class-sized word (Elf32_Addr/Off/Word or Elf64_Addr/Off/Xword) as a bigint. */
  word(off: number, cls: ElfClass, what: string): bigint {
    return cls === 64 ? this.u64(off, what) : BigInt(this.u32(off, what));
  }

  /** A copy of [off, off+n). */
  slice(off: bigint | number, n: bigint | number, what: string): Uint8Array {
    const start = this.range(off, n, what);
    return this.bytes.slice(start, start + Number(n));
  }

  /**
   * The NUL-terminated string at `start + index` inside the string table [start, start+size).
   * Fails if the index is outside the table or the string runs off the table's end; never reads
   * outside the table (the table itself has already been checked against the buffer).
   */
  cstring(tableStart: number, tableSize: number, index: number, what: string, table: string): string {
    if (index < 0 || index >= tableSize) {
      this.fail(`${what}: name offset ${hex(index)} is outside string table ${table} (${tableSize} bytes)`);
    }
    const end = tableStart + tableSize;
    if (tableStart < 0 || end > this.length) {
      this.fail(`string table ${table} extends past the end of the file`);
    }
    const from = tableStart + index;
    const text = this.bytes.subarray(from, end);
    const nul = text.indexOf(0);
    if (nul < 0) {
      this.fail(`${what}: unterminated name at offset ${hex(index)} in string table ${table}`);
    }
    return utf8.decode(text.subarray(0, nul));
  }
}
