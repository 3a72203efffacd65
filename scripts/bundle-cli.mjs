#!/usr/bin/env node
/**
 * `node scripts/bundle-cli.mjs OUT`: the command line's fast path. esbuild bundles tsc's output
 * OUT/src/cli/main.js (not the TypeScript: the bundle runs the very JavaScript the package
 * exports) into OUT/cli/, so a start loads a handful of files instead of ~150 ES modules (each
 * one resolved, read, compiled and linked on its own). scripts/build.mjs runs it on
 * its fresh build folder before that folder becomes dist/; bin/uniprobe.mjs loads OUT/cli/main.mjs
 * when it exists and dist/src/cli/main.js otherwise.
 *
 * What stays as it was:
 * - laziness: every dynamic import() (the engine, the tracer, placement, verify, regress,
 *   scenarios) becomes its own chunk, loaded when the command reaches it; Capstone is required
 *   at run time through createRequire (arch/capstone.ts), which esbuild does not follow;
 * - koffi, a native addon, stays an import of the installed package;
 * - import.meta.url: each bundled module sees the URL its tsc output file has (rewritten to
 *   `new URL('<that file, relative to OUT/cli>', import.meta.url)`), so what the code finds
 *   beside itself (src/emu/native/*.c, the regress worker, the package root) is found in OUT/src
 *   exactly as when dist/src runs unbundled.
 *
 * Chunk file names hash their contents, and a rebuild replaces dist/ whole: a process started
 * before a rebuild cannot load a chunk of its own build after it. So a command imports what it
 * needs before its long work (src/cli/main.ts: everything before the guest runs).
 *
 * Also writes OUT/cli/modules.json: `outputs`, which modules each output file holds (test/package
 * reads it to check which modules a command loads), and `dependencyDirs`, the folders of the
 * packages bundled in (commander), relative to the working directory, which scripts/build.mjs adds
 * to what makes dist/ stale: reinstalling a package rewrites its folder. Exits non-zero, with
 * esbuild's message, on failure.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const out = resolve(process.argv[2] ?? '');
const cliDir = join(out, 'cli');
const esbuild = await import('esbuild');

/** `import.meta.url` as a whole token (not `import.meta.urlFoo`). */
const META_URL = /\bimport\.meta\.url\b(?![\w$])/g;

const metaUrlPlugin = {
  name: 'uniprobe-module-url',
  setup(build) {
    build.onLoad({ filter: /\.js$/ }, (args) => {
      if (!args.path.startsWith(out + sep)) return undefined; // dependencies load as they are
      const rel = relative(cliDir, args.path).split(sep).join('/');
      const text = readFileSync(args.path, 'utf8').replace(META_URL, `new URL(${JSON.stringify(rel)}, import.meta.url).href`);
      return { contents: text, loader: 'js' };
    });
  },
};

const result = await esbuild.build({
  entryPoints: [join(out, 'src', 'cli', 'main.js')],
  outdir: cliDir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['koffi'],
  // commander is CommonJS: its require('node:events') etc. need a real require in an ES module.
  banner: { js: "import { createRequire as __uniprobeCreateRequire } from 'node:module';\nconst require = __uniprobeCreateRequire(import.meta.url);" },
  plugins: [metaUrlPlugin],
  metafile: true,
  logLevel: 'warning',
  legalComments: 'none',
  // .mjs: node knows an ES module by its extension, without looking up the package.json scope
  // of every chunk it loads (a few ms of a start).
  outExtension: { '.js': '.mjs' },
});

const outputs = {};
const dependencyDirs = new Set();
for (const [file, o] of Object.entries(result.metafile.outputs)) {
  const mods = [];
  for (const input of Object.keys(o.inputs).map((i) => resolve(i))) {
    if (input.startsWith(out + sep)) {
      mods.push(relative(out, input).split(sep).join('/'));
    } else {
      mods.push(input.slice(input.lastIndexOf(`node_modules${sep}`)).split(sep).join('/'));
      dependencyDirs.add(relative(process.cwd(), dirname(input)).split(sep).join('/'));
    }
  }
  outputs[relative(cliDir, resolve(file)).split(sep).join('/')] = mods.sort();
}
writeFileSync(join(cliDir, 'modules.json'), JSON.stringify({ outputs, dependencyDirs: [...dependencyDirs].sort() }, null, 1) + '\n');
