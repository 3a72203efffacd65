/**
 * The guest kernel image (fixtures/kernel, contract in fixtures/kernel/ABI.md): loaded once per
 * machine into one host buffer that every mm maps at the kernel base, plus the arena of kernel
 * stacks. It knows its symbols (kallsyms) and which text is off limits to kprobes.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HostMemory, UC_PROT } from '../emu/unicorn.js';
import { UniprobeError } from '../errors.js';
import { KERNEL_STACKS } from './limits.js';
import { PACKAGE_ROOT } from '../package-root.js';
import { PT_LOAD, readElfFileSync, type ElfFile, type ElfSymbol } from '../elf/index.js';
import type { Arch } from '../../arch/types.js';
import type { KernelMapping } from '../mm/mm.js';

export const HC = {
  SYSRET: 0,
  CALL_DONE: 1,
  SYSCALL: 2,
  VFS_WRITE: 3,
  VFS_READ: 4,
  OPENAT: 5,
  CLOSE: 6,
  EXIT: 7,
  CLONE: 8,
  WAIT4: 9,
  SCHEDULE: 10,
  VFS_WRITEV: 11,
  VFS_READV: 12,
} as const;

/** Generic system-call ids the image dispatches on (`struct syscall_frame.sysno`). */
export const KSYS: Readonly<Record<string, number>> = {
  write: 1,
  read: 2,
  openat: 3,
  close: 4,
  exit: 5,
  exit_group: 6,
  clone: 7,
  wait4: 8,
  writev: 9,
  readv: 10,
  getpid: 11,
  gettid: 12,
  kprobe_test: 13,
};

export const KERNEL_STACK_SIZE = 16 * 1024;
/** 256 KiB: below sparc64's first user page even at the image's low alias (see layouts). */
const INSN_AREA_SIZE = 256 * 1024;
export { KERNEL_STACKS };

export function defaultKernelImagePath(target: string): string {
  return join(PACKAGE_ROOT, 'fixtures', 'kernel', target, 'vmlinux');
}

export class KernelImage {
  readonly elf: ElfFile;
  readonly base: bigint;
  readonly end: bigint;
  readonly mem: HostMemory;
  readonly stackArena: HostMemory;
  /**
   * Executable kernel memory for kprobe instruction slots and trampolines (module_alloc's area):
   * right after the image, so x86-64 RIP-relative copies stay within ±2 GiB of the text.
   */
  readonly insnArea: HostMemory;
  readonly insnAreaBase: bigint;
  private readonly insnAreaEnd: bigint;
  /** The last addresses a 4-byte word may start at in the image and in the slot area. */
  private readonly lastWord: bigint;
  private readonly insnAreaLastWord: bigint;
  readonly stackArenaBase: bigint;
  readonly textStart: bigint;
  readonly textEnd: bigint;
  readonly entrySyscall: bigint;
  readonly entryCallReturn: bigint;
  private readonly freeStacks: number[] = [];
  private readonly symbolsByName = new Map<string, ElfSymbol>();
  /** Ranges kprobes refuse (entry text, .kprobes.text), [start, end). */
  readonly blacklist: Array<{ start: bigint; end: bigint; why: string }> = [];

  /** The target the image is for (its probe entries: Arch.functionEntry). */
  readonly arch: Arch;

  constructor(arch: Arch, path = defaultKernelImagePath(arch.target)) {
    this.arch = arch;
    if (!existsSync(path)) {
      throw new UniprobeError('KERNEL', `${path}: guest kernel image for ${arch.target} not found (build it with make -C fixtures/kernel)`);
    }
    this.elf = readElfFileSync(path);
    if (this.elf.target !== arch.target) {
      throw new UniprobeError('KERNEL', `${path}: kernel image is for ${this.elf.target}, not ${arch.target}`);
    }
    const loads = this.elf.phdrs.filter((p) => p.type === PT_LOAD && p.memsz > 0n);
    if (loads.length === 0) throw new UniprobeError('KERNEL', `${path}: kernel image has no PT_LOAD segment`);
    const ps = BigInt(arch.layout.pageSize);
    const lo = loads.reduce((m, p) => (p.vaddr < m ? p.vaddr : m), loads[0]!.vaddr);
    const hi = loads.reduce((m, p) => (p.vaddr + p.memsz > m ? p.vaddr + p.memsz : m), 0n);
    this.base = (lo / ps) * ps;
    this.end = ((hi + ps - 1n) / ps) * ps;
    if (this.base !== arch.layout.kernelBase) {
      throw new UniprobeError('KERNEL', `${path}: kernel image starts at 0x${this.base.toString(16)}, expected 0x${arch.layout.kernelBase.toString(16)}`);
    }
    this.mem = HostMemory.alloc(Number(this.end - this.base));
    for (const p of loads) {
      const off = Number(p.vaddr - this.base);
      this.mem.bytes.set(this.elf.bytes.subarray(Number(p.offset), Number(p.offset + p.filesz)), off);
    }
    for (const s of this.elf.symbols) if (s.name && !this.symbolsByName.has(s.name)) this.symbolsByName.set(s.name, s);
    const need = (name: string): bigint => {
      const s = this.symbolsByName.get(name);
      if (!s) throw new UniprobeError('KERNEL', `${path}: kernel image lacks the symbol ${name}`);
      return s.codeAddress;
    };
    this.entrySyscall = need('entry_syscall');
    this.entryCallReturn = need('entry_call_return');
    this.textStart = this.symbolsByName.get('_stext')?.value ?? this.base;
    this.textEnd = this.symbolsByName.get('_etext')?.value ?? this.end;
    const range = (a: string, b: string, why: string): void => {
      const s = this.symbolsByName.get(a);
      const e = this.symbolsByName.get(b);
      if (s && e && e.value > s.value) this.blacklist.push({ start: s.value, end: e.value, why });
    };
    range('__entry_text_start', '__entry_text_end', 'entry text');
    range('__kprobes_text_start', '__kprobes_text_end', '.kprobes.text (NOKPROBE)');

    this.insnAreaBase = this.end;
    this.insnArea = HostMemory.alloc(INSN_AREA_SIZE);
    this.insnAreaEnd = this.insnAreaBase + BigInt(INSN_AREA_SIZE);
    this.lastWord = this.end - 4n;
    this.insnAreaLastWord = this.insnAreaEnd - 4n;
    this.stackArenaBase = arch.layout.kernelStackArena;
    this.stackArena = HostMemory.alloc(KERNEL_STACK_SIZE * KERNEL_STACKS);
    for (let i = KERNEL_STACKS - 1; i >= 0; i--) this.freeStacks.push(i);
  }

  symbol(name: string): ElfSymbol | undefined {
    return this.symbolsByName.get(name);
  }

  /** Is `addr` (len bytes) inside the kprobe slot area? */
  isInsnArea(addr: bigint, len = 1): boolean {
    // Every breakpoint trap asks (uprobes: is this kprobes' trap?): no BigInt made for one byte.
    if (addr < this.insnAreaBase || addr >= this.insnAreaEnd) return false;
    return len === 1 || addr + BigInt(len) <= this.insnAreaEnd;
  }

  /**
   * The host bytes that hold [addr, addr + len) of the kernel text or the slot area, from `at`
   * (what kprobes read and patch); anywhere else is a bug of the caller.
   */
  textBytes(addr: bigint, len: number): { bytes: Uint8Array; at: number } {
    if (addr >= this.base && addr + BigInt(len) <= this.end) return { bytes: this.mem.bytes, at: Number(addr - this.base) };
    if (this.isInsnArea(addr, len)) return { bytes: this.insnArea.bytes, at: Number(addr - this.insnAreaBase) };
    throw new UniprobeError('INTERNAL', `0x${addr.toString(16)} is neither kernel text nor the insn slot area`);
  }

  /**
   * Copy the 4 bytes of kernel code at `addr` (the image or the slot area) into `out`; false when
   * they are not all there. For a trap hook that must see the trapping word (ppc: a breakpoint
   * or not): the kernel's mappings are the same host memory in every address space, so no mm is
   * walked, and the bounds were worked out at load (one BigInt made, the offset).
   */
  readWordInto(addr: bigint, out: Uint8Array): boolean {
    let src: Uint8Array;
    let at: number;
    if (addr >= this.base && addr <= this.lastWord) {
      src = this.mem.bytes;
      at = Number(addr - this.base);
    } else if (addr >= this.insnAreaBase && addr <= this.insnAreaLastWord) {
      src = this.insnArea.bytes;
      at = Number(addr - this.insnAreaBase);
    } else return false;
    out[0] = src[at]!;
    out[1] = src[at + 1]!;
    out[2] = src[at + 2]!;
    out[3] = src[at + 3]!;
    return true;
  }

  isText(pc: bigint): boolean {
    return pc >= this.textStart && pc < this.textEnd;
  }

  /** The shared kernel mappings every mm gets: image, kernel stacks, insn slot area. */
  mappings(): KernelMapping[] {
    return [
      { addr: this.base, mem: this.mem, perms: UC_PROT.ALL },
      { addr: this.stackArenaBase, mem: this.stackArena, perms: UC_PROT.READ | UC_PROT.WRITE },
      { addr: this.insnAreaBase, mem: this.insnArea, perms: UC_PROT.ALL },
    ];
  }

  /** Kernel stacks still free: clone refuses (EAGAIN) rather than run out. */
  get freeStackCount(): number {
    return this.freeStacks.length;
  }

  allocStack(): { index: number; top: bigint } {
    const index = this.freeStacks.pop();
    if (index === undefined) throw new UniprobeError('KERNEL', `out of kernel stacks (${KERNEL_STACKS} tasks)`);
    return { index, top: this.stackArenaBase + BigInt((index + 1) * KERNEL_STACK_SIZE) };
  }

  freeStack(index: number): void {
    if (index >= 0) this.freeStacks.push(index);
  }

  release(): void {
    this.insnArea.free();
    this.mem.free();
    this.stackArena.free();
  }
}
