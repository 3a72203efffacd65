/**
 * The C side of Unicorn: loading libunicorn.so.2 (lazily, so that importing never fails on a
 * machine without Unicorn; the failure is reported when an engine is first opened), the koffi
 * signatures of the calls the engine makes, and the error type carrying Unicorn's own message.
 * Only this file and the Engine (unicorn.ts) touch the C ABI.
 */
import koffi from 'koffi';
import { UniprobeError } from '../errors.js';
import { formatUnicornVersion, UNICORN_INSTALL_HINT, unicornLibraryPath, unicornVersionSupported } from './library.js';

export class UnicornError extends UniprobeError {
  readonly ucErr: number;
  constructor(op: string, ucErr: number, message: string) {
    super('UNICORN', `${op}: ${message} (uc_err ${ucErr})`);
    this.ucErr = ucErr;
  }
}

export interface Lib {
  uc_open: (arch: number, mode: number, out: unknown[]) => number;
  uc_close: (uc: bigint) => number;
  uc_strerror: (err: number) => string;
  uc_errno: (uc: bigint) => number;
  uc_mem_map: (uc: bigint, addr: bigint, size: number, perms: number) => number;
  uc_mem_map_ptr: (uc: bigint, addr: bigint, size: number, perms: number, ptr: bigint) => number;
  uc_mem_unmap: (uc: bigint, addr: bigint, size: number) => number;
  uc_mem_regions: (uc: bigint, out: unknown[], count: Uint32Array) => number;
  uc_mem_protect: (uc: bigint, addr: bigint, size: number, perms: number) => number;
  uc_mem_read: (uc: bigint, addr: bigint, buf: Uint8Array, size: number) => number;
  uc_mem_write: (uc: bigint, addr: bigint, buf: Uint8Array, size: number) => number;
  uc_reg_read: (uc: bigint, reg: number, buf: Uint8Array) => number;
  uc_reg_write: (uc: bigint, reg: number, buf: Uint8Array) => number;
  uc_reg_read_batch: (uc: bigint, regs: Int32Array, vals: BigUint64Array, n: number) => number;
  uc_reg_write_batch: (uc: bigint, regs: Int32Array, vals: BigUint64Array, n: number) => number;
  /** The same two calls on plain addresses (handle and arrays as Numbers): the trap cache's. */
  uc_reg_read_n: (uc: number, reg: number, value: number) => number;
  uc_reg_write_n: (uc: number, reg: number, value: number) => number;
  uc_reg_read_batch_n: (uc: number, regs: number, vals: number, n: number) => number;
  uc_reg_write_batch_n: (uc: number, regs: number, vals: number, n: number) => number;
  uc_emu_start: (uc: bigint, begin: bigint, until: bigint, timeout: number, count: number) => number;
  uc_emu_stop: (uc: bigint) => number;
  uc_hook_add: (uc: bigint, out: unknown[], type: number, cb: unknown, ud: null, b: bigint, e: bigint, ...v: unknown[]) => number;
  uc_hook_del: (uc: bigint, hh: bigint | number) => number;
  /** uc_hook_add with a native callback and user-data pointer (the instruction counter). */
  uc_hook_add_raw: (uc: bigint, out: unknown[], type: number, cb: bigint, ud: bigint, b: bigint, e: bigint) => number;
  /** The same for UC_HOOK_INSN, whose instruction id follows as a variadic argument. */
  uc_hook_add_raw_insn: (uc: bigint, out: unknown[], type: number, cb: bigint, ud: bigint, b: bigint, e: bigint, ...v: unknown[]) => number;
  uc_context_alloc: (uc: bigint, out: unknown[]) => number;
  uc_context_save: (uc: bigint, ctx: bigint) => number;
  uc_context_restore: (uc: bigint, ctx: bigint) => number;
  uc_context_size: (uc: bigint) => number;
  uc_free: (p: bigint) => number;
  uc_ctl: (uc: bigint, ctl: number, ...v: unknown[]) => number;
  uc_query: (uc: bigint, type: number, out: unknown[]) => number;
  mmap: (addr: null, len: number, prot: number, flags: number, fd: number, off: number) => bigint;
  munmap: (addr: bigint, len: number) => number;
  protos: {
    intr: unknown;
    insn: unknown;
    code: unknown;
    memInvalid: unknown;
    mem: unknown;
    insnInvalid: unknown;
  };
}

/** The library file the engine loads (see library.ts). */
export const UNICORN_LIBRARY = unicornLibraryPath();
let lib: Lib | undefined;
/** The loaded library's version ("2.1.1"), once an engine has been opened. */
export let unicornVersionLoaded: string | undefined;

export function load(): Lib {
  if (lib) return lib;
  let uc: ReturnType<typeof koffi.load>;
  let libc: ReturnType<typeof koffi.load>;
  try {
    uc = koffi.load(UNICORN_LIBRARY);
    libc = koffi.load('libc.so.6');
  } catch (e) {
    throw new UniprobeError('UNICORN', `cannot load Unicorn from ${UNICORN_LIBRARY}: ${UNICORN_INSTALL_HINT}`, { cause: e });
  }
  const version = (uc.func('unsigned int uc_version(void *major, void *minor)') as (a: null, b: null) => number)(null, null);
  if (!unicornVersionSupported(version)) {
    throw new UniprobeError(
      'UNICORN',
      `${UNICORN_LIBRARY} is Unicorn ${formatUnicornVersion(version)}; uniprobe needs 2.1 or later: ${UNICORN_INSTALL_HINT}`,
    );
  }
  unicornVersionLoaded = formatUnicornVersion(version);
  fixMmapThreshold(libc);
  const p = 'uint64_t'; // engine handles and pointers cross as 64-bit integers (BigInt in koffi 3)
  const f = (sig: string) => uc.func(sig) as never;
  lib = {
    uc_open: f(`int uc_open(int arch, int mode, _Out_ ${p} *uc)`),
    uc_close: f(`int uc_close(${p} uc)`),
    uc_strerror: f('const char *uc_strerror(int err)'),
    uc_errno: f(`int uc_errno(${p} uc)`),
    uc_mem_map: f(`int uc_mem_map(${p} uc, uint64_t address, size_t size, uint32_t perms)`),
    uc_mem_map_ptr: f(`int uc_mem_map_ptr(${p} uc, uint64_t address, size_t size, uint32_t perms, ${p} ptr)`),
    uc_mem_unmap: f(`int uc_mem_unmap(${p} uc, uint64_t address, size_t size)`),
    uc_mem_regions: f(`int uc_mem_regions(${p} uc, _Out_ ${p} *regions, _Out_ uint32_t *count)`),
    uc_mem_protect: f(`int uc_mem_protect(${p} uc, uint64_t address, size_t size, uint32_t perms)`),
    uc_mem_read: f(`int uc_mem_read(${p} uc, uint64_t address, _Out_ uint8_t *bytes, size_t size)`),
    uc_mem_write: f(`int uc_mem_write(${p} uc, uint64_t address, const uint8_t *bytes, size_t size)`),
    uc_reg_read: f(`int uc_reg_read(${p} uc, int regid, _Out_ uint8_t *value)`),
    uc_reg_write: f(`int uc_reg_write(${p} uc, int regid, const uint8_t *value)`),
    // The batch calls take an array of pointers to values; they are built by readBatch/writeBatch
    // below as a BigUint64Array of host addresses inside one scratch buffer.
    uc_reg_read_batch: f(`int uc_reg_read_batch(${p} uc, const int32_t *regs, const uint64_t *vals, int count)`),
    uc_reg_write_batch: f(`int uc_reg_write_batch(${p} uc, const int32_t *regs, const uint64_t *vals, int count)`),
    uc_reg_read_n: f('int uc_reg_read(uintptr_t uc, int regid, uintptr_t value)'),
    uc_reg_write_n: f('int uc_reg_write(uintptr_t uc, int regid, uintptr_t value)'),
    uc_reg_read_batch_n: f('int uc_reg_read_batch(uintptr_t uc, uintptr_t regs, uintptr_t vals, int count)'),
    uc_reg_write_batch_n: f('int uc_reg_write_batch(uintptr_t uc, uintptr_t regs, uintptr_t vals, int count)'),
    uc_emu_start: f(`int uc_emu_start(${p} uc, uint64_t begin, uint64_t until, uint64_t timeout, size_t count)`),
    uc_emu_stop: f(`int uc_emu_stop(${p} uc)`),
    uc_hook_add: f(`int uc_hook_add(${p} uc, _Out_ size_t *hh, int type, void *callback, void *user_data, uint64_t begin, uint64_t end, ...)`),
    uc_hook_del: f(`int uc_hook_del(${p} uc, size_t hh)`),
    uc_hook_add_raw: f(`int uc_hook_add(${p} uc, _Out_ size_t *hh, int type, ${p} callback, ${p} user_data, uint64_t begin, uint64_t end)`),
    uc_hook_add_raw_insn: f(`int uc_hook_add(${p} uc, _Out_ size_t *hh, int type, ${p} callback, ${p} user_data, uint64_t begin, uint64_t end, ...)`),
    uc_context_alloc: f(`int uc_context_alloc(${p} uc, _Out_ ${p} *ctx)`),
    uc_context_save: f(`int uc_context_save(${p} uc, ${p} ctx)`),
    uc_context_restore: f(`int uc_context_restore(${p} uc, ${p} ctx)`),
    uc_context_size: f(`size_t uc_context_size(${p} uc)`),
    uc_free: f(`int uc_free(${p} mem)`),
    uc_ctl: f(`int uc_ctl(${p} uc, int control, ...)`),
    uc_query: f(`int uc_query(${p} uc, int type, _Out_ size_t *result)`),
    mmap: libc.func(`${p} mmap(void *addr, size_t len, int prot, int flags, int fd, long off)`) as never,
    munmap: libc.func(`int munmap(${p} addr, size_t len)`) as never,
    // The hook signatures of unicorn.h (uc_cb_hookintr_t, uc_cb_insn_syscall_t, uc_cb_hookcode_t,
    // uc_cb_eventmem_t, uc_cb_hookmem_t, uc_cb_hookinsn_invalid_t).
    protos: {
      intr: callbackType('void', [p, 'uint32_t', 'void *']),
      insn: callbackType('void', [p, 'void *']),
      code: callbackType('void', [p, 'uint64_t', 'uint32_t', 'void *']),
      memInvalid: callbackType('bool', [p, 'int', 'uint64_t', 'int', 'int64_t', 'void *']),
      mem: callbackType('void', [p, 'int', 'uint64_t', 'int', 'int64_t', 'void *']),
      insnInvalid: callbackType('bool', [p, 'void *']),
    },
  };
  return lib;
}

/**
 * A pointer-to-function type for koffi.register, anonymous: koffi's type names are one namespace
 * per process, and this module may be evaluated more than once in one (a test runner that resets
 * its module registry between files, two copies of the package in one program); a second
 * `koffi.proto('void uc_cb_intr(...)')` throws "Duplicate type name" and no engine could open.
 */
export function callbackType(result: string, args: string[]): unknown {
  return koffi.pointer(koffi.proto(null, result, args));
}

/** glibc's mallopt parameter M_MMAP_THRESHOLD (malloc.h). */
const M_MMAP_THRESHOLD = -3;
/** glibc's initial mmap threshold: blocks at least this large get their own mapping. */
const MMAP_THRESHOLD_BYTES = 128 * 1024;

/**
 * Pin glibc's mmap threshold at its initial 128 KiB. By default glibc raises the threshold to the
 * size of any mmap'd block that is freed (up to 32 MiB), so once the first engine has been closed,
 * the next engines' large blocks come from the heap instead; freed there, they stay in the
 * process (free but resident) whenever a live block above them pins the heap. Measured: every
 * open + run + close of an x86-64 engine left ~530 KiB resident (600 engines: 99 → 418 MB RSS,
 * and `malloc_trim` gave it back), which took the test suite's workers past 2 GB. Pinned, the
 * same loop stays at ~100 MB. Only glibc has mallopt; elsewhere nothing is changed.
 */
function fixMmapThreshold(libc: ReturnType<typeof koffi.load>): void {
  try {
    const mallopt = libc.func('int mallopt(int param, int value)') as (param: number, value: number) => number;
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
  } catch {
    // not glibc: its allocator's own policy stands
  }
}

/** True when Unicorn can be loaded (used by the dependency check and by tests). */
export function unicornAvailable(): boolean {
  try {
    load();
    return true;
  } catch {
    return false;
  }
}

export function check(op: string, err: number): void {
  if (err !== 0) throw new UnicornError(op, err, load().uc_strerror(err));
}

export const big = (v: bigint | number): bigint => (typeof v === 'bigint' ? v : BigInt(v));
/**
 * A guest address from a hook: the callbacks declare it `uint64_t`, but koffi hands 64-bit values
 * over as signed JS numbers/bigints, so kernel addresses (top bit set) would arrive negative.
 */
export const addr64 = (v: bigint | number): bigint => BigInt.asUintN(64, big(v));
