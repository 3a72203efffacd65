/**
 * Where the engine's Unicorn comes from: Unicorn 2.1.1 (Debian trixie's libunicorn2t64), fetched
 * by the project's install step (scripts/unicorn-fetch.mjs) into a cache the project owns, or a
 * library the user names with UNIPROBE_UNICORN. Never the system's libunicorn.so.2: bookworm's is
 * 2.0.1, ~10x slower on guest stores and with quirks the engine no longer works around.
 * The cache path is computed exactly as scripts/unicorn-fetch.mjs computes it.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../package-root.js';

export const UNICORN_VERSION = '2.1.1';

export function unicornCacheDir(): string {
  if (process.env.UNIPROBE_CACHE) return process.env.UNIPROBE_CACHE;
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'uniprobe');
}

/** `$UNIPROBE_UNICORN`, else the cached 2.1.1. */
export function unicornLibraryPath(): string {
  return process.env.UNIPROBE_UNICORN || join(unicornCacheDir(), `unicorn-${UNICORN_VERSION}`, 'libunicorn.so.2');
}

/** uc_version's packed word (major << 24 | minor << 16 | patch << 8) as "major.minor.patch". */
export function formatUnicornVersion(v: number): string {
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}`;
}

/** The engine needs 2.1 or later (2.0's quirks are no longer worked around). */
export function unicornVersionSupported(v: number): boolean {
  return ((v >>> 24) & 255) === 2 && ((v >>> 16) & 255) >= 1;
}

/**
 * The exact command, with this package's own path: an installed package's postinstall may not
 * have run (npm 12 blocks dependencies' install scripts unless allowed) or may have failed.
 */
export const UNICORN_INSTALL_HINT =
  `run \`node ${join(PACKAGE_ROOT, 'scripts', 'unicorn-fetch.mjs')}\` to fetch Unicorn 2.1.1, or set UNIPROBE_UNICORN=/path/to/libunicorn.so.2`;
