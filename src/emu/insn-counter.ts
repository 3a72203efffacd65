/**
 * Exact instruction accounting for runs that end before their budget.
 *
 * Unicorn stops a run after exactly `count` instructions but cannot say how many ran when the
 * run ended earlier (a blocking system call, a copy-on-write fault, an exit): the engine charged
 * such a run its whole budget, an upper bound. A UC_HOOK_BLOCK callback in C
 * (native/insn-counter.c, built on first use with the machine's C compiler into uniprobe's cache)
 * counts what really runs, per translated block, at the price of a call at every block entry (see
 * the C file). Without a C compiler the engine keeps the upper bound (and says why:
 * `nativeCounterUnavailable()`).
 *
 * Accounting (README, "Instruction counts"): blocks are counted as they are entered; a run that
 * ends inside the last block counted gives back the instructions from the resume PC to the
 * block's end, which never ran (Unicorn's budget hook syncs the PC before every instruction, so
 * that PC is exact); a trap the host carries out in the middle of a block (sparc64 register-window
 * traps) gives back the rest of that block (`Engine.blockLeftAt`). An instruction that faults and
 * is restarted after the fault is resolved (copy-on-write) counts once. Checked against a
 * UC_HOOK_CODE count on every target (test/kernel/insn-count.test.ts).
 */
import koffi from 'koffi';
import { buildNative, nativeSource } from './native-build.js';

/** Byte offsets of struct counter's fields (native/insn-counter.c). */
export const COUNTER = {
  retired: 0,
  stopAt: 8,
  fixedShift: 16,
  fixedWidth: 24,
  lastPc: 32,
  lastSize: 40,
  lastIcount: 48,
  misses: 56,
  emuStop: 64,
  ctl: 72,
  ctlRequest: 80,
  stopped: 88,
  stoppedPc: 96,
} as const;

export interface NativeCounterLib {
  /** Address of uniprobe_count_block, the UC_HOOK_BLOCK callback for variable-length instructions. */
  blockHook: bigint;
  /** Address of uniprobe_count_block_fixed, the callback for fixed-width instruction sets. */
  blockHookFixed: bigint;
  /** sizeof(struct counter). */
  size: number;
  flush: (counter: bigint) => void;
}

/**
 * Address of a symbol of an already loaded library (the Unicorn entry points the counter calls).
 * Memoised: every engine asks for uc_ctl, and loading libc and declaring dlopen/dlsym through
 * koffi costs about 1 ms, a fifth of an engine's whole start (an address of a loaded library never
 * changes while the process lives).
 */
export function symbolAddress(libraryPath: string, name: string): bigint {
  const key = `${libraryPath}\0${name}`;
  let p = symbols.get(key);
  if (p === undefined) symbols.set(key, (p = lookUpSymbol(libraryPath, name)));
  return p;
}
const symbols = new Map<string, bigint>();

function lookUpSymbol(libraryPath: string, name: string): bigint {
  const libc = koffi.load('libc.so.6');
  const dlopen = libc.func('uint64_t dlopen(const char *file, int mode)') as (f: string, m: number) => bigint;
  const dlsym = libc.func('uint64_t dlsym(uint64_t handle, const char *name)') as (h: bigint, n: string) => bigint;
  const h = dlopen(libraryPath, 0x2 | 0x4);
  if (BigInt(h) === 0n) throw new Error(`${libraryPath} is not loaded`);
  const p = BigInt(dlsym(h, name));
  if (p === 0n) throw new Error(`${name} not found in ${libraryPath}`);
  return p;
}

let loaded: NativeCounterLib | null | undefined;
let whyNot: string | undefined;

const SOURCE = nativeSource('insn-counter');

/** Why the native counter is not in use (undefined when it is, or before the first engine). */
export function nativeCounterUnavailable(): string | undefined {
  return whyNot;
}

/**
 * The compiled counter, built into `<cache>/native/<source hash>/` the first time it is needed
 * (about 0.1 s with gcc). Undefined when it cannot be had: the engine then counts the old way.
 * `UNIPROBE_NATIVE_COUNTER=0` turns it off (to compare, or to rule it out).
 */
export function nativeCounter(): NativeCounterLib | undefined {
  if (loaded !== undefined) return loaded ?? undefined;
  loaded = null;
  if (process.env.UNIPROBE_NATIVE_COUNTER === '0') {
    whyNot = 'turned off by UNIPROBE_NATIVE_COUNTER=0';
    return undefined;
  }
  const built = buildNative(SOURCE, 'libuniprobe-counter.so');
  if ('whyNot' in built) {
    whyNot = built.whyNot;
    return undefined;
  }
  const lib = built.lib;
  try {
    const l = koffi.load(lib);
    const blockHook = symbolAddress(lib, 'uniprobe_count_block');
    const blockHookFixed = symbolAddress(lib, 'uniprobe_count_block_fixed');
    const size = Number((l.func('uint64_t uniprobe_counter_size(void)') as () => bigint)());
    const flush = l.func('void uniprobe_counter_flush(uint64_t counter)') as (c: bigint) => void;
    loaded = { blockHook, blockHookFixed, size, flush };
    return loaded;
  } catch (e) {
    whyNot = `cannot load ${lib}: ${(e as Error).message}`;
    return undefined;
  }
}


/**
 * Take back, from the native counter's `retired`, the instructions of the last counted block from
 * `next` on: they never ran (a trap hook left the block there, or lets the CPU retry `next` in a
 * new block). `fromStart`: `next` may be the block's first instruction. `blockAt` asks Unicorn for
 * the translated block at a PC, for variable-length instruction sets.
 */
export function takeBackBlock(
  v: DataView,
  next: bigint,
  fromStart: boolean,
  blockAt: (pc: bigint) => { pc: bigint; icount: number; size: number } | undefined,
): void {
  const size = v.getBigUint64(COUNTER.lastSize, true);
  const start = v.getBigUint64(COUNTER.lastPc, true);
  if (size === 0n || next < start || (next === start && !fromStart) || next >= start + size) return;
  const end = start + size;
  let untried: number;
  if (next === start) untried = Number(v.getBigUint64(COUNTER.lastIcount, true));
  else {
    const width = Number(v.getBigUint64(COUNTER.fixedWidth, true));
    if (width > 0) untried = Number((end - next) / BigInt(width));
    else {
      // Variable length: the block that starts at `next` (translated now, between runs) ends
      // where the block left early ends unless something else cut it.
      const tb = blockAt(next);
      untried = tb && tb.pc === next && next + BigInt(tb.size) === end ? tb.icount : 0;
    }
  }
  v.setBigUint64(COUNTER.retired, v.getBigUint64(COUNTER.retired, true) - BigInt(untried), true);
  v.setBigUint64(COUNTER.lastSize, 0n, true);
}
