/**
 * Error paths of the system-call layer, driven by the freestanding fixture `syscalls-nolibc`
 * (fixtures/src/syscalls.c): it makes raw system calls with the target's own numbers and prints
 * each result, errors by name with Linux's generic number, looked up in a table built from the
 * target's <asm/errno.h> (so a wrong per-target number shows up as a wrong name or "unknown").
 *
 * Each expected line below is what Linux returns, with the reason; the battery was also recorded
 * under qemu-user (fixtures/manifest.json) and must match that too. The `linux` mode holds the
 * calls where qemu-user 7.2 itself departs from Linux; there only Linux's values count.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Machine, type MachineOptions } from '../../src/kernel/machine.js';
import type { Target } from '../../arch/types.js';
import { manifest, repoRoot, supported } from '../helpers.js';

const TARGETS = ['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as const;

interface Out {
  stdout: string;
  status: number;
  reports: string[];
}

/** Run syscalls-nolibc with extra arguments and environment on a fresh machine. */
function run(target: Target, args: string[], envp: string[] = [], opts: Partial<MachineOptions> = {}): Out {
  const path = join(repoRoot, 'fixtures', target, 'syscalls-nolibc');
  const out: Buffer[] = [];
  const reports: string[] = [];
  const m = new Machine({ target, stdout: (b) => out.push(Buffer.from(b)), report: (l) => reports.push(l), ...opts });
  try {
    m.spawn(path, [path, ...args], envp);
    const r = m.run();
    return { stdout: Buffer.concat(out).toString('utf8'), status: r.status, reports };
  } finally {
    m.close();
  }
}

/**
 * The battery, line by line, as Linux answers it. `hole` is a page the program mapped and
 * unmapped; `fd` is the program's own executable opened read-only; a "page" is AT_PAGESZ.
 */
const BATTERY: Array<[line: string, why: string]> = [
  ['mmap(anonymous) succeeded: yes', ''],
  ['munmap(hole, 1 page) = 0', ''],
  ['munmap(hole, 1 page) again = 0', 'munmap of a range with no mapping is not an error'],
  ['write(-1, buf, 1) = -EBADF (-9)', 'ksys_write: fdget_pos(-1) finds no file'],
  ['write(99, buf, 1) = -EBADF (-9)', 'a descriptor that is not open'],
  ['write(1, hole, 8) = -EFAULT (-14)', 'copy from an unmapped user buffer fails, nothing written'],
  ['write(1, hole, 0) = 0', 'a zero-length write touches no memory'],
  ['read(-1, buf, 4) = -EBADF (-9)', 'ksys_read: no file'],
  ['open(argv[0], O_RDONLY) = 3', 'the lowest free descriptor after 0, 1, 2'],
  ['read(fd, hole, 16) = -EFAULT (-14)', 'filemap_read copies nothing: -EFAULT, and f_pos does not move'],
  ['read(fd, magic, 4) = 4', ''],
  ['magic = 7f ELF', 'the position is still 0: the failed read above did not advance it'],
  ['write(fd, buf, 1) = -EBADF (-9)', 'vfs_write: file not open for writing (!FMODE_WRITE)'],
  ['close(fd) = 0', ''],
  ['close(fd) again = -EBADF (-9)', 'close_fd of a closed descriptor'],
  ['close(-1) = -EBADF (-9)', ''],
  ['open("/nonexistent/uniprobe") = -ENOENT (-2)', 'no such file'],
  ['open("") = -ENOENT (-2)', 'getname of an empty path: -ENOENT'],
  ['open(hole) = -EFAULT (-14)', 'getname faults copying the path'],
  ['syscall(999) = -ENOSYS (-38)', 'not in the syscall table (sparc64\'s own number is 90: the table maps it)'],
  ['wait4(-1, 0, 0, 0) = -ECHILD (-10)', 'kernel_wait4 with no children'],
  ['wait4(-1, 0, WNOHANG, 0) = -ECHILD (-10)', 'WNOHANG does not turn "no children" into 0'],
  ['mmap(flags without SHARED or PRIVATE) = -EINVAL (-22)', 'do_mmap: switch (flags & MAP_TYPE) default'],
  ['mmap(len 0) = -EINVAL (-22)', 'do_mmap: !len'],
  ['mmap(file, fd -1) = -EBADF (-9)', 'ksys_mmap_pgoff: fget(-1) fails'],
  ['mmap(2 pages) succeeded: yes', ''],
  ['new anonymous memory reads back: yes', ''],
  ['munmap(page + 1, 1 page) = -EINVAL (-22)', 'do_vmi_munmap: offset_in_page(start)'],
  ['munmap(page, 0) = -EINVAL (-22)', 'do_vmi_munmap: len == 0'],
  ['mprotect(page + 1, 1 page, PROT_READ) = -EINVAL (-22)', 'do_mprotect_pkey: start & ~PAGE_MASK'],
  ['mprotect(page, 1 page, PROT_READ) = 0', ''],
  ['first page still reads back: yes', ''],
  ['munmap(page + 1 page, 1 page) = 0', ''],
  ['munmap(page, 2 pages) = 0', 'a partly unmapped range is fine'],
  ['brk(0) is page aligned: yes', 'mm->brk starts page aligned'],
  ['brk(4096) (below the start) returns the old break: yes', 'brk < mm->start_brk: the old mm->brk is returned'],
  ['brk(b0 + 2 pages + 100) - b0 = 2 pages + 100', 'the new break is returned exactly, not rounded'],
  ['the heap reads back: yes', ''],
  ['brk(b0 + 10) - b0 = 10', 'shrinking is allowed'],
  ['the first heap page survives the shrink: yes', 'only whole pages above PAGE_ALIGN(brk) go'],
  ['brk(0) - b0 = 10', ''],
  ['getrandom(buf, 16, 0) = 16', ''],
  ['getrandom(hole, 16, 0) = -EFAULT (-14)', ''],
  ['uname(hole) = -EFAULT (-14)', 'copy_to_user fails'],
];

describe.each(TARGETS.filter((t) => supported.has(t)))('system-call errors on %s', (target) => {
  it('the battery prints Linux\'s answers, and what qemu-user recorded', () => {
    const r = run(target, []);
    expect(r.reports).toEqual([]);
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n').slice(0, -1)).toEqual(BATTERY.map(([line]) => line));
    const recorded = manifest.find((e) => e.target === target && e.name === 'syscalls-nolibc');
    expect(recorded?.stdout).toBe(r.stdout);
  });

  it('a bad descriptor is reported before a bad buffer; mprotect over a hole is -ENOMEM', () => {
    // Linux: ksys_write/ksys_read and do_writev/do_readv look the descriptor up (fdget_pos)
    // before they touch the buffer or the iovec array, so -EBADF wins over -EFAULT.
    // do_mprotect_pkey: no VMA at start, or a gap before end -> -ENOMEM.
    const r = run(target, ['linux']);
    expect(r.reports).toEqual([]);
    expect(r.stdout).toBe(
      [
        'mmap(anonymous) succeeded: yes',
        'munmap(hole, 1 page) = 0',
        'write(-1, hole, 8) = -EBADF (-9)',
        'read(-1, hole, 8) = -EBADF (-9)',
        'writev(-1, hole, 1) = -EBADF (-9)',
        'readv(-1, hole, 1) = -EBADF (-9)',
        'writev(-1, {hole, 8}, 1) = -EBADF (-9)',
        'mprotect(hole, 1 page, PROT_READ) = -ENOMEM (-12)',
        'mmap(1 page) succeeded: yes',
        'mprotect(page, 2 pages, PROT_READ) (second unmapped) = -ENOMEM (-12)',
        '',
      ].join('\n'),
    );
  });

  it('sees only files named on the command line; writes to them stay in the guest', () => {
    const fib = join(repoRoot, 'fixtures', target, 'fib-nolibc');
    const before = readFileSync(fib);
    // Named: the lowest free descriptor (0, 1, 2 are stdio).
    expect(run(target, ['open', fib, 'r']).stdout).toBe('open = 3\n');
    // Named, for writing: allowed (the guest's copy is in memory, src/vfs), the host file unchanged.
    expect(run(target, ['open', fib, 'w']).stdout).toBe('open = 3\n');
    expect(readFileSync(fib).equals(before)).toBe(true);
    // An existing host file the user did not name is invisible: ENOENT (2), as if absent. The
    // path comes from the environment, so it is not on the command line.
    expect(run(target, ['open', '$P', 'r'], [`P=${fib}`]).stdout).toBe('open = -ENOENT (-2)\n');
    expect(run(target, ['open', '$P', 'r'], ['P=/etc/passwd']).stdout).toBe('open = -ENOENT (-2)\n');
    // The program itself is always named (argv[0]).
    const self = join(repoRoot, 'fixtures', target, 'syscalls-nolibc');
    expect(run(target, ['open', '$P', 'r'], [`P=${self}`]).stdout).toBe('open = 3\n');
  });

  it('getrandom is deterministic per seed', () => {
    const a = run(target, ['random'], [], { seed: 5 });
    const b = run(target, ['random'], [], { seed: 5 });
    const c = run(target, ['random'], [], { seed: 6 });
    expect(a.stdout).toMatch(/^getrandom = 16\nbytes =( [0-9a-f]{2}){16}\n$/);
    expect(b.stdout).toBe(a.stdout);
    expect(c.stdout).toMatch(/^getrandom = 16\n/);
    expect(c.stdout).not.toBe(a.stdout);
    expect(a.stdout).not.toContain('bytes = 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00');
  });

  it('uname fills struct new_utsname (six 65-byte fields)', () => {
    const r = run(target, ['uname']);
    const f = Object.fromEntries(
      r.stdout
        .split('\n')
        .filter((l) => l.includes(' = '))
        .map((l) => [l.slice(0, l.indexOf(' = ')), l.slice(l.indexOf(' = ') + 3)]),
    );
    expect(f.uname).toBe('0');
    expect(f.sysname).toBe('Linux');
    // utsname.machine as Linux reports it for each target (UTS_MACHINE; an i686-class i386 kernel
    // says "i686"); qemu-user prints the same (checked with `qemu-<arch> syscalls-nolibc uname`).
    const machine: Record<Target, string> = { x86_64: 'x86_64', i386: 'i686', ppc32: 'ppc', ppc64: 'ppc64', sparc64: 'sparc64' };
    expect(f.machine).toBe(machine[target]);
    // Linux's default domainname (UTS_DOMAINNAME).
    expect(f.domainname).toBe('(none)');
    // Every field is NUL-terminated inside its 65 bytes (the program filled the buffer with 'x').
    for (const k of ['nodename', 'release', 'version']) {
      expect(f[k]).toBeTruthy();
      expect(f[k]).not.toMatch(/x{64}/);
    }
  });
});
