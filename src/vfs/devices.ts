/**
 * The synthetic character devices of the guest's /dev (drivers/char/mem.c, drivers/tty):
 * - /dev/null (1,3): reads end at once, writes are swallowed.
 * - /dev/zero (1,5): reads give zeros, writes are swallowed.
 * - /dev/full (1,7): reads give zeros, writes fail with ENOSPC.
 * - /dev/random (1,8), /dev/urandom (1,9): bytes from the machine's seeded generator, so a run is
 *   reproducible from its seed.
 * - /dev/tty (5,0): the guest has no controlling terminal, so opening it fails with ENXIO.
 */
import { E } from '../kernel/errno.js';
import { DevNode, DirNode, SymlinkNode, type DeviceOps, type VfsContext } from './node.js';

export interface DeviceRandom {
  bytes(n: number): Uint8Array;
}

/** Reads of the memory devices are capped per call like any read (the caller bounds `len`). */
export function deviceTable(rng: DeviceRandom): Array<{ name: string; major: number; minor: number; ops: DeviceOps }> {
  const swallow = (b: Uint8Array): number => b.length;
  return [
    { name: 'null', major: 1, minor: 3, ops: { name: 'null', read: () => new Uint8Array(0), write: swallow } },
    { name: 'zero', major: 1, minor: 5, ops: { name: 'zero', read: (n) => new Uint8Array(n), write: swallow } },
    { name: 'full', major: 1, minor: 7, ops: { name: 'full', read: (n) => new Uint8Array(n), write: () => -E.ENOSPC } },
    { name: 'random', major: 1, minor: 8, ops: { name: 'random', read: (n) => rng.bytes(n), write: swallow } },
    { name: 'urandom', major: 1, minor: 9, ops: { name: 'urandom', read: (n) => rng.bytes(n), write: swallow } },
    {
      name: 'tty',
      major: 5,
      minor: 0,
      ops: { name: 'tty', open: () => -E.ENXIO, read: () => new Uint8Array(0), write: () => -E.EIO },
    },
  ];
}

/**
 * A fresh /dev directory holding the devices above, and the links every Linux system has there
 * (made by systemd-udevd / the initramfs): fd -> /proc/self/fd, stdin/stdout/stderr -> its 0, 1, 2.
 */
export function makeDevDir(ctx: VfsContext, parent: DirNode, rng: DeviceRandom): DirNode {
  const dev = DirNode.create(ctx, parent, 'dev', 0o755);
  for (const d of deviceTable(rng)) dev.graft(d.name, new DevNode(ctx, d.ops, d.major, d.minor));
  dev.graft('fd', SymlinkNode.create(ctx, '/proc/self/fd'));
  ['stdin', 'stdout', 'stderr'].forEach((name, i) => dev.graft(name, SymlinkNode.create(ctx, `/proc/self/fd/${i}`)));
  return dev;
}
