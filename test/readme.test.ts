/**
 * The README's command examples are true: each ```sh block marked `<!-- readme-test -->` (on the
 * line before its fence) runs, command by command, with the real CLI (bin/uniprobe.mjs: dist/ when
 * built, the sources through tsx otherwise), and what it prints must be what the README shows.
 *
 * Block convention: `$ COMMAND` lines (a trailing `\` continues one), each followed by its output
 * exactly — stdout and stderr together, as a terminal shows them (no colour: not a terminal). An
 * output line that is only `…` stands for any number of lines. The commands of a block share one
 * shell, so `echo $?` reports the command before it; `npx uniprobe` is this checkout's CLI. They
 * run in a scratch directory whose `fixtures` and `test` link to the repository's, so relative paths
 * read as in the README and files a command writes (`-o trace.txt`) go nowhere else.
 *
 * Normalised, because they legitimately vary: the scratch and repository paths (printed as
 * relative), and trailing blanks (editors strip them from Markdown). Nothing else: the guest's
 * clock and instruction counts are deterministic, so trace timestamps are compared as they are.
 * Also checked: the command summary names every command the CLI has.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../src/cli/main.js';
import { repoRoot } from './helpers.js';

const MARK = '<!-- readme-test -->';
const ELIDED = '…';
const END = '@@uniprobe-readme-test-end@@';

interface Command {
  text: string;
  expected: string[];
}

interface Example {
  /** 1-based line of the block's first command in README.md. */
  line: number;
  commands: Command[];
}

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8').split('\n');

function examples(): Example[] {
  const out: Example[] = [];
  for (let i = 0; i < readme.length; i++) {
    if (readme[i]!.trim() !== MARK) continue;
    if (readme[i + 1]?.trim() !== '```sh') throw new Error(`README.md:${i + 1}: ${MARK} must come right before a \`\`\`sh block`);
    const ex: Example = { line: i + 3, commands: [] };
    let j = i + 2;
    for (; j < readme.length && readme[j]!.trim() !== '```'; j++) {
      const l = readme[j]!;
      if (l.startsWith('$ ')) {
        let text = l.slice(2);
        while (text.endsWith('\\') && j + 1 < readme.length) text = `${text.slice(0, -1)} ${readme[++j]!.trim()}`;
        ex.commands.push({ text, expected: [] });
      } else if (ex.commands.length === 0) {
        throw new Error(`README.md:${j + 1}: a tested block starts with a $ command`);
      } else {
        ex.commands.at(-1)!.expected.push(l);
      }
    }
    out.push(ex);
    i = j;
  }
  return out;
}

/** Does `got` match `want`, where a `…` line in `want` stands for any number of lines? */
function matches(want: readonly string[], got: readonly string[]): boolean {
  const k = want.indexOf(ELIDED);
  if (k < 0) return want.length === got.length && want.every((l, i) => l === got[i]);
  if (!want.slice(0, k).every((l, i) => l === got[i])) return false;
  const rest = want.slice(k + 1);
  for (let start = k; start <= got.length; start++) if (matches(rest, got.slice(start))) return true;
  return false;
}

const scratch = mkdtempSync(join(tmpdir(), 'uniprobe-readme-'));
symlinkSync(join(repoRoot, 'fixtures'), join(scratch, 'fixtures'));
symlinkSync(join(repoRoot, 'test'), join(scratch, 'test'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function runBlock(ex: Example): string[][] {
  const script = [
    'uniprobe() { node "$UNIPROBE_BIN" "$@"; }',
    ...ex.commands.map((c) => `{ ${c.text.replaceAll('npx uniprobe', 'uniprobe')}\n} 2>&1; __s=$?; echo; echo '${END}'; (exit $__s)`),
  ].join('\n');
  const env: NodeJS.ProcessEnv = { ...process.env, UNIPROBE_BIN: join(repoRoot, 'bin', 'uniprobe.mjs') };
  delete env.FORCE_COLOR;
  const r = spawnSync('sh', ['-c', script], { cwd: scratch, env, encoding: 'utf8', timeout: 240_000 });
  if (r.error) throw r.error;
  const text = r.stdout.replaceAll(`${scratch}/`, '').replaceAll(`${repoRoot}/`, '');
  // Each command's output, then a newline of ours and the marker: drop the newline, and the one
  // that ended the output's last line if it had one.
  return text
    .split(`\n${END}\n`)
    .slice(0, ex.commands.length)
    .map((chunk) => (chunk.endsWith('\n') ? chunk.slice(0, -1) : chunk).split('\n').map((l) => l.trimEnd()))
    .map((lines) => (lines.length === 1 && lines[0] === '' ? [] : lines));
}

const all = examples();

describe('README.md examples', () => {
  it('has tested examples', () => {
    expect(all.length).toBeGreaterThanOrEqual(10);
  });

  it.each(all.map((ex) => [`line ${ex.line}: ${ex.commands[0]!.text.slice(0, 60)}`, ex] as const))('%s', (_name, ex) => {
    const outputs = runBlock(ex);
    expect(outputs).toHaveLength(ex.commands.length);
    for (const [i, c] of ex.commands.entries()) {
      const want = c.expected.map((l) => l.trimEnd());
      const got = outputs[i]!;
      if (!matches(want, got)) expect({ command: c.text, output: got.join('\n') }).toEqual({ command: c.text, output: want.join('\n') });
    }
  }, 240_000);

  it('the command summary has a line for every command of the CLI', () => {
    const start = readme.findIndex((l) => l === '## Command line');
    const fence = readme.indexOf('```', start);
    const summary = readme.slice(fence + 1, readme.indexOf('```', fence + 1));
    const names = buildProgram().commands.map((c) => c.name());
    expect(names.length).toBeGreaterThanOrEqual(6);
    for (const name of [...names, 'scenario']) expect(summary.filter((l) => l.startsWith(`uniprobe ${name} `) || l === `uniprobe ${name}`)).toHaveLength(1);
    expect(summary.every((l) => l.startsWith('uniprobe '))).toBe(true);
  });
});
