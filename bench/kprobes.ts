/**
 * The kprobes benchmark (issue 5), part of `npm run bench`; alone: `npx tsx bench/kprobes.ts`.
 *
 * Workload: bench/guest/<target>/writes, N one-byte write(2)s, so ksys_write in the guest kernel
 * runs N times (+1 for the closing printf). Only the guest run is timed: machine set-up and probe
 * registration are not (registration has its own section).
 *
 * 1. Per-hit cost = (time with the probe − time unprobed) / hits, for
 *    - a bare one-address UC_HOOK_CODE hook on ksys_write (what an emulator-hook tool pays),
 *    - a stepped kprobe on ksys_write (pre + post handler: the copy runs in the slot, second trap),
 *    - a boosted kprobe there (x86 only: pre handler only, the slot jumps back by itself),
 *    - an emulated kprobe on the `call`/`bl` to vfs_write (x86, ppc; sparc64 emulates only rd %pc),
 *    - a kretprobe on ksys_write (entry trap + return trampoline trap).
 * 2. Per-hit cost of the hot probe (or hook) on ksys_write while 1, 100 or 10,000 probes (hooks)
 *    are registered: the others sit on fixtures/kernel/bench_pad.c, armed but never executed.
 * 3. Registering and unregistering 1,000 probes one by one vs register/unregisterBatch.
 *
 * Times are this process's CPU time (user + system, process.cpuUsage) rather than wall time: the
 * machine is shared (two cores, other jobs), and CPU time does not count the time another process
 * held the core. Differences between variants are what matter; the guest and Unicorn run on this
 * thread, so almost all of it is the run's own work (GC helper threads are the exception).
 *
 * Every variant lives in its own Machine, registered once; the program is spawned again for each
 * run. Runs are taken in rounds (every variant once, back to back, starting one variant later each
 * round) and a per-hit figure is the median over rounds of the difference within a round, so a
 * slow phase of the host hits both sides of a difference. Each machine's first run is a discarded
 * warm-up (JIT, caches), and a full GC precedes every timed run.
 *
 * Environment: BENCH_RUNS (rounds of sections 2 and 3, default 3), BENCH_KPROBES_RUNS (rounds of
 * section 1, default max(BENCH_RUNS, 5)), BENCH_KPROBES_WRITES (5,000), BENCH_KPROBES_SCALE_WRITES
 * (2,000), BENCH_KPROBES_TARGETS and BENCH_KPROBES_SCALE_TARGETS (comma lists; default all five).
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import koffi from 'koffi';
import { Machine } from '../src/kernel/machine.js';
import { Kprobes } from '../src/kprobes/kprobes.js';
import { Kprobe } from '../src/kprobes/kprobe.js';
import { Kretprobe, Kretprobes } from '../src/kprobes/kretprobe.js';
import { UC_HOOK, UNICORN_LIBRARY, type Engine } from '../src/emu/unicorn.js';
import { supportedTargets } from '../arch/index.js';
import { isRefusal } from '../arch/probes.js';
import type { Target } from '../arch/types.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** Runs per variant here: at least 5, since a per-hit figure is a small difference of two times. */
const KRUNS = Number(process.env.BENCH_KPROBES_RUNS ?? Math.max(RUNS, 5));
const WRITES = Number(process.env.BENCH_KPROBES_WRITES ?? 5000);
const ALL: Target[] = ['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'];
const fromEnv = (name: string, dflt: Target[]): Target[] =>
  (process.env[name] ? (process.env[name]!.split(',') as Target[]) : dflt).filter((t) => supportedTargets().includes(t));
const TARGETS = fromEnv('BENCH_KPROBES_TARGETS', ALL);
const SCALE_TARGETS = fromEnv('BENCH_KPROBES_SCALE_TARGETS', TARGETS);
const SCALE = [1, 100, 10_000];
const SCALE_WRITES = Number(process.env.BENCH_KPROBES_SCALE_WRITES ?? 2000);
/** write(2)s for 10,000 Unicorn hooks: each costs milliseconds there, so a few dozen are plenty. */
const HEAVY_WRITES = Math.max(20, Math.floor(SCALE_WRITES / 100));
const BATCH = 1000;

/**
 * A full garbage collection before each timed run, so no run pays for the garbage of the run (or
 * the hook set-up) before it. `npm run bench` starts node without --expose-gc; the flag can still
 * be set at run time, and a new context then sees `gc`.
 */
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** This process's CPU time so far, in ms (see the header for why not wall time). */
const cpuMs = (): number => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/**
 * µs per hit of a variant over its baseline: the median of the per-round differences (a round
 * runs every variant once, back to back, so both sides of a difference saw the same host state).
 */
const perHitUs = (v: Measured, base: Measured): number =>
  v.hitsPerRun ? (median(v.ms.map((ms, r) => ms - base.ms[r]!)) * 1000) / v.hitsPerRun : NaN;
const program = (t: Target) => join(root, 'bench', 'guest', t, 'writes');

// --- machines and variants -------------------------------------------------------------------

/** One way of instrumenting the workload: set up once per machine, re-attached per process. */
interface Variant {
  label: string;
  /** Registration (kprobes live in the shared kernel text, so once per machine). */
  setup?: (m: Machine, kprobes: Kprobes) => Promise<void>;
  /** Per spawned process (Unicorn hooks belong to the process's engine). */
  attach?: (engine: Engine) => void;
  /** Hits so far (cumulative over the machine's runs). */
  hits: () => number;
  /** What kind of probe this turned out to be (the arch's mode), for the table. */
  mode?: () => string;
  /** write(2)s per run (default WRITES): fewer for variants that slow every instruction down. */
  writes?: number;
}

interface Measured {
  ms: number[];
  hitsPerRun: number;
  /** CPU time of the variant's registration (ms). */
  setupMs: number;
}

class Rig {
  readonly m: Machine;
  readonly kprobes: Kprobes;

  constructor(
    readonly target: Target,
    readonly v: Variant,
  ) {
    this.m = new Machine({ target, cpus: 1, seed: 1, stdout: () => {}, report: (l) => process.stderr.write(`${l}\n`) });
    this.kprobes = new Kprobes(this.m);
  }

  setupMs = 0;

  async init(): Promise<void> {
    const t0 = cpuMs();
    await this.v.setup?.(this.m, this.kprobes);
    this.setupMs = cpuMs() - t0;
    // A whole discarded run first: the host JIT needs some 20,000 system calls before a run's
    // time settles (it halves from the first run to the tenth); the variants' runs add up to that.
    await this.run();
  }

  get writes(): number {
    return this.v.writes ?? WRITES;
  }

  /** Spawn the workload and time its run; returns ms and the hits it produced. */
  async run(writes = this.writes): Promise<{ ms: number; hits: number }> {
    const proc = this.m.spawn(program(this.target), ['writes', String(writes)]);
    this.v.attach?.(proc.mm.engine);
    const before = this.v.hits();
    collectGarbage();
    const t0 = cpuMs();
    const r = await this.m.runAsync();
    const ms = cpuMs() - t0;
    if (r.status !== 0) throw new Error(`bench/kprobes: ${this.target} ${this.v.label}: writes exited ${r.status}`);
    return { ms, hits: this.v.hits() - before };
  }

  close(): void {
    this.m.close();
  }
}

/** Runs every variant `rounds` times, interleaved; one machine per variant. */
async function measureAll(target: Target, variants: Variant[], rounds = KRUNS): Promise<Measured[]> {
  const rigs: Rig[] = [];
  try {
    for (const v of variants) {
      const rig = new Rig(target, v);
      rigs.push(rig);
      await rig.init();
    }
    const out: Measured[] = rigs.map((rig) => ({ ms: [], hitsPerRun: 0, setupMs: rig.setupMs }));
    for (let r = 0; r < rounds; r++) {
      // Each round starts one variant later, so no variant always follows the same neighbour.
      for (let k = 0; k < rigs.length; k++) {
        const i = (k + r) % rigs.length;
        const { ms, hits } = await rigs[i]!.run();
        out[i]!.ms.push(ms);
        out[i]!.hitsPerRun = hits;
      }
    }
    return out;
  } finally {
    for (const r of rigs) r.close();
  }
}

// --- probe helpers -----------------------------------------------------------------------------

/** Where a probe on the symbol lands (ppc64 ELFv2: the local entry, as register_kprobe does). */
function entryOf(m: Machine, name: string): bigint {
  const s = m.kernel.symbol(name);
  if (!s) throw new Error(`bench/kprobes: no ${name} in the ${m.arch.target} kernel image`);
  return s.localEntry ?? s.codeAddress;
}

/** Instruction starts of a kernel function (original text). */
function instructionStarts(m: Machine, kprobes: Kprobes, name: string): bigint[] {
  const f = m.kernel.elf.functions().find((s) => s.name === name);
  if (!f) throw new Error(`bench/kprobes: no function ${name} in the ${m.arch.target} kernel image`);
  const end = f.codeAddress + f.size;
  const out: bigint[] = [];
  for (let pc = f.codeAddress; pc < end; ) {
    out.push(pc);
    if (m.arch.family !== 'x86') {
      pc += 4n;
      continue;
    }
    const insn = kprobes.arch.decode(pc, m.kernel.elf.textBytesAt(pc, Number(end - pc < 15n ? end - pc : 15n)));
    if (!insn) throw new Error(`bench/kprobes: cannot decode ${m.kernelSymbolize(pc)}`);
    pc += BigInt(insn.length);
  }
  return out;
}

/** Mode the arch would give a probe at `addr` (emulate / boost / step), or the refusal. */
function modeAt(m: Machine, kprobes: Kprobes, addr: bigint, hasPostHandler: boolean): string {
  // As the kprobes core reads it: at most maxInsnLength bytes, clipped at the end of the text.
  const len = Math.min(kprobes.arch.maxInsnLength, Number(m.kernel.textEnd - addr));
  const p = kprobes.arch.prepareKprobe(addr, m.kernel.elf.textBytesAt(addr, len), { hasPostHandler });
  return isRefusal(p) ? `refused (-${p.errno})` : p.mode;
}

/** The first instruction of ksys_write the arch emulates (its call to vfs_write), if any. */
function emulatedInKsysWrite(m: Machine, kprobes: Kprobes): bigint | undefined {
  return instructionStarts(m, kprobes, 'ksys_write').find((a) => modeAt(m, kprobes, a, false) === 'emulate');
}

/** Cold probe sites: instructions of the padding functions that register without refusal. */
function padSites(m: Machine, kprobes: Kprobes, n: number): bigint[] {
  const out: bigint[] = [];
  if (n <= 0) return out;
  for (const f of m.kernel.elf.functions()) {
    if (!f.name.startsWith('bench_pad_')) continue;
    for (const a of instructionStarts(m, kprobes, f.name)) {
      const mode = modeAt(m, kprobes, a, false);
      // Slot-using modes only: every cold probe then costs what a typical probe costs to hold.
      if (mode === 'step' || mode === 'boost') out.push(a);
      if (out.length === n) return out;
    }
  }
  throw new Error(`bench/kprobes: only ${out.length} padding sites in the ${m.arch.target} kernel image (rebuild fixtures/kernel?)`);
}

async function mustRegister(m: Machine, kprobes: Kprobes, kps: Kprobe[]): Promise<void> {
  const rc = await m.kernelCall('bench-register', (t) => kprobes.registerBatch(t, kps));
  if (rc !== 0) throw new Error(`bench/kprobes: ${m.arch.target}: register_kprobes failed with ${rc}`);
}

// --- Unicorn hooks beyond the wrapper's reach ------------------------------------------------

/**
 * Engine.hookCode registers one koffi callback per hook, and koffi allows 8,192 registered
 * callbacks per process, so 10,000 one-address hooks cannot all be made through it. The cold
 * hooks of the scaling rows are never called anyway: they all share one registered no-op
 * callback, added through this file's own uc_hook_add binding on the engine's handle. Unicorn
 * keeps them in the same per-type list as the wrapper's hooks, which is what the rows measure.
 */
let coldHookFn: { add: (engine: Engine, addr: bigint) => void; release: () => void } | undefined;
function coldHooks(): NonNullable<typeof coldHookFn> {
  if (coldHookFn) return coldHookFn;
  const uc = koffi.load(UNICORN_LIBRARY);
  const proto = koffi.pointer(koffi.proto('void bench_uc_cb_code(uint64_t uc, uint64_t address, uint32_t size, void *ud)'));
  const hookAdd = uc.func('int uc_hook_add(uint64_t uc, _Out_ size_t *hh, int type, void *callback, void *user_data, uint64_t begin, uint64_t end, ...)');
  const cb = koffi.register(() => {
    throw new Error('bench/kprobes: a cold padding hook was executed');
  }, proto);
  coldHookFn = {
    add(engine, addr) {
      const handle = (engine as unknown as { handle?: unknown }).handle;
      if (typeof handle !== 'bigint' || handle === 0n) throw new Error('bench/kprobes: Engine no longer keeps its uc handle in `handle`; update coldHooks()');
      const out: unknown[] = [null];
      const err = hookAdd(handle, out, UC_HOOK.CODE, cb, null, addr, addr) as number;
      if (err !== 0) throw new Error(`bench/kprobes: uc_hook_add failed (${err})`);
    },
    release: () => koffi.unregister(cb),
  };
  return coldHookFn;
}

// --- the three sections --------------------------------------------------------------------------

interface HitRow {
  label: string;
  mode: string;
  hits: number;
  ms: number;
  /** µs per hit over the unprobed run. */
  perHit: number;
}

async function perHit(target: Target): Promise<{ unprobedMs: number; perWriteUs: number; rows: HitRow[] }> {
  // Addresses and applicable modes, from a machine of this target (every machine agrees).
  let hot = 0n;
  let boostable = false;
  let emulated: bigint | undefined;
  {
    const m = new Machine({ target, stdout: () => {} });
    try {
      const k = new Kprobes(m);
      hot = entryOf(m, 'ksys_write');
      boostable = modeAt(m, k, hot, false) === 'boost';
      emulated = emulatedInKsysWrite(m, k);
    } finally {
      m.close();
    }
  }
  let hookHits = 0;
  const probeVariant = (label: string, make: () => Kprobe): Variant => {
    let kp: Kprobe | undefined;
    return {
      label,
      async setup(m, kprobes) {
        kp = make();
        await mustRegister(m, kprobes, [kp]);
      },
      hits: () => kp?.nhit ?? 0,
      mode: () => kp?.ainsn?.prep.mode ?? '',
    };
  };
  let retHits = 0;
  let retMode = '';
  const variants: Array<Variant | string> = [
    { label: 'unprobed', hits: () => 0 },
    { label: 'bare UC_HOOK_CODE', attach: (e) => void e.hookCode(() => void hookHits++, hot, hot), hits: () => hookHits, mode: () => 'hook' },
    probeVariant('kprobe, stepped (pre+post)', () => new Kprobe({ addr: hot, preHandler: () => 0, postHandler: () => {} })),
    // Variants that do not apply to this target are named but not run.
    boostable ? probeVariant('kprobe, boosted (pre only)', () => new Kprobe({ addr: hot, preHandler: () => 0 })) : 'kprobe, boosted (pre only)',
    emulated !== undefined ? probeVariant('kprobe, emulated (call)', () => new Kprobe({ addr: emulated, preHandler: () => 0 })) : 'kprobe, emulated (call)',
    {
      label: 'kretprobe',
      async setup(m, kprobes) {
        const krp = new Kretprobes(kprobes);
        const rp = new Kretprobe({ addr: hot, handler: () => void retHits++ });
        const rc = await m.kernelCall('bench-kretprobe', (t) => krp.register(t, rp));
        if (rc !== 0) throw new Error(`bench/kprobes: ${target}: register_kretprobe failed with ${rc}`);
        retMode = `${rp.kp.ainsn!.prep.mode}+trampoline`;
      },
      hits: () => retHits,
      mode: () => retMode,
    },
  ];
  const run = variants.filter((v): v is Variant => typeof v !== 'string');
  const res = await measureAll(target, run);
  const base = median(res[0]!.ms);
  const rows: HitRow[] = variants.map((v) => {
    if (typeof v === 'string') return { label: v, mode: 'n/a', hits: 0, ms: NaN, perHit: NaN };
    const r = res[run.indexOf(v)]!;
    return { label: v.label, mode: v.mode?.() ?? '', hits: r.hitsPerRun, ms: median(r.ms), perHit: perHitUs(r, res[0]!) };
  });
  return { unprobedMs: base, perWriteUs: (base * 1000) / WRITES, rows };
}

/**
 * Per-hit cost with N probes (hooks) registered. Unicorn's hooks get a smaller workload at
 * N = 10,000: they slow down every executed instruction, not only the hit (see the table's
 * note), and a full workload would take minutes. Each write count has its own unprobed baseline.
 */
async function scaling(target: Target): Promise<{ kprobe: number[]; hook: number[]; hits: number[]; registerMs: number[]; walked: number[] }> {
  const heavy = HEAVY_WRITES;
  const hookWrites = (n: number) => (n >= 1000 ? heavy : SCALE_WRITES);
  const variants: Variant[] = [
    { label: 'unprobed', hits: () => 0, writes: SCALE_WRITES },
    { label: 'unprobed (short)', hits: () => 0, writes: heavy },
  ];
  const walked: number[] = [];
  for (const n of SCALE) {
    let hot: Kprobe | undefined;
    variants.push({
      label: `kprobes ${n}`,
      writes: SCALE_WRITES,
      async setup(m, kprobes) {
        hot = new Kprobe({ addr: entryOf(m, 'ksys_write'), preHandler: () => 0, postHandler: () => {} });
        const cold = padSites(m, kprobes, n - 1).map((addr) => new Kprobe({ addr, preHandler: () => 0 }));
        // The hot probe first: buckets add at the head, so it ends up behind every later probe
        // of its bucket — the worst place, and the one the "walked" column counts.
        await mustRegister(m, kprobes, [hot, ...cold]);
        let pos = 1;
        for (const p of kprobes.table.bucket(hot.addr!).values()) {
          if (p === hot) break;
          pos++;
        }
        walked.push(pos);
      },
      hits: () => hot?.nhit ?? 0,
    });
  }
  for (const n of SCALE) {
    let hits = 0;
    let hotAddr = 0n;
    let cold: bigint[] = [];
    variants.push({
      label: `hooks ${n}`,
      writes: hookWrites(n),
      async setup(m, kprobes) {
        hotAddr = entryOf(m, 'ksys_write');
        cold = padSites(m, kprobes, n - 1);
      },
      attach(e) {
        e.hookCode(() => void hits++, hotAddr, hotAddr);
        const add = coldHooks().add;
        for (const a of cold) add(e, a);
      },
      hits: () => hits,
    });
  }
  // The effects here are large (µs to ms per hit): RUNS rounds are enough, and keep the time down.
  const res = await measureAll(target, variants, RUNS);
  const base = new Map(variants.slice(0, 2).map((v, i) => [v.writes!, res[i]!]));
  const per = (i: number) => perHitUs(res[i]!, base.get(variants[i]!.writes!)!);
  return {
    kprobe: SCALE.map((_, j) => per(2 + j)),
    hook: SCALE.map((_, j) => per(2 + SCALE.length + j)),
    hits: variants.map((_, i) => res[i]!.hitsPerRun),
    registerMs: SCALE.map((_, j) => res[2 + j]!.setupMs),
    walked,
  };
}

interface BatchFigures {
  regOne: number;
  regBatch: number;
  unregOne: number;
  unregBatch: number;
  gpOne: number;
  gpBatch: number;
}

/** µs per probe to register / unregister BATCH probes, one by one and as one batch. */
async function batch(target: Target): Promise<BatchFigures> {
  const once = async (batched: boolean) => {
    // Two vCPUs: a grace period then has another CPU to wait for, as on any real machine.
    const m = new Machine({ target, cpus: 2, seed: 1, stdout: () => {} });
    try {
      m.spawn(program(target), ['writes', '10']);
      const kprobes = new Kprobes(m);
      const kps = padSites(m, kprobes, BATCH).map((addr) => new Kprobe({ addr, preHandler: () => 0 }));
      let t0 = cpuMs();
      const rc = await m.kernelCall('bench-register', async (t) => {
        if (batched) return kprobes.registerBatch(t, kps);
        for (const kp of kps) {
          const r = await kprobes.register(t, kp);
          if (r) return r;
        }
        return 0;
      });
      const reg = ((cpuMs() - t0) * 1000) / BATCH;
      if (rc !== 0) throw new Error(`bench/kprobes: ${target}: registration failed with ${rc}`);
      const gp0 = m.sync.rcu.gracePeriods;
      t0 = cpuMs();
      await m.kernelCall('bench-unregister', async (t) => {
        if (batched) return kprobes.unregisterBatch(t, kps);
        for (const kp of kps) await kprobes.unregister(t, kp);
      });
      const unreg = ((cpuMs() - t0) * 1000) / BATCH;
      if (kprobes.list().length) throw new Error(`bench/kprobes: ${target}: probes left after unregistering`);
      // The workload still runs correctly on the restored text.
      const r = await m.runAsync();
      if (r.status !== 0) throw new Error(`bench/kprobes: ${target}: writes exited ${r.status} after unregistering`);
      return { reg, unreg, gps: m.sync.rcu.gracePeriods - gp0 };
    } finally {
      m.close();
    }
  };
  await once(true); // warm-up
  const one: Array<Awaited<ReturnType<typeof once>>> = [];
  const bat: typeof one = [];
  for (let r = 0; r < RUNS; r++) {
    one.push(await once(false));
    bat.push(await once(true));
  }
  return {
    regOne: median(one.map((x) => x.reg)),
    regBatch: median(bat.map((x) => x.reg)),
    unregOne: median(one.map((x) => x.unreg)),
    unregBatch: median(bat.map((x) => x.unreg)),
    gpOne: one[0]!.gps,
    gpBatch: bat[0]!.gps,
  };
}

// --- report ------------------------------------------------------------------------------------

const f1 = (x: number, w: number) => (Number.isFinite(x) ? x.toFixed(2) : '—').padStart(w);
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(1)}x` : '—');

export async function benchKprobes(): Promise<void> {
  let sectionStart = performance.now();
  const took = () => {
    const s = ((performance.now() - sectionStart) / 1000).toFixed(0);
    sectionStart = performance.now();
    return `  (section wall time ${s} s)`;
  };
  const targets = TARGETS.filter((t) => existsSync(program(t)));
  for (const t of TARGETS) if (!targets.includes(t)) console.log(`kprobes: ${program(t)} missing (make -C bench/guest)`);
  console.log(`\nkprobes (1): per-hit cost on ksys_write; bench/guest/<target>/writes, ${WRITES} write(2)s; host CPU time, median of ${KRUNS} rounds`);
  console.log('  µs/hit = (run time with the probe − run time unprobed, same round) / hits; vs hook = µs/hit ÷ the bare hook\'s;');
  console.log('  run + = extra run time over the unprobed run (one hit per write(2), so also the cost added to each system call)');
  const summary: string[] = [];
  for (const t of targets) {
    const r = await perHit(t);
    console.log(`\n  ${t}: unprobed ${r.unprobedMs.toFixed(1)} ms = ${r.perWriteUs.toFixed(2)} µs per write(2)`);
    console.log('    variant                      mode                hits      ms   µs/hit  vs hook   run +');
    const hook = r.rows.find((x) => x.label.startsWith('bare'))!.perHit;
    for (const row of r.rows.slice(1)) {
      const plus = Number.isFinite(row.ms) ? `${(((row.ms - r.unprobedMs) / r.unprobedMs) * 100).toFixed(0)}%` : '—';
      console.log(
        `    ${row.label.padEnd(28)} ${row.mode.padEnd(18)} ${String(row.hits || '—').padStart(5)} ${f1(row.ms, 7)} ${f1(row.perHit, 8)} ${ratio(row.perHit, hook).padStart(8)} ${plus.padStart(7)}`,
      );
    }
    const get = (p: string) => r.rows.find((x) => x.label.startsWith(p))!.perHit;
    summary.push(
      `  ${t.padEnd(8)} ${ratio(get('kprobe, stepped'), hook).padStart(8)} ${ratio(get('kprobe, boosted'), hook).padStart(8)} ${ratio(get('kprobe, emulated'), hook).padStart(9)} ${ratio(get('kretprobe'), hook).padStart(10)}`,
    );
  }
  if (summary.length) console.log(`\nkprobes: per-hit cost ÷ the bare UC_HOOK_CODE hook's\n  target    stepped  boosted  emulated  kretprobe\n${summary.join('\n')}`);
  console.log(took());

  const scaleTargets = SCALE_TARGETS.filter((t) => targets.includes(t));
  if (scaleTargets.length) {
    console.log(`\nkprobes (2): µs per hit of one probe on ksys_write with N registered (the other N−1 on bench_pad_*, never hit);`);
    console.log(`  ${SCALE_WRITES} write(2)s, median of ${RUNS} rounds. kprobes: the hot one stepped (pre+post), the others pre-only, all armed.`);
    console.log(`  hooks: one-address UC_HOOK_CODE hooks, the hot one through Engine.hookCode; hooks ${SCALE.at(-1)} runs ${HEAVY_WRITES} write(2)s (note below).`);
    const n0 = SCALE[0]!;
    const n1 = SCALE.at(-1)!;
    console.log(
      `  target  ${SCALE.map((n) => `kprobes ${n}`.padStart(14)).join('')} ${SCALE.map((n) => `hooks ${n}`.padStart(12)).join('')}  kprobes ${n1}−${n0}  hooks ${n1}−${n0}  walked ${n1}  register ${n1} kprobes`,
    );
    for (const t of scaleTargets) {
      const s = await scaling(t);
      console.log(
        `  ${t.padEnd(7)} ${s.kprobe.map((x) => f1(x, 14)).join('')} ${s.hook.map((x) => f1(x, 12)).join('')}  ${f1(s.kprobe.at(-1)! - s.kprobe[0]!, 15)}  ${f1(s.hook.at(-1)! - s.hook[0]!, 13)}  ${String(s.walked.at(-1)).padStart(12)}  ${(s.registerMs.at(-1)! / 1000).toFixed(1).padStart(18)} s`,
      );
    }
    coldHookFn?.release();
    console.log('  note: the run loop gives uc_emu_start an instruction count (scheduler quanta), and Unicorn counts with a code hook on');
    console.log('  every instruction, so every executed instruction walks the whole code-hook list: N Unicorn hooks slow down every');
    console.log('  instruction, hit or not. kprobes trap through the one interrupt hook; an armed probe that is not hit costs nothing,');
    console.log(`  but a hit looks its address up in the 64-bucket kprobe table: "walked ${n1}" = table entries get_kprobe passes to find`);
    console.log('  the hot probe (registered first, so last in its bucket); an even spread would be about N/64.');
    console.log(took());
  }

  console.log(`\nkprobes (3): register / unregister ${BATCH} probes on bench_pad_*, µs per probe; 2 vCPUs; median of ${RUNS}`);
  console.log('  target    register: 1-by-1   batch  ratio   unregister: 1-by-1   batch  ratio   grace periods 1-by-1 / batch');
  for (const t of targets) {
    const b = await batch(t);
    console.log(
      `  ${t.padEnd(8)} ${f1(b.regOne, 18)} ${f1(b.regBatch, 7)} ${ratio(b.regOne, b.regBatch).padStart(6)} ${f1(b.unregOne, 20)} ${f1(b.unregBatch, 7)} ${ratio(b.unregOne, b.unregBatch).padStart(6)}   ${String(b.gpOne).padStart(10)} / ${b.gpBatch}`,
    );
  }
  console.log(took());
}

// Run alone: `npx tsx bench/kprobes.ts`.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await benchKprobes();
