/**
 * A VfsContext from the machine's parts: its clock, its guest-memory charge and the guest's
 * credentials (the host's, as qemu-user shows them).
 */
import { makedev, type VfsContext } from './node.js';

export interface ContextOptions {
  now: () => bigint;
  charge?: { tryCharge(bytes: number): boolean; uncharge(bytes: number): void };
  uid?: number;
  gid?: number;
}

/** st_dev of the guest's in-memory nodes: an anonymous device as Linux gives tmpfs (major 0). */
export const MEM_DEV = makedev(0, 0x2d);

export function vfsContext(o: ContextOptions): VfsContext {
  // Small numbers as tmpfs hands out (get_next_ino), so 32-bit stat never overflows; st_dev
  // tells them apart from host inodes.
  let ino = 2n;
  return {
    now: o.now,
    charge: (n) => o.charge?.tryCharge(n) ?? true,
    uncharge: (n) => o.charge?.uncharge(n),
    nextIno: () => ino++,
    memDev: MEM_DEV,
    uid: o.uid ?? process.getuid?.() ?? 0,
    gid: o.gid ?? process.getgid?.() ?? 0,
  };
}
