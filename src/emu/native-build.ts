/**
 * Building uniprobe's small C helpers (src/emu/native/*.c) with the machine's C compiler, once,
 * into `<cache>/native/<source hash>/`, and loading them. Shared by the instruction counter and
 * the user/kernel boundary. Without a compiler the caller gets the reason instead of a library.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unicornCacheDir } from './library.js';

/** The path of src/emu/native/<name>.c next to this module (the same in dist/). */
export function nativeSource(name: string): string {
  return join(dirname(fileURLToPath(import.meta.url)), 'native', `${name}.c`);
}

/** The built library's path, or why it cannot be had. */
export function buildNative(source: string, libName: string): { lib: string } | { whyNot: string } {
  let text: Buffer;
  try {
    text = readFileSync(source);
  } catch {
    return { whyNot: `${source} is missing` };
  }
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
  const dir = join(unicornCacheDir(), 'native', hash);
  const lib = join(dir, libName);
  if (existsSync(lib)) return { lib };
  const cc = process.env.CC || 'cc';
  const tmp = `${lib}.${process.pid}.tmp`;
  try {
    mkdirSync(dir, { recursive: true });
    const r = spawnSync(cc, ['-O2', '-shared', '-fPIC', '-o', tmp, source], { encoding: 'utf8' });
    if (r.status !== 0) return { whyNot: `${cc} could not build ${source}: ${(r.error?.message ?? r.stderr ?? '').trim().split('\n')[0]}` };
    renameSync(tmp, lib); // atomic: a concurrent process never loads half a file
    return { lib };
  } catch (e) {
    return { whyNot: `cannot build ${source}: ${(e as Error).message}` };
  } finally {
    rmSync(tmp, { force: true });
  }
}
