/**
 * Unicorn 2.1's constants (unicorn.h): architectures, modes, permissions, hook types, memory
 * access types, error codes, and the uc_ctl encodings the engine uses. Values, no behaviour.
 */

export const UC_ARCH = { X86: 4, PPC: 5, SPARC: 6 } as const;
export const UC_MODE = {
  LITTLE_ENDIAN: 0,
  BIG_ENDIAN: 1 << 30,
  MODE_32: 1 << 2,
  MODE_64: 1 << 3,
  SPARC64: 1 << 3,
  PPC32: 1 << 2,
  PPC64: 1 << 3,
} as const;

export const UC_PROT = { NONE: 0, READ: 1, WRITE: 2, EXEC: 4, ALL: 7 } as const;

export const UC_HOOK = {
  INTR: 1 << 0,
  INSN: 1 << 1,
  CODE: 1 << 2,
  BLOCK: 1 << 3,
  MEM_READ_UNMAPPED: 1 << 4,
  MEM_WRITE_UNMAPPED: 1 << 5,
  MEM_FETCH_UNMAPPED: 1 << 6,
  MEM_READ_PROT: 1 << 7,
  MEM_WRITE_PROT: 1 << 8,
  MEM_FETCH_PROT: 1 << 9,
  MEM_READ: 1 << 10,
  MEM_WRITE: 1 << 11,
  MEM_FETCH: 1 << 12,
  INSN_INVALID: 1 << 14,
} as const;
export const UC_HOOK_MEM_INVALID = 0x3f0; // every *_UNMAPPED and *_PROT bit

/** uc_mem_type values passed to memory hooks. */
export const UC_MEM = {
  READ: 16,
  WRITE: 17,
  FETCH: 18,
  READ_UNMAPPED: 19,
  WRITE_UNMAPPED: 20,
  FETCH_UNMAPPED: 21,
  WRITE_PROT: 22,
  READ_PROT: 23,
  FETCH_PROT: 24,
} as const;

/** uc_err values that carry meaning for the run loop (a guest fault ends a run with one of them). */
export const UC_ERR = {
  OK: 0,
  NOMEM: 1,
  ARCH: 2,
  HANDLE: 3,
  MODE: 4,
  VERSION: 5,
  READ_UNMAPPED: 6,
  WRITE_UNMAPPED: 7,
  FETCH_UNMAPPED: 8,
  HOOK: 9,
  INSN_INVALID: 10,
  MAP: 11,
  WRITE_PROT: 12,
  READ_PROT: 13,
  FETCH_PROT: 14,
  ARG: 15,
  READ_UNALIGNED: 16,
  WRITE_UNALIGNED: 17,
  FETCH_UNALIGNED: 18,
  HOOK_EXIST: 19,
  RESOURCE: 20,
  EXCEPTION: 21,
} as const;

// uc_ctl encodes (type | nr_args << 26 | io << 30); TB_REMOVE_CACHE is enum value 9, written, 2 args.
export const UC_CTL_IO_WRITE = 1;
export const UC_CTL_IO_READ_WRITE = 3;
export const UC_CTL_TB_REQUEST_CACHE = 8;
export const UC_CTL_TB_REMOVE_CACHE = 9;
export const UC_CTL_TB_FLUSH = 10;
export const UC_CTL_TCG_BUFFER_SIZE = 13;
/**
 * Translation buffer per engine. QEMU's default is 1 GiB of address space per engine, which a
 * machine with dozens of address spaces (fork, tests) turns into gigabytes of resident code
 * buffers; when a smaller buffer fills, QEMU flushes it and translates again (slower, never wrong).
 * A flush touches the whole buffer the first time (its RSS, docs/unicorn.md), and an engine that
 * switches from uncounted to counted runs flushes (Unicorn clears the buffer). 16 MiB crashed a
 * test worker (likely a buffer filling while a hook asks Unicorn for a block: docs/unicorn.md).
 */
export const DEFAULT_TRANSLATION_BUFFER = 32 << 20;
export const ctlCode = (type: number, nargs: number, io: number): number => (type | (nargs << 26) | (io << 30)) >>> 0;
export const ctlWrite = (type: number, nargs: number): number => ctlCode(type, nargs, UC_CTL_IO_WRITE);

