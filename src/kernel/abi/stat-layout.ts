/**
 * Writing a kstat (src/vfs/stat.ts) into a user struct stat / stat64 / statx.
 *
 * A layout is a table of the fields a target's struct has, each with its byte offset and width;
 * the tables live with their arch (arch/<family>/stat.ts), taken from the kernel's
 * arch/<arch>/include/uapi/asm/stat.h. The copy rules are fs/stat.c's: dev_t fields hold
 * new_encode_dev on 64-bit kernels and old_encode_dev (8:8 bits) in the 32-bit `struct stat`,
 * and a value that does not fit its field (inode number, link count, size, device) is EOVERFLOW
 * — the reason 32-bit programs use stat64 or statx.
 */
import { E } from '../errno.js';
import type { Stat } from '../../vfs/stat.js';

export type StatField =
  | 'dev'
  | 'ino'
  /** i386 stat64's low 32 bits of the inode number (STAT64_HAS_BROKEN_ST_INO). */
  | 'ino_lo'
  | 'mode'
  | 'nlink'
  | 'uid'
  | 'gid'
  | 'rdev'
  | 'size'
  | 'blksize'
  | 'blocks'
  | 'atime'
  | 'atime_nsec'
  | 'mtime'
  | 'mtime_nsec'
  | 'ctime'
  | 'ctime_nsec';

export interface StatLayout {
  /** sizeof the struct; every byte not covered by a field is written as zero. */
  size: number;
  /** [field, offset, width in bytes]. */
  fields: ReadonlyArray<readonly [StatField, number, 1 | 2 | 4 | 8]>;
  /** dev_t encoding of the dev/rdev fields: 'new' (new_encode_dev) or 'old' (8-bit major and minor). */
  devEncoding: 'new' | 'old';
}

const NS = 1_000_000_000n;

/** new_encode_dev (include/linux/kdev_t.h) of a user-space dev_t (glibc's makedev layout). */
export function majorMinor(dev: bigint): { major: number; minor: number } {
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return { major, minor };
}

function encodeDev(dev: bigint, how: 'new' | 'old'): bigint | undefined {
  const { major, minor } = majorMinor(dev);
  if (how === 'old') return major < 256 && minor < 256 ? BigInt((major << 8) | minor) : undefined;
  return BigInt((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) & 0xffffffffn;
}

function value(st: Stat, f: StatField, layout: StatLayout): bigint | undefined {
  switch (f) {
    case 'dev':
      return encodeDev(st.dev, layout.devEncoding);
    case 'rdev':
      return encodeDev(st.rdev, layout.devEncoding);
    case 'ino':
      return st.ino;
    case 'ino_lo':
      return st.ino & 0xffffffffn;
    case 'mode':
      return BigInt(st.mode);
    case 'nlink':
      return BigInt(st.nlink);
    case 'uid':
      return BigInt(st.uid);
    case 'gid':
      return BigInt(st.gid);
    case 'size':
      return st.size;
    case 'blksize':
      return BigInt(st.blksize);
    case 'blocks':
      return st.blocks;
    case 'atime':
      return st.atimeNs / NS;
    case 'atime_nsec':
      return st.atimeNs % NS;
    case 'mtime':
      return st.mtimeNs / NS;
    case 'mtime_nsec':
      return st.mtimeNs % NS;
    case 'ctime':
      return st.ctimeNs / NS;
    case 'ctime_nsec':
      return st.ctimeNs % NS;
  }
}

/**
 * Fields whose overflow is EOVERFLOW (fs/stat.c: devices, inode numbers, link counts, and a size
 * past MAX_NON_LFS in a 32-bit field); a uid/gid too wide for 16 bits becomes the overflow id
 * 65534 (high2lowuid); times are truncated.
 */
const CHECKED: ReadonlySet<StatField> = new Set(['dev', 'rdev', 'ino', 'nlink', 'size']);
const OVERFLOW_ID = 65534n;

/** The struct's bytes, or -EOVERFLOW. */
export function encodeStat(st: Stat, layout: StatLayout, littleEndian: boolean): Uint8Array | number {
  const out = new Uint8Array(layout.size);
  const v = new DataView(out.buffer);
  for (const [f, off, width] of layout.fields) {
    let x = value(st, f, layout);
    const bits = BigInt(width * 8) - (f === 'size' ? 1n : 0n); // st_size is signed
    if (x === undefined || (CHECKED.has(f) && x >> bits !== 0n)) return -E.EOVERFLOW;
    if ((f === 'uid' || f === 'gid') && width === 2 && x > 0xffffn) x = OVERFLOW_ID;
    const w = BigInt.asUintN(width * 8, x);
    if (width === 8) v.setBigUint64(off, w, littleEndian);
    else if (width === 4) v.setUint32(off, Number(w), littleEndian);
    else if (width === 2) v.setUint16(off, Number(w), littleEndian);
    else v.setUint8(off, Number(w));
  }
  return out;
}

// --- statx (include/uapi/linux/stat.h): one layout on every target ------------------------------

export const STATX_TYPE = 0x1;
export const STATX_MODE = 0x2;
export const STATX_NLINK = 0x4;
export const STATX_UID = 0x8;
export const STATX_GID = 0x10;
export const STATX_ATIME = 0x20;
export const STATX_MTIME = 0x40;
export const STATX_CTIME = 0x80;
export const STATX_INO = 0x100;
export const STATX_SIZE = 0x200;
export const STATX_BLOCKS = 0x400;
export const STATX_BASIC_STATS = 0x7ff;
export const STATX_MNT_ID = 0x1000;
export const STATX_SIZEOF = 256;

/** struct statx with the basic stats and the mount id (what Linux 6.1 fills for tmpfs and ext4 alike). */
export function encodeStatx(st: Stat, mntId: bigint, littleEndian: boolean): Uint8Array {
  const out = new Uint8Array(STATX_SIZEOF);
  const v = new DataView(out.buffer);
  const le = littleEndian;
  const ts = (off: number, ns: bigint): void => {
    v.setBigInt64(off, ns / NS, le);
    v.setUint32(off + 8, Number(ns % NS), le);
  };
  v.setUint32(0, STATX_BASIC_STATS | STATX_MNT_ID, le); // stx_mask
  v.setUint32(4, st.blksize, le);
  v.setUint32(16, st.nlink, le);
  v.setUint32(20, st.uid, le);
  v.setUint32(24, st.gid, le);
  v.setUint16(28, st.mode, le);
  v.setBigUint64(32, st.ino, le);
  v.setBigUint64(40, st.size, le);
  v.setBigUint64(48, st.blocks, le);
  ts(64, st.atimeNs);
  ts(96, st.ctimeNs);
  ts(112, st.mtimeNs);
  const r = majorMinor(st.rdev);
  const d = majorMinor(st.dev);
  v.setUint32(128, r.major, le);
  v.setUint32(132, r.minor, le);
  v.setUint32(136, d.major, le);
  v.setUint32(140, d.minor, le);
  v.setBigUint64(144, mntId, le);
  return out;
}
