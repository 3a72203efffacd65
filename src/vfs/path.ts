/**
 * Path walk (Linux's namei): from the root or a starting directory, one component at a time,
 * following symbolic links in the middle of a path always and at the end only when asked.
 *
 * The limits and errors are Linux's: a path of PATH_MAX (4096) bytes or more, or a component over
 * NAME_MAX (255), is ENAMETOOLONG; more than 40 links followed in one walk is ELOOP; a component
 * under a non-directory is ENOTDIR; a missing one is ENOENT; a directory the caller may not search
 * is EACCES; a trailing slash requires a directory (and follows a final link). ".." at the root
 * stays at the root.
 */
import { E } from '../kernel/errno.js';
import { VfsError } from './errors.js';
import { DirNode, MagicLink, SymlinkNode, type VNode } from './node.js';
import { mayExec } from './access.js';

export const PATH_MAX = 4096;
export const NAME_MAX = 255;
export const MAXSYMLINKS = 40;

/** The result of walking to a path's last component without resolving it. */
export interface ParentWalk {
  parent: DirNode;
  /** The last component ("" for "/"; "." or ".." are returned as such). */
  last: string;
  trailingSlash: boolean;
}

export interface Walker {
  readonly root: DirNode;
  readonly uid: number;
  readonly gid: number;
}

interface Budget {
  links: number;
}

function split(path: string): { abs: boolean; parts: string[]; trailingSlash: boolean } {
  if (path.length === 0) throw new VfsError(E.ENOENT);
  if (Buffer.byteLength(path) >= PATH_MAX) throw new VfsError(E.ENAMETOOLONG);
  const parts = path.split('/').filter((p) => p.length > 0);
  for (const p of parts) if (Buffer.byteLength(p) > NAME_MAX) throw new VfsError(E.ENAMETOOLONG);
  return { abs: path.startsWith('/'), parts, trailingSlash: path.endsWith('/') && parts.length > 0 };
}

/** Step into `name` from `dir` (".", ".." and search permission handled). */
function step(w: Walker, dir: DirNode, name: string): VNode {
  if (!dir.alive) throw new VfsError(E.ENOENT);
  if (!mayExec(w, dir)) throw new VfsError(E.EACCES);
  if (name === '.') return dir;
  if (name === '..') return dir === w.root ? dir : (dir.parent ?? dir);
  const n = dir.lookup(name);
  if (!n) throw new VfsError(E.ENOENT);
  return n;
}

/** Follow a symbolic link found in `dir`: its target resolved from there (or from the root). */
function follow(w: Walker, dir: DirNode, link: SymlinkNode, budget: Budget): VNode {
  if (++budget.links > MAXSYMLINKS) throw new VfsError(E.ELOOP);
  if (link instanceof MagicLink) {
    const n = link.jump();
    if (!n) throw new VfsError(E.ENOENT);
    return n;
  }
  if (link.target.length === 0) throw new VfsError(E.ENOENT);
  return walk(w, dir, link.target, true, budget);
}

function walk(w: Walker, start: DirNode, path: string, followLast: boolean, budget: Budget): VNode {
  const p = split(path);
  let cur: VNode = p.abs ? w.root : start;
  for (let i = 0; i < p.parts.length; i++) {
    if (!(cur instanceof DirNode)) throw new VfsError(E.ENOTDIR);
    const dir: DirNode = cur;
    let next = step(w, dir, p.parts[i]!);
    const last = i === p.parts.length - 1;
    if (next instanceof SymlinkNode && (!last || followLast || p.trailingSlash)) next = follow(w, dir, next, budget);
    cur = next;
  }
  if (p.trailingSlash && !(cur instanceof DirNode)) throw new VfsError(E.ENOTDIR);
  if (cur instanceof DirNode && !cur.alive && p.parts.length > 0) throw new VfsError(E.ENOENT);
  return cur;
}

/** The node `path` names (throws VfsError). */
export function resolve(w: Walker, start: DirNode, path: string, followLast = true): VNode {
  return walk(w, start, path, followLast, { links: 0 });
}

/** Walk to the directory that holds the last component (for create, unlink, rename, mkdir...). */
export function resolveParent(w: Walker, start: DirNode, path: string): ParentWalk {
  const p = split(path);
  if (p.parts.length === 0) return { parent: w.root, last: '', trailingSlash: false };
  const dirPath = p.parts.slice(0, -1).join('/');
  const prefix = p.abs ? '/' : '';
  const parent = dirPath.length || p.abs ? walk(w, start, prefix + dirPath || '/', true, { links: 0 }) : start;
  if (!(parent instanceof DirNode)) throw new VfsError(E.ENOTDIR);
  if (!parent.alive) throw new VfsError(E.ENOENT);
  return { parent, last: p.parts[p.parts.length - 1]!, trailingSlash: p.trailingSlash };
}
