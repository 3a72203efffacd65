/**
 * The kprobes benchmark, part of `npm run bench`; alone: `npx tsx bench/kprobes.ts [--json PATH]`.
 *
 * Workload: bench/guest/<target>/writes, N one-byte write(2)s, so ksys_write in the guest kernel
 * runs N times (+1 for the closing printf). Only the guest run is timed: machine set-up and probe
 * registration are not (registration has its own section). Timing: bench/harness.ts (CPU time,
 * interleaved rounds, each variant's fastest third). Every figure is printed as a ratio of two
 * measurements of the same run, and written to the results file (harness.ts resultsPath).
 *
 * 1. Per-hit cost on ksys_write, as a multiple of a bare one-address UC_HOOK_CODE hook with an
 *    empty callback on the same instruction (what an emulator-hook tool pays):
 *    - a stepped kprobe (pre + post handler: the copy runs in the slot, second trap): at the
 *      entry on x86 and sparc64, at ksys_write's first instruction ppc does not emulate first,
 *    - a kprobe with a pre handler only at the entry, what a kprobe event is: boosted on x86 (the
 *      slot jumps back by itself), emulated by try_to_emulate on ppc (mflr/stwu), stepped on
 *      sparc64 (one trap into JavaScript: the engine finishes the step natively),
 *    - an emulated kprobe on the `call`/`bl` to vfs_write (x86, ppc; sparc64 emulates only rd %pc),
 *    - a kretprobe on ksys_write's entry (entry trap + return trampoline trap);
 *    and pre-only / emulated as a multiple of stepped (they skip a trap into JavaScript, so must be cheaper).
 * 2. Per-hit cost of the stepped probe of section 1 while 100 and 10,000 probes are registered,
 *    as a multiple of the cost with 1 (the others sit on fixtures/kernel/bench_pad.c, armed, never
 *    executed); the unprobed run with the 9,999 cold probes armed over the same run with them
 *    disarmed (code that is not probed must not slow down); the same scaling for N one-address
 *    Unicorn code hooks.
 * Variants are compared within one machine wherever they can be (see Variant), with an A/A
 * control (the same unprobed run twice) printed beside the whole-run ratios.
 * 3. Registering and unregistering 1,000 probes one by one vs register/unregisterBatch.
 *
 * Environment: BENCH_RUNS (runs of section 3, default 3), BENCH_KPROBES_RUNS (rounds of
 * section 1, default max(4 × BENCH_RUNS, 12); section 2: max(3 × BENCH_RUNS, 9)), BENCH_KPROBES_WRITES (10,000), BENCH_KPROBES_SCALE_WRITES
 * (8,000), BENCH_KPROBES_HEAVY_WRITES (30: the run with 10,000 Unicorn hooks), BENCH_KPROBES_TARGETS and BENCH_KPROBES_SCALE_TARGETS (comma lists; default all five).
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import { Machine } from '../src/kernel/machine.js';
import { readElfFileSync } from '../src/elf/index.js';
import { Kprobes } from '../src/kprobes/kprobes.js';
import { Kprobe } from '../src/kprobes/kprobe.js';
import { Kretprobe, Kretprobes } from '../src/kprobes/kretprobe.js';
import { UC_HOOK, UNICORN_LIBRARY, type Engine } from '../src/emu/unicorn.js';
import { supportedTargets } from '../arch/index.js';
import { isRefusal } from '../arch/probes.js';
import type { Target } from '../arch/types.js';
import type { Kthread } from '../src/sync/index.js';
import { collectGarbage, cpuMs, fixed, low, median, perHitUs, ratio, ratioValue, recordResults, rounds, type Rig, type Samples } from './harness.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** Rounds of section 1: a per-hit figure is a small difference of two times. */
const KRUNS = Number(process.env.BENCH_KPROBES_RUNS ?? Math.max(4 * RUNS, 12));
/** Rounds of section 2 (its per-hit figures are differences too). */
const SRUNS = Math.max(3 * RUNS, 9);
const WRITES = Number(process.env.BENCH_KPROBES_WRITES ?? 10000);
const ALL: Target[] = ['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'];
const fromEnv = (name: string, dflt: Target[]): Target[] =>
  (process.env[name] ? (process.env[name]!.split(',') as Target[]) : dflt).filter((t) => supportedTargets().includes(t));
const TARGETS = fromEnv('BENCH_KPROBES_TARGETS', ALL);
const SCALE_TARGETS = fromEnv('BENCH_KPROBES_SCALE_TARGETS', TARGETS);
const SCALE = [1, 100, 10_000];
/** fib(FIB) in bench/guest/<target>/calls: ~75,000 calls, the hook reference's workload. */
const FIB = String(Number(process.env.BENCH_KPROBES_FIB ?? 24));
/**
 * write(2)s per scaling run. A per-hit figure there is a difference of two runs: with 3,000 the
 * N = 10,000 ÷ N = 1 ratio of one target read anywhere from 0.61× to 1.16× between full benches;
 * with 8,000 two runs in a row read 1.15× and 1.01×.
 */
const SCALE_WRITES = Number(process.env.BENCH_KPROBES_SCALE_WRITES ?? 8000);
/** write(2)s for 10,000 Unicorn hooks: each costs milliseconds there, so a few dozen are plenty. */
const HEAVY_WRITES = Number(process.env.BENCH_KPROBES_HEAVY_WRITES ?? 30);
const BATCH = 1000;
const program = (t: Target) => join(root, 'bench', 'guest', t, 'writes');

// --- machines and variants -------------------------------------------------------------------

/**
 * One way of instrumenting the workload. Variants that share a machine are compared within it:
 * between two machines built alike, whole runs differed by up to 15% (JIT and heap placement),
 * more than a probe's cost; within one machine the probe is switched on and off between runs.
 */
interface Variant {
  label: string;
  /** Before each run, untimed (register, enable, arm…). */
  apply?: (m: Machine, kprobes: Kprobes) => Promise<void>;
  /** Per spawned process (Unicorn hooks belong to the process's engine). */
  attach?: (engine: Engine) => void;
  /** After each run, untimed. */
  remove?: (m: Machine, kprobes: Kprobes) => Promise<void>;
  /** Hits so far (cumulative). */
  hits: () => number;
  /** What kind of probe this turned out to be (the arch's mode), for the table. */
  mode?: () => string;
  /** write(2)s per run (default WRITES): fewer for variants that slow every instruction down. */
  writes?: number;
  /** Another workload: bench/guest/<target>/<program> with these arguments (the hook reference). */
  other?: { program: string; args: string[] };
}

/** A machine shared by several variants, set up once (cold probes). */
class Bench {
  readonly m: Machine;
  readonly kprobes: Kprobes;
  setupMs = 0;

  constructor(readonly target: Target) {
    this.m = new Machine({ target, cpus: 1, seed: 1, stdout: () => {}, report: (l) => process.stderr.write(`${l}\n`) });
    // Traps only: this benchmark measures the breakpoint paths (bench/optprobes.ts the jumps).
    this.kprobes = new Kprobes(this.m, { optimization: false });
  }

  async setup(fn?: (m: Machine, kprobes: Kprobes) => Promise<void>): Promise<this> {
    const t0 = cpuMs();
    await fn?.(this.m, this.kprobes);
    this.setupMs = cpuMs() - t0;
    return this;
  }

  rig(v: Variant): Rig {
    return {
      label: v.label,
      run: async () => {
        await v.apply?.(this.m, this.kprobes);
        const proc = v.other
          ? this.m.spawn(join(root, 'bench', 'guest', this.target, v.other.program), [v.other.program, ...v.other.args])
          : this.m.spawn(program(this.target), ['writes', String(v.writes ?? WRITES)]);
        v.attach?.(proc.mm.engine);
        const before = v.hits();
        collectGarbage();
        const t0 = cpuMs();
        const r = await this.m.runAsync();
        const ms = cpuMs() - t0;
        const hits = v.hits() - before;
        await v.remove?.(this.m, this.kprobes);
        if (r.status !== 0) throw new Error(`bench/kprobes: ${this.target} ${v.label}: writes exited ${r.status}`);
        return { ms, hits };
      },
      close: () => undefined,
    };
  }

  close(): void {
    this.m.close();
  }
}

const call = (m: Machine, what: string, fn: (t: Kthread) => Promise<number | void>): Promise<void> =>
  m.kernelCall(what, fn).then((rc) => {
    if (typeof rc === 'number' && rc !== 0) throw new Error(`bench/kprobes: ${m.arch.target}: ${what} failed with ${rc}`);
  });

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
    if (kprobes.arch.maxInsnLength === 4) {
      pc += 4n; // fixed width: no need to decode
      continue;
    }
    const insn = kprobes.arch.decode(pc, m.kernel.elf.textBytesAt(pc, Number(end - pc < 15n ? end - pc : 15n)));
    if (!insn) throw new Error(`bench/kprobes: cannot decode ${m.kernelSymbolize(pc)}`);
    pc += BigInt(insn.length);
  }
  return out;
}

/**
 * Mode the arch would give a probe at `addr` (emulate / boost / step, or "emulate-first" for a
 * step that ppc's try_to_emulate carries out at the hit), or the refusal.
 */
function modeAt(m: Machine, kprobes: Kprobes, addr: bigint, hasPostHandler: boolean): string {
  // As the kprobes core reads it: at most maxInsnLength bytes, clipped at the end of the text.
  const len = Math.min(kprobes.arch.maxInsnLength, Number(m.kernel.textEnd - addr));
  const p = kprobes.arch.prepareKprobe(addr, m.kernel.elf.textBytesAt(addr, len), { hasPostHandler });
  if (isRefusal(p)) return `refused (-${p.errno})`;
  return p.tryEmulate ? 'emulate-first' : p.mode;
}

/**
 * The first instruction of ksys_write a probe with a post handler single-steps: its entry on x86
 * and sparc64; on ppc, whose kprobes emulate the entry's mflr/stwu/std (try_to_emulate), the
 * first one emulate_step is not tried on here.
 */
function steppedInKsysWrite(m: Machine, kprobes: Kprobes): bigint {
  const a = instructionStarts(m, kprobes, 'ksys_write').find((x) => modeAt(m, kprobes, x, true) === 'step');
  if (a === undefined) throw new Error(`bench/kprobes: no stepped instruction in ${m.arch.target}'s ksys_write`);
  return a;
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
      if (mode === 'step' || mode === 'boost' || mode === 'emulate-first') out.push(a);
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

// --- 1. per hit ------------------------------------------------------------------------------------

interface HitRow {
  label: string;
  mode: string;
  hits: number;
  /** µs per hit over the unprobed run. */
  us: number;
}

const LABELS = { hook: 'bare UC_HOOK_CODE (fib entry)', step: 'kprobe, stepped (pre+post)', boost: 'kprobe, pre only', emulate: 'kprobe, emulated (call)', ret: 'kretprobe' } as const;

async function perHit(target: Target): Promise<{ unprobedMs: number; control: number; rows: HitRow[] }> {
  const b = await new Bench(target).setup();
  try {
    const { m, kprobes: k } = b;
    const hot = entryOf(m, 'ksys_write');
    const stepped = steppedInKsysWrite(m, k);
    const emulated = emulatedInKsysWrite(m, k);
    let hookHits = 0;
    /** A probe registered before each run and unregistered after it. */
    const probeVariant = (label: string, make: () => Kprobe): Variant => {
      let kp: Kprobe | undefined;
      let mode = '';
      return {
        label,
        apply: async (mm, kprobes) => {
          kp = make();
          await call(mm, 'bench-register', (t) => kprobes.register(t, kp!));
          const prep = kp.ainsn?.prep;
          mode = prep?.tryEmulate ? 'emulate-first' : (prep?.mode ?? '');
        },
        remove: (mm, kprobes) => call(mm, 'bench-unregister', (t) => kprobes.unregister(t, kp!)),
        hits: () => kp?.nhit ?? 0,
        mode: () => mode,
      };
    };
    let retHits = 0;
    let retMode = '';
    let rp: Kretprobe | undefined;
    const krp = new Kretprobes(k);
    // The reference: a bare one-address code hook with an empty callback, measured where its hits
    // dominate the run (fib's entry in bench/guest/<target>/calls, as bench/uprobes.ts measures
    // it). On ksys_write, 3,000 hits cost ~0.7 ms in a ~25 ms run, within the run-to-run noise:
    // the hook measured there came out anywhere from 0.03 to 0.44 µs in one afternoon.
    const fib = readElfFileSync(join(root, 'bench', 'guest', target, 'calls')).symbolByName('fib')!.localEntry;
    const calls = { program: 'calls', args: [FIB] };
    const variants: Array<Variant | string> = [
      { label: 'unprobed', hits: () => 0 },
      // An A/A control: the same unprobed run again. Its ratio to the first is the noise of the run.
      { label: 'unprobed again', hits: () => 0 },
      { label: 'calls, unprobed', hits: () => 0, other: calls },
      { label: LABELS.hook, attach: (e) => void e.hookCode(() => void hookHits++, fib, fib), hits: () => hookHits, mode: () => 'hook', other: calls },
      probeVariant(LABELS.step, () => new Kprobe({ addr: stepped, preHandler: () => 0, postHandler: () => {} })),
      // Variants that do not apply to this target are named but not run.
      probeVariant(LABELS.boost, () => new Kprobe({ addr: hot, preHandler: () => 0 })),
      emulated !== undefined ? probeVariant(LABELS.emulate, () => new Kprobe({ addr: emulated, preHandler: () => 0 })) : LABELS.emulate,
      {
        label: LABELS.ret,
        apply: async (mm) => {
          rp = new Kretprobe({ addr: hot, handler: () => void retHits++ });
          await call(mm, 'bench-kretprobe', (t) => krp.register(t, rp!));
          retMode = `${rp.kp.ainsn!.prep.mode}+trampoline`;
        },
        remove: (mm) => call(mm, 'bench-unregister-kretprobe', (t) => krp.unregister(t, rp!)),
        hits: () => retHits,
        mode: () => retMode,
      },
    ];
    const run = variants.filter((v): v is Variant => typeof v !== 'string');
    const samples = await rounds(run.map((v) => b.rig(v)), KRUNS);
    const base = samples[0]!;
    const rows: HitRow[] = variants.slice(3).map((v) => {
      if (typeof v === 'string') return { label: v, mode: 'n/a', hits: 0, us: NaN };
      const sm = samples[run.indexOf(v)]!;
      return { label: v.label, mode: v.mode?.() ?? '', hits: sm.hits, us: perHitUs(sm, typeof v !== 'string' && v.other ? samples[2]! : base) };
    });
    return { unprobedMs: low(base.ms), control: low(samples[1]!.ms) / low(base.ms), rows };
  } finally {
    b.close();
  }
}

// --- 2. scaling ------------------------------------------------------------------------------------

interface Scaling {
  /** µs per hit of the hot probe with SCALE[i] registered. */
  kprobe: number[];
  /** Run time with the SCALE.at(-1) − 1 cold probes armed ÷ with them disarmed (same machine). */
  coldRun: number;
  /** The same unprobed run twice in one machine (the noise of whole-run ratios). */
  control: number;
  hook: number[];
  registerMs: number[];
  walked: number[];
}

/**
 * Per-hit cost with N probes (hooks) registered. One machine per N holds the hot probe and N−1
 * cold ones (the hot one registered first: buckets add at the head, so it is the last of its
 * bucket — the worst place for a walk, and the one the "walked" column counts); the hot probe is
 * enabled for its runs and disabled for the unprobed ones. The cold probes are armed throughout,
 * except in the largest machine's "all disarmed" runs (debugfs `enabled` = 0). Unicorn's hooks get
 * a smaller workload at N = 10,000: they slow down every executed instruction, not only the hit
 * (see the table's note), and a full workload would take minutes.
 */
async function scaling(target: Target): Promise<Scaling> {
  const heavy = HEAVY_WRITES;
  const nMax = SCALE.at(-1)!;
  const walked: number[] = [];
  const benches: Bench[] = [];
  try {
    const rigs: Rig[] = [];
    const labels: string[] = [];
    const add = (b: Bench, v: Variant): void => {
      rigs.push(b.rig(v));
      labels.push(v.label);
    };
    for (const n of SCALE) {
      let hot: Kprobe | undefined;
      const b = await new Bench(target).setup(async (m, kprobes) => {
        hot = new Kprobe({ addr: steppedInKsysWrite(m, kprobes), preHandler: () => 0, postHandler: () => {}, disabled: true });
        const cold = padSites(m, kprobes, n - 1).map((addr) => new Kprobe({ addr, preHandler: () => 0 }));
        await mustRegister(m, kprobes, [hot, ...cold]);
        let pos = 1;
        for (const p of kprobes.table.bucket(hot.addr!).values()) {
          if (p === hot) break;
          pos++;
        }
        walked.push(pos);
      });
      benches.push(b);
      // Not measured: in the interleaved rounds a machine's first run follows another machine's
      // last, and ran ~4% slower for it (sparc64's A/A control read 0.957 in two runs), which put
      // N = 1's per-hit cost ~0.4 µs low. After this short run, every measured run of the machine
      // follows one of its own.
      add(b, { label: `warm-up ${n}`, hits: () => 0, writes: Math.max(100, Math.floor(SCALE_WRITES / 10)) });
      add(b, { label: `unprobed ${n}`, hits: () => 0, writes: SCALE_WRITES });
      add(b, {
        label: `kprobes ${n}`,
        writes: SCALE_WRITES,
        apply: (m, kprobes) => call(m, 'bench-enable', (t) => kprobes.enable(t, hot!)),
        remove: (m, kprobes) => call(m, 'bench-disable', (t) => kprobes.disable(t, hot!)),
        hits: () => hot?.nhit ?? 0,
      });
      if (n === 1) {
        add(b, { label: 'unprobed again', hits: () => 0, writes: SCALE_WRITES });
        add(b, { label: 'unprobed short', hits: () => 0, writes: heavy });
        const hotAddr = entryOf(b.m, 'ksys_write');
        for (const h of SCALE) {
          let hits = 0;
          const cold = padSites(b.m, b.kprobes, h - 1);
          add(b, {
            label: `hooks ${h}`,
            writes: h >= 1000 ? heavy : SCALE_WRITES,
            attach(e) {
              e.hookCode(() => void hits++, hotAddr, hotAddr);
              const addCold = coldHooks().add;
              for (const a of cold) addCold(e, a);
            },
            hits: () => hits,
          });
        }
      }
      if (n === nMax) {
        add(b, {
          label: 'all disarmed',
          writes: SCALE_WRITES,
          apply: (m, kprobes) => call(m, 'bench-disarm', (t) => kprobes.disarmAll(t)),
          remove: (m, kprobes) => call(m, 'bench-arm', (t) => kprobes.armAll(t)),
          hits: () => 0,
        });
      }
    }
    const samples = await rounds(rigs, SRUNS);
    const at = (label: string) => samples[labels.indexOf(label)]!;
    return {
      kprobe: SCALE.map((n) => perHitUs(at(`kprobes ${n}`), at(`unprobed ${n}`))),
      coldRun: low(at(`unprobed ${nMax}`).ms) / low(at('all disarmed').ms),
      control: low(at('unprobed again').ms) / low(at('unprobed 1').ms),
      hook: SCALE.map((n) => perHitUs(at(`hooks ${n}`), n >= 1000 ? at('unprobed short') : at('unprobed 1'))),
      registerMs: benches.map((b) => b.setupMs),
      walked,
    };
  } finally {
    for (const b of benches) b.close();
  }
}

// --- 3. registration -------------------------------------------------------------------------------

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
      const kprobes = new Kprobes(m, { optimization: false });
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

const byLabel = (rows: HitRow[], label: string): HitRow => rows.find((x) => x.label === label)!;

export async function benchKprobes(opts: { record?: boolean } = {}): Promise<Record<string, unknown>> {
  const json: Record<string, unknown> = { writes: WRITES, rounds: KRUNS, scaleWrites: SCALE_WRITES, scaleRounds: SRUNS };
  let sectionStart = performance.now();
  const took = () => {
    const s = ((performance.now() - sectionStart) / 1000).toFixed(0);
    sectionStart = performance.now();
    return `  (section wall time ${s} s)`;
  };
  const targets = TARGETS.filter((t) => existsSync(program(t)));
  for (const t of TARGETS) if (!targets.includes(t)) console.log(`kprobes: ${program(t)} missing (make -C bench/guest)`);
  console.log(`\nkprobes (1): per-hit cost on ksys_write; bench/guest/<target>/writes, ${WRITES} write(2)s; host CPU time, ${KRUNS} interleaved rounds`);
  console.log('  One machine per target; each probe is registered before its runs and unregistered after them (untimed).');
  console.log('  µs/hit = (run time with the probe − run time unprobed) / hits, each the mean of its fastest third of runs;');
  console.log('  vs hook = µs/hit ÷ the bare hook\'s (same rounds); vs stepped = µs/hit ÷ the stepped kprobe\'s');
  const perHitJson: Record<string, unknown> = {};
  const summary: string[] = [];
  for (const t of targets) {
    const r = await perHit(t);
    console.log(
      `\n  ${t}: unprobed ${r.unprobedMs.toFixed(1)} ms = ${((r.unprobedMs * 1000) / WRITES).toFixed(2)} µs per write(2); A/A control (the same unprobed run again ÷ the first) ${ratio(r.control, 1, 3)}`,
    );
    console.log('    variant                      mode                hits   µs/hit  vs hook  vs stepped');
    const hook = byLabel(r.rows, LABELS.hook).us;
    const step = byLabel(r.rows, LABELS.step).us;
    for (const row of r.rows) {
      const vsStep = row.label === LABELS.boost || row.label === LABELS.emulate ? ratio(row.us, step, 2) : '';
      console.log(`    ${row.label.padEnd(28)} ${row.mode.padEnd(18)} ${String(row.hits || "—").padStart(6)} ${fixed(row.us, 8)} ${(row.label === LABELS.hook ? '1.0x' : ratio(row.us, hook)).padStart(8)} ${vsStep.padStart(11)}`);
    }
    const us = (l: string) => byLabel(r.rows, l).us;
    summary.push(
      `  ${t.padEnd(8)} ${ratio(us(LABELS.step), hook).padStart(8)} ${ratio(us(LABELS.boost), hook).padStart(9)} ${ratio(us(LABELS.emulate), hook).padStart(9)} ${ratio(us(LABELS.ret), hook).padStart(10)}   ${ratio(us(LABELS.boost), step, 2).padStart(8)} ${ratio(us(LABELS.emulate), step, 2).padStart(9)}`,
    );
    const num = (x: number) => (Number.isFinite(x) ? +x.toFixed(3) : null);
    perHitJson[t] = {
      unprobedUsPerWrite: num((r.unprobedMs * 1000) / WRITES),
      controlRatio: +r.control.toFixed(4),
      us: Object.fromEntries(r.rows.map((row) => [row.label, num(row.us)])),
      modes: Object.fromEntries(r.rows.map((row) => [row.label, row.mode])),
      vsHook: {
        stepped: ratioValue(us(LABELS.step), hook),
        preOnly: ratioValue(us(LABELS.boost), hook),
        emulated: ratioValue(us(LABELS.emulate), hook),
        kretprobe: ratioValue(us(LABELS.ret), hook),
      },
      vsStepped: { preOnly: ratioValue(us(LABELS.boost), step), emulated: ratioValue(us(LABELS.emulate), step) },
    };
  }
  json.perHit = perHitJson;
  if (summary.length) {
    console.log(`\nkprobes: per-hit cost ÷ the bare UC_HOOK_CODE hook's, and ÷ the stepped kprobe's`);
    console.log(`  target    stepped  pre only  emulated  kretprobe   pre/step emul/step\n${summary.join('\n')}`);
  }
  console.log(took());

  const scaleTargets = SCALE_TARGETS.filter((t) => targets.includes(t));
  if (scaleTargets.length) {
    const n1 = SCALE.at(-1)!;
    console.log(`\nkprobes (2): per-hit cost of the stepped probe on ksys_write with N registered (the other N−1 on bench_pad_*, armed,`);
    console.log(`  never hit), ÷ its cost with N = 1; ${SCALE_WRITES} write(2)s, ${SRUNS} rounds. cold run = the unprobed run with the`);
    console.log(`  ${n1 - 1} cold probes armed ÷ with them disarmed (same machine). hooks: N one-address UC_HOOK_CODE hooks, ÷ N = 1`);
    console.log(`  (hooks ${n1}: ${HEAVY_WRITES} write(2)s). A/A = the same unprobed run twice in one machine: the noise of whole-run ratios.`);
    console.log(`  target   µs/hit N=1  N=100/1  N=${n1}/1  walked  cold run      A/A  register ${n1}   hooks µs N=1  N=100/1  N=${n1}/1`);
    const scaleJson: Record<string, unknown> = {};
    for (const t of scaleTargets) {
      const s = await scaling(t);
      console.log(
        `  ${t.padEnd(8)} ${fixed(s.kprobe[0]!, 10)} ${ratio(s.kprobe[1]!, s.kprobe[0]!, 2).padStart(8)} ${ratio(s.kprobe[2]!, s.kprobe[0]!, 2).padStart(10)} ${String(s.walked.at(-1)).padStart(7)} ${ratio(s.coldRun, 1, 3).padStart(9)} ${ratio(s.control, 1, 3).padStart(8)} ${`${(s.registerMs.at(-1)! / 1000).toFixed(1)} s`.padStart(13)} ${fixed(s.hook[0]!, 14)} ${ratio(s.hook[1]!, s.hook[0]!, 0).padStart(8)} ${ratio(s.hook[2]!, s.hook[0]!, 0).padStart(10)}`,
      );
      scaleJson[t] = {
        kprobeUs: Object.fromEntries(SCALE.map((n, i) => [n, +s.kprobe[i]!.toFixed(3)])),
        kprobeVsOne: Object.fromEntries(SCALE.map((n, i) => [n, ratioValue(s.kprobe[i]!, s.kprobe[0]!)])),
        walkedAtMax: s.walked.at(-1),
        coldRunVsUnprobed: +s.coldRun.toFixed(4),
        controlRatio: +s.control.toFixed(4),
        registerMs: Object.fromEntries(SCALE.map((n, i) => [n, +s.registerMs[i]!.toFixed(1)])),
        hookUs: Object.fromEntries(SCALE.map((n, i) => [n, +s.hook[i]!.toFixed(3)])),
        hookVsOne: Object.fromEntries(SCALE.map((n, i) => [n, ratioValue(s.hook[i]!, s.hook[0]!)])),
      };
    }
    json.scaling = scaleJson;
    coldHookFn?.release();
    console.log('  note: a kprobe hit finds its probe with one index lookup (src/kprobes/table.ts), so N does not matter; "walked" is');
    console.log('  how many entries get_kprobe\'s bucket walk would pass (the hot probe is last in its bucket). Unicorn hooks slow');
    console.log('  down every executed instruction: the run loop gives uc_emu_start an instruction count, which Unicorn counts with');
    console.log('  a code hook on every instruction, and each one walks the whole code-hook list.');
    console.log(took());
  }

  console.log(`\nkprobes (3): register / unregister ${BATCH} probes on bench_pad_*, µs per probe; 2 vCPUs; median of ${RUNS}`);
  console.log('  target    register: 1-by-1   batch  ratio   unregister: 1-by-1   batch  ratio   grace periods 1-by-1 / batch');
  const batchJson: Record<string, unknown> = {};
  for (const t of targets) {
    const b = await batch(t);
    console.log(
      `  ${t.padEnd(8)} ${fixed(b.regOne, 18)} ${fixed(b.regBatch, 7)} ${ratio(b.regOne, b.regBatch).padStart(6)} ${fixed(b.unregOne, 20)} ${fixed(b.unregBatch, 7)} ${ratio(b.unregOne, b.unregBatch).padStart(6)}   ${String(b.gpOne).padStart(10)} / ${b.gpBatch}`,
    );
    batchJson[t] = { ...b, regOneVsBatch: ratioValue(b.regOne, b.regBatch), unregOneVsBatch: ratioValue(b.unregOne, b.unregBatch) };
  }
  json.registration = batchJson;
  console.log(took());
  if (opts.record !== false) console.log(`\nkprobes: figures written to ${recordResults('kprobes', json)}`);
  return json;
}

// Run alone: `npx tsx bench/kprobes.ts [--json PATH]`.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await benchKprobes();
