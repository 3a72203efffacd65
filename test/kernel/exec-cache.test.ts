/**
 * execve keeps the programs it parsed (src/kernel/sys/exec.ts, `parsed`): a program file whose
 * contents change, or a path that names another file, must run what is there now. Reference: the
 * same programs under qemu-user.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import { repoRoot, supported } from '../helpers.js';

const busybox = join(repoRoot, 'fixtures', 'external', 'x86_64', 'busybox');
const A = join(repoRoot, 'fixtures', 'x86_64', 'args');
const B = join(repoRoot, 'fixtures', 'x86_64', 'fib-nolibc');
const dir = mkdtempSync(join(tmpdir(), 'uniprobe-exec-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What qemu-user prints for `prog one`, then `rc=<status>` as the script below echoes it. */
function reference(prog: string): string {
  execFileSync('sh', ['-c', 'command -v qemu-x86_64'], { stdio: 'ignore' }); // throws when missing: no skip
  const r = spawnSync('qemu-x86_64', [prog, 'one'], { encoding: 'utf8' });
  return `${r.stdout}rc=${r.status}\n`;
}

describe.runIf(supported.has('x86_64'))('execve after the program file changed', () => {
  it('runs the new contents: rewritten in place (cp, cat >), replaced by rename', () => {
    const p = join(dir, 'prog');
    const script = [
      `cp ${A} ${p}; ${p} one; echo rc=$?`,
      `cat ${B} > ${p}; ${p} one; echo rc=$?`,
      `cp ${A} ${p}; ${p} one; echo rc=$?`,
      `cp ${B} ${p}.new; mv ${p}.new ${p}; ${p} one; echo rc=$?`,
    ].join('\n');
    const out: Buffer[] = [];
    const m = new Machine({ target: 'x86_64', allowFiles: [dir, A, B], stdout: (b) => out.push(Buffer.from(b)), stderr: (b) => out.push(Buffer.from(b)) });
    try {
      m.spawn(busybox, [busybox, 'sh', '-c', script]);
      expect(m.run().status).toBe(0);
    } finally {
      m.close();
    }
    const a = reference(A);
    const b = reference(B);
    expect(Buffer.concat(out).toString('utf8')).toBe(a + b + a + b);
  });
});
