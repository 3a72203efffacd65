/**
 * The `uniprobe` command line (DESIGN.md, "Promised interfaces").
 *
 * Every failure a user can cause ends in one line `uniprobe: error: …` and a non-zero exit
 * status, never a stack trace. A guest run exits with the guest's status.
 */
import { existsSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { isUniprobeError } from '../errors.js';
import { readElfFileSync } from '../elf/index.js';
import { Machine } from '../kernel/machine.js';
import { supportedTargets } from '../../arch/index.js';
import { TARGETS, type Target } from '../../arch/types.js';
import { runDemo } from './demo.js';

/** Exit statuses of the command itself (a guest run exits with the guest's status instead). */
export const EXIT = { ERROR: 1, USAGE: 2 } as const;

function intOption(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

interface RunOpts {
  event: string[];
  arch?: Target;
  format: 'text' | 'json';
  output?: string;
  stats?: boolean;
  seed: number;
  cpus: number;
  maxInsns: number;
  strace?: boolean;
}

function runCommand(elfPath: string, args: string[], o: RunOpts): number {
  if (o.event.length > 0) {
    throw new CliError('-e: probe definitions are not available in this build yet (they come with the kprobes and uprobes cores)');
  }
  if (!existsSync(elfPath)) throw new CliError(`${elfPath}: No such file or directory`);
  const elf = readElfFileSync(elfPath);
  const target = elf.target!;
  if (o.arch && o.arch !== target) throw new CliError(`${elfPath}: the ELF is for ${target}, not ${o.arch} (--arch)`);
  if (!supportedTargets().includes(target)) throw new CliError(`${elfPath}: ${target} guests are not supported yet`);
  const m = new Machine({
    target,
    seed: o.seed,
    cpus: o.cpus,
    maxInsns: o.maxInsns,
    strace: o.strace ? (line) => process.stderr.write(`${line}\n`) : undefined,
  });
  try {
    m.spawn(elfPath, [elfPath, ...args]);
    const r = m.run();
    if (o.stats) {
      process.stderr.write(`uniprobe: ${r.reason}, status ${r.status}, ${r.quanta} quanta (at most ${r.insns} guest instructions)\n`);
    }
    return r.status;
  } finally {
    m.close();
  }
}

class CliError extends Error {}

export function buildProgram(): Command {
  const program = new Command('uniprobe')
    .description('Linux kprobes and uprobes, reproduced on emulated x86-64, i386, ppc32, ppc64 and sparc64 guests')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ outputError: (s, write) => write(s.replace(/^error: /, 'uniprobe: error: ')) });

  program
    .command('run')
    .description('run a static ELF program under emulation (the target is read from the ELF header)')
    .argument('<elf>', 'static ELF executable for x86_64, i386, ppc32, ppc64 or sparc64')
    .argument('[args...]', 'arguments for the program (put them after --)')
    .option('-e, --event <def>', 'probe definition in kprobe_events/uprobe_events syntax (repeatable)', collect, [])
    .addOption(new Option('--arch <target>', 'expected target; fail if the ELF is for another').choices([...TARGETS]))
    .addOption(new Option('--format <fmt>', 'trace format').choices(['text', 'json']).default('text'))
    .option('-o, --output <file>', 'write trace events to FILE (default: stderr)')
    .option('--stats', 'print per-event hits and misses at exit')
    .option('--seed <n>', 'scheduler seed: same seed, same interleaving', intOption('--seed', 0, 2 ** 32 - 1), 1)
    .option('--cpus <n>', 'number of vCPUs', intOption('--cpus', 1, 64), 1)
    .option('--max-insns <n>', 'stop a guest after about N instructions (exit status 124)', intOption('--max-insns', 1, Number.MAX_SAFE_INTEGER), 2_000_000_000)
    .option('--strace', 'print each system call the guest makes to stderr')
    .action(function (this: Command, elf: string, args: string[]) {
      program.setOptionValue('__status', runCommand(elf, args, this.opts<RunOpts>()));
    });

  program
    .command('demo')
    .description('run the bundled sample programs on every supported target (what `npm start` does)')
    .action(() => {
      program.setOptionValue('__status', runDemo());
    });

  return program;
}

/** Run the CLI; returns the process exit status. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return (program.getOptionValue('__status') as number | undefined) ?? 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return EXIT.USAGE;
    }
    if (e instanceof CliError || isUniprobeError(e)) {
      process.stderr.write(`uniprobe: error: ${(e as Error).message}\n`);
      return EXIT.ERROR;
    }
    process.stderr.write(`uniprobe: error: internal error: ${(e as Error)?.message ?? String(e)}\n`);
    if (process.env.UNIPROBE_DEBUG) process.stderr.write(`${(e as Error)?.stack}\n`);
    return EXIT.ERROR;
  }
}
