/**
 * The guest's inodes: what a path names once it is resolved.
 *
 * Every node lives in memory; a node that stands for a host file or directory reads the host
 * lazily and never writes it. The first change to such a node (a write, a truncate, a chmod, an
 * entry created or removed in a directory) makes the node the guest's own copy — overlayfs's
 * copy-up, done per node — so the host is read-only by construction: nothing here opens a host
 * path for writing.
 *
 * Kinds follow Linux's S_IFMT: directories, regular files, symbolic links and character devices
 * (the synthetic /dev nodes). Pipes are not inodes of this tree (they live in src/kernel/pipe).
 */
import { lstatSync, opendirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { E } from '../kernel/errno.js';
import { VfsError } from './errors.js';
import { S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type Stat } from './stat.js';

/** A FIFO, as pipefs inodes show themselves. */
const S_IFIFO = 0o010000;
import { SparseData } from './data.js';
import { hostPread } from './host-fds.js';
import { ReadAhead, SMALL_READ } from './read-ahead.js';

/** What every node needs from the filesystem it belongs to. */
export interface VfsContext {
  /** The deterministic clock (ns since the epoch) for times the guest sets. */
  now(): bigint;
  /** Charge guest memory for file data (tmpfs pages); false when over the limit. */
  charge(bytes: number): boolean;
  uncharge(bytes: number): void;
  /** A fresh inode number for the guest's own nodes. */
  nextIno(): bigint;
  /** The device number of the in-memory filesystem (what stat's st_dev says for guest nodes). */
  readonly memDev: bigint;
  readonly uid: number;
  readonly gid: number;
}

export interface Meta {
  dev: bigint;
  ino: bigint;
  mode: number;
  uid: number;
  gid: number;
  rdev: bigint;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

function metaFromHost(st: BigIntStats): Meta {
  return {
    dev: st.dev,
    ino: st.ino,
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    rdev: st.rdev,
    atimeNs: st.atimeNs,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
  };
}

export function freshMeta(ctx: VfsContext, mode: number, rdev = 0n): Meta {
  const t = ctx.now();
  return { dev: ctx.memDev, ino: ctx.nextIno(), mode, uid: ctx.uid, gid: ctx.gid, rdev, atimeNs: t, mtimeNs: t, ctimeNs: t };
}

export abstract class VNode {
  protected meta: Meta;
  /** Hard links to this node (directory entries naming it); a directory's is computed. */
  links = 1;

  constructor(
    protected readonly ctx: VfsContext,
    meta: Meta,
  ) {
    this.meta = meta;
  }

  get type(): number {
    return this.meta.mode & S_IFMT;
  }
  get mode(): number {
    return this.meta.mode;
  }
  get ino(): bigint {
    return this.meta.ino;
  }
  get uid(): number {
    return this.meta.uid;
  }
  get gid(): number {
    return this.meta.gid;
  }
  abstract get size(): bigint;

  get nlink(): number {
    return this.links;
  }

  stat(): Stat {
    const size = this.size;
    return {
      dev: this.meta.dev,
      ino: this.meta.ino,
      mode: this.meta.mode,
      nlink: this.nlink,
      uid: this.meta.uid,
      gid: this.meta.gid,
      rdev: this.meta.rdev,
      size,
      blksize: 4096,
      blocks: this.blocks(),
      atimeNs: this.meta.atimeNs,
      mtimeNs: this.meta.mtimeNs,
      ctimeNs: this.meta.ctimeNs,
    };
  }

  /** 512-byte blocks allocated (st_blocks). */
  protected blocks(): bigint {
    return 0n;
  }

  /** chmod: keeps the type bits (S_IFMT), replaces the permission and set-id bits. */
  chmod(mode: number): void {
    this.meta.mode = (this.meta.mode & S_IFMT) | (mode & 0o7777);
    this.touchCtime();
  }

  chown(uid: number, gid: number): void {
    if (uid !== -1) this.meta.uid = uid;
    if (gid !== -1) this.meta.gid = gid;
    this.touchCtime();
  }

  setTimes(atimeNs: bigint | undefined, mtimeNs: bigint | undefined): void {
    if (atimeNs !== undefined) this.meta.atimeNs = atimeNs;
    if (mtimeNs !== undefined) this.meta.mtimeNs = mtimeNs;
    this.touchCtime();
  }

  protected touchMtime(): void {
    const t = this.ctx.now();
    this.meta.mtimeNs = t;
    this.meta.ctimeNs = t;
  }

  protected touchCtime(): void {
    this.meta.ctimeNs = this.ctx.now();
  }
}

// --- regular files -------------------------------------------------------------------------------

export class RegNode extends VNode {
  /** Host file still unchanged (read through positional host reads), or undefined once copied up. */
  private hostPath: string | undefined;
  private hostSize: bigint;
  /** The host inode the node was looked up as (host-fds.ts reads only that one). */
  private readonly hostDev: bigint;
  private readonly hostIno: bigint;
  /** Small sequential reads of the host file, served a window at a time (read-ahead.ts). */
  private readAhead: ReadAhead | undefined;
  private data: SparseData | undefined;
  /** Bumped by every change of the contents (a mapping's page cache made earlier is stale). */
  version = 0;

  private constructor(ctx: VfsContext, meta: Meta, hostPath: string | undefined, hostSize: bigint) {
    super(ctx, meta);
    this.hostPath = hostPath;
    this.hostSize = hostSize;
    this.hostDev = meta.dev;
    this.hostIno = meta.ino;
    if (!hostPath) this.data = new SparseData(ctx);
  }

  static fromHost(ctx: VfsContext, path: string, st: BigIntStats): RegNode {
    const n = new RegNode(ctx, metaFromHost(st), path, st.size);
    n.links = Number(st.nlink);
    return n;
  }

  static create(ctx: VfsContext, perm: number): RegNode {
    return new RegNode(ctx, freshMeta(ctx, S_IFREG | (perm & 0o7777)), undefined, 0n);
  }

  /** Host path of an unchanged host file (mmap maps its page cache; /proc shows it). */
  get hostOrigin(): string | undefined {
    return this.hostPath;
  }

  get size(): bigint {
    return this.data ? this.data.size : this.hostSize;
  }

  protected override blocks(): bigint {
    return this.data ? this.data.blocks512() : (this.hostSize + 511n) / 512n;
  }

  /**
   * Up to `len` bytes at `offset`. With `into`, the bytes are read into it (a view of it is
   * returned, valid until the caller reuses it) instead of into a fresh array: V8 allocates any
   * typed array over 64 bytes outside its heap, several microseconds for a 4 KiB read.
   */
  read(offset: bigint, len: number, into?: Uint8Array): Uint8Array {
    const size = this.size;
    if (offset >= size || len <= 0) return new Uint8Array(0);
    const n = Number(size - offset < BigInt(len) ? size - offset : BigInt(len));
    if (this.data) return this.data.read(offset, n, into);
    return hostRead(this.hostPath!, this.hostDev, this.hostIno, offset, n, into, (this.readAhead ??= new ReadAhead()));
  }

  /** Write at `offset`; returns bytes written or -errno (ENOSPC when guest memory is full, like tmpfs). */
  write(offset: bigint, bytes: Uint8Array): number {
    const d = this.copyUp();
    if (typeof d === 'number') return d;
    const r = d.write(offset, bytes);
    if (r > 0) {
      this.version++;
      this.touchMtime();
    }
    return r;
  }

  truncate(len: bigint): number {
    const d = this.copyUp();
    if (typeof d === 'number') return d;
    const r = d.truncate(len);
    if (r === 0) {
      this.version++;
      this.touchMtime();
    }
    return r;
  }

  override chmod(mode: number): void {
    this.copyUp();
    super.chmod(mode);
  }

  /** The guest's own copy of the contents, made from the host file on first change. */
  private copyUp(): SparseData | number {
    if (this.data) return this.data;
    const d = new SparseData(this.ctx);
    const chunk = 1 << 20;
    for (let off = 0n; off < this.hostSize; off += BigInt(chunk)) {
      const bytes = hostRead(this.hostPath!, this.hostDev, this.hostIno, off, Number(this.hostSize - off < BigInt(chunk) ? this.hostSize - off : BigInt(chunk)));
      const r = d.write(off, bytes);
      if (r < 0) {
        d.truncate(0n);
        return r;
      }
    }
    // The host file's size stands even if it ends in a hole.
    if (d.size < this.hostSize) d.truncate(this.hostSize);
    this.data = d;
    this.hostPath = undefined;
    this.readAhead?.drop();
    this.readAhead = undefined;
    this.meta = { ...this.meta, dev: this.ctx.memDev };
    return d;
  }

  /** Drop the contents (the last link and the last open file are gone). */
  release(): void {
    this.data?.truncate(0n);
  }
}

/** `len` bytes at `offset` of the node's host file, into `into` when it is large enough. */
function hostRead(path: string, dev: bigint, ino: bigint, offset: bigint, len: number, into?: Uint8Array, ra?: ReadAhead): Uint8Array {
  const out = into !== undefined && into.length >= len ? into.subarray(0, len) : new Uint8Array(len);
  let got: number;
  try {
    const fill = (b: Uint8Array, at: bigint): number => hostPread(path, dev, ino, b, at);
    got = ra !== undefined && len <= SMALL_READ ? ra.read(out, offset, fill) : fill(out, offset);
  } catch {
    throw new VfsError(E.EIO, `host file ${path} is no longer readable`);
  }
  return got === len ? out : out.subarray(0, got);
}

// --- symbolic links ------------------------------------------------------------------------------

export class SymlinkNode extends VNode {
  constructor(
    ctx: VfsContext,
    meta: Meta,
    readonly target: string,
  ) {
    super(ctx, meta);
  }

  static fromHost(ctx: VfsContext, path: string, st: BigIntStats): SymlinkNode {
    return new SymlinkNode(ctx, metaFromHost(st), readlinkSync(path, 'utf8'));
  }

  static create(ctx: VfsContext, target: string): SymlinkNode {
    return new SymlinkNode(ctx, freshMeta(ctx, S_IFLNK | 0o777), target);
  }

  get size(): bigint {
    return BigInt(Buffer.byteLength(this.target));
  }
}

/**
 * A procfs "magic" link (/proc/PID/exe, cwd, fd/N): readlink shows a path, but following it
 * lands on the object itself (nd_jump_link), even where that path does not resolve — a program
 * outside the guest's root, a deleted file.
 */
export class MagicLink extends SymlinkNode {
  constructor(
    ctx: VfsContext,
    target: string,
    readonly jump: () => VNode | undefined,
  ) {
    super(ctx, freshMeta(ctx, S_IFLNK | 0o777), target);
  }
}

// --- character devices ---------------------------------------------------------------------------

/** The behaviour of a synthetic character device (src/vfs/devices.ts). */
export interface DeviceOps {
  readonly name: string;
  /** -errno when opening is refused (ENXIO for /dev/tty without a controlling terminal). */
  open?(): number | undefined;
  read(len: number): Uint8Array;
  /** Bytes accepted, or -errno (ENOSPC for /dev/full). */
  write(bytes: Uint8Array): number;
}

export class DevNode extends VNode {
  constructor(
    ctx: VfsContext,
    readonly ops: DeviceOps,
    major: number,
    minor: number,
    perm = 0o666,
  ) {
    super(ctx, freshMeta(ctx, S_IFCHR | perm, makedev(major, minor)));
  }

  get size(): bigint {
    return 0n;
  }
}

/**
 * What /proc/PID/fd/N leads to for a descriptor that is no file of any filesystem here: a pipe
 * (pipefs) or the host's stdio the guest inherited. Opening it opens the same object again, as
 * Linux's fifo_open does on a pipe's inode — bash's process substitution reads `<(cmd)` that way
 * through /dev/fd/63. `reopen` gives the kernel's new open file (the VFS does not know its kinds).
 */
export class ReopenNode extends VNode {
  constructor(
    ctx: VfsContext,
    readonly reopen: (write: boolean) => unknown,
  ) {
    super(ctx, freshMeta(ctx, S_IFIFO | 0o600));
  }

  get size(): bigint {
    return 0n;
  }
}

/** Linux's new_encode_dev layout of dev_t as stat reports it (major 12 bits, minor 20). */
export function makedev(major: number, minor: number): bigint {
  return BigInt((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12));
}

// --- directories ---------------------------------------------------------------------------------

export class DirNode extends VNode {
  /** Entries (from the host listing and created by the guest); insertion order is getdents order. */
  private readonly entries = new Map<string, VNode>();
  /** Host directory listed on first lookup (undefined for the guest's own directories). */
  private hostPath: string | undefined;
  /** The host directory's entries were merged into `entries`. */
  private listed: boolean;
  /** False once rmdir removed it (a cwd may still point here; lookups then fail with ENOENT). */
  alive = true;

  protected constructor(
    ctx: VfsContext,
    meta: Meta,
    public parent: DirNode | undefined,
    public name: string,
    hostPath: string | undefined,
  ) {
    super(ctx, meta);
    this.hostPath = hostPath;
    this.listed = hostPath === undefined;
  }

  /**
   * Show the whole host directory behind a shadow (a path named after one of its descendants):
   * its entries join those grafted so far, in place, so a cwd pointing here stays valid.
   */
  expose(hostPath: string): void {
    if (this.hostPath !== undefined) return;
    this.hostPath = hostPath;
    this.listed = false;
  }

  static fromHost(ctx: VfsContext, parent: DirNode | undefined, name: string, path: string, st: BigIntStats): DirNode {
    return new DirNode(ctx, metaFromHost(st), parent, name, path);
  }

  /**
   * A directory that shows the host directory's metadata but only the entries grafted into it:
   * the view's ancestors of a named path (/home, /home/user for /home/user/prog).
   */
  static shadow(ctx: VfsContext, parent: DirNode | undefined, name: string, st: BigIntStats): DirNode {
    return new DirNode(ctx, metaFromHost(st), parent, name, undefined);
  }

  static create(ctx: VfsContext, parent: DirNode | undefined, name: string, perm: number): DirNode {
    return new DirNode(ctx, freshMeta(ctx, S_IFDIR | (perm & 0o7777)), parent, name, undefined);
  }

  get size(): bigint {
    return 4096n;
  }

  /**
   * A directory whose inode has no create/mkdir/unlink/rename operations (procfs): creating a
   * name fails with ENOENT (its lookup refuses unknown names), removing or replacing one with
   * EPERM after the permission checks.
   */
  get frozen(): boolean {
    return false;
  }

  protected override blocks(): bigint {
    return 8n;
  }

  /** 2 + one for each subdirectory's "..", as Linux's ext4 and tmpfs count them. */
  override get nlink(): number {
    let n = 2;
    for (const c of this.map().values()) if (c instanceof DirNode) n++;
    return n;
  }

  lookup(name: string): VNode | undefined {
    return this.map().get(name);
  }

  /** Entries in getdents order (without "." and ".."). */
  list(): Array<[string, VNode]> {
    return [...this.map()];
  }

  get empty(): boolean {
    return this.map().size === 0;
  }

  /** Add an entry (the caller checked it does not exist). */
  link(name: string, node: VNode): void {
    this.map().set(name, node);
    if (node instanceof DirNode) {
      node.parent = this;
      node.name = name;
    }
    this.touchMtime();
  }

  unlink(name: string): VNode | undefined {
    const m = this.map();
    const node = m.get(name);
    if (!node) return undefined;
    m.delete(name);
    this.touchMtime();
    return node;
  }

  /** The directory's path from the root, or undefined when it (or an ancestor) was removed. */
  path(): string | undefined {
    const parts: string[] = [];
    for (let d: DirNode = this; d.parent; d = d.parent) {
      if (!d.alive) return undefined;
      parts.unshift(d.name);
    }
    return `/${parts.join('/')}`;
  }

  private map(): Map<string, VNode> {
    const m = this.entries;
    if (this.listed) return m;
    this.listed = true;
    const dir = this.hostPath!;
    let h;
    try {
      h = opendirSync(dir);
    } catch {
      return m; // unreadable on the host: an empty directory to the guest (as if EACCES at listing)
    }
    try {
      for (let ent = h.readSync(); ent; ent = h.readSync()) {
        if (m.has(ent.name)) continue; // grafted before the directory was exposed
        const node = hostNode(this.ctx, this, ent.name, `${dir === '/' ? '' : dir}/${ent.name}`);
        if (node) m.set(ent.name, node);
      }
    } finally {
      h.closeSync();
    }
    return m;
  }

  /** Graft a node under `name` (the view builder: synthetic ancestors, /dev, /tmp, /proc). */
  graft(name: string, node: VNode): void {
    this.map().set(name, node);
    if (node instanceof DirNode) {
      node.parent = this;
      node.name = name;
    }
  }
}

/** A node for the host path, read with lstat (a host symlink is never followed on the host). */
export function hostNode(ctx: VfsContext, parent: DirNode | undefined, name: string, path: string): VNode | undefined {
  let st: BigIntStats;
  try {
    st = lstatSync(path, { bigint: true });
  } catch {
    return undefined;
  }
  switch (Number(st.mode) & S_IFMT) {
    case S_IFDIR:
      return DirNode.fromHost(ctx, parent, name, path, st);
    case S_IFREG:
      return RegNode.fromHost(ctx, path, st);
    case S_IFLNK:
      return SymlinkNode.fromHost(ctx, path, st);
    default:
      return undefined; // host devices, sockets and FIFOs are not part of the guest's view
  }
}
