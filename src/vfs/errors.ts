/**
 * A VFS operation's failure, carrying the generic Linux errno the system call returns. Only
 * operations that cannot return a number (deep in a path walk, a host read) throw it; the
 * system-call layer turns it into -errno.
 */
export class VfsError extends Error {
  constructor(
    readonly errno: number,
    message?: string,
  ) {
    super(message ?? `errno ${errno}`);
  }
}
