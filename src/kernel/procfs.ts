/**
 * What /proc (src/vfs/proc.ts) shows of this machine's processes: pids, identities, cwd, the
 * descriptor table, and the memory map from each mm's VMAs (file mappings with the host file's
 * device and inode, as Linux shows the backing inode; "[uprobes]" for the XOL area).
 */
import { statSync } from 'node:fs';
import type { Arch } from '../../arch/types.js';
import { PROT } from '../mm/vma.js';
import { majorMinor } from './abi/stat-layout.js';
import type { MapEntry, ProcSource, ProcTask } from '../vfs/proc.js';
import type { OpenFile, Process, Task } from './task.js';

export interface ProcfsDeps {
  arch: Arch;
  processes(): readonly Process[];
  /** The task making the current system call (undefined outside one: /proc/self is then init). */
  current(): Task | undefined;
  uid: number;
  gid: number;
}

const hostIds = new Map<string, { dev: bigint; ino: bigint } | undefined>();
function hostId(path: string): { dev: bigint; ino: bigint } | undefined {
  if (!hostIds.has(path)) {
    try {
      const st = statSync(path, { bigint: true });
      hostIds.set(path, { dev: st.dev, ino: st.ino });
    } catch {
      hostIds.set(path, undefined);
    }
  }
  return hostIds.get(path);
}

function fdTarget(f: OpenFile): string {
  switch (f.kind) {
    case 'stdio':
      return `pipe:[${f.hostFd + 1}]`; // the host's descriptors reach the guest as pipes
    case 'pipe':
      return `pipe:[${f.pipe.id}]`;
    case 'vfs':
      return f.file.path;
  }
}

/**
 * Opening /proc/PID/fd/N of a pipe opens that pipe again, at the end the open asks for (fifo_open);
 * the host's stdio is shared as it is (the guest cannot tell it from a pipe).
 */
function reopen(arch: Arch, f: OpenFile, write: boolean): OpenFile {
  if (f.kind === 'pipe') {
    const end = write ? 'write' : 'read';
    f.pipe.open(end);
    return { kind: 'pipe', pipe: f.pipe, end, nonblock: false, status: write ? arch.fsAbi.openFlags.O_WRONLY : 0 };
  }
  if (f.kind === 'stdio') return { kind: 'stdio', hostFd: f.hostFd, status: write ? arch.fsAbi.openFlags.O_WRONLY : 0 };
  throw new Error('reopen of a file: the VFS opens files itself');
}

const z = (strings: string[]): Uint8Array => new TextEncoder().encode(strings.map((s) => `${s}\0`).join(''));

export function procfsSource(d: ProcfsDeps): ProcSource {
  const find = (pid: number): Process | undefined => d.processes().find((p) => p.pid === pid && !p.reaped);
  return {
    wordSize: d.arch.wordSize,
    caller: () => {
      const t = d.current() ?? d.processes()[0]?.tasks[0];
      return { tgid: t?.process.pid ?? 1, tid: t?.tid ?? 1 };
    },
    pids: () => d.processes().filter((p) => !p.reaped).map((p) => p.pid),
    task: (pid): ProcTask | undefined => {
      const p = find(pid);
      if (!p) return undefined;
      return {
        pid: p.pid,
        tgid: p.pid,
        ppid: p.parent?.pid ?? 0,
        comm: p.comm,
        state: p.zombie ? 'Z' : p.tasks.some((t) => t.state === 'runnable') ? 'R' : 'S',
        exe: p.exePath,
        cwd: p.fs?.cwd.path(),
        exeNode: () => p.exeNode,
        cwdNode: () => p.fs?.cwd,
        cmdline: z(p.argv),
        environ: z(p.envp),
        umask: p.fs?.umask ?? 0o022,
        uid: d.uid,
        gid: d.gid,
        threads: p.tasks.filter((t) => t.state !== 'dead').length,
        fds: [...p.fds].sort(([a], [b]) => a - b).map(([fd, f]) => ({ fd, target: fdTarget(f), ...(f.kind === 'vfs' ? { node: f.file.node } : { reopen: (write: boolean) => reopen(d.arch, f, write) }) })),
        sigBlocked: 0n,
        sigIgnored: 0n,
        sigCaught: 0n,
        sigPending: 0n,
        maps: (): MapEntry[] =>
          p.mm.vmas.map((v) => {
            const id = v.file ? hostId(v.file.path) : undefined;
            const mm = id ? majorMinor(id.dev) : { major: 0, minor: 0 };
            return {
              start: v.start,
              end: v.end,
              read: (v.prot & PROT.READ) !== 0,
              write: (v.prot & PROT.WRITE) !== 0,
              exec: (v.prot & PROT.EXEC) !== 0,
              shared: v.flags.shared,
              offset: v.file ? BigInt(v.pgoff) * BigInt(p.mm.pageSize) : 0n,
              major: mm.major,
              minor: mm.minor,
              ino: id?.ino ?? 0n,
              ...(v.name ? { name: v.name } : {}),
            };
          }),
      };
    },
  };
}
