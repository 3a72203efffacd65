/**
 * `uniprobe verify ELF [--probes all|SYMBOL...] [--skip WHERE...] [--seed N] [--format text|json]
 * [-- ARGS...]`: the transparency verifier. Exit status 0 when the probed run is indistinguishable
 * from the unprobed one, 1 when it is not (or on an error), 2 for bad usage.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { setStatus } from './explain.js';
import { LineSink } from './terminal.js';
import { progressLine, verifyStatus } from './progress.js';

interface VerifyOpts {
  probes: string[];
  skip: string[];
  seed: number;
  maxSteps?: number;
  format: 'text' | 'json';
}

function intArg(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
    return n;
  };
}

export function verifyCommand(program: Command): Command {
  return new Command('verify')
    .copyInheritedSettings(program)
    .description('transparency verifier: run the program without probes and with a read-only uprobe on every instruction of the chosen functions, and compare everything the program could see')
    .argument('<elf>', 'static ELF for x86_64, i386, ppc32, ppc64 or sparc64')
    .argument('[args...]', 'arguments for the program (put them after --)')
    .option('--probes <what...>', '"all" (every function) or function names', ['all'])
    .option('--skip <where...>', 'instructions to leave unprobed: SYMBOL, SYMBOL+0xOFF or 0xADDR', [])
    .option('--seed <n>', 'scheduler seed (both runs)', intArg('--seed', 0), 1)
    .option('--max-steps <n>', 'kill the probed run after N executed user instructions (default: 4× the unprobed run + 100000)', intArg('--max-steps', 1))
    .addOption(new Option('--format <fmt>', 'report format').choices(['text', 'json']).default('text'))
    .addHelpText(
      'after',
      `
Compared: the order of executed instructions per thread (a UC_HOOK_CODE ground truth), the
registers at every probe hit and every system call, exit statuses, stdout/stderr, the writable
memory of every process at exit, and hits == executions for every probe. The report names the
first divergence exactly (step, instruction, register or byte). Instructions the kernel refuses
are listed with errno and reason; values Linux leaves different too (a register holding the XOL
slot's address after a stepped system call) are notes.

Examples:
  uniprobe verify fixtures/x86_64/fib-nolibc
  uniprobe verify fixtures/ppc64/fib-nolibc --probes fib main --format json
  uniprobe verify fixtures/sparc64/fork-nolibc --skip fork+0x20

Exit status: 0 transparent, 1 not transparent or an error, 2 bad usage.
`,
    )
    .action(async function (this: Command, elf: string, args: string[]) {
      const o = this.opts<VerifyOpts>();
      const probes = o.probes.length === 1 && o.probes[0] === 'all' ? 'all' : o.probes.filter((p) => p !== 'all');
      // Loaded here, not at the top: `run` and the other commands must not pay for the verifier.
      const { verify, verifyJson, verifyText } = await import('../verify/verify.js');
      // Both runs hook every instruction: a program glibc starts runs for a minute or more.
      const progress = progressLine(process.stderr);
      let report;
      try {
        report = await verify(elf, {
          probes,
          skip: o.skip,
          seed: o.seed,
          args,
          maxSteps: o.maxSteps,
          onProgress: progress && ((phase, n, total) => progress.update(() => `verify ${elf}: ${verifyStatus(phase, n, total)}`)),
        });
      } finally {
        progress?.done();
      }
      const out = LineSink.stdout();
      if (o.format === 'json') out.write(verifyJson(report));
      else for (const line of verifyText(report)) out.write(line);
      setStatus(this, report.transparent ? 0 : 1);
    });
}
