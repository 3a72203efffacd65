/**
 * /proc as Linux shows it (fs/proc/): `self` and `thread-self` links that depend on who looks,
 * one directory per process with `exe`, `cwd`, `root`, `cmdline`, `environ`, `comm`, `maps`,
 * `status` and `fd/`. The contents come from the machine through `ProcSource`; the formats are
 * Linux's (task_mmu.c's show_map_vma padding, array.c's status lines), written here once.
 *
 * Files are generated when first read after open, as seq_file fills its buffer, and report size
 * 0 as procfs does. The directories have no create or remove operations (EPERM).
 */
import { DirNode, MagicLink, ReopenNode, SymlinkNode, VNode, freshMeta, type VfsContext } from './node.js';
import { S_IFDIR, S_IFREG } from './stat.js';

export interface MapEntry {
  start: bigint;
  end: bigint;
  read: boolean;
  write: boolean;
  exec: boolean;
  shared: boolean;
  /** File offset in bytes (pgoff << PAGE_SHIFT). */
  offset: bigint;
  major: number;
  minor: number;
  ino: bigint;
  /** Path, or a bracketed name ([heap], [stack], [uprobes], [vdso]); none for plain anonymous memory. */
  name?: string;
}

export interface ProcTask {
  pid: number;
  tgid: number;
  ppid: number;
  comm: string;
  /** R running, S sleeping, Z zombie… (the letter of /proc/PID/status's State line). */
  state: string;
  exe: string | undefined;
  cwd: string | undefined;
  /** What exe and cwd lead to when followed (magic links). */
  exeNode?: () => VNode | undefined;
  cwdNode?: () => VNode | undefined;
  cmdline: Uint8Array;
  environ: Uint8Array;
  umask: number;
  uid: number;
  gid: number;
  threads: number;
  /** `node`: what a file descriptor leads to; `reopen`: opens a pipe or stdio again (ReopenNode). */
  fds: Array<{ fd: number; target: string; node?: VNode; reopen?: (write: boolean) => unknown }>;
  sigBlocked: bigint;
  sigIgnored: bigint;
  sigCaught: bigint;
  sigPending: bigint;
  maps(): MapEntry[];
}

export interface ProcSource {
  /** The process and thread making the current call (what `self` and `thread-self` name). */
  caller(): { tgid: number; tid: number };
  pids(): number[];
  task(pid: number): ProcTask | undefined;
  /** The kernel's pointer width in bytes: it sets the column of names in maps. */
  readonly wordSize: 4 | 8;
}

/** A procfs regular file: contents generated per open (snapshotted on the first read). */
export class ProcFile extends VNode {
  constructor(
    ctx: VfsContext,
    readonly generate: () => Uint8Array,
    perm = 0o444,
  ) {
    super(ctx, freshMeta(ctx, S_IFREG | perm));
  }

  get size(): bigint {
    return 0n;
  }
}

/** A procfs directory whose entries are computed at each lookup. */
class ProcDir extends DirNode {
  constructor(
    ctx: VfsContext,
    parent: DirNode | undefined,
    name: string,
    private readonly dynamic: () => Array<[string, () => VNode]>,
  ) {
    super(ctx, freshMeta(ctx, S_IFDIR | 0o555), parent, name, undefined);
  }

  override get frozen(): boolean {
    return true;
  }

  override lookup(name: string): VNode | undefined {
    const e = this.dynamic().find(([n]) => n === name);
    return e ? this.adopt(name, e[1]()) : undefined;
  }

  override list(): Array<[string, VNode]> {
    return this.dynamic().map(([n, make]) => [n, this.adopt(n, make())]);
  }

  override get empty(): boolean {
    return this.dynamic().length === 0;
  }

  override get nlink(): number {
    return 2 + this.dynamic().filter(([, make]) => make() instanceof DirNode).length;
  }

  private adopt(name: string, n: VNode): VNode {
    if (n instanceof DirNode) {
      n.parent = this;
      n.name = name;
    }
    return n;
  }
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The /proc directory for `src`. */
export function makeProcDir(ctx: VfsContext, parent: DirNode, src: ProcSource): DirNode {
  const link = (target: () => string | undefined) => () => SymlinkNode.create(ctx, target() ?? '');
  const magic = (target: () => string | undefined, jump: (() => VNode | undefined) | undefined) => () =>
    jump ? new MagicLink(ctx, target() ?? '', jump) : SymlinkNode.create(ctx, target() ?? '');
  const file = (gen: () => Uint8Array, perm?: number) => () => new ProcFile(ctx, gen, perm);
  const pidDir = (pid: number): DirNode =>
    new ProcDir(ctx, undefined, String(pid), () => {
      const t = (): ProcTask | undefined => src.task(pid);
      return [
        ['cmdline', file(() => t()?.cmdline ?? new Uint8Array(0))],
        ['comm', file(() => text(`${t()?.comm ?? ''}\n`), 0o644)],
        ['cwd', magic(() => t()?.cwd, () => t()?.cwdNode?.())],
        ['environ', file(() => t()?.environ ?? new Uint8Array(0), 0o400)],
        ['exe', magic(() => t()?.exe, () => t()?.exeNode?.())],
        [
          'fd',
          () =>
            new ProcDir(ctx, undefined, 'fd', () =>
              (t()?.fds ?? []).map(({ fd, target, node, reopen }): [string, () => VNode] => {
                const to = node ?? (reopen && new ReopenNode(ctx, reopen));
                return [String(fd), magic(() => target, to ? () => to : undefined)];
              }),
            ),
        ],
        ['maps', file(() => text(formatMaps(t()?.maps() ?? [], src.wordSize)))],
        ['root', link(() => '/')],
        ['status', file(() => text(t() ? formatStatus(t()!) : ''))],
      ];
    });
  return new ProcDir(ctx, parent, 'proc', () => [
    ...src.pids().map((pid): [string, () => VNode] => [String(pid), () => pidDir(pid)]),
    ['self', link(() => String(src.caller().tgid))],
    ['thread-self', link(() => `${src.caller().tgid}/task/${src.caller().tid}`)],
  ]);
}

/**
 * /proc/PID/maps: show_map_vma's "%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu " then, for a named
 * mapping, spaces up to column 25 + 6 × sizeof(void *) − 1 and one more before the name.
 */
export function formatMaps(entries: MapEntry[], wordSize: 4 | 8): string {
  const width = 25 + wordSize * 6 - 1;
  const hex = (v: bigint | number, w: number): string => v.toString(16).padStart(w, '0');
  let out = '';
  for (const e of entries) {
    let line =
      `${hex(e.start, 8)}-${hex(e.end, 8)} ${e.read ? 'r' : '-'}${e.write ? 'w' : '-'}${e.exec ? 'x' : '-'}${e.shared ? 's' : 'p'} ` +
      `${hex(e.offset, 8)} ${hex(e.major, 2)}:${hex(e.minor, 2)} ${e.ino} `;
    if (e.name !== undefined) line = `${line.padEnd(width)} ${e.name}`;
    out += `${line}\n`;
  }
  return out;
}

const STATE_NAMES: Record<string, string> = {
  R: 'R (running)',
  S: 'S (sleeping)',
  D: 'D (disk sleep)',
  T: 'T (stopped)',
  t: 't (tracing stop)',
  X: 'X (dead)',
  Z: 'Z (zombie)',
};

/** /proc/PID/status: the identity, credential, thread and signal lines, in Linux's order. */
export function formatStatus(t: ProcTask): string {
  const mask = (v: bigint): string => v.toString(16).padStart(16, '0');
  const ids = (v: number): string => `${v}\t${v}\t${v}\t${v}`;
  return [
    `Name:\t${t.comm.slice(0, 15)}`,
    `Umask:\t${t.umask.toString(8).padStart(4, '0')}`,
    `State:\t${STATE_NAMES[t.state] ?? t.state}`,
    `Tgid:\t${t.tgid}`,
    'Ngid:\t0',
    `Pid:\t${t.pid}`,
    `PPid:\t${t.ppid}`,
    'TracerPid:\t0',
    `Uid:\t${ids(t.uid)}`,
    `Gid:\t${ids(t.gid)}`,
    `FDSize:\t${Math.max(64, 2 ** Math.ceil(Math.log2(Math.max(1, ...t.fds.map((f) => f.fd + 1)))))}`,
    'Groups:\t',
    `NStgid:\t${t.tgid}`,
    `NSpid:\t${t.pid}`,
    `Threads:\t${t.threads}`,
    `SigPnd:\t${mask(t.sigPending)}`,
    `ShdPnd:\t${mask(0n)}`,
    `SigBlk:\t${mask(t.sigBlocked)}`,
    `SigIgn:\t${mask(t.sigIgnored)}`,
    `SigCgt:\t${mask(t.sigCaught)}`,
    '',
  ].join('\n');
}
