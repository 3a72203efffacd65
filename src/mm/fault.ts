/** Errors of guest memory accesses made by the host (re-exported by mm.ts). */
import { UniprobeError } from '../errors.js';

/** A guest memory access the mm could not satisfy (the syscall layer turns it into -EFAULT). */
export class MmFault extends UniprobeError {
  readonly addr: bigint;
  constructor(addr: bigint, what: string) {
    super('MM', `${what} at 0x${addr.toString(16)}`);
    this.addr = addr;
  }
}

/**
 * A copy-on-write copy the memory limit refused. From a system call's copy to user memory it is
 * -EFAULT like any failed copy (Linux's uaccess fixup after VM_FAULT_OOM); a guest store that
 * needed it leaves `Mm.oom` set and the machine OOM-kills the process.
 */
export class MmOom extends MmFault {}
