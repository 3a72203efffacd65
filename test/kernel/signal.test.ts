/**
 * Signals as Linux delivers them, against qemu-user: fixtures/src/signals.c (freestanding) runs a
 * handler that returns (SA_SIGINFO: si_signo, si_code SI_USER / SI_TKILL, si_pid), masks and
 * rt_sigpending, SA_RESETHAND, SA_NODEFER, sa_mask, sigaltstack + SA_ONSTACK, rt_sigsuspend,
 * SIGCHLD with waitpid (CLD_EXITED / CLD_KILLED, and SIG_IGN's auto-reap -> ECHILD), SIGPIPE
 * to a handler (EPIPE), a SIGSEGV handler that fixes the fault up (SEGV_ACCERR, si_addr), EINTR
 * from a sleeping pipe read and SA_RESTART's restart, EINTR from nanosleep, poll and a futex wait, default actions in wait status words
 * (no core bit: RLIMIT_CORE 0, as recorded), and the calls' errors; then it kills itself with
 * SIGTERM. Its output and death must be qemu-user's (fixtures/signals.json), on every seed tried.
 * The static-glibc fixtures/src/sigjmp.c goes through the C library: signal() (i386: the old
 * frame and sigreturn), raise, a SIGSEGV handler that leaves with siglongjmp, sigwait.
 * ppc32, ppc64 and sparc64 run them through their own frames (arch/ppc/signal-frame-*.ts,
 * arch/sparc/signal-frame.ts). Where qemu-user itself departs from Linux, the recording is
 * corrected to Linux's answer, line by line, with the reason (QEMU_VS_LINUX below).
 */
import { describe, expect, it } from 'vitest';
import { fixturePath, runProgram, supported } from '../helpers.js';
import signals from '../../fixtures/signals.json' with { type: 'json' };
import type { Target } from '../../arch/types.js';

const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as const).filter((t) => supported.has(t));

/**
 * qemu-user's answers that are not Linux's, as [recorded line, Linux's line]:
 * - ppc32/ppc64: a store to a PROT_READ page is SEGV_ACCERR on Linux (do_page_fault: the VMA exists,
 *   access_error → bad_access → SEGV_ACCERR); qemu-user's ppc reports another si_code.
 *   (addr_ok=0 is the program's own doing on ppc: gcc reads `fault_addr`, a pointer *to* volatile,
 *   before the faulting `stbu`, so it is 0 under Linux too.)
 * - ppc64: MINSIGSTKSZ is 8192 for __powerpc64__ (uapi asm/signal.h), so sigaltstack of the
 *   fixture's small stack is ENOMEM on Linux; qemu-user checks 2048 (its TARGET_MINSIGSTKSZ).
 */
const QEMU_VS_LINUX: Partial<Record<Target, Array<[string, string]>>> = {
  ppc32: [['segv fixed up: hits=1 signo_ok=1 code_accerr=0 addr_ok=0', 'segv fixed up: hits=1 signo_ok=1 code_accerr=1 addr_ok=0']],
  ppc64: [
    ['segv fixed up: hits=1 signo_ok=1 code_accerr=0 addr_ok=0', 'segv fixed up: hits=1 signo_ok=1 code_accerr=1 addr_ok=0'],
    ['too small: r=0\n', 'too small: r=-12\n'],
  ],
};
const SIGTERM = 15;
const EINTR = 4;

const recorded = (t: Target, name = 'signals-nolibc'): { stdout: string; signal: number } => {
  const e = (signals as Array<{ target: string; name: string; stdout: string; signal: number }>).find((s) => s.target === t && s.name === name);
  if (!e) throw new Error(`no qemu-user recording of ${t}/${name} in fixtures/signals.json`);
  if (name !== 'signals-nolibc') return e;
  let stdout = e.stdout;
  for (const [q, l] of QEMU_VS_LINUX[t] ?? []) {
    if (!stdout.includes(q)) throw new Error(`${t}: the recording no longer has "${q}": update QEMU_VS_LINUX`);
    stdout = stdout.replace(q, l);
  }
  return { ...e, stdout };
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
    // (ppc64 and sparc64 map the guest kernel's alias at 0: the boundary refuses it as kernel memory.)
    expect(r.reports[0]).toMatch(/SIGSEGV \((write to unmapped memory|user-mode write to kernel memory)\) at address 0x0/);
  });

  it('sigjmp (static glibc): signal(), raise, siglongjmp out of SIGSEGV, sigwait — as under qemu-user', () => {
    const rec = recorded(target, 'sigjmp');
    const r = runProgram(target, fixturePath(target, 'sigjmp'), [], { maxInsns: 2e8 });
    expect(r.stdout).toBe(rec.stdout);
    expect(r.signal).toBe(rec.signal);
    expect(r.reports).toEqual([]);
  });

  it('a handled signal interrupts a sleeping pipe read, nanosleep, poll and a futex wait with EINTR; SA_RESTART restarts the read', () => {
    const r = runProgram(target, fixturePath(target, 'signals-nolibc'), [], { maxInsns: 2e8 });
    expect(r.stdout).toContain(`pipe read without SA_RESTART: read=-${EINTR} hits=1 byte=-\n`);
    expect(r.stdout).toContain('pipe read with SA_RESTART: read=1 hits=1 byte=y\n');
    for (const what of ['nanosleep', 'poll', 'futex wait']) expect(r.stdout).toContain(`${what} interrupted: r=-${EINTR} hits=1\n`);
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
