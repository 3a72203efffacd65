/**
 * `npx tsx bench/syscalls.ts` (also part of `npm run bench`): what one system call costs, per
 * target, against qemu-user.
 *
 * Workload: bench/guest/<target>/writes N — N one-byte write(2)s to stdout — at N = 1,000 and
 * N = 21,000; the figure is the marginal CPU time per call, (t(21,000) − t(1,000)) / 20,000, so
 * start-up, loading and translation cancel out. In uniprobe a write(2) goes the whole way Linux's
 * does: the user trap, the guest kernel's entry_syscall → ksys_write → vfs_write (real guest
 * code), the hypercall to the host's VFS and the return to user mode, with the user/kernel
 * boundary switched both ways. qemu-user turns the same call into a host write(2).
 *
 * Columns in interleaved rounds of one process, medians; CPU time: the main thread's for
 * uniprobe (a Machine, spawn + run), user + system time of the qemu-user process (bash's
 * `times`, ms resolution: hence the 20,000 calls). Every run's output must be N bytes plus the
 * program's closing line, on both sides (a wrong run is an error, not a fast figure).
 * SYSCALLS_RUNS rounds (default 5), SYSCALLS_TARGETS (comma list; default all five).
 */
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine } from '../src/kernel/machine.js';
import { supportedTargets } from '../arch/index.js';
import type { Target } from '../arch/types.js';
import { collectGarbage, cpuMs, median, recordResults } from './harness.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const QEMU: Record<Target, string> = { x86_64: 'qemu-x86_64', i386: 'qemu-i386', ppc32: 'qemu-ppc', ppc64: 'qemu-ppc64', sparc64: 'qemu-sparc64' };
const COUNTS = [1_000, 21_000] as const;
const program = (t: Target): string => join(root, 'bench', 'guest', t, 'writes');

/** One run: CPU ms and how many bytes the program wrote. */
type Run = (n: number) => { cpu: number; bytes: number };

function uniprobeRun(target: Target): Run {
  const path = program(target);
  return (n) => {
    let bytes = 0;
    collectGarbage();
    const c0 = cpuMs();
    const m = new Machine({ target, stdout: (b) => void (bytes += b.length), report: (l) => process.stderr.write(`${l}\n`) });
    try {
      m.spawn(path, [path, String(n)]);
      const r = m.run();
      if (r.status !== 0) throw new Error(`uniprobe: ${target} writes ${n} exited ${r.status}`);
    } finally {
      m.close();
    }
    return { cpu: cpuMs() - c0, bytes };
  };
}

function qemuRun(target: Target): Run | undefined {
  const qemu = QEMU[target];
  if (spawnSync('sh', ['-c', `command -v ${qemu}`], { stdio: 'ignore' }).status !== 0) return undefined;
  const path = program(target);
  return (n) => {
    const r = spawnSync('bash', ['-c', '"$0" "$@"; s=$?; times >&2; exit $s', qemu, path, String(n)], { maxBuffer: 1 << 26 });
    if (r.error) throw r.error;
    if (r.status !== 0) throw new Error(`${qemu}: writes ${n} exited ${r.status}: ${r.stderr}`);
    const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(r.stderr.toString());
    if (!m) throw new Error(`${qemu}: no CPU times in ${JSON.stringify(r.stderr.toString())}`);
    return { cpu: (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000, bytes: r.stdout.length };
  };
}

export function benchSyscalls(runs = Number(process.env.SYSCALLS_RUNS ?? 5), opts: { record?: boolean } = {}): Record<string, unknown> {
  const wanted = process.env.SYSCALLS_TARGETS?.split(',');
  const targets = supportedTargets().filter((t) => !wanted || wanted.includes(t));
  const calls = COUNTS[1] - COUNTS[0];
  console.log(`\nsystem calls: bench/guest/<target>/writes N, one-byte write(2)s; µs per call = (t(${COUNTS[1]}) − t(${COUNTS[0]})) / ${calls}, CPU time, medians of ${runs} interleaved rounds`);
  console.log('  target    uniprobe µs  qemu-user µs  uniprobe/qemu-user');
  const json: Record<string, unknown> = { program: 'bench/guest/<target>/writes', counts: COUNTS, runs };
  const perTarget: Record<string, unknown> = {};
  for (const target of targets) {
    const columns: Array<[string, Run]> = [['uniprobe', uniprobeRun(target)]];
    const q = qemuRun(target);
    if (q) columns.push(['qemu-user', q]);
    const samples = new Map<string, number[][]>(columns.map(([name]) => [name, [[], []]]));
    for (let r = 0; r < runs; r++) {
      // Each round starts one column later, so neither always runs right after the other.
      for (let k = 0; k < columns.length; k++) {
        const [name, run] = columns[(r + k) % columns.length]!;
        COUNTS.forEach((n, i) => {
          const { cpu, bytes } = run(n);
          // The program writes n bytes, then one closing line ("wrote N bytes\n" or the like).
          if (bytes <= n || bytes > n + 64) throw new Error(`${name}: ${target} writes ${n} wrote ${bytes} bytes`);
          samples.get(name)![i]!.push(cpu);
        });
      }
    }
    const perCall = (name: string): number | undefined => {
      const s = samples.get(name);
      return s ? +(((median(s[1]!) - median(s[0]!)) * 1000) / calls).toFixed(2) : undefined;
    };
    const u = perCall('uniprobe')!;
    const qu = perCall('qemu-user');
    const ratio = qu !== undefined && qu > 0 ? +(u / qu).toFixed(2) : null;
    console.log(`  ${target.padEnd(9)} ${u.toFixed(2).padStart(11)}  ${qu === undefined ? '          —' : qu.toFixed(2).padStart(12)}  ${ratio === null ? '—' : `${ratio}x`}`);
    if (!q) console.log(`  ${target}: ${QEMU[target]} not installed, qemu-user column skipped`);
    perTarget[target] = { uniprobeUs: u, qemuUs: qu ?? null, vsQemu: ratio, samples: Object.fromEntries(samples) };
  }
  json.perTarget = perTarget;
  if (opts.record !== false) recordResults('syscalls', json);
  return json;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) benchSyscalls();
