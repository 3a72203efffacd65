/**
 * Linux's own uapi headers for each target, as Debian packages them (linux-libc-dev-<arch>-cross,
 * the same 6.1 headers the cross compilers use): fetched once with `apt-get download` and
 * unpacked with `dpkg -x` into the project's cache, never installed into the system.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain JavaScript module without types
import { cacheDir } from '../../scripts/unicorn-fetch.mjs';

/** The include directory of `pkgArch`'s headers (e.g. 'sparc64' → …/usr/sparc64-linux-gnu/include). */
export function kernelHeaders(pkgArch: 'i386' | 'amd64' | 'powerpc' | 'ppc64' | 'sparc64', triplet: string): string | undefined {
  const root = join(cacheDir() as string, 'kernel-headers', pkgArch);
  const inc = join(root, 'usr', triplet, 'include');
  if (existsSync(join(inc, 'asm', 'stat.h'))) return inc;
  const tmp = mkdtempSync(join(tmpdir(), 'uniprobe-hdr-'));
  try {
    execFileSync('apt-get', ['download', `linux-libc-dev-${pkgArch}-cross`], { cwd: tmp, stdio: 'ignore', timeout: 120_000 });
    const deb = readdirSync(tmp).find((f) => f.endsWith('.deb'));
    if (!deb) return undefined;
    mkdirSync(root, { recursive: true });
    execFileSync('dpkg', ['-x', join(tmp, deb), root], { stdio: 'ignore' });
    return existsSync(join(inc, 'asm', 'stat.h')) ? inc : undefined;
  } catch {
    return undefined;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Keep the lines a C preprocessor would (#ifdef/#ifndef/#if defined…/#else/#endif), with the
 * `#define` lines of live regions kept too; a mutable `defined` set learns the macros defined,
 * so a later header's `#ifndef O_DIRECTORY` sees an earlier one's definition.
 */
export function preprocess(text: string, defined: ReadonlySet<string> | Set<string>): string {
  const out: string[] = [];
  const stack: Array<{ active: boolean; taken: boolean }> = [];
  const live = (): boolean => stack.every((s) => s.active);
  const evalIf = (expr: string): boolean => {
    const js = expr
      .replace(/defined\s*\(?\s*(\w+)\s*\)?/g, (_, m: string) => (defined.has(m) ? ' true ' : ' false '))
      .replace(/\b[A-Za-z_]\w*\b/g, (w) => (w === 'true' || w === 'false' ? w : defined.has(w) ? ' true ' : ' false '));
    return Function(`return (${js});`)() as boolean;
  };
  for (const line of text.replace(/\/\*[\s\S]*?\*\//g, '').split('\n')) {
    const d = /^\s*#\s*(\w+)\s*(.*)$/.exec(line);
    if (!d) {
      if (live()) out.push(line);
      continue;
    }
    const [, kw, rest] = d;
    if (kw === 'ifdef' || kw === 'ifndef' || kw === 'if') {
      const v = kw === 'ifdef' ? defined.has(rest!.trim()) : kw === 'ifndef' ? !defined.has(rest!.trim()) : evalIf(rest!);
      stack.push({ active: v, taken: v });
    } else if (kw === 'else') {
      const top = stack[stack.length - 1]!;
      top.active = !top.taken;
    } else if (kw === 'endif') stack.pop();
    else if (kw === 'define' && live()) {
      out.push(line);
      if (defined instanceof Set) (defined as Set<string>).add(rest!.split(/[\s(]/)[0]!);
    }
  }
  return out.join('\n');
}

export interface CField {
  name: string;
  offset: number;
  size: number;
}

/** Lay out `struct NAME` from preprocessed text with C's rules, given the target's type sizes and alignments. */
export function layout(text: string, name: string, types: Record<string, [size: number, align: number]>): { size: number; fields: CField[] } {
  const m = new RegExp(`struct\\s+${name}\\s*\\{([^}]*)\\}`).exec(text);
  if (!m) throw new Error(`struct ${name} not found`);
  let off = 0;
  let maxAlign = 1;
  const fields: CField[] = [];
  for (const decl of m[1]!.split(';').map((s) => s.trim().replace(/\s+/g, ' ')).filter(Boolean)) {
    const dm = /^(.*?)\s*\b(\w+)\s*(?:\[(\d+)\])?$/.exec(decl);
    if (!dm) throw new Error(`cannot parse "${decl}"`);
    const type = dm[1]!.trim();
    const t = types[type];
    if (!t) throw new Error(`no size for type "${type}" (struct ${name})`);
    const [size, align] = t;
    const count = dm[3] ? Number(dm[3]) : 1;
    off = Math.ceil(off / align) * align;
    fields.push({ name: dm[2]!, offset: off, size: size * count });
    off += size * count;
    maxAlign = Math.max(maxAlign, align);
  }
  return { size: Math.ceil(off / maxAlign) * maxAlign, fields };
}

/**
 * The typedefs of the preprocessed header texts, resolved to base types: arch files first (they
 * define what asm-generic/posix_types.h would otherwise supply), then the generic file.
 */
export function typedefs(texts: string[], base: Record<string, [number, number]>): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = { ...base };
  for (const t of texts) {
    for (const m of t.matchAll(/typedef\s+([\w\s]+?)\s+(\w+)\s*;/g)) {
      const [, from, name] = m;
      const ty = from!.trim().replace(/\s+/g, ' ');
      if (out[name!] || !out[ty]) continue;
      out[name!] = out[ty]!;
    }
  }
  return out;
}

/** `#define NAME number` values (C octal, hex or decimal literals; expressions are skipped). */
export function numericDefines(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^\s*#\s*define\s+(\w+)\s+(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9]\d*)\b/gm)) {
    const v = m[2]!;
    out.set(m[1]!, /^0[xX]/.test(v) ? parseInt(v, 16) : v.startsWith('0') && v.length > 1 ? parseInt(v, 8) : parseInt(v, 10));
  }
  return out;
}
