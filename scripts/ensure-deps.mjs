#!/usr/bin/env node
/**
 * Makes `npm start` / `npm test` / `npm run bench` work on a fresh clone of a fresh machine:
 * installs the npm dependencies when they are missing, builds dist/ when it is missing or stale
 * (scripts/build.mjs), and fetches Unicorn 2.1.1 (Debian trixie's libunicorn2t64) into the
 * project's cache when it is missing (scripts/unicorn-fetch.mjs).
 * Otherwise it stops with one line saying what to install.
 * Plain JavaScript on purpose: it must run before any dependency exists.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDist, distState } from './build.mjs';
import { fetchUnicorn, unicornPath, UNICORN_VERSION } from './unicorn-fetch.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');
const say = (line) => {
  if (!quiet) process.stderr.write(`uniprobe: ${line}\n`);
};
const fail = (line) => {
  process.stderr.write(`uniprobe: ${line}\n`);
  process.exit(1);
};

// 1. npm dependencies
const needed = ['koffi', 'tsx', 'commander', 'vitest', 'typescript', '@alexaltea/capstone-js'];
const missing = needed.filter((p) => !existsSync(join(root, 'node_modules', p, 'package.json')));
if (missing.length > 0) {
  say(`installing npm dependencies (missing: ${missing.join(', ')})`);
  const r = spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) fail(`npm install failed; run it by hand in ${root} to see why`);
}

// 2. dist/, the compiled JavaScript bin/uniprobe.mjs runs: rebuilt when missing or older than a
// source (an mtime walk, a few ms), so npm start and the CLI tests never run a stale build.
const state = distState(root);
if (state !== 'fresh') {
  say(`building dist/ (${state})`);
  // Not fatal: bin/uniprobe.mjs runs the sources through tsx while dist/ is missing or stale.
  if (buildDist(root) !== 0) process.stderr.write('uniprobe: the build (npm run build) failed, see above; the CLI runs the sources through tsx meanwhile\n');
}

// 3. Unicorn 2.1.1, checked by loading it and asking uc_version, as the engine does.
function unicornVersion() {
  const probe =
    "const k=require('koffi');const l=k.load(process.argv[1]);" +
    "const v=l.func('unsigned int uc_version(void *a, void *b)')(null,null);" +
    "process.stdout.write(((v>>>24)&255)+'.'+((v>>>16)&255)+'.'+((v>>>8)&255))";
  const r = spawnSync(process.execPath, ['-e', probe, unicornPath()], { cwd: root, encoding: 'utf8' });
  return r.status === 0 ? r.stdout : undefined;
}
const override = process.env.UNIPROBE_UNICORN;
let version = existsSync(unicornPath()) ? unicornVersion() : undefined;
if (override) {
  // A user's own build: any 2.1 or later (the engine relies on 2.1's behaviour, see docs/unicorn.md).
  const [maj, min] = (version ?? '0.0').split('.').map(Number);
  if (!version) fail(`UNIPROBE_UNICORN=${override} does not load as a Unicorn library`);
  if (maj !== 2 || min < 1) fail(`UNIPROBE_UNICORN=${override} is Unicorn ${version}; uniprobe needs 2.1 or later`);
} else if (version !== UNICORN_VERSION) {
  const why = fetchUnicorn(say);
  if (why) fail(`Unicorn ${UNICORN_VERSION} is missing and ${why}; set UNIPROBE_UNICORN=/path/to/libunicorn.so.2 (version ${UNICORN_VERSION}) instead`);
  version = unicornVersion();
  if (version !== UNICORN_VERSION) fail(`the fetched ${unicornPath()} reports version ${version ?? '(does not load)'}, not ${UNICORN_VERSION}`);
}

// 3. With --test-tools (npm test): the outside references some tests compare against —
// gdb-multiarch and qemu-user (uprobe hits against gdb's breakpoints) and Debian's chromium (the
// HTML report in a real browser). Installed with apt-get when missing and we are root; otherwise
// one line says what to install (the tests skip outside CI and fail under CI).
if (process.argv.includes('--test-tools')) {
  const TOOLS = [
    ['gdb-multiarch', 'gdb-multiarch'],
    ['qemu-x86_64', 'qemu-user'],
    ['chromium', 'chromium'],
  ];
  const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
  const wanted = TOOLS.filter(([cmd]) => !has(cmd)).map(([, pkg]) => pkg);
  if (wanted.length > 0) {
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    if (!isRoot || !has('apt-get')) {
      const line = `test tools missing: apt-get install ${wanted.join(' ')} (as root)`;
      if (process.env.CI) fail(line);
      say(`${line}; the tests that need them are skipped`);
    } else {
      say(`installing test tools with apt-get: ${wanted.join(' ')}`);
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      const apt = (args) => spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env }).status === 0;
      if (!apt(['install', '-y', '-qq', ...wanted]) && !(apt(['update', '-qq']) && apt(['install', '-y', '-qq', ...wanted]))) {
        fail(`apt-get install ${wanted.join(' ')} failed; install them by hand`);
      }
    }
  }
}
