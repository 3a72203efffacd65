/**
 * Word, u32 and C-string accessors over an address space's byte read/write, in the target's
 * word size and byte order (Mm extends this).
 */
import type { Arch, GuestMemoryAccess } from '../../arch/types.js';
import { MmFault } from './fault.js';

export abstract class GuestWords {
  abstract readonly arch: Arch;
  abstract read(addr: bigint, len: number): Uint8Array;
  /** read() into `out` (its length is the count). */
  abstract readInto(addr: bigint, out: Uint8Array): Uint8Array;
  abstract write(addr: bigint, bytes: Uint8Array, force?: boolean): void;

  /**
   * Inside `fn` this address space's host reads and writes are copy_{from,to}_user: a range not
   * entirely below TASK_SIZE faults (EFAULT for the system call) before any byte is touched —
   * Linux's access_ok. The system calls' host halves run this way (TrapDispatch.hostSyscall), so
   * no handler can forget the check; the guest kernel's own accesses, the probe cores' fetches
   * and the engine's frames are not inside it.
   */
  asUser<T>(fn: () => T): T {
    this.userCopy++;
    try {
      return fn();
    } finally {
      this.userCopy--;
    }
  }

  private userCopy = 0;

  /** Inside asUser (access_ok applies to host reads and writes). */
  protected get userCopying(): boolean {
    return this.userCopy !== 0;
  }

  private userView: GuestMemoryAccess | undefined;

  /**
   * This address space as the user program reaches it: every access inside asUser. For what the
   * kernel does in a trap on the program's behalf with the program's pointers — a uprobe's
   * emulated push or call, its fix-ups after the step (Linux: put_user/copy_to_user, which fail
   * for a kernel address; the emulation then declines and the step faults as the program would).
   */
  get user(): GuestMemoryAccess {
    // Spelled out rather than through asUser(() => …): emulated pushes and fix-ups call these at
    // every probe hit, and a closure per call is garbage per hit.
    return (this.userView ??= {
      read: (a, n) => {
        this.userCopy++;
        try {
          return this.read(a, n);
        } finally {
          this.userCopy--;
        }
      },
      write: (a, b) => {
        this.userCopy++;
        try {
          this.write(a, b);
        } finally {
          this.userCopy--;
        }
      },
      readWord: (a) => {
        this.userCopy++;
        try {
          return this.readWord(a);
        } finally {
          this.userCopy--;
        }
      },
      writeWord: (a, v) => {
        this.userCopy++;
        try {
          this.writeWord(a, v);
        } finally {
          this.userCopy--;
        }
      },
    });
  }

  /** read()/write() call this first: access_ok while inside asUser. */
  protected checkUserCopy(addr: bigint, len: number): void {
    if (this.userCopy === 0) return;
    const top = this.arch.layout.taskSize;
    if (addr >= top || BigInt(len) > top - addr) throw new MmFault(addr, 'user copy of a kernel address (access_ok)');
  }

  /**
   * One scratch word for the accessors below. A DataView over a fresh small Uint8Array costs
   * ~0.9 µs: V8 keeps such arrays on its heap and must move the bytes to a new backing store the
   * first time `.buffer` is asked for (measured: writeWord 1.03 µs, the write it does 0.14 µs;
   * eight of them per system call). read() and write() copy, so the scratch is free again when
   * they return.
   */
  private readonly scratch = new DataView(new ArrayBuffer(8));
  private readonly scratch8 = new Uint8Array(this.scratch.buffer);
  private readonly scratch4 = new Uint8Array(this.scratch.buffer, 0, 4);

  readWord(addr: bigint): bigint {
    // Straight into the scratch word: a fresh array per read is garbage (i386 reads its six
    // hypercall arguments from the stack at every system call).
    const le = this.arch.endian === 'little';
    const v = this.scratch;
    if (this.arch.wordSize === 8) {
      this.readInto(addr, this.scratch8);
      return v.getBigUint64(0, le);
    }
    this.readInto(addr, this.scratch4);
    return BigInt(v.getUint32(0, le));
  }

  writeWord(addr: bigint, value: bigint): void {
    const v = this.scratch;
    const le = this.arch.endian === 'little';
    if (this.arch.wordSize === 8) v.setBigUint64(0, BigInt.asUintN(64, value), le);
    else v.setUint32(0, Number(BigInt.asUintN(32, value)), le);
    this.write(addr, this.arch.wordSize === 8 ? this.scratch8 : this.scratch4);
  }

  private readonly frame = new DataView(new ArrayBuffer(64));
  private readonly frame8 = new Uint8Array(this.frame.buffer);

  /**
   * `values[0..n)` (n ≤ 8) as consecutive words from `addr`, in one write: a system call's frame
   * on the kernel stack is eight words, and eight writeWord calls were eight host writes.
   */
  writeWords(addr: bigint, values: readonly bigint[], n: number): void {
    const v = this.frame;
    const le = this.arch.endian === 'little';
    const w = this.arch.wordSize;
    // The stores wrap a value to the word: setBigUint64 modulo 2^64, setUint32 after asUintN.
    for (let i = 0; i < n; i++) {
      if (w === 8) v.setBigUint64(8 * i, values[i]!, le);
      else v.setUint32(4 * i, Number(BigInt.asUintN(32, values[i]!)), le);
    }
    this.write(addr, this.frame8.subarray(0, n * w));
  }

  readU32(addr: bigint): number {
    this.readInto(addr, this.scratch4);
    return this.scratch.getUint32(0, this.arch.endian === 'little');
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
