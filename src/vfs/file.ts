/**
 * An open file description (Linux's struct file): the node, the position and the access mode,
 * shared by every descriptor dup'ed or inherited from the same open. Reads and writes move the
 * position; pread/pwrite do not. Directory descriptions read entries with getdents.
 */
import { E } from '../kernel/errno.js';
import { DevNode, DirNode, RegNode, SymlinkNode, type VNode } from './node.js';
import { MAX_FILE_SIZE } from './data.js';
import { ProcFile } from './proc.js';
import { dtype } from './stat.js';

export const SEEK_SET = 0;
export const SEEK_CUR = 1;
export const SEEK_END = 2;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

/** The open(2) flags the VFS acts on, decoded from the target's numbering by the syscall layer. */
export interface OpenFlags {
  read: boolean;
  write: boolean;
  create?: boolean;
  excl?: boolean;
  trunc?: boolean;
  append?: boolean;
  directory?: boolean;
  nofollow?: boolean;
  /** O_PATH: a handle for *at calls and fstat only. */
  path?: boolean;
}

export class FileDescription {
  pos = 0n;
  /** Directory reads: the entries as they were at the last rewind (position = index). */
  private snapshot: Array<[string, VNode]> | undefined;
  /** A procfs file's contents, generated at the first read (seq_file fills its buffer then). */
  private generated: Uint8Array | undefined;

  constructor(
    readonly node: VNode,
    readonly flags: OpenFlags,
    /** The path it was opened by (what /proc/self/fd/N shows). */
    readonly path: string,
  ) {}

  get readable(): boolean {
    return this.flags.read && !this.flags.path;
  }
  get writable(): boolean {
    return this.flags.write && !this.flags.path;
  }

  /** read(2): bytes, or -errno. */
  read(len: number): Uint8Array | number {
    const r = this.pread(this.pos, len, true);
    if (typeof r !== 'number') this.pos += BigInt(r.length);
    return r;
  }

  /**
   * pread(2): bytes, or -errno. `into`: a buffer a regular file's bytes may be read into (see
   * RegNode.read); the result is then a view of it.
   */
  pread(offset: bigint, len: number, positional = false, into?: Uint8Array): Uint8Array | number {
    if (!this.readable) return -E.EBADF;
    const n = this.node;
    if (n instanceof DirNode) return -E.EISDIR;
    if (n instanceof DevNode) return n.ops.read(len);
    if (!positional && offset < 0n) return -E.EINVAL;
    if (n instanceof RegNode) return n.read(offset, len, into);
    if (n instanceof ProcFile) {
      this.generated ??= n.generate();
      const start = offset > BigInt(this.generated.length) ? this.generated.length : Number(offset);
      return this.generated.slice(start, start + len);
    }
    return -E.EINVAL;
  }

  /** write(2): bytes written, or -errno. */
  write(bytes: Uint8Array): number {
    if (!this.writable) return -E.EBADF;
    const n = this.node;
    if (n instanceof RegNode && this.flags.append) this.pos = n.size;
    const r = this.pwrite(this.pos, bytes, true);
    if (r > 0 && n instanceof RegNode) this.pos += BigInt(r);
    return r;
  }

  pwrite(offset: bigint, bytes: Uint8Array, positional = false): number {
    if (!this.writable) return -E.EBADF;
    const n = this.node;
    if (n instanceof DevNode) return n.ops.write(bytes);
    if (!positional && offset < 0n) return -E.EINVAL;
    if (!(n instanceof RegNode)) return -E.EINVAL;
    // pwrite on an O_APPEND file appends all the same (a documented Linux bug kept for ABI).
    return n.write(this.flags.append && !positional ? n.size : offset, bytes);
  }

  /** lseek(2): the new position, or -errno. */
  lseek(offset: bigint, whence: number): bigint | number {
    const n = this.node;
    if (n instanceof DevNode) return n.ops.name === 'random' || n.ops.name === 'urandom' ? this.pos : 0n; // null_lseek / noop_llseek
    if (n instanceof SymlinkNode) return -E.EBADF; // only reachable through O_PATH, which refuses lseek
    let base: bigint;
    switch (whence) {
      case SEEK_SET:
        base = 0n;
        break;
      case SEEK_CUR:
        base = this.pos;
        break;
      case SEEK_END:
        base = n.size;
        break;
      case SEEK_DATA:
      case SEEK_HOLE: {
        if (!(n instanceof RegNode)) return -E.EINVAL;
        // No hole is reported inside a file (allowed by the interface: the end is a hole).
        if (offset < 0n || offset >= n.size) return -E.ENXIO;
        this.pos = whence === SEEK_DATA ? offset : n.size;
        return this.pos;
      }
      default:
        return -E.EINVAL;
    }
    const p = base + offset;
    if (p < 0n) return -E.EINVAL;
    if (p > MAX_FILE_SIZE) return -E.EOVERFLOW;
    if (n instanceof DirNode && p === 0n) this.snapshot = undefined;
    this.pos = p;
    return p;
  }

  /**
   * getdents64 / getdents: as many records as fit in `size` bytes, 0 bytes at the end, EINVAL
   * when not even the next record fits. `encode` writes one record (its layout is per call and
   * per target word size and byte order) and returns its bytes.
   */
  readdir(size: number, encode: DirentEncoder): Uint8Array | number {
    const dir = this.node;
    if (!(dir instanceof DirNode)) return -E.ENOTDIR;
    if (this.flags.path) return -E.EBADF;
    if (!dir.alive) return new Uint8Array(0); // an rmdir'ed directory reads as empty
    if (this.pos === 0n || !this.snapshot) {
      this.snapshot = [
        ['.', dir],
        ['..', dir.parent ?? dir],
        ...dir.list(),
      ];
    }
    const out: Uint8Array[] = [];
    let used = 0;
    while (this.pos < BigInt(this.snapshot.length)) {
      const [name, node] = this.snapshot[Number(this.pos)]!;
      const rec = encode({ ino: node.ino, off: this.pos + 1n, type: dtype(node.mode), name });
      if (used + rec.length > size) {
        if (out.length === 0) return -E.EINVAL;
        break;
      }
      out.push(rec);
      used += rec.length;
      this.pos++;
    }
    const buf = new Uint8Array(used);
    let at = 0;
    for (const r of out) {
      buf.set(r, at);
      at += r.length;
    }
    return buf;
  }
}

export interface Dirent {
  ino: bigint;
  /** The position of the next entry (d_off). */
  off: bigint;
  type: number;
  name: string;
}

export type DirentEncoder = (d: Dirent) => Uint8Array;

/** struct linux_dirent64 (the same on every target but for byte order): 8-byte aligned records. */
export function dirent64(littleEndian: boolean): DirentEncoder {
  return (d) => {
    const name = Buffer.from(d.name);
    const len = (19 + name.length + 1 + 7) & ~7;
    const b = new Uint8Array(len);
    const v = new DataView(b.buffer);
    v.setBigUint64(0, d.ino, littleEndian);
    v.setBigInt64(8, d.off, littleEndian);
    v.setUint16(16, len, littleEndian);
    b[18] = d.type;
    b.set(name, 19);
    return b;
  };
}

/**
 * The old struct linux_dirent (getdents, on targets that have it): word-sized d_ino and d_off,
 * the name, a NUL and d_type in the record's last byte; records aligned to the word size.
 * EOVERFLOW when an inode number does not fit the word, as Linux's filldir does.
 */
export function direntLegacy(littleEndian: boolean, wordSize: 4 | 8): DirentEncoder {
  return (d) => {
    if (wordSize === 4 && d.ino > 0xffffffffn) throw new DirentOverflow();
    const name = Buffer.from(d.name);
    const head = wordSize * 2 + 2;
    const len = (head + name.length + 2 + wordSize - 1) & ~(wordSize - 1);
    const b = new Uint8Array(len);
    const v = new DataView(b.buffer);
    if (wordSize === 8) {
      v.setBigUint64(0, d.ino, littleEndian);
      v.setBigUint64(8, d.off, littleEndian);
    } else {
      v.setUint32(0, Number(d.ino), littleEndian);
      v.setUint32(4, Number(d.off), littleEndian);
    }
    v.setUint16(wordSize * 2, len, littleEndian);
    b.set(name, head);
    b[len - 1] = d.type;
    return b;
  };
}

export class DirentOverflow extends Error {}
