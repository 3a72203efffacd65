/**
 * /dev/fd, /dev/stdin, /dev/stdout and /dev/stderr (the links every Linux system has) and opening
 * /proc/self/fd/N of a pipe, which opens that pipe again (fifo_open): bash's process substitution
 * `<(cmd)` and `>(cmd)` read and write /dev/fd/63 that way. The reference is Linux itself: the same
 * static bash and busybox run natively on an x86-64 host.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, runProgram, supported } from '../helpers.js';

const bash = join(repoRoot, 'fixtures', 'external', 'x86_64', 'bash');
const busybox = join(repoRoot, 'fixtures', 'external', 'x86_64', 'busybox');
const SCRIPT = [
  'cat() { "$0" cat "$@"; }',
  'cat <(echo from procsub)',
  'while read l; do echo "got $l"; done < <(printf "p\\nq\\n")',
  'echo to-stdout > /dev/stdout; echo appended >> /dev/stdout',
  'echo p | (read a < /dev/stdin; echo "[$a]")',
  'echo q | "$0" cat /dev/fd/0',
  'for l in /dev/fd /dev/stdin /dev/stdout /dev/stderr; do "$0" readlink $l; done',
  'exec 5< <(echo via fd 5); read -r v < /dev/fd/5; echo "$v"',
  'echo "rc=$?"',
].join('\n');

describe.runIf(supported.has('x86_64') && process.arch === 'x64')('/dev/fd and reopening pipes through /proc/self/fd', () => {
  it('bash process substitution, /dev/stdin and /dev/stdout print what they print on Linux', () => {
    // Through `| cat`: node's own stdio would be a socket (libuv's socketpair), which Linux does
    // not reopen through /proc/self/fd (ENXIO); the guest's stdout is a pipe, as it is here.
    const linux = execFileSync('/bin/sh', ['-c', '"$0" -c "$1" "$2" | cat', bash, SCRIPT, busybox], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin', HOME: '/nonexistent', LC_ALL: 'C' } });
    const r = runProgram('x86_64', bash, ['-c', SCRIPT, busybox]);
    expect(r.reports).toEqual([]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(linux);
    expect(linux).toContain('from procsub\ngot p\ngot q\nto-stdout\nappended\n[p]\nq\n/proc/self/fd\n');
  });
});
