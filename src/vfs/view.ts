/**
 * What the guest sees of the host, built once per machine:
 * - the view (default): every host path the user named — the program, its arguments that exist,
 *   `--mount`-style additions — at its absolute path, a directory with its whole subtree; their
 *   ancestors appear as directories that show the host's metadata but only the entries leading
 *   to named paths. The cwd is such an ancestor chain too (its other entries stay hidden).
 * - a root tree (`root`, like qemu-user -L or a chroot): the whole host directory is `/`.
 * Either way `/dev` holds the synthetic devices, `/proc` the machine's processes, and `/tmp` is an empty in-memory directory
 * (mode 1777; in the view, the host's /tmp shadowed when a named path lies under it), and every
 * change the guest makes lives in memory (src/vfs/node.ts).
 */
import { lstatSync, realpathSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { UniprobeError } from '../errors.js';
import { makeDevDir, type DeviceRandom } from './devices.js';
import { DirNode, hostNode, type VfsContext } from './node.js';
import { FsState, Vfs } from './vfs.js';
import { makeProcDir, type ProcSource } from './proc.js';

export interface ViewOptions {
  /** Host paths the guest may see (made absolute; symbolic links also show their real path). */
  paths?: string[];
  /** A host directory that becomes the guest's root instead of the view. */
  root?: string;
  /** The guest's initial cwd, a host path (default: the host process's cwd; `/` under `root`). */
  cwd?: string;
  rng: DeviceRandom;
  ctx: VfsContext;
  /** The machine's processes, for /proc (absent: no /proc). */
  proc?: ProcSource;
}

export interface View {
  vfs: Vfs;
  /** A whole host directory is the root (`root`); no paths are added to it later. */
  rootTree: boolean;
  /** The first process's filesystem state (cwd, umask 022). */
  fs: FsState;
}

export function buildView(o: ViewOptions): View {
  const ctx = o.ctx;
  let root: DirNode;
  let cwd: DirNode;
  if (o.root !== undefined) {
    const top = hostNode(ctx, undefined, '', realpathSync(o.root));
    if (!(top instanceof DirNode)) throw new UniprobeError('USAGE', `--root ${o.root}: not a directory`);
    root = top;
    cwd = root;
  } else {
    root = DirNode.shadow(ctx, undefined, '', lstatSync('/', { bigint: true }));
    const named = new Set<string>();
    for (const p of o.paths ?? []) {
      named.add(resolvePath(p));
      try {
        named.add(realpathSync(p));
      } catch {
        // a named path that does not exist stays absent (the guest gets ENOENT)
      }
    }
    // Shorter first, so a named directory is grafted before anything named inside it.
    for (const p of [...named].sort((a, b) => a.length - b.length)) graftHostPath(ctx, root, p);
    const hostCwd = o.cwd ?? process.cwd();
    cwd = shadowChain(ctx, root, hostCwd) ?? root;
  }
  root.graft('dev', makeDevDir(ctx, root, o.rng));
  if (o.proc) root.graft('proc', makeProcDir(ctx, root, o.proc));
  // A named path under /tmp keeps the host's /tmp (shadowed, so only named entries show); it is
  // writable in memory all the same.
  if (!(root.lookup('tmp') instanceof DirNode) || o.root !== undefined) root.graft('tmp', DirNode.create(ctx, root, 'tmp', 0o1777));
  if (o.root !== undefined && o.cwd !== undefined) {
    // Under a root tree the cwd is a guest path.
    const vfs = new Vfs(root, ctx);
    const n = vfs.lookup(root, o.cwd);
    if (n instanceof DirNode) cwd = n;
  }
  return { vfs: new Vfs(root, ctx), fs: new FsState(cwd), rootTree: o.root !== undefined };
}

/**
 * Show one more host path in a view (a program spawned later, its arguments): as given (made
 * absolute) and, when that is a link, at its real path too. Nothing under a root tree.
 */
export function showHostPath(view: View, p: string): void {
  if (view.rootTree) return;
  const ctx = view.vfs.ctx;
  graftHostPath(ctx, view.vfs.root, resolvePath(p));
  try {
    graftHostPath(ctx, view.vfs.root, realpathSync(p));
  } catch {
    // absent on the host: nothing to show
  }
}

/** Components of an absolute host path. */
const parts = (p: string): string[] => p.split('/').filter((c) => c.length > 0);

/**
 * The directory for `hostDir` in the view, creating shadow directories for missing ancestors;
 * undefined when a component exists on the host as something else. A full host directory on the
 * way already shows everything below it.
 */
function shadowChain(ctx: VfsContext, root: DirNode, hostDir: string): DirNode | undefined {
  let d = root;
  let at = '';
  const cs = parts(hostDir);
  for (let i = 0; i < cs.length; i++) {
    const c = cs[i]!;
    at += `/${c}`;
    const existing = d.lookup(c);
    if (existing instanceof DirNode) {
      d = existing;
      continue;
    }
    let st;
    try {
      st = lstatSync(at, { bigint: true });
    } catch {
      return undefined;
    }
    if (st.isSymbolicLink()) {
      // A link on the way (a named path reached through a symlinked directory): the guest sees
      // the link where it is and follows it to its target, which is shown as well.
      if (!existing) {
        const link = hostNode(ctx, d, c, at);
        if (link) d.graft(c, link);
      }
      let real: string;
      try {
        real = realpathSync(at);
      } catch {
        return undefined;
      }
      return shadowChain(ctx, root, [real, ...cs.slice(i + 1)].join('/'));
    }
    if (existing || !st.isDirectory()) return undefined;
    const s = DirNode.shadow(ctx, d, c, st);
    d.graft(c, s);
    d = s;
  }
  return d;
}

function graftHostPath(ctx: VfsContext, root: DirNode, p: string): void {
  const cs = parts(p);
  if (cs.length === 0) return;
  const name = cs[cs.length - 1]!;
  const dirPath = `/${cs.slice(0, -1).join('/')}`;
  const parent = shadowChain(ctx, root, dirPath);
  if (!parent) return;
  const have = parent.lookup(name);
  if (have instanceof DirNode) {
    // A shadow made for something named inside it: now the whole directory is named.
    have.expose(p);
    return;
  }
  if (have) return;
  const node = hostNode(ctx, parent, name, p);
  if (node) parent.graft(name, node);
}
