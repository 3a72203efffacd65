/**
 * Permission checks (Linux's generic_permission with capabilities): the owner, group or other
 * bits of the mode; a caller with uid 0 has CAP_DAC_OVERRIDE, so reading and writing are always
 * allowed and searching a directory too, but executing a file still needs one execute bit.
 */
import { DirNode, type VNode } from './node.js';

export const MAY_EXEC = 1;
export const MAY_WRITE = 2;
export const MAY_READ = 4;

export interface Cred {
  readonly uid: number;
  readonly gid: number;
}

export function mayAccess(c: Cred, n: VNode, mask: number): boolean {
  if (c.uid === 0) {
    if (!(mask & MAY_EXEC) || n instanceof DirNode) return true;
    return (n.mode & 0o111) !== 0;
  }
  const shift = c.uid === n.uid ? 6 : c.gid === n.gid ? 3 : 0;
  const bits = (n.mode >> shift) & 7;
  return (bits & mask) === mask;
}

export const mayExec = (c: Cred, n: VNode): boolean => mayAccess(c, n, MAY_EXEC);
