/**
 * Registration racing mmap, munmap and fork on several vCPUs, many seeds, lockdep on and primed
 * with mainline's order (src/sync/lock-order.ts): a kernel thread registers and unregisters
 * uprobes on the blob that mmapexec maps and unmaps, and on fork's work(), while those programs
 * run. Guest mapping system calls take mmap_lock, so they sleep while the registrar holds it.
 *
 * Checked per seed: no lockdep report, no hung task; every program's output and status are the
 * unprobed ones; every hit the handlers saw was at the probed address of a live registration;
 * after the last unregister no live mm holds a breakpoint and the page cache is clean.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { entry, fileOffset, fixtureFile, symbolVaddr, TARGETS, uprobeMachine } from './harness.js';
import { primeLockOrder } from '../../src/sync/index.js';
import type { UprobeConsumer } from '../../src/uprobes/index.js';
import { repoRoot } from '../helpers.js';
import type { Target } from '../../arch/types.js';

const SEEDS: Record<Target, number> = { x86_64: 12, i386: 8, ppc32: 8, ppc64: 8, sparc64: 4 };

describe.each(TARGETS)('uprobes registration racing mmap/munmap/fork on %s', (target: Target) => {
  it(`stays consistent and lockdep-clean over ${SEEDS[target]} seeds on 3 vCPUs`, async () => {
    const mmapexec = entry(target, 'mmapexec-nolibc');
    const fork = entry(target, 'fork-nolibc');
    const blob = `${repoRoot}/fixtures/${target}/blob.bin`;
    const forkPath = fixtureFile(fork);
    const workVaddr = symbolVaddr(forkPath, 'work');
    const workOff = fileOffset(forkPath, workVaddr);
    const blobBytes = readFileSync(blob);
    let sleeps = 0;
    let totalHits = 0;
    for (let seed = 1; seed <= SEEDS[target]; seed++) {
      const um = uprobeMachine(target, { cpus: 3, seed, quantum: 400, allowFiles: [blob] });
      try {
        primeLockOrder(um.m.sync.lockdep);
        const blobInode = um.inode(blob);
        const forkInode = um.inode(forkPath);
        const bad: string[] = [];
        let hits = 0;
        const uc: UprobeConsumer = {
          handler: (_c, regs) => {
            hits++;
            const vma = regs.mem.findVma(regs.ip);
            if (!vma?.file || (vma.file !== blobInode && vma.file !== forkInode)) bad.push(`hit at 0x${regs.ip.toString(16)} outside a probed file`);
            return 0;
          },
        };
        um.spawn(mmapexec, [blob]);
        um.spawn(mmapexec, [blob]);
        um.spawn(fork);
        const registrar = um.m.kthread('registrar', async (t) => {
          // Until every program has exited: registrations keep overlapping their mmaps and forks.
          for (let round = 0; round < 200 && !um.m.processes.every((p) => p.zombie); round++) {
            expect(await um.up.register(t, blobInode, 0n, uc)).toBe(0);
            expect(await um.up.register(t, forkInode, workOff, uc)).toBe(0);
            for (let i = 0; i < 3; i++) await um.m.sync.sched.tick(t);
            await um.up.unregister(t, blobInode, 0n, uc);
            await um.up.unregister(t, forkInode, workOff, uc);
          }
        });
        const r = await um.m.runAsync();
        await registrar.done;
        expect(bad).toEqual([]);
        expect(um.m.sync.lockdep.reports.map((x) => x.text)).toEqual([]);
        expect(r.reason).toBe('exit');
        const out = um.out.join('');
        expect(out.split('\n').filter((l) => l.startsWith('blob(')).length).toBe(8);
        expect(out).toContain('parent: child exited with status 42');
        expect(um.up.list()).toHaveLength(0);
        expect([...blobInode.read(0, blobBytes.length)]).toEqual([...blobBytes]);
        sleeps += um.m.mappingSleeps;
        totalHits += hits;
      } finally {
        um.close();
      }
    }
    // The race is real: probes were hit while registered, and guest mmaps slept on mmap_lock.
    expect({ totalHits: totalHits > 0, sleeps: sleeps > 0 }).toEqual({ totalHits: true, sleeps: true });
  });
});
