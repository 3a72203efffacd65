/**
 * The transparency verifier: run a program without probes and again with a read-only uprobe at
 * every instruction of the chosen functions, and compare what a program (or its user) could see.
 *
 * Compared, in the order a divergence is reported (the earliest in the program's own time first):
 * - per thread, the sequence of text instructions executed — ground truth from a UC_HOOK_CODE
 *   over the ELF's executable segments in the unprobed run; in the probed run a probed
 *   instruction is recorded by its handler (exactly once per execution, whatever restarts or
 *   slot steps the hit needs) and every other one by the same code hook;
 * - at each probed instruction, the named registers (the kernel's names for the target) against
 *   the unprobed run's at the same point of the sequence: a broken fixup shows at the next probe;
 * - the registers at every system call entry, which include the exit call;
 * - exit statuses, stdout and stderr, and the writable memory of every process at exit;
 * - per probe, hits == executions (from the sequences).
 * Instructions the kernel refuses to probe are listed with errno and reason (from the placement
 * map, which test/placement checks against registration).
 *
 * This file runs the comparison; the runs are in runs.ts, each aspect's checker in check-*.ts
 * (compare.ts orders them), the options and report types in types.ts, formatting in format.ts.
 */
import { archFor } from '../../arch/index.js';
import type { Target } from '../../arch/types.js';
import { readElfFileSync, type ElfFile } from '../elf/index.js';
import { UniprobeError } from '../errors.js';
import { errnoLabel, UprobePlacer, type MapFunction } from '../placement/placement.js';
import { ensureListings } from '../placement/explain.js';
import { checkExits, checkOutputs } from './check-exits.js';
import { checkHits } from './check-hits.js';
import { checkMemory } from './check-memory.js';
import { checkSequences } from './check-sequence.js';
import { Comparison } from './compare.js';
import { RegisterSet } from './record.js';
import { baselineRun, probedRun, textRanges, type RunPlan } from './runs.js';
import type { ProbeResult, Refusal, VerifyOptions, VerifyReport } from './types.js';

export type { Check, ProbeResult, Refusal, VerifyOptions, VerifyReport } from './types.js';
export { verifyJson, verifyText } from './format.js';

function targetOf(elf: ElfFile): Target {
  const t = elf.target;
  if (!t || !archFor(t)) throw new UniprobeError('ELF', `${elf.file}: not an ELF for a supported target (${elf.machineName})`);
  return t;
}

/** Run both and compare. */
export async function verify(elfPath: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  await ensureListings();
  const elf = readElfFileSync(elfPath);
  const target = targetOf(elf);
  const arch = archFor(target)!;
  const placer = new UprobePlacer(arch, elf);
  const fns: MapFunction[] =
    opts.probes === undefined || opts.probes === 'all'
      ? placer.functions
      : opts.probes.map((n) => {
          const f = placer.functionNamed(n);
          if (!f) throw new UniprobeError('ELF', `${elfPath}: no function named ${n}`);
          return f;
        });
  const skip = new Set((opts.skip ?? []).map((x) => resolveAddr(placer, x, elfPath)));
  const candidates: Array<{ addr: bigint; off: bigint }> = [];
  const dataWords: bigint[] = [];
  for (const f of fns) {
    for (const w of placer.walk(f)) {
      const off = elf.vaddrToOffset(w.addr);
      // Data in text is not an instruction: a probe there corrupts the data (explain warns).
      if (w.data) dataWords.push(w.addr);
      else if (off !== undefined && !skip.has(w.addr)) candidates.push({ addr: w.addr, off });
    }
  }
  const plan: RunPlan = {
    wordSize: arch.wordSize,
    littleEndian: arch.endian === 'little',
    target,
    path: elfPath,
    argv: [elfPath, ...(opts.args ?? [])],
    opts,
    ranges: textRanges(elf),
    regset: new RegisterSet(arch),
    watched: new Set(candidates.map((c) => Number(c.addr))),
    xolSlotBytes: placer.up.xolSlotBytes,
    pageSize: arch.layout.pageSize,
    taskSize: arch.layout.taskSize,
    xolHint: arch.layout.taskSize - BigInt(arch.layout.pageSize),
  };
  // The unprobed run reserves the page each process's XOL area will take: first where the uprobes
  // core puts it when that page is free (XolArea.create's hint), and again with the pages the
  // probed run really used if they differ.
  let base = await baselineRun(plan, 'guess');
  const unprobedSteps = [...base.threads.values()].reduce((n, t) => n + t.addrs.length, 0);
  const { rec: probed, registered, failed } = await probedRun(plan, candidates, opts.maxSteps ?? unprobedSteps * 4 + 100_000);
  if (!sameAreas(base.xolAreas, probed.xolAreas)) base = await baselineRun(plan, probed.xolAreas);

  const refused: Refusal[] = [...failed].map(([addr, errno]) => {
    const v = placer.verdictAt(addr);
    return { addr, where: placer.where(addr), errno, reason: v.ok ? `registration failed (${errnoLabel(errno)}) though the map accepts it` : v.reason };
  });
  const notes: string[] = [];
  opts.onProgress?.('comparing', 0);
  const cmp = new Comparison(base, probed, plan, placer, registered, notes);
  const checks = cmp.checks;
  if (probed.error) checks.push({ name: 'probed run', ok: false, summary: 'the probed run failed', detail: probed.error });
  checkSequences(cmp);
  // The hits check is listed after the sequences (it uses their counts), before the exits.
  const hitsCheckAt = checks.length;
  checkExits(cmp);
  checkOutputs(cmp);
  checkMemory(cmp);
  const probes: ProbeResult[] = candidates
    .filter((c) => registered.has(Number(c.addr)))
    .map((c) => ({ addr: c.addr, where: placer.where(c.addr), hits: cmp.hits.get(Number(c.addr)) ?? 0, executed: cmp.executed.get(Number(c.addr)) ?? 0 }));
  checks.splice(hitsCheckAt, 0, checkHits(probes));
  const firstBad = checks.find((c) => !c.ok);
  return {
    file: elfPath,
    target,
    seed: opts.seed ?? 1,
    functions: fns.map((f) => f.name),
    probes,
    refused,
    skipped: [
      ...dataWords.map((a) => ({ addr: a, where: placer.where(a), why: 'not a valid instruction (data in text): a breakpoint would corrupt it' })),
      ...[...skip].map((a) => ({ addr: a, where: placer.where(a), why: 'left unprobed (--skip)' })),
    ],
    checks,
    firstDivergence: firstBad ? `${firstBad.name}: ${firstBad.detail ?? firstBad.summary}` : undefined,
    transparent: firstBad === undefined,
    executed: [...cmp.executed.values()].reduce((x, y) => x + y, 0),
    notes,
  };
}

function sameAreas(a: Map<number, Set<bigint>>, b: Map<number, Set<bigint>>): boolean {
  const key = (m: Map<number, Set<bigint>>) =>
    [...m]
      .filter(([, s]) => s.size > 0)
      .map(([pid, s]) => `${pid}:${[...s].sort().join(',')}`)
      .sort()
      .join(';');
  return key(a) === key(b);
}

/** `SYMBOL+0xOFF`, `SYMBOL` or `0xADDR` → an address of the program. */
function resolveAddr(placer: UprobePlacer, spec: string, file: string): bigint {
  const m = /^([^+\s]+?)(?:\+(0x[0-9a-f]+|\d+))?$/i.exec(spec.trim());
  if (m && /^0x[0-9a-f]+$/i.test(m[1]!) && m[2] === undefined) return BigInt(m[1]!);
  const f = m ? placer.functionNamed(m[1]!) : undefined;
  if (!m || !f) throw new UniprobeError('USAGE', `${file}: cannot resolve ${JSON.stringify(spec)} (SYMBOL, SYMBOL+0xOFF or 0xADDR)`);
  return f.start + BigInt(m[2] ?? 0);
}
