/**
 * `npx tsx bench/throughput.ts` (also part of `npm run bench`): whole-program throughput, issue
 * 15's bars — Debian's static busybox `sha256sum FILE` within 4x qemu-user and within 1.15x the
 * bare Unicorn floor on the same image.
 *
 * Workload: fixtures/external/<target>/busybox `sha256sum` of a 1 MiB and a 16 MiB file of
 * deterministic bytes (written to a temporary directory, which the guest sees read-only through
 * the machine's view of the host). The figure is the marginal time t(16 MiB) − t(1 MiB): start-up,
 * loading and translation of the same code cancel out, what remains is hashing 15 MiB and the
 * 3,840 read() calls that bring it in. Every run's printed digest must equal node's crypto sha256
 * of the file (a wrong run is an error, not a fast figure).
 *
 * Columns, in one process, interleaved rounds (each round runs every column on both sizes, each
 * round starting one column later), medians:
 * - uniprobe: a Machine (src/kernel/machine.ts), spawn + run, as bench/index.ts runs programs;
 * - qemu-user: `qemu-<target> busybox sha256sum FILE`, spawned (skipped with one line when absent);
 * - floor (x86_64 only): the same image on a plain Unicorn engine, no uniprobe kernel
 *   (bench/bare-x86_64.ts).
 * Each run is timed twice: CPU time — the main thread's for uniprobe and the floor (guest, Unicorn
 * and kernel all run on it), user + system time of the qemu-user process (bash's `times`) — which
 * is what the ratios use, because the machine is shared and wall time then counts other jobs; and
 * wall time, printed and recorded alongside.
 * - floor+blk (x86_64 only): the floor with the engine's native block counter
 *   (src/emu/insn-counter.ts), the price of exact instruction counts on stock Unicorn. Its ratio,
 *   uniprobe/floor+blk, is what uniprobe adds around an emulator that counts instructions.
 * THROUGHPUT_RUNS rounds (default 5), THROUGHPUT_TARGETS (default x86_64,i386; the floor exists for
 * x86_64 only). THROUGHPUT_BREAKDOWN=1 adds `floor+cnt` (uc_emu_start with an instruction count,
 * in slices of the machine's lone-task slice, as Engine.run did: Unicorn then calls its counting
 * hook before every instruction).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine } from '../src/kernel/machine.js';
import type { Target } from '../arch/types.js';
import { BareX86_64, type BareOptions } from './bare-x86_64.js';
import { COUNTER, nativeCounter, symbolAddress } from '../src/emu/insn-counter.js';
import { HostMemory } from '../src/emu/host-memory.js';
import { UNICORN_LIBRARY } from '../src/emu/ffi.js';
import { ctlCode, UC_CTL_IO_READ_WRITE, UC_CTL_TB_REQUEST_CACHE } from '../src/emu/uc-const.js';
import { collectGarbage, cpuMs, median, recordResults } from './harness.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1 << 20;
const SIZES = [1 * MiB, 16 * MiB] as const;
/** The machine's slice for a task that runs alone (src/kernel/machine.ts LONE_SLICE). */
const LONE_SLICE = 1 << 24;
const QEMU: Partial<Record<Target, string>> = { x86_64: 'qemu-x86_64', i386: 'qemu-i386' };

/** Deterministic bytes (xorshift32 from a fixed seed), the same on every machine and run. */
function deterministicBytes(size: number): Buffer {
  const b = Buffer.alloc(size);
  let x = 0x9e3779b9;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  return b;
}

/** One run's wall time and CPU time (ms). */
interface Times {
  wall: number;
  cpu: number;
}

interface Column {
  name: string;
  /** Run `busybox sha256sum file` once: its times and what it printed. */
  run(file: string): Times & { stdout: string };
}

function uniprobeColumn(target: Target, busybox: string): Column {
  return {
    name: 'uniprobe',
    run(file) {
      const out: Buffer[] = [];
      const t0 = performance.now();
      const c0 = cpuMs();
      const m = new Machine({ target, stdout: (b) => out.push(Buffer.from(b)), report: (l) => process.stderr.write(`${l}\n`) });
      try {
        m.spawn(busybox, ['busybox', 'sha256sum', file]);
        const r = m.run();
        if (r.status !== 0) throw new Error(`uniprobe: busybox sha256sum exited ${r.status}`);
      } finally {
        m.close();
      }
      return { cpu: cpuMs() - c0, wall: performance.now() - t0, stdout: Buffer.concat(out).toString() };
    },
  };
}

function qemuColumn(qemu: string, busybox: string): Column {
  return {
    name: 'qemu-user',
    run(file) {
      // bash's `times` gives the child's user and system CPU time (ms resolution) on stderr.
      const t0 = performance.now();
      const r = spawnSync('bash', ['-c', '"$0" "$@"; s=$?; times >&2; exit $s', qemu, busybox, 'sha256sum', file], { encoding: 'utf8' });
      const wall = performance.now() - t0;
      if (r.error) throw r.error;
      if (r.status !== 0) throw new Error(`${qemu}: busybox sha256sum exited ${r.status}: ${r.stderr}`);
      const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(r.stderr);
      if (!m) throw new Error(`${qemu}: no CPU times in ${JSON.stringify(r.stderr)}`);
      const cpu = (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000;
      return { wall, cpu, stdout: r.stdout };
    },
  };
}

/**
 * The engine's native instruction counter (src/emu/insn-counter.ts), set up as Engine does, for the
 * breakdown columns; undefined when it cannot be built.
 */
function nativeBlockCounter(): BareOptions['blockHook'] {
  const lib = nativeCounter();
  if (!lib) return undefined;
  const mem = HostMemory.alloc(lib.size, false); // lives as long as the process: a bench
  const view = new DataView(mem.bytes.buffer, mem.bytes.byteOffset, lib.size);
  view.setBigUint64(COUNTER.ctl, symbolAddress(UNICORN_LIBRARY, 'uc_ctl'), true);
  view.setBigUint64(COUNTER.ctlRequest, BigInt(ctlCode(UC_CTL_TB_REQUEST_CACHE, 2, UC_CTL_IO_READ_WRITE)), true);
  return { fn: lib.blockHook, data: mem.ptr };
}

function floorColumn(busybox: string, name = 'floor', opts: BareOptions = {}): Column {
  const bare = new BareX86_64(busybox);
  return {
    name,
    run(file) {
      const t0 = performance.now();
      const c0 = cpuMs();
      const r = bare.run(['busybox', 'sha256sum', file], opts);
      const cpu = cpuMs() - c0;
      const wall = performance.now() - t0;
      if (r.unserved.size > 0) throw new Error(`bare floor: system calls not served: ${[...r.unserved.keys()].join(', ')}`);
      if (r.status !== 0) throw new Error(`bare floor: busybox sha256sum exited ${r.status}`);
      return { wall, cpu, stdout: r.stdout.toString() };
    },
  };
}

function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** One column's figures on one clock: medians per size, the marginal time, its rate. */
interface Figures {
  ms1: number;
  ms16: number;
  /** Every run's time, per size, in the order taken. */
  samples1: number[];
  samples16: number[];
  marginalMs: number;
  mibPerS: number;
}

export interface ThroughputRow {
  target: Target;
  /** Per column: CPU time (the headline, robust on a shared machine) and wall time. */
  columns: Record<string, { cpu: Figures; wall: Figures }>;
  /** uniprobe's marginal time over qemu-user's and over the floor's, on each clock. */
  vsQemu: { cpu: number | null; wall: number | null };
  vsFloor: { cpu: number | null; wall: number | null };
  /** ... and over the floor with the native block counter (exact instruction counts). */
  vsFloorCounter: { cpu: number | null; wall: number | null };
}

function figures(ms: readonly (readonly number[])[]): Figures {
  const ms1 = median(ms[0]!);
  const ms16 = median(ms[1]!);
  const marginalMs = ms16 - ms1;
  const mib = (SIZES[1] - SIZES[0]) / MiB;
  const r1 = (xs: readonly number[]): number[] => xs.map((x) => +x.toFixed(1));
  return { ms1: +ms1.toFixed(1), ms16: +ms16.toFixed(1), samples1: r1(ms[0]!), samples16: r1(ms[1]!), marginalMs: +marginalMs.toFixed(1), mibPerS: +(mib / (marginalMs / 1000)).toFixed(2) };
}

const over = (a: Figures | undefined, b: Figures | undefined): number | null =>
  a && b && b.marginalMs > 0 ? +(a.marginalMs / b.marginalMs).toFixed(3) : null;

function benchTarget(target: Target, files: readonly { path: string; digest: string }[], runs: number): ThroughputRow | undefined {
  const busybox = join(root, 'fixtures', 'external', target, 'busybox');
  if (!existsSync(busybox)) {
    console.log(`  ${target}: ${busybox} missing, skipped`);
    return undefined;
  }
  const cols: Column[] = [uniprobeColumn(target, busybox)];
  const qemu = QEMU[target];
  if (qemu && hasCommand(qemu)) cols.push(qemuColumn(qemu, busybox));
  else console.log(`  ${target}: ${qemu ?? 'qemu-user'} not installed, qemu-user column skipped`);
  if (target === 'x86_64') {
    cols.push(floorColumn(busybox));
    // What uniprobe's run loop adds around the emulator, one ingredient at a time.
    const counter = nativeBlockCounter();
    if (counter) cols.push(floorColumn(busybox, 'floor+blk', { blockHook: counter }));
    if (process.env.THROUGHPUT_BREAKDOWN === '1') cols.push(floorColumn(busybox, 'floor+cnt', { count: LONE_SLICE }));
  }

  const cpu = cols.map(() => SIZES.map((): number[] => []));
  const wall = cols.map(() => SIZES.map((): number[] => []));
  const once = (c: number, f: number): Times => {
    const r = cols[c]!.run(files[f]!.path);
    const want = `${files[f]!.digest}  ${files[f]!.path}\n`;
    if (r.stdout !== want) throw new Error(`${target} ${cols[c]!.name}: printed ${JSON.stringify(r.stdout)}, expected ${JSON.stringify(want)}`);
    return r;
  };
  // One discarded round: the JIT, the page cache and the host's Unicorn library warm up.
  for (let c = 0; c < cols.length; c++) for (let f = 0; f < SIZES.length; f++) once(c, f);
  for (let k = 0; k < runs; k++) {
    for (let j = 0; j < cols.length; j++) {
      const c = (j + k) % cols.length;
      for (let f = 0; f < SIZES.length; f++) {
        collectGarbage();
        const t = once(c, f);
        cpu[c]![f]!.push(t.cpu);
        wall[c]![f]!.push(t.wall);
      }
    }
  }
  const columns: ThroughputRow['columns'] = {};
  cols.forEach((c, i) => (columns[c.name] = { cpu: figures(cpu[i]!), wall: figures(wall[i]!) }));
  const u = columns.uniprobe!;
  const q = columns['qemu-user'];
  const fl = columns.floor;
  const fb = columns['floor+blk'];
  return {
    target,
    columns,
    vsQemu: { cpu: over(u.cpu, q?.cpu), wall: over(u.wall, q?.wall) },
    vsFloor: { cpu: over(u.cpu, fl?.cpu), wall: over(u.wall, fl?.wall) },
    vsFloorCounter: { cpu: over(u.cpu, fb?.cpu), wall: over(u.wall, fb?.wall) },
  };
}

export function benchThroughput(runs = Number(process.env.THROUGHPUT_RUNS ?? 5), opts: { record?: boolean } = {}): Record<string, unknown> {
  const targets = (process.env.THROUGHPUT_TARGETS ?? 'x86_64,i386').split(',').filter(Boolean) as Target[];
  const dir = mkdtempSync(join(tmpdir(), 'uniprobe-throughput-'));
  const out: Record<string, unknown> = {};
  try {
    const files = SIZES.map((size) => {
      const bytes = deterministicBytes(size);
      const path = join(dir, `data-${size / MiB}MiB`);
      writeFileSync(path, bytes);
      return { path, digest: createHash('sha256').update(bytes).digest('hex') };
    });
    console.log(`\nthroughput: busybox sha256sum FILE, marginal time t(16 MiB) - t(1 MiB), medians of ${runs} interleaved rounds`);
    console.log('  (CPU ms: the main thread for uniprobe and the floor, user+sys of the process for qemu-user; bars: <= 4x qemu-user, <= 1.15x floor+blk)');
    console.log('  target   column       1 MiB ms   16 MiB ms   marginal ms     MiB/s   marginal wall ms');
    const r = (x: number | null): string => (x === null ? '—' : `${x.toFixed(2)}x`);
    for (const target of targets) {
      const row = benchTarget(target, files, runs);
      if (!row) continue;
      for (const [name, c] of Object.entries(row.columns)) {
        console.log(
          `  ${target.padEnd(8)} ${name.padEnd(10)} ${c.cpu.ms1.toFixed(1).padStart(10)} ${c.cpu.ms16.toFixed(1).padStart(11)} ${c.cpu.marginalMs.toFixed(1).padStart(13)} ${c.cpu.mibPerS.toFixed(1).padStart(9)} ${c.wall.marginalMs.toFixed(1).padStart(18)}`,
        );
      }
      console.log(
        `  ${target.padEnd(8)} uniprobe/qemu-user ${r(row.vsQemu.cpu)} (wall ${r(row.vsQemu.wall)})   uniprobe/floor ${r(row.vsFloor.cpu)} (wall ${r(row.vsFloor.wall)})   uniprobe/floor+blk ${r(row.vsFloorCounter.cpu)} (wall ${r(row.vsFloorCounter.wall)})`,
      );
      out[target] = { columns: row.columns, vsQemu: row.vsQemu, vsFloor: row.vsFloor, vsFloorCounter: row.vsFloorCounter };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (opts.record !== false) recordResults('throughput', out);
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) benchThroughput();
