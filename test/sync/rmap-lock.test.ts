/**
 * i_mmap_rwsem around every rmap change, in real runs (src/mm/kernel-locking.ts): a guest mmap of
 * a file sleeps while a kernel thread holds the file's i_mmap_rwsem (Linux: vma_link sleeps on
 * it), exit's unlinks wait for it, and the rmap is exact afterwards. Lockdep stays quiet (the
 * suite's setup fails the test on any report).
 */
import { realpathSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import { manifest, repoRoot } from '../helpers.js';

function machine(program: string, extra: string[] = []) {
  const e = manifest.find((m) => m.target === 'x86_64' && m.name === program)!;
  const out: string[] = [];
  const dec = new TextDecoder();
  const files = extra.map((f) => `${repoRoot}/fixtures/x86_64/${f}`);
  const m = new Machine({ target: 'x86_64', cpus: 2, seed: 5, quantum: 300, allowFiles: files, stdout: (b) => out.push(dec.decode(b)) });
  m.spawn(`${repoRoot}/fixtures/${e.path}`, [e.path, ...files]);
  return { m, e, out, files };
}

describe('i_mmap_rwsem in real runs', () => {
  it("a guest's mmap/munmap of a file waits while a kernel thread holds that file's i_mmap_rwsem, then completes", async () => {
    const { m, e, out, files } = machine('mmapexec-nolibc', ['blob.bin']);
    try {
      const inode = m.inodeFor(realpathSync(files[0]!));
      const sem = m.mmLocks.iMmap(inode);
      const seen: number[] = [];
      m.kthread('walker', async (t) => {
        await sem.downRead(t, 'build_map_info');
        // While we hold it, nobody links or unlinks the blob: the guest's mmap (or munmap) sleeps.
        for (let i = 0; i < 2000 && m.mappingSleeps === 0 && m.processes[0]!.alive; i++) await m.sync.sched.tick(t);
        for (let i = 0; i < 20; i++) {
          seen.push(inode.mappings.size);
          await m.sync.sched.tick(t);
        }
        sem.upRead(t, 'build_map_info');
      });
      const r = await m.runAsync();
      expect(r.status).toBe(e.exit);
      expect(out.join('')).toBe(e.stdout);
      expect(new Set(seen).size).toBe(1);
      expect(m.mappingSleeps).toBeGreaterThan(0);
      expect(inode.mappings.size).toBe(0); // mapped, then unmapped after the walker let go
    } finally {
      m.close();
    }
  });

  it("exit's unlinks wait for the lock: the dead mm's VMAs stay in the rmap until it is free, then leave it", async () => {
    const { m, e, out } = machine('fib-nolibc');
    try {
      const proc = m.processes[0]!;
      const inode = m.inodeFor(proc.exePath);
      const sem = m.mmLocks.iMmap(inode);
      const linked = inode.mappings.size;
      expect(linked).toBeGreaterThan(0);
      let whileHeld = -1;
      let destroyed = false;
      m.kthread('walker', async (t) => {
        await sem.downRead(t, 'build_map_info');
        while (!proc.mm.destroyed) await m.sync.sched.tick(t);
        for (let i = 0; i < 5; i++) await m.sync.sched.tick(t);
        destroyed = proc.mm.destroyed;
        whileHeld = inode.mappings.size;
        sem.upRead(t, 'build_map_info');
      });
      const r = await m.runAsync();
      expect(r.status).toBe(e.exit);
      expect(out.join('')).toBe(e.stdout);
      expect(destroyed).toBe(true);
      expect(whileHeld).toBe(linked);
      expect([...inode.mappings].every((v) => v.mm.destroyed)).toBe(true);
      // One more scheduling decision runs the waiting unlinks.
      await m.kernelCall('tick', async (t) => m.sync.sched.tick(t));
      expect(inode.mappings.size).toBe(0);
    } finally {
      m.close();
    }
  });
});
