#!/usr/bin/env node
/**
 * Makes `npm start` / `npm test` / `npm run bench` work on a fresh clone of a fresh machine:
 * installs the npm dependencies when they are missing, and Debian's libunicorn2 through apt-get
 * when it is missing and we are root. Otherwise it stops with one line saying what to install.
 * Plain JavaScript on purpose: it must run before any dependency exists.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

// 2. libunicorn.so.2, checked by loading it the way the engine does.
function unicornLoads() {
  const probe = "const k=require('koffi'); k.load('libunicorn.so.2');";
  return spawnSync(process.execPath, ['-e', probe], { cwd: root, stdio: 'ignore' }).status === 0;
}
if (!unicornLoads()) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const hasApt = spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
  if (!isRoot || !hasApt) {
    fail("libunicorn.so.2 (Unicorn 2) is missing: install Debian's package libunicorn2 (sudo apt-get install libunicorn2)");
  }
  say('installing libunicorn2 with apt-get');
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env });
    execFileSync('apt-get', ['install', '-y', '-qq', 'libunicorn2'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  } catch {
    fail('apt-get install libunicorn2 failed; install Debian\'s libunicorn2 by hand');
  }
  if (!unicornLoads()) fail('libunicorn2 is installed but libunicorn.so.2 still does not load');
}
