/**
 * The start-up calls programs make (credentials, groups, CPUs, sysinfo), with Debian's static
 * busybox: ids as qemu-user shows them (the host's, passed through), nproc from the vCPUs the
 * machine has (sched_getaffinity: one bit per vCPU).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, runProgram, skipWithout } from '../helpers.js';

const busybox = join(repoRoot, 'fixtures', 'external', 'x86_64', 'busybox');

describe('identity and machine facts (x86_64 busybox)', () => {
  it.each([['id', '-u'], ['id', '-g'], ['id', '-G'], ['id', '-un']])('%s %s prints what qemu-user prints', (...args) => {
    const q = spawnSync('qemu-x86_64', [busybox, ...args], { encoding: 'utf8' });
    if (skipWithout('qemu-user', q.status !== null && !q.error)) return;
    if (args[1] === '-un') {
      // Names come from /etc/passwd, which the guest does not see unless it is named.
      const r = runProgram('x86_64', busybox, [...args], { allowFiles: ['/etc/passwd'] });
      expect(r.stdout).toBe(q.stdout);
      return;
    }
    expect(runProgram('x86_64', busybox, [...args]).stdout).toBe(q.stdout);
  });

  it('nproc counts the vCPUs (sched_getaffinity)', () => {
    expect(runProgram('x86_64', busybox, ['nproc'], { cpus: 1 }).stdout).toBe('1\n');
    expect(runProgram('x86_64', busybox, ['nproc'], { cpus: 3 }).stdout).toBe('3\n');
  });

  // busybox setsid: a process group leader (pid 1 here) may not call setsid (EPERM), so it forks
  // and the child does; a failure prints "setsid: setsid: Operation not permitted" and exits 1.
  it('setsid: refused to a group leader, granted to its forked child', () => {
    const r = runProgram('x86_64', busybox, ['setsid', 'sh', '-c', 'echo ok']);
    expect(r.stdout).toBe('ok\n');
    expect(r.status).toBe(0);
  });
});
