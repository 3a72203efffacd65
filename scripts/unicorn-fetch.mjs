/**
 * Unicorn 2.1.1 for uniprobe, without touching the system: Debian's `libunicorn2t64` from the
 * trixie suite of the same Debian registry the machine already uses, fetched with apt's ordinary
 * client under a private state directory (a sources list of our own, `apt-get download`,
 * `dpkg -x`) into a cache folder the project owns. The system's apt sources, its package database
 * and its libc are never changed: trixie's libunicorn.so.2 needs only glibc >= 2.34 and libm.
 *
 * Plain JavaScript: it runs before any npm dependency exists (scripts/ensure-deps.mjs), and the
 * engine (src/emu/library.ts) computes the same cache path.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const UNICORN_PACKAGE = 'libunicorn2t64';
export const UNICORN_VERSION = '2.1.1';

/** `$UNIPROBE_CACHE`, else `$XDG_CACHE_HOME/uniprobe`, else `~/.cache/uniprobe`. */
export function cacheDir() {
  if (process.env.UNIPROBE_CACHE) return process.env.UNIPROBE_CACHE;
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'uniprobe');
}

/** Where the engine loads Unicorn from: `$UNIPROBE_UNICORN`, else the cached 2.1.1. */
export function unicornPath() {
  return process.env.UNIPROBE_UNICORN || join(cacheDir(), `unicorn-${UNICORN_VERSION}`, 'libunicorn.so.2');
}

/** The Debian mirror the system's own apt sources name (deb822 or one-line format). */
function debianMirror() {
  const files = [];
  const dir = '/etc/apt/sources.list.d';
  if (existsSync(dir)) for (const f of readdirSync(dir)) files.push(join(dir, f));
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  for (const f of files) {
    let text;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const t = line.trim();
      if (t.startsWith('#')) continue;
      // deb822: "URIs: http://…/debian"; one-line: "deb http://…/debian bookworm main"
      const m = /^URIs:\s*(\S+)/i.exec(t) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/.exec(t);
      if (m && /\/debian\/?$/.test(m[1])) return m[1];
    }
  }
  return undefined;
}

/**
 * Fetch and unpack Unicorn 2.1.1 into the cache. Returns undefined on success, else one line
 * saying why it could not be had.
 */
export function fetchUnicorn(log = () => {}) {
  const hasApt = spawnSync('sh', ['-c', 'command -v apt-get && command -v dpkg'], { stdio: 'ignore' }).status === 0;
  if (!hasApt) return 'apt-get and dpkg are needed to fetch it';
  const mirror = debianMirror();
  if (!mirror) return 'no Debian mirror found in /etc/apt/sources.list(.d)';
  const keyring = '/usr/share/keyrings/debian-archive-keyring.gpg';
  if (!existsSync(keyring)) return `${keyring} is missing (package debian-archive-keyring)`;
  const work = mkdtempSync(join(tmpdir(), 'uniprobe-unicorn-'));
  try {
    for (const d of ['lists/partial', 'parts', 'cache/archives/partial']) mkdirSync(join(work, d), { recursive: true });
    writeFileSync(
      join(work, 'parts', 'trixie.sources'),
      `Types: deb\nURIs: ${mirror}\nSuites: trixie\nComponents: main\nSigned-By: ${keyring}\n`,
    );
    // Every piece of apt state is private: lists, cache, sources; no lock on the system's dpkg.
    const opts = [
      '-o', 'Dir::Etc::SourceList=/dev/null',
      '-o', `Dir::Etc::SourceParts=${join(work, 'parts')}`,
      '-o', `Dir::State::Lists=${join(work, 'lists')}`,
      '-o', `Dir::Cache=${join(work, 'cache')}`,
      '-o', 'Debug::NoLocking=1',
      '-o', 'APT::Sandbox::User=root',
      '-qq',
    ];
    log(`fetching Unicorn ${UNICORN_VERSION} (Debian trixie's ${UNICORN_PACKAGE}) into ${cacheDir()}`);
    const quiet = { stdio: ['ignore', 'ignore', 'pipe'], cwd: work };
    try {
      execFileSync('apt-get', [...opts, 'update'], quiet);
      execFileSync('apt-get', [...opts, 'download', UNICORN_PACKAGE], quiet);
    } catch (e) {
      const err = String(e.stderr ?? e.message).trim().split('\n').pop();
      return `apt-get could not fetch ${UNICORN_PACKAGE} from trixie: ${err}`;
    }
    const deb = readdirSync(work).find((f) => f.startsWith(`${UNICORN_PACKAGE}_`) && f.endsWith('.deb'));
    if (!deb) return `apt-get download left no ${UNICORN_PACKAGE} package`;
    const debVersion = deb.split('_')[1];
    if (!debVersion.startsWith(UNICORN_VERSION)) return `trixie serves ${UNICORN_PACKAGE} ${debVersion}, not ${UNICORN_VERSION}`;
    execFileSync('dpkg', ['-x', join(work, deb), join(work, 'x')], quiet);
    const lib = join(work, 'x', 'usr', 'lib', 'x86_64-linux-gnu', 'libunicorn.so.2');
    if (!existsSync(lib)) return `${deb} holds no libunicorn.so.2 for this machine`;
    const dest = unicornPath();
    const destDir = join(dest, '..');
    mkdirSync(destDir, { recursive: true });
    // Copy under a temporary name, then rename: a concurrent run never loads half a file.
    copyFileSync(lib, `${dest}.part`);
    renameSync(`${dest}.part`, dest);
    writeFileSync(join(destDir, 'SOURCE'), `${deb} from ${mirror} trixie/main, unpacked with dpkg -x\n`);
    return undefined;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * `node scripts/unicorn-fetch.mjs`: fetch Unicorn unless it is already there; the command the
 * engine's error names when it cannot load Unicorn. `--postinstall` (the package's postinstall)
 * only reports a failure: an install must not fail on a machine without apt, where the user
 * points UNIPROBE_UNICORN at a build of their own.
 */
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const postinstall = process.argv.includes('--postinstall');
  const say = (line) => process.stderr.write(`uniprobe: ${line}\n`);
  if (process.env.UNIPROBE_UNICORN) {
    say(`UNIPROBE_UNICORN is set (${process.env.UNIPROBE_UNICORN}): nothing to fetch`);
  } else if (!existsSync(unicornPath())) {
    const why = fetchUnicorn(say);
    if (why) {
      say(`Unicorn ${UNICORN_VERSION} could not be fetched: ${why}; set UNIPROBE_UNICORN=/path/to/libunicorn.so.2 (version ${UNICORN_VERSION}) instead`);
      process.exitCode = postinstall ? 0 : 1;
    } else say(`Unicorn ${UNICORN_VERSION} is in ${unicornPath()}`);
  }
}
