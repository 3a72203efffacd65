/**
 * The guest's filesystem operations, one function per system-call family, with Linux's checks
 * in Linux's order (fs/namei.c, fs/open.c). Paths are resolved from a starting directory (the
 * cwd or a dirfd's directory); every result is a value or a negative generic errno.
 *
 * Everything the guest changes stays in memory (src/vfs/node.ts): the host is only ever read.
 */
import { E } from '../kernel/errno.js';
import { VfsError } from './errors.js';
import { MAY_EXEC, MAY_READ, MAY_WRITE, mayAccess } from './access.js';
import { DevNode, DirNode, MagicLink, RegNode, SymlinkNode, type VNode, type VfsContext } from './node.js';
import { FileDescription, type OpenFlags } from './file.js';
import { resolve, resolveParent, type ParentWalk, type Walker } from './path.js';
import type { Stat } from './stat.js';

/** Per-process filesystem state (Linux's fs_struct): shared by CLONE_FS, copied by fork. */
export class FsState {
  constructor(
    public cwd: DirNode,
    public umask = 0o022,
  ) {}

  clone(): FsState {
    return new FsState(this.cwd, this.umask);
  }
}

const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;
const S_ISVTX = 0o1000;

/** `a` is `d` or one of its ancestors. */
function isAncestor(a: VNode, d: DirNode): boolean {
  if (!(a instanceof DirNode)) return false;
  for (let x: DirNode | undefined = d; x; x = x.parent) if (x === a) return true;
  return false;
}

/**
 * Look up the name a call is about to create. procfs's lookup fails for a name that does not
 * exist instead of leaving a negative dentry, so every create there ends with ENOENT.
 */
function createLookup(pw: ParentWalk): VNode | undefined {
  const n = pw.parent.lookup(pw.last);
  if (!n && pw.parent.frozen) throw new VfsError(E.ENOENT);
  return n;
}

/** Run a walk, turning its VfsError into -errno. */
function tryWalk<T>(fn: () => T): T | number {
  try {
    return fn();
  } catch (e) {
    if (e instanceof VfsError) return -e.errno;
    throw e;
  }
}

export class Vfs implements Walker {
  constructor(
    readonly root: DirNode,
    readonly ctx: VfsContext,
  ) {}

  get uid(): number {
    return this.ctx.uid;
  }
  get gid(): number {
    return this.ctx.gid;
  }

  lookup(start: DirNode, path: string, follow = true): VNode | number {
    return tryWalk(() => resolve(this, start, path, follow));
  }

  stat(start: DirNode, path: string, follow = true): Stat | number {
    const n = this.lookup(start, path, follow);
    return typeof n === 'number' ? n : n.stat();
  }

  /** open/openat/creat. `mode` is the creation mode before the umask. */
  open(fs: FsState, start: DirNode, path: string, flags: OpenFlags, mode: number): FileDescription | number {
    return tryWalk(() => this.openWalk(fs, start, path, flags, mode, 0));
  }

  private openWalk(fs: FsState, start: DirNode, path: string, flags: OpenFlags, mode: number, depth: number): FileDescription | number {
    let node: VNode;
    if (flags.create && !flags.path) {
      const pw = resolveParent(this, start, path);
      if (pw.last === '' || pw.last === '.' || pw.last === '..') {
        // do_open: an existing name with O_EXCL is EEXIST before a directory is EISDIR.
        node = resolve(this, start, path, true);
        if (flags.excl) return -E.EEXIST;
        if (node instanceof DirNode) return -E.EISDIR;
      } else if (pw.trailingSlash) {
        return -E.EISDIR; // open_last_lookups: O_CREAT and a trailing slash
      } else {
        const existing = createLookup(pw);
        if (existing && flags.excl) return -E.EEXIST;
        if (existing instanceof MagicLink && !flags.nofollow) {
          // /proc/self/fd/N (as /dev/stdout): the object itself, wherever its name points.
          const j = existing.jump();
          if (!j) return -E.ENOENT;
          node = j;
        } else if (existing instanceof SymlinkNode && !flags.nofollow) {
          // A dangling link is created through (Linux follows the link and creates its target).
          if (depth >= 40) return -E.ELOOP;
          return this.openWalk(fs, pw.parent, existing.target, flags, mode, depth + 1);
        } else if (existing) node = existing;
        else {
          if (!mayAccess(this, pw.parent, MAY_WRITE | MAY_EXEC)) return -E.EACCES;
          const f = RegNode.create(this.ctx, mode & ~fs.umask);
          pw.parent.link(pw.last, f);
          return new FileDescription(f, flags, this.pathOf(pw, path));
        }
      }
    } else {
      node = resolve(this, start, path, !flags.nofollow);
    }
    // do_open's order: O_DIRECTORY first, then may_open (which refuses a link: O_NOFOLLOW).
    if (flags.directory && !(node instanceof DirNode)) return -E.ENOTDIR;
    if (node instanceof SymlinkNode && !flags.path) return -E.ELOOP;
    if (!flags.path) {
      if (node instanceof DirNode && (flags.write || flags.create)) return -E.EISDIR;
      // build_open_flags: O_TRUNC asks for write permission, and truncates even O_RDONLY opens.
      const want = (flags.read ? MAY_READ : 0) | (flags.write || flags.trunc ? MAY_WRITE : 0);
      if (!mayAccess(this, node, want)) return -E.EACCES;
      if (node instanceof DevNode) {
        const r = node.ops.open?.();
        if (r !== undefined && r < 0) return r;
      }
      if (flags.trunc && node instanceof RegNode) {
        const r = node.truncate(0n);
        if (r < 0) return r;
      }
    }
    return new FileDescription(node, flags, this.absolute(start, path));
  }

  private pathOf(pw: ParentWalk, _path: string): string {
    const dir = pw.parent.path() ?? '';
    return `${dir === '/' ? '' : dir}/${pw.last}`;
  }

  /** The absolute form of a path for /proc/self/fd (not resolved through links: good enough for names). */
  private absolute(start: DirNode, path: string): string {
    if (path.startsWith('/')) return path;
    const d = start.path() ?? '';
    return `${d === '/' ? '' : d}/${path}`;
  }

  mkdir(fs: FsState, start: DirNode, path: string, mode: number): number {
    return tryWalk(() => {
      const pw = resolveParent(this, start, path);
      if (pw.last === '' || pw.last === '.' || pw.last === '..') return -E.EEXIST;
      if (createLookup(pw)) return -E.EEXIST;
      if (!mayAccess(this, pw.parent, MAY_WRITE | MAY_EXEC)) return -E.EACCES;
      pw.parent.link(pw.last, DirNode.create(this.ctx, pw.parent, pw.last, mode & (0o777 | S_ISVTX) & ~fs.umask));
      return 0;
    });
  }

  rmdir(start: DirNode, path: string): number {
    return tryWalk(() => {
      const pw = resolveParent(this, start, path);
      if (pw.last === '') return -E.EBUSY; // the root
      if (pw.last === '.') return -E.EINVAL;
      if (pw.last === '..') return -E.ENOTEMPTY;
      const n = pw.parent.lookup(pw.last);
      if (!n) return -E.ENOENT;
      if (!(n instanceof DirNode)) return -E.ENOTDIR;
      if (!mayAccess(this, pw.parent, MAY_WRITE | MAY_EXEC)) return -E.EACCES;
      if (!this.stickyAllows(pw.parent, n) || pw.parent.frozen) return -E.EPERM;
      if (!n.empty) return -E.ENOTEMPTY;
      pw.parent.unlink(pw.last);
      n.alive = false;
      return 0;
    });
  }

  unlink(start: DirNode, path: string): number {
    return tryWalk(() => {
      const pw = resolveParent(this, start, path);
      if (pw.last === '' || pw.last === '.' || pw.last === '..') return -E.EISDIR;
      const n = pw.parent.lookup(pw.last);
      if (!n) return -E.ENOENT;
      if (pw.trailingSlash) return n instanceof DirNode ? -E.EISDIR : -E.ENOTDIR;
      if (n instanceof DirNode) return -E.EISDIR;
      if (!mayAccess(this, pw.parent, MAY_WRITE | MAY_EXEC)) return -E.EACCES;
      if (!this.stickyAllows(pw.parent, n) || pw.parent.frozen) return -E.EPERM;
      pw.parent.unlink(pw.last);
      n.links--;
      return 0;
    });
  }

  /** In a sticky directory only the owner of the entry or of the directory (or root) may remove it. */
  private stickyAllows(dir: DirNode, n: VNode): boolean {
    return !(dir.mode & S_ISVTX) || this.uid === 0 || this.uid === n.uid || this.uid === dir.uid;
  }

  rename(oldStart: DirNode, oldPath: string, newStart: DirNode, newPath: string, flags = 0): number {
    return tryWalk(() => {
      if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) || (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE)) return -E.EINVAL;
      const o = resolveParent(this, oldStart, oldPath);
      const n = resolveParent(this, newStart, newPath);
      const special = (l: string): boolean => l === '' || l === '.' || l === '..';
      if (special(o.last) || special(n.last)) return -E.EBUSY;
      const src = o.parent.lookup(o.last);
      if (!src) return -E.ENOENT;
      const dst = createLookup(n);
      if (flags & RENAME_NOREPLACE && dst) return -E.EEXIST;
      if (flags & RENAME_EXCHANGE && !dst) return -E.ENOENT;
      if (!(flags & RENAME_EXCHANGE) && !(src instanceof DirNode) && (o.trailingSlash || n.trailingSlash)) return -E.ENOTDIR;
      // lock_rename's trap: the source may not be an ancestor of the target's directory (EINVAL),
      // nor the target an ancestor of the source's (ENOTEMPTY; EINVAL for an exchange).
      if (isAncestor(src, n.parent)) return -E.EINVAL;
      if (dst && isAncestor(dst, o.parent)) return flags & RENAME_EXCHANGE ? -E.EINVAL : -E.ENOTEMPTY;
      if (src === dst) return 0;
      for (const d of [o.parent, n.parent]) if (!mayAccess(this, d, MAY_WRITE | MAY_EXEC)) return -E.EACCES;
      if (o.parent.frozen || n.parent.frozen) return -E.EPERM;
      if (flags & RENAME_EXCHANGE) {
        o.parent.unlink(o.last);
        n.parent.unlink(n.last);
        o.parent.link(o.last, dst!);
        n.parent.link(n.last, src);
        return 0;
      }
      if (dst) {
        if (src instanceof DirNode && !(dst instanceof DirNode)) return -E.ENOTDIR;
        if (!(src instanceof DirNode) && dst instanceof DirNode) return -E.EISDIR;
        if (dst instanceof DirNode && !dst.empty) return -E.ENOTEMPTY;
        n.parent.unlink(n.last);
        if (dst instanceof DirNode) dst.alive = false;
        else dst.links--;
      }
      o.parent.unlink(o.last);
      n.parent.link(n.last, src);
      return 0;
    });
  }

  symlink(target: string, start: DirNode, path: string): number {
    if (target.length === 0) return -E.ENOENT;
    return tryWalk(() => {
      const pw = resolveParent(this, start, path);
      const bad = this.createCheck(pw);
      if (bad) return bad;
      pw.parent.link(pw.last, SymlinkNode.create(this.ctx, target));
      return 0;
    });
  }

  link(oldStart: DirNode, oldPath: string, newStart: DirNode, newPath: string, follow = false): number {
    return tryWalk(() => {
      // Linux's order: the old path, then filename_create on the new one, then vfs_link's checks.
      const src = resolve(this, oldStart, oldPath, follow);
      const pw = resolveParent(this, newStart, newPath);
      const bad = this.createCheck(pw);
      if (bad) return bad;
      if (src instanceof DirNode) return -E.EPERM;
      pw.parent.link(pw.last, src);
      src.links++;
      return 0;
    });
  }

  /**
   * Linux's filename_create for a non-directory (symlink, link, mknod): an existing name is
   * EEXIST; a trailing slash on a name that does not exist asks for a directory, so ENOENT.
   */
  private createCheck(pw: ParentWalk): number {
    if (pw.last === '' || pw.last === '.' || pw.last === '..' || createLookup(pw)) return -E.EEXIST;
    if (pw.trailingSlash) return -E.ENOENT;
    if (!mayAccess(this, pw.parent, MAY_WRITE | MAY_EXEC)) return -E.EACCES;
    return 0;
  }

  /** readlink: the target, EINVAL for anything but a symbolic link. */
  readlink(start: DirNode, path: string): string | number {
    const n = this.lookup(start, path, false);
    if (typeof n === 'number') return n;
    return n instanceof SymlinkNode ? n.target : -E.EINVAL;
  }

  /** access/faccessat: `mode` is F_OK (0) or a mask of R_OK 4, W_OK 2, X_OK 1. */
  access(start: DirNode, path: string, mode: number, follow = true): number {
    if (mode & ~7) return -E.EINVAL;
    const n = this.lookup(start, path, follow);
    if (typeof n === 'number') return n;
    return mode === 0 || mayAccess(this, n, mode) ? 0 : -E.EACCES;
  }

  chdir(fs: FsState, start: DirNode, path: string): number {
    const n = this.lookup(start, path);
    if (typeof n === 'number') return n;
    return this.enter(fs, n);
  }

  /** chdir/fchdir to a node already found. */
  enter(fs: FsState, n: VNode): number {
    if (!(n instanceof DirNode)) return -E.ENOTDIR;
    if (!mayAccess(this, n, MAY_EXEC)) return -E.EACCES;
    fs.cwd = n;
    return 0;
  }

  /** getcwd: the path, or ENOENT when the cwd was removed. */
  getcwd(fs: FsState): string | number {
    return fs.cwd.path() ?? -E.ENOENT;
  }

  truncate(start: DirNode, path: string, len: bigint): number {
    if (len < 0n) return -E.EINVAL;
    const n = this.lookup(start, path);
    if (typeof n === 'number') return n;
    if (n instanceof DirNode) return -E.EISDIR;
    if (!(n instanceof RegNode)) return -E.EINVAL;
    if (!mayAccess(this, n, MAY_WRITE)) return -E.EACCES;
    return n.truncate(len);
  }

  /** ftruncate on an open description: EINVAL unless a regular file opened for writing. */
  ftruncate(f: FileDescription, len: bigint): number {
    if (len < 0n) return -E.EINVAL;
    if (f.flags.path) return -E.EBADF;
    if (!(f.node instanceof RegNode) || !f.writable) return -E.EINVAL;
    return f.node.truncate(len);
  }

  /**
   * chown/fchownat (chown_ok, chgrp_ok): root may give a node to anyone; its owner may only move
   * it to another group of its own (here: the guest's one group). -1 leaves an id as it is. A
   * change of owner or group of a non-directory clears set-user-ID, and set-group-ID when group
   * execution is on (notify_change's ATTR_KILL_SUID/SGID), even for root.
   */
  chown(n: VNode, uid: number, gid: number): number {
    // Neither id given: only ctime would change, and setattr_prepare checks nothing for that.
    if (uid === -1 && gid === -1) return 0;
    if (this.uid !== 0) {
      const sameUid = uid === -1 || uid === n.uid;
      const ownGid = gid === -1 || gid === n.gid || gid === this.gid;
      if (this.uid !== n.uid || !sameUid || !ownGid) return -E.EPERM;
    }
    if (!(n instanceof DirNode)) {
      const kill = 0o4000 | (n.mode & 0o010 ? 0o2000 : 0);
      if (n.mode & kill) n.chmod(n.mode & 0o7777 & ~kill);
    }
    n.chown(uid, gid);
    return 0;
  }

  /** chmod/fchmodat: only the owner or root. */
  chmod(n: VNode, mode: number): number {
    if (this.uid !== 0 && this.uid !== n.uid) return -E.EPERM;
    n.chmod(mode);
    return 0;
  }
}
