/**
 * The VFS against the host's own Linux kernel: the same random sequence of filesystem calls runs
 * on a host scratch directory (through node:fs, i.e. the real system calls) and on the guest's
 * VFS rooted at a read-only twin of that directory. Every call must give the same result or the
 * same errno, the trees must end up alike, and the twin the VFS was built on must be untouched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildView, vfsContext, DirNode, RegNode, SymlinkNode, type View } from '../../src/vfs/index.js';
import { errnoName } from '../../src/kernel/errno.js';

const NAMES = ['a', 'b', 'c'];
const comp = fc.constantFrom(...NAMES, '.', '..');
/**
 * Relative paths of 1–3 components that never climb above the root (the host side has no root
 * to stop at): the first is a name and at most one ".." follows. Link targets are names only,
 * so a link never resolves above its own directory.
 */
const relPath = fc
  .tuple(fc.constantFrom(...NAMES), fc.array(comp, { maxLength: 2 }), fc.boolean())
  .filter(([, rest]) => rest.filter((c) => c === '..').length <= 1)
  .map(([first, rest, slash]) => [first, ...rest].join('/') + (slash ? '/' : ''));
const linkTarget = fc.array(fc.constantFrom(...NAMES), { minLength: 1, maxLength: 2 }).map((cs) => cs.join('/'));

type Op =
  | { op: 'mkdir'; p: string }
  | { op: 'rmdir'; p: string }
  | { op: 'unlink'; p: string }
  | { op: 'rename'; p: string; q: string }
  | { op: 'symlink'; target: string; p: string }
  | { op: 'link'; p: string; q: string }
  | { op: 'readlink'; p: string }
  | { op: 'create'; p: string; excl: boolean; data: string }
  | { op: 'openread'; p: string; dir: boolean; nofollow: boolean }
  | { op: 'truncate'; p: string; len: number }
  | { op: 'stat'; p: string; follow: boolean }
  | { op: 'access'; p: string; mode: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  relPath.map((p) => ({ op: 'mkdir' as const, p })),
  relPath.map((p) => ({ op: 'rmdir' as const, p })),
  relPath.map((p) => ({ op: 'unlink' as const, p })),
  fc.tuple(relPath, relPath).map(([p, q]) => ({ op: 'rename' as const, p, q })),
  fc.tuple(fc.oneof(linkTarget, fc.constant('missing')), relPath).map(([target, p]) => ({ op: 'symlink' as const, target, p })),
  fc.tuple(relPath, relPath).map(([p, q]) => ({ op: 'link' as const, p, q })),
  relPath.map((p) => ({ op: 'readlink' as const, p })),
  fc.tuple(relPath, fc.boolean(), fc.string({ maxLength: 20 })).map(([p, excl, data]) => ({ op: 'create' as const, p, excl, data })),
  fc.tuple(relPath, fc.boolean(), fc.boolean()).map(([p, dir, nofollow]) => ({ op: 'openread' as const, p, dir, nofollow })),
  fc.tuple(relPath, fc.nat(9000)).map(([p, len]) => ({ op: 'truncate' as const, p, len })),
  fc.tuple(relPath, fc.boolean()).map(([p, follow]) => ({ op: 'stat' as const, p, follow })),
  fc.tuple(relPath, fc.constantFrom(0, 1, 2, 4, 6, 7)).map(([p, mode]) => ({ op: 'access' as const, p, mode })),
);

const code = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? String(e);
const errName = (r: number): string => errnoName.get(-r) ?? `errno ${-r}`;

/** Result of one op on the host, as a comparable string. */
function onHost(base: string, o: Op): string {
  const h = (p: string): string => `${base}/${p}`; // not path.join: it would fold "a/.." away
  try {
    switch (o.op) {
      case 'mkdir':
        fs.mkdirSync(h(o.p), 0o755);
        return 'ok';
      case 'rmdir':
        fs.rmdirSync(h(o.p));
        return 'ok';
      case 'unlink':
        fs.unlinkSync(h(o.p));
        return 'ok';
      case 'rename':
        fs.renameSync(h(o.p), h(o.q));
        return 'ok';
      case 'symlink':
        fs.symlinkSync(o.target, h(o.p));
        return 'ok';
      case 'link':
        fs.linkSync(h(o.p), h(o.q));
        return 'ok';
      case 'readlink':
        return `=${fs.readlinkSync(h(o.p), 'utf8')}`;
      case 'create': {
        const c = fs.constants;
        const fd = fs.openSync(h(o.p), c.O_WRONLY | c.O_CREAT | c.O_TRUNC | (o.excl ? c.O_EXCL : 0), 0o644);
        fs.writeSync(fd, o.data);
        fs.closeSync(fd);
        return 'ok';
      }
      case 'openread': {
        const c = fs.constants;
        const fd = fs.openSync(h(o.p), c.O_RDONLY | (o.dir ? c.O_DIRECTORY : 0) | (o.nofollow ? c.O_NOFOLLOW : 0));
        const st = fs.fstatSync(fd);
        let body = '';
        if (st.isFile()) body = fs.readFileSync(fd, 'latin1');
        fs.closeSync(fd);
        return `=${body}`;
      }
      case 'truncate':
        fs.truncateSync(h(o.p), o.len);
        return 'ok';
      case 'stat': {
        const st = o.follow ? fs.statSync(h(o.p)) : fs.lstatSync(h(o.p));
        return `=${st.mode.toString(8)} n${st.isDirectory() ? '' : st.nlink} s${st.isDirectory() ? '' : st.size}`;
      }
      case 'access':
        fs.accessSync(h(o.p), o.mode);
        return 'ok';
    }
  } catch (e) {
    return code(e);
  }
}

function onGuest(v: View, o: Op): string {
  const { vfs, fs: st } = v;
  const cwd = st.cwd;
  const r = (x: number): string => (x < 0 ? errName(x) : 'ok');
  switch (o.op) {
    case 'mkdir':
      return r(vfs.mkdir(st, cwd, o.p, 0o755));
    case 'rmdir':
      return r(vfs.rmdir(cwd, o.p));
    case 'unlink':
      return r(vfs.unlink(cwd, o.p));
    case 'rename':
      return r(vfs.rename(cwd, o.p, cwd, o.q));
    case 'symlink':
      return r(vfs.symlink(o.target, cwd, o.p));
    case 'link':
      return r(vfs.link(cwd, o.p, cwd, o.q));
    case 'readlink': {
      const t = vfs.readlink(cwd, o.p);
      return typeof t === 'number' ? errName(t) : `=${t}`;
    }
    case 'create': {
      const f = vfs.open(st, cwd, o.p, { read: false, write: true, create: true, trunc: true, excl: o.excl }, 0o644);
      if (typeof f === 'number') return errName(f);
      f.write(Buffer.from(o.data));
      return 'ok';
    }
    case 'openread': {
      const f = vfs.open(st, cwd, o.p, { read: true, write: false, directory: o.dir, nofollow: o.nofollow }, 0);
      if (typeof f === 'number') return errName(f);
      if (!(f.node instanceof RegNode)) return '=';
      const b = f.read(1 << 20);
      return `=${Buffer.from(b as Uint8Array).toString('latin1')}`;
    }
    case 'truncate':
      return r(vfs.truncate(cwd, o.p, BigInt(o.len)));
    case 'stat': {
      const s = vfs.stat(cwd, o.p, o.follow);
      if (typeof s === 'number') return errName(s);
      const isDir = (s.mode & 0o170000) === 0o040000;
      return `=${s.mode.toString(8)} n${isDir ? '' : s.nlink} s${isDir ? '' : s.size}`;
    }
    case 'access':
      return r(vfs.access(cwd, o.p, o.mode));
  }
}

/** The tree below a host directory or a guest directory, as sorted lines. */
function hostTree(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = fs.lstatSync(p);
    if (st.isDirectory()) out.push(`${prefix}${name}/`, ...hostTree(p, `${prefix}${name}/`));
    else if (st.isSymbolicLink()) out.push(`${prefix}${name} -> ${fs.readlinkSync(p)}`);
    else out.push(`${prefix}${name} ${fs.readFileSync(p, 'latin1')}`);
  }
  return out;
}

function guestTree(d: DirNode, prefix = ''): string[] {
  const out: string[] = [];
  for (const [name, n] of d.list().sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (prefix === '' && (name === 'dev' || name === 'tmp')) continue;
    if (n instanceof DirNode) out.push(`${prefix}${name}/`, ...guestTree(n, `${prefix}${name}/`));
    else if (n instanceof SymlinkNode) out.push(`${prefix}${name} -> ${n.target}`);
    else if (n instanceof RegNode) out.push(`${prefix}${name} ${Buffer.from(n.read(0n, 1 << 20)).toString('latin1')}`);
  }
  return out;
}

/** A small starting tree: a/ with a file, b a file, c a link to a. */
function seed(dir: string): void {
  fs.mkdirSync(join(dir, 'a'));
  fs.writeFileSync(join(dir, 'a', 'b'), 'hello');
  fs.writeFileSync(join(dir, 'b'), 'bee');
  fs.symlinkSync('a', join(dir, 'c'));
}

let scratch: string;
beforeAll(() => {
  scratch = fs.mkdtempSync(join(tmpdir(), 'uniprobe-vfs-'));
});
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

describe('the VFS agrees with the host kernel', () => {
  it('on random sequences of namespace and file calls (errno by errno), leaving its host tree untouched', () => {
    if (process.getuid?.() !== 0) return; // permission results differ for a non-root caller; CI runs as root
    let run = 0;
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 25 }), (ops) => {
        const lower = join(scratch, `lower${run}`);
        const host = join(scratch, `host${run++}`);
        fs.mkdirSync(lower);
        fs.mkdirSync(host);
        seed(lower);
        seed(host);
        const before = hostTree(lower);
        const view = buildView({ root: lower, rng: { bytes: (n) => new Uint8Array(n) }, ctx: vfsContext({ now: () => 0n }) });
        const trace: string[] = [];
        for (const o of ops) {
          const want = onHost(host, o);
          const got = onGuest(view, o);
          trace.push(`${JSON.stringify(o)} host=${want} guest=${got}`);
          expect(got, trace.join('\n')).toBe(want);
        }
        expect(guestTree(view.vfs.root), trace.join('\n')).toEqual(hostTree(host));
        expect(hostTree(lower)).toEqual(before);
      }),
      { numRuns: 300, seed: 20261206 },
    );
  });
});
