/**
 * Signals as Linux delivers them, against qemu-user: fixtures/src/signals.c (freestanding) runs a
 * handler that returns (SA_SIGINFO: si_signo, si_code SI_USER / SI_TKILL, si_pid), masks and
 * rt_sigpending, SA_RESETHAND, SA_NODEFER, sa_mask, sigaltstack + SA_ONSTACK, rt_sigsuspend,
 * SIGCHLD with waitpid (CLD_EXITED / CLD_KILLED, and SIG_IGN's auto-reap -> ECHILD), SIGPIPE
 * to a handler (EPIPE), a SIGSEGV handler that fixes the fault up (SEGV_ACCERR, si_addr), EINTR
 * from a sleeping pipe read and SA_RESTART's restart, default actions in wait status words
 * (no core bit: RLIMIT_CORE 0, as recorded), and the calls' errors; then it kills itself with
 * SIGTERM. Its output and death must be qemu-user's (fixtures/signals.json), on every seed tried.
 * ppc32, ppc64 and sparc64 join once their frames exist (arch/<family>/signal*.ts).
 */
import { describe, expect, it } from 'vitest';
import { fixturePath, runProgram, supported } from '../helpers.js';
import signals from '../../fixtures/signals.json' with { type: 'json' };
import type { Target } from '../../arch/types.js';

const TARGETS = (['x86_64', 'i386'] as const).filter((t) => supported.has(t));
const SIGTERM = 15;
const EINTR = 4;

const recorded = (t: Target): { stdout: string; signal: number } => {
  const e = (signals as Array<{ target: string; name: string; stdout: string; signal: number }>).find((s) => s.target === t && s.name === 'signals-nolibc');
  if (!e) throw new Error(`no qemu-user recording of ${t}/signals-nolibc in fixtures/signals.json`);
  return e;
};

describe.each(TARGETS)('signals on %s', (target) => {
  it('signals-nolibc prints what it prints under qemu-user and dies of SIGTERM (143)', () => {
    const rec = recorded(target);
    const r = runProgram(target, fixturePath(target, 'signals-nolibc'), [], { maxInsns: 2e8 });
    expect(r.stdout).toBe(rec.stdout);
    expect(rec.signal).toBe(SIGTERM);
    expect(r.signal).toBe(SIGTERM);
    expect(r.status).toBe(128 + SIGTERM);
    // The one child killed by its own NULL store is reported, with the signal Linux sends; a
    // handled fault (the fixed-up SIGSEGV) and kill(2)'s deaths are not.
    expect(r.reports).toHaveLength(1);
    expect(r.reports[0]).toMatch(/SIGSEGV \(write to unmapped memory\) at address 0x0/);
  });

  it('a handled signal interrupts a sleeping pipe read with EINTR, and SA_RESTART restarts it', () => {
    const r = runProgram(target, fixturePath(target, 'signals-nolibc'), [], { maxInsns: 2e8 });
    expect(r.stdout).toContain(`pipe read without SA_RESTART: read=-${EINTR} hits=1 byte=-\n`);
    expect(r.stdout).toContain('pipe read with SA_RESTART: read=1 hits=1 byte=y\n');
  });

  it.each([
    { seed: 2, cpus: 2, quantum: 500 },
    { seed: 3, cpus: 1, quantum: 97 },
    { seed: 4, cpus: 3, quantum: 2000 },
  ])('the same output on seed $seed, $cpus vCPUs, quantum $quantum', (opts) => {
    const r = runProgram(target, fixturePath(target, 'signals-nolibc'), [], { maxInsns: 2e8, ...opts });
    expect(r.stdout).toBe(recorded(target).stdout);
    expect(r.status).toBe(128 + SIGTERM);
  });
});
