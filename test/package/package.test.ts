/**
 * The published package: what `npm pack` puts in the tarball (checked against the real
 * package.json and `npm pack --dry-run --json`), and the command starting from the compiled dist/
 * without tsx and without the modules its command does not need.
 *
 * UNIPROBE_FULL=1 adds the consumer check: the tarball installed into a new project, where
 * `import { Machine } from 'uniprobe'` runs a bundled program under plain node, a main.ts
 * type-checks with TypeScript 5 (NodeNext), and `npx uniprobe --help` works. It needs the npm
 * registry (typescript@5, @types/node) and takes about 25 s, so it is not part of every run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TARGETS } from '../../arch/types.js';
import { repoRoot } from '../helpers.js';

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
const bin = join(repoRoot, 'bin', 'uniprobe.mjs');

/** dist/ as the tarball would carry it: rebuilt first when missing or stale (scripts/build.mjs). */
function ensureFreshDist(): void {
  const script = "import { buildDist, distState } from './scripts/build.mjs'; if (distState() !== 'fresh') process.exit(buildDist(undefined, 'pipe'));";
  execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: repoRoot, stdio: 'pipe' });
}

/** The modules a CLI start loaded: NODE_DEBUG's ESM (import) and CJS (require) traces. */
function cliLoads(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, NODE_DEBUG: 'esm,module' },
    maxBuffer: 64 << 20,
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, trace: r.stderr, modules: bundledModules(r.stderr) };
}

/**
 * The dist/ modules a start loaded from the CLI's bundle (dist/cli, scripts/bundle-cli.mjs): the
 * bundle files in the trace, mapped to the modules each holds by the build's modules.json.
 */
function bundledModules(trace: string): Set<string> {
  const { outputs } = JSON.parse(readFileSync(join(repoRoot, 'dist', 'cli', 'modules.json'), 'utf8')) as { outputs: Record<string, string[]> };
  const loaded = new Set<string>();
  for (const m of trace.matchAll(/\/dist\/cli\/([\w.-]+\.mjs)\b/g)) for (const mod of outputs[m[1]!] ?? []) loaded.add(mod);
  return loaded;
}

interface PackFile {
  path: string;
  size: number;
}

describe('npm pack', () => {
  let files: Set<string>;
  let size: number;
  beforeAll(() => {
    ensureFreshDist();
    // --ignore-scripts: prepare would only rebuild the dist/ just checked fresh.
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoRoot, encoding: 'utf8' });
    const [info] = JSON.parse(out) as Array<{ size: number; files: PackFile[] }>;
    files = new Set(info!.files.map((f) => f.path));
    size = info!.size;
  });

  it('has the entry points package.json names', () => {
    expect(pkg.exports['.']).toEqual({ types: './dist/src/index.d.ts', default: './dist/src/index.js' });
    const entries = [pkg.main, pkg.types, pkg.exports['.'].types, pkg.exports['.'].default, pkg.bin.uniprobe, 'dist/src/cli/main.js', 'dist/cli/main.mjs'];
    for (const e of entries) expect(files, e).toContain(e.replace(/^\.\//, ''));
    expect(files).toContain('scripts/unicorn-fetch.mjs'); // postinstall, and the engine's hint
    // What the command and the build script import statically (scripts/dist-state.mjs).
    for (const script of [pkg.bin.uniprobe, 'scripts/build.mjs']) {
      for (const m of readFileSync(join(repoRoot, script), 'utf8').matchAll(/^import .* from '(\.{1,2}\/[^']+)';$/gm)) {
        expect(files, `${script} imports ${m[1]}`).toContain(join(script, '..', m[1]!));
      }
    }
    expect(files).toContain('dist/src/emu/native/insn-counter.c'); // compiled on first use
    expect(pkg.scripts.postinstall).toContain('scripts/unicorn-fetch.mjs');
  });

  it('has the guest kernels and the demo program for every target, and no other fixture', () => {
    const fixtures = [...files].filter((f) => f.startsWith('fixtures/')).sort();
    // The demo's program and kernels, and what `uniprobe scenario uprobe-mmap` runs (x86-64 only).
    const want = [...TARGETS.flatMap((t) => [`fixtures/${t}/fib-nolibc`, `fixtures/kernel/${t}/vmlinux`]), 'fixtures/x86_64/mmapexec-nolibc', 'fixtures/x86_64/blob.bin'].sort();
    expect(fixtures).toEqual(want);
  });

  it('has no tests, benchmarks or sources, and is at most 10 MB', () => {
    const stray = [...files].filter((f) => /^(test|bench|src|arch|examples)\//.test(f));
    expect(stray).toEqual([]);
    expect(size).toBeLessThanOrEqual(10 * 1024 * 1024);
  });

  it('runs on its dependencies alone: dist/ imports only node builtins and `dependencies`', () => {
    const allowed = new Set([...builtinModules, ...Object.keys(pkg.dependencies)]);
    const used = new Set<string>();
    for (const f of files) {
      if (!/\.m?js$/.test(f) || !f.startsWith('dist/')) continue;
      const text = readFileSync(join(repoRoot, f), 'utf8');
      // A specifier has no white space: this keeps a string that merely ends in "from" ('fetch
      // from', …) from being read as an import.
      for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\(\s*)['"]([^'"./\s][^'"\s]*)['"]/g)) {
        const spec = m[1]!.replace(/^node:/, '');
        used.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
    expect(used).toContain('koffi'); // the scan sees the imports at all
    expect([...used].filter((p) => !allowed.has(p))).toEqual([]);
  });
});

describe('bin/uniprobe.mjs', () => {
  beforeAll(ensureFreshDist);

  it('--help starts from the bundle in dist/cli without tsx and without the engine', () => {
    const r = cliLoads('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: uniprobe /);
    expect(r.trace).toContain('/dist/cli/main.mjs');
    expect(r.modules).toContain('src/cli/main.js');
    // Neither the unbundled modules nor tsx.
    expect(r.trace).not.toContain('/dist/src/');
    expect(r.trace).not.toContain('/node_modules/tsx/');
    expect(r.modules).not.toContain('src/kernel/machine.js');
  });

  it('run loads neither the placement map, the verifier, the regression runner, Capstone nor tsx', () => {
    const r = cliLoads('run', 'fixtures/x86_64/fib-nolibc');
    expect(r.status).toBe(55); // the guest's exit status: it ran
    expect(r.modules).toContain('src/kernel/machine.js');
    expect(r.trace).not.toContain('/dist/src/');
    for (const mod of ['src/placement/', 'src/verify/', 'src/regress/', 'arch/decoders-ready.js']) {
      expect([...r.modules].filter((m) => m.startsWith(mod)), mod).toEqual([]);
    }
    for (const pkgDir of ['/node_modules/tsx/', 'playwright-core', 'keystone-js', 'capstone-js']) expect(r.trace, pkgDir).not.toContain(pkgDir);
  });

  it("a uprobe's run loads the decoders and Capstone, on demand", () => {
    const r = cliLoads('run', 'fixtures/x86_64/fib-nolibc', '-e', 'p fixtures/x86_64/fib-nolibc:fib');
    expect(r.status).toBe(55);
    expect(r.modules).toContain('arch/decoders-ready.js');
    expect(r.trace).toContain('capstone-js');
  });
});

describe.runIf(process.env.UNIPROBE_FULL === '1')('the tarball in a consumer project (UNIPROBE_FULL=1)', () => {
  let dir = '';
  const sh = (cmd: string, args: string[]) => spawnSync(cmd, args, { cwd: dir, encoding: 'utf8', timeout: 300_000 });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'uniprobe-consumer-'));
    ensureFreshDist();
    const tgz = execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: repoRoot, encoding: 'utf8' }).trim().split('\n').pop()!;
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    const r = sh('npm', ['install', '--no-audit', '--no-fund', join(dir, tgz), 'typescript@^5', '@types/node@20']);
    expect(r.status, r.stderr).toBe(0);
  }, 300_000);

  it("imports Machine from 'uniprobe' and runs a bundled program under plain node", () => {
    writeFileSync(
      join(dir, 'main.mjs'),
      `import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Machine } from 'uniprobe';
const elf = join(dirname(createRequire(import.meta.url).resolve('uniprobe/package.json')), 'fixtures', 'x86_64', 'fib-nolibc');
const m = new Machine({ target: 'x86_64', stdout: (b) => process.stdout.write(b) });
m.spawn(elf, [elf]);
console.log('status', m.run().status);
m.close();
`,
    );
    const r = sh(process.execPath, ['main.mjs']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('fib(15) = 610\nstatus 55\n');
  });

  it('type-checks against the shipped declarations (TypeScript 5, NodeNext)', () => {
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'] }, files: ['main.ts'] }),
    );
    // The expect-error lines fail the check if the declarations were missing or `any`.
    writeFileSync(
      join(dir, 'main.ts'),
      `import { Machine, Kprobe, type RunResult } from 'uniprobe';
const m = new Machine({ target: 'ppc64' });
const r: RunResult = m.run();
const status: number = r.status;
// @ts-expect-error: not a target
new Machine({ target: 'arm' });
// @ts-expect-error: status is a number
const s: string = r.status;
console.log(status, s, new Kprobe({ symbolName: 'ksys_write' }));
`,
    );
    const r = sh('npx', ['tsc', '--noEmit']);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('npx uniprobe --help', () => {
    const r = sh('npx', ['uniprobe', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: uniprobe /);
  });

  it('npx uniprobe run: the bundled command finds the kernel image and the C helpers of the installed package', () => {
    const r = sh('npx', ['uniprobe', 'run', 'node_modules/uniprobe/fixtures/x86_64/fib-nolibc']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('fib(15) = 610\n');
    expect(r.status).toBe(55);
  });
});
