/**
 * From a descriptor to what it names: the open file (EBADF when there is none), the directory a
 * dirfd stands for in the *at calls (AT_FDCWD = the cwd; ENOTDIR for a file; ignored for an
 * absolute path, as Linux ignores it), and the page cache a file maps through.
 */
import { E, err } from '../errno.js';
import { DirNode, RegNode } from '../../vfs/node.js';
import type { Inode } from '../../mm/inode.js';
import type { OpenFile } from '../task.js';
import { procOf, type SyscallCtx } from './common.js';

export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_EACCESS = 0x200;
export const AT_SYMLINK_FOLLOW = 0x400;
export const AT_NO_AUTOMOUNT = 0x800;
export const AT_EMPTY_PATH = 0x1000;

export function fileOf(ctx: SyscallCtx, fd: number): OpenFile | undefined {
  return procOf(ctx).fds.get(fd);
}

/** The directory a relative path starts from, or -errno. */
export function startDir(ctx: SyscallCtx, dfd: number, path: string): DirNode | bigint {
  const fs = procOf(ctx).fs;
  if (path.startsWith('/') || dfd === AT_FDCWD) return fs.cwd;
  const f = fileOf(ctx, dfd);
  if (!f) return err(E.EBADF);
  if (f.kind !== 'vfs' || !(f.file.node instanceof DirNode)) return err(E.ENOTDIR);
  return f.file.node;
}

/**
 * The page cache a regular file maps through: a host file's own (shared with every other mapping
 * of it and with uprobes on its path); a file the guest wrote gets one made from its contents
 * when it is mapped (kept until the contents change; a later write does not reach a mapping made
 * before it — unlike Linux, where the page cache is the file).
 */
const memInodes = new WeakMap<RegNode, { version: number; inode: Inode }>();

export function pageCacheOf(ctx: SyscallCtx, node: RegNode, path: string): Inode {
  const origin = node.hostOrigin;
  if (origin !== undefined) return ctx.host.inodeFor(origin);
  const have = memInodes.get(node);
  if (have && have.version === node.version) return have.inode;
  const bytes = node.read(0n, Number(node.size));
  const inode = ctx.host.inodeFor(`${path}#${node.ino}.${node.version}`, bytes);
  memInodes.set(node, { version: node.version, inode });
  return inode;
}
