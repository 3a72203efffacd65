/**
 * The bare Unicorn floor of bench/throughput.ts: a static x86-64 Linux program run on a plain
 * Unicorn engine with no uniprobe kernel, no scheduler, no instruction counter, no fault hooks:
 * the program's PT_LOAD segments mapped with their permissions, a Linux initial stack
 * (argc/argv/envp/auxv), and one UC_HOOK_INSN hook on `syscall` that serves the few system calls
 * a static glibc program such as busybox's `sha256sum FILE` makes, directly with node's fs. What
 * uniprobe adds over this is the engine's own cost; what this costs over qemu-user is Unicorn's.
 *
 * A measuring instrument, not a kernel: it knows only what busybox's start-up and a file read
 * need (strace of the host binary: brk, arch_prctl, set_tid_address, set_robust_list, rseq,
 * prlimit64, readlink, getrandom, mprotect, prctl, getuid, openat, read, close, newfstatat, write,
 * exit_group); anything else returns -ENOSYS and is listed in `unserved`, so a run that needed
 * more is visible, and the caller checks the program's output.
 *
 * Unicorn is the engine's own library, loaded the same way (src/emu/ffi.ts load(): the cached
 * 2.1.1 or UNIPROBE_UNICORN) with the same translation-buffer size, so the two runs differ only
 * in what uniprobe does around the emulator.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import koffi from 'koffi';
import { load } from '../src/emu/ffi.js';
import { HostMemory } from '../src/emu/host-memory.js';
import { ctlWrite, DEFAULT_TRANSLATION_BUFFER, UC_ARCH, UC_CTL_TCG_BUFFER_SIZE, UC_HOOK, UC_MODE } from '../src/emu/uc-const.js';
import { readElfFileSync, PT_LOAD, type ElfFile } from '../src/elf/index.js';
import { UC_X86_REG as R } from '../arch/x86/ucregs.js';

const UC_X86_INS_SYSCALL = 699;
const PAGE = 0x1000n;
const STACK_TOP = 0x7ffffffff000n;
const STACK_SIZE = 8n << 20n;
const MMAP_TOP = 0x7ff000000000n;
const ENOENT = 2n;
const EBADF = 9n;
const ENOMEM = 12n;
const EFAULT = 14n;
const ENOTTY = 25n;
const ENOSYS = 38n;
const ENODEV = 19n;
const AT_FDCWD = -100n;
const AT_EMPTY_PATH = 0x1000n;

const pageDown = (a: bigint): bigint => a & ~(PAGE - 1n);
const pageUp = (a: bigint): bigint => (a + PAGE - 1n) & ~(PAGE - 1n);

/** What one run did. */
export interface BareRun {
  status: number;
  stdout: Buffer;
  /** System calls the runner answered with -ENOSYS (number → times). */
  unserved: Map<number, number>;
}

/**
 * What uniprobe adds around the emulator, added one at a time to see what each costs (the floor
 * itself uses none).
 */
export interface BareOptions {
  /** Run in uc_emu_start slices of this many instructions (Unicorn then hooks every instruction). */
  count?: number;
  /** A native UC_HOOK_BLOCK callback and its user data (the engine's instruction counter). */
  blockHook?: { fn: bigint; data: bigint };
}

function check(op: string, err: number): void {
  if (err !== 0) throw new Error(`bare floor: ${op}: ${load().uc_strerror(err)} (uc_err ${err})`);
}

/** One program image, run any number of times (a fresh engine per run, as uniprobe's Machine). */
export class BareX86_64 {
  private readonly elf: ElfFile;

  constructor(readonly path: string) {
    this.elf = readElfFileSync(path);
    if (this.elf.target !== 'x86_64' || this.elf.interp !== undefined) throw new Error(`bare floor: ${path} is not a static x86-64 program`);
  }

  run(argv: readonly string[], opts: BareOptions = {}): BareRun {
    const l = load();
    const out: unknown[] = [null];
    check('uc_open', l.uc_open(UC_ARCH.X86, UC_MODE.MODE_64, out));
    const uc = BigInt(out[0] as bigint);
    const regMem = HostMemory.alloc(7 * 16, false);
    let cb: ReturnType<typeof koffi.register> | undefined;
    try {
      check('uc_ctl(TCG_BUFFER_SIZE)', l.uc_ctl(uc, ctlWrite(UC_CTL_TCG_BUFFER_SIZE, 1), 'uint32_t', DEFAULT_TRANSLATION_BUFFER));
      const brkStart = this.mapImage(uc);
      const sp = this.buildStack(uc, argv);
      const w64 = new Uint8Array(8);
      const w64v = new DataView(w64.buffer);
      const setReg = (reg: number, v: bigint): void => {
        w64v.setBigUint64(0, BigInt.asUintN(64, v), true);
        check('uc_reg_write', l.uc_reg_write(uc, reg, w64));
      };
      setReg(R.RSP, sp);
      setReg(R.RFLAGS, 0x202n);

      const sys = new Syscalls(uc, brkStart);
      // The syscall's number and arguments in one batched read (as the engine reads them).
      const ids = Int32Array.from([R.RAX, R.RDI, R.RSI, R.RDX, R.R10, R.R8, R.R9]);
      const ptrs = new BigUint64Array(7);
      for (let i = 0; i < 7; i++) ptrs[i] = regMem.ptr + BigInt(i * 16);
      const vals = new BigUint64Array(regMem.bytes.buffer, regMem.bytes.byteOffset, 14);
      const args: bigint[] = [0n, 0n, 0n, 0n, 0n, 0n];
      let failure: unknown;
      cb = koffi.register(() => {
        try {
          check('uc_reg_read_batch', l.uc_reg_read_batch(uc, ids, ptrs, 7));
          for (let i = 0; i < 6; i++) args[i] = vals[(i + 1) * 2]!;
          const r = sys.call(Number(vals[0]!), args);
          if (r === undefined) {
            check('uc_emu_stop', l.uc_emu_stop(uc));
            return;
          }
          // Unicorn steps RIP past `syscall` itself once the hook returns.
          setReg(R.RAX, r);
        } catch (e) {
          failure ??= e;
          l.uc_emu_stop(uc);
        }
      }, l.protos.insn as never);
      const hh: unknown[] = [null];
      check('uc_hook_add', l.uc_hook_add(uc, hh, UC_HOOK.INSN, cb, null, 1n, 0n, 'int', UC_X86_INS_SYSCALL));
      if (opts.blockHook !== undefined) {
        check('uc_hook_add(block)', l.uc_hook_add_raw(uc, [null], UC_HOOK.BLOCK, opts.blockHook.fn, opts.blockHook.data, 1n, 0n));
      }
      // Without a count, one run to the end; with one, slices of `count` instructions, each a new
      // uc_emu_start at the PC the last one stopped at.
      let pc = this.elf.entry;
      const rip = new Uint8Array(8);
      for (;;) {
        const err = l.uc_emu_start(uc, pc, 0n, 0, opts.count ?? 0);
        if (failure !== undefined) throw failure;
        if (err !== 0) throw new Error(`bare floor: the guest stopped with ${l.uc_strerror(err)} after ${sys.calls} system calls`);
        if (sys.status !== undefined) break;
        if (!opts.count) throw new Error('bare floor: uc_emu_start returned before exit_group');
        check('uc_reg_read', l.uc_reg_read(uc, R.RIP, rip));
        pc = new DataView(rip.buffer).getBigUint64(0, true);
      }
      sys.closeAll();
      return { status: sys.status, stdout: Buffer.concat(sys.stdout), unserved: sys.unserved };
    } finally {
      if (cb) koffi.unregister(cb);
      l.uc_close(uc);
      regMem.free();
    }
  }

  /** Map every PT_LOAD page with the union of the permissions of the segments on it; return the brk start. */
  private mapImage(uc: bigint): bigint {
    const l = load();
    const perms = new Map<bigint, number>();
    let end = 0n;
    const loads = this.elf.phdrs.filter((p) => p.type === PT_LOAD);
    for (const p of loads) {
      // ELF PF_X=1, PF_W=2, PF_R=4; Unicorn READ=1, WRITE=2, EXEC=4.
      const prot = (p.flags & 4 ? 1 : 0) | (p.flags & 2 ? 2 : 0) | (p.flags & 1 ? 4 : 0);
      for (let a = pageDown(p.vaddr); a < pageUp(p.vaddr + p.memsz); a += PAGE) perms.set(a, (perms.get(a) ?? 0) | prot);
      if (p.vaddr + p.memsz > end) end = p.vaddr + p.memsz;
    }
    const pages = [...perms.keys()].sort((a, b) => (a < b ? -1 : 1));
    for (let i = 0; i < pages.length; ) {
      let j = i + 1;
      while (j < pages.length && pages[j] === pages[j - 1]! + PAGE && perms.get(pages[j]!) === perms.get(pages[i]!)) j++;
      check('uc_mem_map', l.uc_mem_map(uc, pages[i]!, Number(BigInt(j - i) * PAGE), perms.get(pages[i]!)!));
      i = j;
    }
    for (const p of loads) {
      const bytes = this.elf.bytes.subarray(Number(p.offset), Number(p.offset + p.filesz));
      check('uc_mem_write', l.uc_mem_write(uc, p.vaddr, bytes, bytes.length));
    }
    return pageUp(end);
  }

  /** Linux's initial stack: argc, argv, envp, auxv, then the strings and AT_RANDOM's bytes above. */
  private buildStack(uc: bigint, argv: readonly string[]): bigint {
    const l = load();
    check('uc_mem_map', l.uc_mem_map(uc, STACK_TOP - STACK_SIZE, Number(STACK_SIZE), 3));
    const strings: Buffer[] = [];
    let top = STACK_TOP - 16n;
    const push = (b: Buffer): bigint => {
      top -= BigInt(b.length);
      check('uc_mem_write', l.uc_mem_write(uc, top, b, b.length));
      strings.push(b);
      return top;
    };
    const execfn = push(Buffer.from(`${this.path}\0`));
    const argp = argv.map((a) => push(Buffer.from(`${a}\0`)));
    const platform = push(Buffer.from('x86_64\0'));
    const random = push(Buffer.from('0123456789abcdef'));
    const phdr = this.phdrAddress();
    const auxv: [number, bigint][] = [
      [3, phdr], // AT_PHDR
      [4, BigInt(this.elf.header.phentsize)], // AT_PHENT
      [5, BigInt(this.elf.header.phnum)], // AT_PHNUM
      [6, PAGE], // AT_PAGESZ
      [7, 0n], // AT_BASE
      [8, 0n], // AT_FLAGS
      [9, this.elf.entry], // AT_ENTRY
      [11, 0n], [12, 0n], [13, 0n], [14, 0n], // AT_UID, AT_EUID, AT_GID, AT_EGID
      [15, platform], // AT_PLATFORM
      [16, 0x178bfbffn], // AT_HWCAP (what uniprobe's x86-64 back-end reports)
      [17, 100n], // AT_CLKTCK
      [23, 0n], // AT_SECURE
      [25, random], // AT_RANDOM
      [26, 0n], // AT_HWCAP2
      [31, execfn], // AT_EXECFN
      [0, 0n], // AT_NULL
    ];
    const words: bigint[] = [BigInt(argv.length), ...argp, 0n, 0n /* no envp */];
    for (const [k, v] of auxv) words.push(BigInt(k), v);
    const sp = (top - BigInt(words.length * 8)) & ~15n;
    const block = Buffer.alloc(words.length * 8);
    words.forEach((w, i) => block.writeBigUInt64LE(w, i * 8));
    check('uc_mem_write', l.uc_mem_write(uc, sp, block, block.length));
    return sp;
  }

  private phdrAddress(): bigint {
    const off = this.elf.header.phoff;
    for (const p of this.elf.phdrs) {
      if (p.type === PT_LOAD && off >= p.offset && off < p.offset + p.filesz) return p.vaddr + (off - p.offset);
    }
    throw new Error('bare floor: the program headers are not in a loaded segment');
  }
}

/** The system calls, served directly (x86-64 numbers). */
class Syscalls {
  status: number | undefined;
  calls = 0;
  readonly stdout: Buffer[] = [];
  readonly unserved = new Map<number, number>();
  private brk: bigint;
  private brkMapped: bigint;
  private mmapNext = MMAP_TOP;
  private readonly fds = new Map<number, number>();
  private nextFd = 3;
  private buf = Buffer.alloc(1 << 16);
  private readonly l = load();

  constructor(private readonly uc: bigint, brkStart: bigint) {
    this.brk = brkStart;
    this.brkMapped = brkStart;
  }

  /** The result for RAX, or undefined when the program exited. */
  call(nr: number, a: bigint[]): bigint | undefined {
    this.calls++;
    switch (nr) {
      case 0: // read
        return this.read(Number(a[0]!), a[1]!, Number(a[2]!));
      case 1: // write
        return this.write(Number(a[0]!), a[1]!, Number(a[2]!));
      case 3: {
        // close
        const host = this.fds.get(Number(a[0]!));
        if (host === undefined) return Number(a[0]!) <= 2 ? 0n : -EBADF;
        closeSync(host);
        this.fds.delete(Number(a[0]!));
        return 0n;
      }
      case 5: // fstat
        return this.stat(Number(a[0]!), a[1]!);
      case 262: // newfstatat: only the fstat form (AT_EMPTY_PATH) busybox uses on stdout
        return a[3]! & AT_EMPTY_PATH ? this.stat(Number(a[0]!), a[2]!) : this.unserve(nr);
      case 9: // mmap: anonymous memory only
        return this.mmap(a[1]!, Number(a[3]!), Number(BigInt.asIntN(64, a[4]!)));
      case 10: // mprotect
        return this.l.uc_mem_protect(this.uc, a[0]!, Number(pageUp(a[1]!)), Number(a[2]!) & 7) === 0 ? 0n : -ENOMEM;
      case 11: // munmap
        return this.l.uc_mem_unmap(this.uc, a[0]!, Number(pageUp(a[1]!))) === 0 ? 0n : 0n;
      case 12: // brk
        return this.setBrk(a[0]!);
      case 16: // ioctl: no terminals here
        return -ENOTTY;
      case 334: // rseq: not offered (glibc then does without, as on kernels before 4.18)
        return -ENOSYS;
      case 89: // readlink (/proc/self/exe): none
        return -ENOENT;
      case 102: case 104: case 107: case 108: // getuid, getgid, geteuid, getegid
        return 0n;
      case 13: case 14: case 157: case 218: case 273: // rt_sigaction, rt_sigprocmask, prctl, set_tid_address, set_robust_list
        return nr === 218 ? 1n : 0n;
      case 158: // arch_prctl
        if (a[0]! !== 0x1002n) return this.unserve(nr);
        this.setFsBase(a[1]!);
        return 0n;
      case 302: // prlimit64(0, res, new, old): an 8 MiB stack, the rest unlimited
        if (a[3]! !== 0n) {
          const b = Buffer.alloc(16);
          b.writeBigUInt64LE(a[1]! === 3n ? 8n << 20n : 0xffffffffffffffffn, 0);
          b.writeBigUInt64LE(0xffffffffffffffffn, 8);
          if (this.l.uc_mem_write(this.uc, a[3]!, b, 16) !== 0) return -EFAULT;
        }
        return 0n;
      case 318: {
        // getrandom: deterministic bytes
        const n = Math.min(Number(a[1]!), 256);
        const b = Buffer.alloc(n, 0x5a);
        return this.l.uc_mem_write(this.uc, a[0]!, b, n) === 0 ? BigInt(n) : -EFAULT;
      }
      case 257: // openat
        return this.openat(a[0]!, a[1]!);
      case 60: case 231: // exit, exit_group
        this.status = Number(a[0]! & 0xffn);
        return undefined;
      default:
        return this.unserve(nr);
    }
  }

  closeAll(): void {
    for (const h of this.fds.values()) closeSync(h);
    this.fds.clear();
  }

  private unserve(nr: number): bigint {
    this.unserved.set(nr, (this.unserved.get(nr) ?? 0) + 1);
    return -ENOSYS;
  }

  private read(fd: number, addr: bigint, count: number): bigint {
    const host = this.fds.get(fd);
    if (host === undefined) return -EBADF;
    if (count > this.buf.length) this.buf = Buffer.alloc(count);
    const n = readSync(host, this.buf, 0, count, null);
    if (n > 0 && this.l.uc_mem_write(this.uc, addr, this.buf, n) !== 0) return -EFAULT;
    return BigInt(n);
  }

  private write(fd: number, addr: bigint, count: number): bigint {
    if (fd !== 1 && fd !== 2) return -EBADF;
    const b = Buffer.alloc(count);
    if (this.l.uc_mem_read(this.uc, addr, b, count) !== 0) return -EFAULT;
    if (fd === 1) this.stdout.push(b);
    else process.stderr.write(b);
    return BigInt(count);
  }

  private openat(dirfd: bigint, pathAddr: bigint): bigint {
    if (BigInt.asIntN(32, dirfd) !== AT_FDCWD) return -ENOSYS; // an int argument: the upper half of RDI is not defined
    // The name may end just below an unmapped page: read it a page piece at a time.
    const parts: Buffer[] = [];
    let at = pathAddr;
    for (let total = 0; total < 4096; ) {
      const piece = Buffer.alloc(Number(pageDown(at) + PAGE - at));
      if (this.l.uc_mem_read(this.uc, at, piece, piece.length) !== 0) return -EFAULT;
      const nul = piece.indexOf(0);
      parts.push(nul >= 0 ? piece.subarray(0, nul) : piece);
      if (nul >= 0) break;
      total += piece.length;
      at += BigInt(piece.length);
    }
    const path = Buffer.concat(parts).toString();
    try {
      const fd = this.nextFd++;
      this.fds.set(fd, openSync(path, 'r'));
      return BigInt(fd);
    } catch {
      return -ENOENT;
    }
  }

  private stat(fd: number, addr: bigint): bigint {
    const b = Buffer.alloc(144);
    const host = this.fds.get(fd);
    if (host !== undefined) {
      const s = fstatSync(host);
      b.writeBigUInt64LE(BigInt(s.ino), 8);
      b.writeBigUInt64LE(1n, 16);
      b.writeUInt32LE(s.mode, 24);
      b.writeBigUInt64LE(BigInt(s.size), 48);
      b.writeBigUInt64LE(4096n, 56);
      b.writeBigUInt64LE(BigInt(s.blocks), 64);
    } else if (fd <= 2) {
      b.writeUInt32LE(0o010600, 24); // a pipe, as when stdout is captured
      b.writeBigUInt64LE(4096n, 56);
    } else {
      return -EBADF;
    }
    return this.l.uc_mem_write(this.uc, addr, b, 144) === 0 ? 0n : -EFAULT;
  }

  private mmap(len: bigint, flags: number, fd: number): bigint {
    if (!(flags & 0x20) || fd !== -1) return -ENODEV; // MAP_ANONYMOUS only
    const size = pageUp(len);
    this.mmapNext -= size;
    return this.l.uc_mem_map(this.uc, this.mmapNext, Number(size), 3) === 0 ? this.mmapNext : -ENOMEM;
  }

  private setBrk(want: bigint): bigint {
    if (want <= this.brk) return this.brk;
    const top = pageUp(want);
    if (top > this.brkMapped) {
      if (this.l.uc_mem_map(this.uc, this.brkMapped, Number(top - this.brkMapped), 3) !== 0) return this.brk;
      this.brkMapped = top;
    }
    this.brk = want;
    return this.brk;
  }

  private setFsBase(v: bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    check('uc_reg_write(FS_BASE)', this.l.uc_reg_write(this.uc, R.FS_BASE, b));
  }
}
