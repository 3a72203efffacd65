/**
 * execve for static ELF programs (Linux's load_elf_binary, minus the dynamic loader):
 * map every PT_LOAD from the inode's page cache, zero the tail of the last file page and map
 * anonymous memory for the rest of .bss, set the break after it, and build the initial stack
 * (argc, argv, envp, auxv and the strings they point at) the way the kernel and qemu-user do.
 */
import { UniprobeError } from '../errors.js';
import { PT_LOAD, PT_PHDR, type ElfFile } from '../elf/index.js';
import type { Arch } from '../../arch/types.js';
import type { Mm } from '../mm/mm.js';
import type { Inode } from '../mm/inode.js';
import { PROT } from '../mm/vma.js';
import type { Rng } from './rng.js';

export const AT = {
  NULL: 0,
  PHDR: 3,
  PHENT: 4,
  PHNUM: 5,
  PAGESZ: 6,
  BASE: 7,
  FLAGS: 8,
  ENTRY: 9,
  UID: 11,
  EUID: 12,
  GID: 13,
  EGID: 14,
  PLATFORM: 15,
  HWCAP: 16,
  CLKTCK: 17,
  SECURE: 23,
  RANDOM: 25,
  HWCAP2: 26,
  EXECFN: 31,
} as const;

const PF_X = 1;
const PF_W = 2;
const PF_R = 4;

function protOf(flags: number): number {
  return (flags & PF_R ? PROT.READ : 0) | (flags & PF_W ? PROT.WRITE : 0) | (flags & PF_X ? PROT.EXEC : 0);
}

export interface ExecResult {
  entry: bigint;
  sp: bigint;
  /** Where AT_RANDOM's 16 bytes are (tests read them). */
  random: bigint;
}

export function loadElf(
  arch: Arch,
  mm: Mm,
  elf: ElfFile,
  inode: Inode,
  argv: string[],
  envp: string[],
  rng: Rng,
): ExecResult {
  if (elf.interp !== undefined) {
    throw new UniprobeError('ELF', `${elf.file}: dynamically linked (asks for ${elf.interp}); only static programs run`);
  }
  if (elf.type !== 2) throw new UniprobeError('ELF', `${elf.file}: not an executable (ET_EXEC); static non-PIE programs only`);
  const ps = BigInt(mm.pageSize);
  const loads = elf.phdrs.filter((p) => p.type === PT_LOAD && p.memsz > 0n);
  if (loads.length === 0) throw new UniprobeError('ELF', `${elf.file}: no loadable segment`);
  let maxEnd = 0n;
  for (const p of loads) {
    if (p.vaddr % ps !== p.offset % ps) {
      throw new UniprobeError('ELF', `${elf.file}: segment ${p.index} vaddr and offset are not congruent modulo the ${ps}-byte page`);
    }
    const start = (p.vaddr / ps) * ps;
    const fileEnd = p.vaddr + p.filesz;
    const memEnd = p.vaddr + p.memsz;
    if (memEnd > arch.layout.taskSize || start < ps) {
      throw new UniprobeError('ELF', `${elf.file}: segment ${p.index} at 0x${p.vaddr.toString(16)} lies outside the user address space`);
    }
    const prot = protOf(p.flags);
    const fileMapEnd = ((fileEnd + ps - 1n) / ps) * ps;
    if (p.filesz > 0n) {
      const r = mm.mmap({
        addr: start,
        len: fileMapEnd - start,
        prot,
        fixed: true,
        shared: false,
        file: { inode, pgoff: Number(p.offset / ps) },
      });
      if (r < 0n) throw new UniprobeError('ELF', `${elf.file}: cannot map segment ${p.index} (${mapError(r)})`, { errno: Number(-r) });
      // padzero(): the rest of the last file page belongs to .bss and must read as zero.
      const tail = Number(fileMapEnd - fileEnd);
      if (p.memsz > p.filesz && tail > 0) mm.write(fileEnd, new Uint8Array(tail), true);
    }
    const anonStart = p.filesz > 0n ? fileMapEnd : start;
    const anonEnd = ((memEnd + ps - 1n) / ps) * ps;
    if (anonEnd > anonStart) {
      const r = mm.mmap({ addr: anonStart, len: anonEnd - anonStart, prot, fixed: true, shared: false, name: '' });
      if (r < 0n) throw new UniprobeError('ELF', `${elf.file}: cannot map .bss of segment ${p.index} (${mapError(r)})`, { errno: Number(-r) });
    }
    if (anonEnd > maxEnd) maxEnd = anonEnd;
  }
  mm.brkStart = maxEnd;
  mm.brk = maxEnd;

  // The stack VMA.
  const stackTop = arch.layout.stackTop;
  const stackBottom = stackTop - BigInt(arch.layout.stackMax);
  const r = mm.mmap({ addr: stackBottom, len: stackTop - stackBottom, prot: PROT.READ | PROT.WRITE, fixed: true, shared: false, name: '[stack]', flags: { growsDown: true } });
  if (r < 0n) throw new UniprobeError('MM', `cannot map the stack at 0x${stackBottom.toString(16)} (${mapError(r)})`, { errno: Number(-r) });

  // Strings at the top of the stack.
  const w = BigInt(arch.wordSize);
  let p = stackTop - w; // a NULL word at the very top, like Linux
  const pushBytes = (b: Uint8Array): bigint => {
    p -= BigInt(b.length);
    mm.write(p, b);
    return p;
  };
  const cstr = (s: string): Uint8Array => {
    const b = Buffer.from(s, 'utf8');
    const out = new Uint8Array(b.length + 1);
    out.set(b);
    return out;
  };
  const execfn = pushBytes(cstr(argv[0] ?? elf.file));
  const envPtrs = envp.map((e) => pushBytes(cstr(e))).reverse().reverse();
  const argPtrs = argv.map((a) => pushBytes(cstr(a)));
  const aux = arch.auxv();
  const platform = aux.platform ? pushBytes(cstr(aux.platform)) : 0n;
  p &= ~0xfn;
  const random = pushBytes(rng.bytes(16));

  // AT_PHDR: where the program headers are in memory.
  const phdrSeg = elf.phdrs.find((q) => q.type === PT_PHDR);
  let phdrAddr = phdrSeg?.vaddr ?? 0n;
  if (!phdrSeg) {
    const phoff = elf.header.phoff;
    const holder = loads.find((q) => phoff >= q.offset && phoff < q.offset + q.filesz);
    if (holder) phdrAddr = holder.vaddr + (phoff - holder.offset);
  }
  const auxv: Array<[number, bigint]> = [
    [AT.PHDR, phdrAddr],
    [AT.PHENT, BigInt(elf.header.phentsize)],
    [AT.PHNUM, BigInt(elf.phdrs.length)],
    [AT.PAGESZ, ps],
    [AT.BASE, 0n],
    [AT.FLAGS, 0n],
    [AT.ENTRY, elf.entry],
    [AT.UID, 0n],
    [AT.EUID, 0n],
    [AT.GID, 0n],
    [AT.EGID, 0n],
    [AT.HWCAP, aux.hwcap],
    [AT.HWCAP2, aux.hwcap2],
    [AT.CLKTCK, 100n],
    [AT.SECURE, 0n],
    [AT.RANDOM, random],
    [AT.EXECFN, execfn],
    ...aux.extra,
  ];
  if (platform) auxv.push([AT.PLATFORM, platform]);
  auxv.push([AT.NULL, 0n]);

  const words: bigint[] = [BigInt(argv.length), ...argPtrs, 0n, ...envPtrs, 0n];
  for (const [k, v] of auxv) words.push(BigInt(k), v);
  let sp = p - BigInt(words.length) * w;
  sp &= ~0xfn; // 16-byte aligned at entry on every target
  words.forEach((v, i) => mm.writeWord(sp + BigInt(i) * w, v));
  return { entry: elf.entryCode, sp: sp - BigInt(arch.stackBias), random };
}

/** execve's error for a failed mapping: ENOMEM names the limit that refused it. */
function mapError(r: bigint): string {
  return r === -12n ? 'ENOMEM: over the guest memory limit, see --max-memory' : `error ${r}`;
}
