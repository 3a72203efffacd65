/**
 * execve/execveat, the checks half (fs/exec.c, fs/binfmt_script.c, fs/binfmt_elf.c): the
 * arguments and environment copied in with Linux's limits, the file found through the VFS and
 * checked (EACCES for a directory or a file without execute permission), `#!` scripts resolved to
 * their interpreter, and the ELF validated for this machine. What it returns is an image the
 * machine installs once the engine has stopped (ProcessTable.exec): a new mm, the program
 * mapped under mmap_lock (uprobe_mmap sees it), close-on-exec descriptors closed.
 *
 * Which errno for what, as Linux gives it: a missing file ENOENT; a dynamically linked program
 * asks for an interpreter the guest cannot see, ENOENT (what Linux says when PT_INTERP is absent);
 * not an ELF and not a script ENOEXEC; an ELF for another machine ENOEXEC; scripts nested deeper
 * than the binfmt recursion limit ELOOP; arguments past the limits E2BIG.
 */
import { UniprobeError } from '../../errors.js';
import { parseElf, type ElfFile } from '../../elf/index.js';
import type { Inode } from '../../mm/inode.js';
import { MAY_EXEC, mayAccess } from '../../vfs/access.js';
import { DirNode, RegNode } from '../../vfs/node.js';
import { E, err } from '../errno.js';
import { mmOf, procOf, readPath, readUserString, s32, user, type Handler, type SyscallCtx, type SyscallResult } from './common.js';
import { AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, fileOf, pageCacheOf, startDir } from './files.js';

/** MAX_ARG_STRLEN: one argument or environment string (32 pages). */
const MAX_ARG_STRLEN = 32 * 4096;
/** The arguments and environment together: a quarter of the 8 MiB stack limit (bprm_stack_limits). */
const ARG_MAX = (8 << 20) / 4;
/** BINPRM_BUF_SIZE: the bytes of a `#!` line the kernel reads. */
const BINPRM_BUF_SIZE = 256;
/** Nested interpreters allowed (search_binary_handler's depth check). */
const MAX_BINFMT_DEPTH = 5;
/** Bytes of a program read to exec it (as MAX_ELF_FILE_SIZE bounds what the loader accepts). */
const MAX_EXEC_BYTES = 256 << 20;

export interface ExecImage {
  elf: ElfFile;
  inode: Inode;
  /** The name the program was run by (comm is its basename). */
  filename: string;
  /** What /proc/self/exe names. */
  exePath: string;
  argv: string[];
  envp: string[];
  /** The program's node (what /proc/PID/exe leads to). */
  node: RegNode;
}

/** A NULL-terminated array of string pointers from user memory, with Linux's limits. */
function readStrings(ctx: SyscallCtx, ptr: bigint, budget: { left: number }): string[] | bigint {
  if (ptr === 0n) return [];
  const mm = mmOf(ctx);
  const w = BigInt(ctx.host.arch.wordSize);
  const out: string[] = [];
  for (let i = 0n; ; i++) {
    const r = user(() => ({ p: mm.readWord(ptr + i * w) }));
    if (typeof r === 'bigint') return r;
    if (r.p === 0n) return out;
    const s = readArg(ctx, r.p);
    if (typeof s === 'bigint') return s;
    budget.left -= Buffer.byteLength(s) + 1 + Number(w);
    if (budget.left < 0) return err(E.E2BIG);
    out.push(s);
  }
}

/** One argument or environment string: valid_arg_len allows MAX_ARG_STRLEN bytes with the NUL. */
function readArg(ctx: SyscallCtx, ptr: bigint): string | bigint {
  const s = readUserString(ctx, ptr, MAX_ARG_STRLEN);
  return s === undefined ? err(E.E2BIG) : s;
}

/**
 * Programs parsed by recent execs, per file: a shell that runs `cat` in a loop read and parsed the
 * whole binary (2 MB for busybox) at every exec, 4 ms each. Valid while the file's contents are
 * the same (RegNode.version moves with every change made through the VFS; a host file's node
 * stands for the contents it was looked up with) and for the same path (ElfFile names its file).
 * Bounded, so that no guest can pin host memory with it: PARSED_MAX files of at most
 * PARSED_MAX_BYTES each, the least recently executed dropped first.
 */
const parsed = new Map<RegNode, { version: number; size: bigint; path: string; elf: ElfFile }>();
const PARSED_MAX = 8;
const PARSED_MAX_BYTES = 32 << 20;

function parseProgram(node: RegNode, path: string): ElfFile | bigint {
  const hit = parsed.get(node);
  if (hit !== undefined) {
    parsed.delete(node);
    if (hit.version === node.version && hit.size === node.size && hit.path === path) {
      parsed.set(node, hit);
      return hit.elf;
    }
  }
  const bytes = node.read(0n, Number(node.size));
  let elf: ElfFile;
  try {
    elf = parseElf(bytes, path);
  } catch (e) {
    if (e instanceof UniprobeError) return err(E.ENOEXEC);
    throw e;
  }
  if (bytes.length <= PARSED_MAX_BYTES) {
    if (parsed.size >= PARSED_MAX) parsed.delete(parsed.keys().next().value!);
    parsed.set(node, { version: node.version, size: node.size, path, elf });
  }
  return elf;
}

/** Find, check and load the program (following `#!` lines); an image or -errno. */
function prepare(ctx: SyscallCtx, start: DirNode, path: string, follow: boolean, argv: string[], envp: string[], depth: number): ExecImage | bigint {
  if (depth > MAX_BINFMT_DEPTH) return err(E.ELOOP);
  const vfs = ctx.host.vfs;
  const node = vfs.lookup(start, path, follow);
  if (typeof node === 'number') return BigInt(node);
  // do_open_execat: a regular file the caller may execute.
  if (!(node instanceof RegNode) || !mayAccess(vfs, node, MAY_EXEC)) return err(E.EACCES);
  if (node.size > BigInt(MAX_EXEC_BYTES)) return err(E.ENOMEM);
  const head = node.read(0n, BINPRM_BUF_SIZE);
  if (head[0] === 0x23 && head[1] === 0x21) {
    // binfmt_script: "#!interpreter [one argument]" on the first line.
    const nl = head.indexOf(0x0a);
    if (nl < 0 && head.length === BINPRM_BUF_SIZE) return err(E.ENOEXEC); // the line does not fit
    const line = Buffer.from(head.subarray(2, nl < 0 ? head.length : nl)).toString('utf8').replace(/[ \t]+$/, '').replace(/^[ \t]+/, '');
    if (line.length === 0) return err(E.ENOEXEC);
    const sp = line.search(/[ \t]/);
    const interp = sp < 0 ? line : line.slice(0, sp);
    const arg = sp < 0 ? '' : line.slice(sp).trim();
    const nextArgv = [interp, ...(arg ? [arg] : []), path, ...argv.slice(1)];
    return prepare(ctx, procOf(ctx).fs.cwd, interp, true, nextArgv, envp, depth + 1);
  }
  const elf = parseProgram(node, path);
  if (typeof elf === 'bigint') return elf;
  if (elf.target !== ctx.host.arch.target) return err(E.ENOEXEC);
  // A dynamically linked program: the interpreter it names is not in the guest's view.
  if (elf.interp !== undefined) {
    const interp = vfs.lookup(vfs.root, elf.interp);
    return typeof interp === 'number' ? err(E.ENOENT) : err(E.ENOEXEC);
  }
  if (elf.type !== 2) return err(E.ENOEXEC); // static non-PIE programs only (ET_EXEC)
  const inode = pageCacheOf(ctx, node, path);
  return { elf, inode, filename: path, exePath: node.hostOrigin ?? path, argv, envp, node };
}

function execve(ctx: SyscallCtx, dfd: number, pathPtr: bigint, argvPtr: bigint, envpPtr: bigint, flags: number): SyscallResult {
  if (flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) return err(E.EINVAL);
  const path = readPath(ctx, pathPtr, (flags & AT_EMPTY_PATH) !== 0);
  if (typeof path === 'bigint') return path;
  const budget = { left: ARG_MAX };
  const argv = readStrings(ctx, argvPtr, budget);
  if (typeof argv === 'bigint') return argv;
  const envp = readStrings(ctx, envpPtr, budget);
  if (typeof envp === 'bigint') return envp;
  let start: DirNode | bigint;
  let name = path;
  if (path === '') {
    const f = fileOf(ctx, dfd);
    if (!f) return err(E.EBADF);
    if (f.kind !== 'vfs') return err(E.EACCES);
    name = f.file.path;
    start = procOf(ctx).fs.cwd;
  } else start = startDir(ctx, dfd, path);
  if (typeof start === 'bigint') return start;
  let image: ExecImage | bigint;
  try {
    image = prepare(ctx, start, name, !(flags & AT_SYMLINK_NOFOLLOW), argv.length ? argv : [name], envp, 0);
  } catch (e) {
    // The page cache for it would pass the guest memory limit.
    if (e instanceof UniprobeError && e.errno === E.ENOMEM) return err(E.ENOMEM);
    throw e;
  }
  if (typeof image === 'bigint') return image;
  if (argv.length === 0) image.argv = []; // Linux runs it with argc 0 (and warns)
  return { kind: 'exec', image };
}

export const execHandlers: Record<string, Handler> = {
  execve: (ctx, [path, argv, envp]) => execve(ctx, AT_FDCWD, path!, argv!, envp!, 0),
  execveat: (ctx, [dfd, path, argv, envp, flags]) => execve(ctx, s32(dfd!), path!, argv!, envp!, s32(flags!)),
};
