/**
 * The `uniprobe` command line (DESIGN.md, "Promised interfaces").
 *
 * Every failure a user can cause ends in one line `uniprobe: error: …` and a non-zero exit
 * status, never a stack trace; a bad probe definition adds the kernel's error-log lines (the
 * command and a caret under the offending character). A guest run exits with the guest's status.
 */
import { existsSync, statSync } from 'node:fs';
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { isUniprobeError } from '../errors.js';
import { readElfFileSync } from '../elf/index.js';
import { TARGETS, type Target } from '../../arch/types.js';
import type { TraceSession } from '../trace/attach.js';
import type { TraceFormat } from '../trace/output.js';
// The engine (Machine, the arch back-ends with Capstone, the tracer, probes.ts's -e front end) is
// imported by the command actions that run a guest, not here: `--help`, usage errors and the commands that do not need it
// start without loading it.
import { explainCommand } from './explain.js';
import { scenarioCommand } from './scenario.js';
import { verifyCommand } from './verify.js';
import { regressCommand } from './regress.js';
import { DefinitionError } from './definition-error.js';
import { LineSink, definitionErrorText, errorLine, useColour } from './terminal.js';
import { progressLine } from './progress.js';
import { watchMappedFiles } from './never-mapped.js';
import { writeAll } from '../host-io.js';
import { DEFAULT_LIMITS, LIMIT_RANGE, parseSize } from '../kernel/limits.js';

/** STB_LOCAL: kallsyms prints such functions with a lower-case `t`. */
const STB_LOCAL = 0;

/**
 * Exit statuses of the command itself. A guest run exits with the guest's status instead: its exit
 * code, 128 + N when signal N killed it, 124 when --max-insns stopped it or every task blocked.
 */
export const EXIT = { ERROR: 1, USAGE: 2, BUDGET: 124 } as const;

const EXIT_HELP = `
Exit status:
  run    the guest's: its exit code, 128+N if signal N killed it, 124 if --max-insns
         stopped it (or every task blocked)
  1      an error: bad probe definition, unreadable or unsupported ELF, unwritable -o FILE
  2      bad command-line usage
`;

function intOption(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

function sizeOption(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = parseSize(v);
    if (n === undefined || n < min || n > max) throw new InvalidArgumentError(`${name} must be a size from ${min >> 20}M to ${max / 2 ** 30}G (bytes, or with a K, M or G suffix)`);
    return n;
  };
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

interface RunOpts {
  event: string[];
  arch?: Target;
  format: TraceFormat;
  output?: string;
  stats?: boolean;
  statsSvg?: string;
  seed: number;
  cpus: number;
  maxInsns: number;
  maxMemory: number;
  maxTasks: number;
  maxFiles: number;
  strace?: boolean;
  lockdep?: boolean;
  /** --no-kprobe-optimization: debug.kprobes-optimization = 0. */
  kprobeOptimization: boolean;
  root?: string;
  mount: string[];
  cwd?: string;
}

function readTargetOf(elfPath: string, arch: Target | undefined, supported: readonly Target[]): Target {
  if (!existsSync(elfPath)) throw new CliError(`${elfPath}: No such file or directory`);
  const elf = readElfFileSync(elfPath);
  const target = elf.target!;
  if (arch && arch !== target) throw new CliError(`${elfPath}: the ELF is for ${target}, not ${arch} (--arch)`);
  if (!supported.includes(target)) throw new CliError(`${elfPath}: ${target} guests are not supported yet`);
  return target;
}

function openSink(output: string | undefined): LineSink {
  if (output === undefined) return LineSink.stderr();
  try {
    return LineSink.file(output);
  } catch (e) {
    throw new CliError(`${output}: cannot open for writing (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

async function runCommand(elfPath: string, args: string[], o: RunOpts): Promise<number> {
  const [{ Machine }, { supportedTargets }, { machineSymbolizer }, { formatProfile, formatTraceRecord }] = await Promise.all([
    import('../kernel/machine.js'),
    import('../../arch/index.js'),
    import('../trace/fetch-env.js'),
    import('../trace/output.js'),
  ]);
  const target = readTargetOf(elfPath, o.arch, supportedTargets());
  // A progress line on a terminal, unless trace events or strace lines share stderr with it.
  const progress = progressLine(process.stderr, !o.strace && (o.event.length === 0 || o.output !== undefined));
  if (o.root !== undefined && !isDirectory(o.root)) throw new CliError(`--root ${o.root}: not a directory`);
  const m = new Machine({
    target,
    allowFiles: o.mount,
    ...(o.root !== undefined && { root: o.root }),
    ...(o.cwd !== undefined && { cwd: o.cwd }),
    seed: o.seed,
    cpus: o.cpus,
    maxInsns: o.maxInsns,
    maxMemory: o.maxMemory,
    maxTasks: o.maxTasks,
    maxFiles: o.maxFiles,
    strace: o.strace ? (line) => process.stderr.write(`${line}\n`) : undefined,
    onQuantum: progress?.tick,
    // Whatever else goes to stderr first erases the progress line, so the two never share a line.
    ...(progress && {
      report: (line: string) => {
        progress.clear();
        process.stderr.write(`${line}\n`);
      },
      stderr: (bytes: Uint8Array) => {
        progress.clear();
        writeAll(2, bytes);
      },
    }),
  });
  if (o.output !== undefined && o.event.length === 0 && !o.stats) {
    process.stderr.write(`uniprobe: warning: -o ${o.output} is ignored: it holds trace events (-e) and --stats, and there are none\n`);
  }
  if (o.lockdep || process.env.UNIPROBE_LOCKDEP === '1') {
    const { formatLockdepReport } = await import('../mm/kernel-locking.js');
    m.sync.lockdep.onReport.push((rep) => {
      progress?.clear();
      process.stderr.write(`${formatLockdepReport(rep).join('\n')}\n`);
    });
  }
  let sink: LineSink | undefined;
  // --stats-svg: opened before the run, so a path that cannot be written fails before anything runs.
  let svgSink: LineSink | undefined;
  // Loaded before the guest runs, like every other module a run needs: a rebuild during a long
  // run replaces dist/cli's chunks (their names hash their contents), so none may load after it.
  const svgModule = o.statsSvg !== undefined ? await import('../report/stats-svg.js') : undefined;
  try {
    if (o.statsSvg !== undefined) svgSink = openSink(o.statsSvg);
    m.spawn(elfPath, [elfPath, ...args]);
    const neverMapped = watchMappedFiles(m);
    let session: TraceSession | undefined;
    if (o.event.length > 0) {
      sink = openSink(o.output);
      const out = sink;
      const symbolizer = machineSymbolizer(m);
      const { defineEvents } = await import('./probes.js');
      session = await defineEvents(m, o.event, (r) => out.write(formatTraceRecord(r, o.format, symbolizer)), true, {
        program: elfPath,
        warn: (line) => process.stderr.write(`${line}\n`),
        kprobeOptimization: o.kprobeOptimization,
      });
    }
    const r = await m.runAsync();
    progress?.done();
    for (const line of neverMapped.warnings(session)) process.stderr.write(`${line}\n`);
    if (o.stats) {
      sink ??= openSink(o.output);
      for (const line of formatProfile(session?.profile() ?? [], o.format)) sink.write(line);
      process.stderr.write(`uniprobe: ${r.reason}, status ${r.status}, ${r.quanta} quanta, ${r.insns} guest instructions\n`);
    }
    if (svgSink && svgModule) {
      const { statsSvg } = svgModule;
      svgSink.write(statsSvg(session?.profile() ?? [], { title: `uniprobe run ${elfPath} (${target})` }).trimEnd());
    }
    return r.status;
  } finally {
    svgSink?.close();
    sink?.close();
    m.close();
  }
}

type ListWhat = 'events' | 'kprobes' | 'blacklist' | 'functions';

interface ListOpts {
  event: string[];
  arch: Target;
  kprobeOptimization: boolean;
}

/** `uniprobe list`: what the tracefs and debugfs files would show on the target's guest kernel. */
async function listCommand(what: ListWhat, o: ListOpts, write: (line: string) => void): Promise<number> {
  const [{ Machine }, { Kprobes }, { defineEvents }] = await Promise.all([import('../kernel/machine.js'), import('../kprobes/kprobes.js'), import('./probes.js')]);
  const m = new Machine({ target: o.arch });
  try {
    switch (what) {
      case 'events': {
        const session = await defineEvents(m, o.event, () => undefined, false);
        for (const line of session.registry.list()) write(line);
        break;
      }
      case 'kprobes': {
        // As during `uniprobe run`: the events enabled, their probes armed.
        const session = await defineEvents(m, o.event, () => undefined, true, { kprobeOptimization: o.kprobeOptimization });
        // The list once the delayed optimizer has run ([OPTIMIZED] where Linux would show it).
        await m.kernelCall('kprobe_optimizer', (t) => session.kprobes.optimizer.flush(t));
        for (const line of session.kprobes.list()) write(line);
        break;
      }
      case 'blacklist':
        for (const line of new Kprobes(m).blacklist()) write(line);
        break;
      case 'functions': {
        const width = m.arch.wordSize * 2;
        for (const f of m.kernel.elf.functions()) {
          write(`${f.codeAddress.toString(16).padStart(width, '0')} ${f.bind === STB_LOCAL ? 't' : 'T'} ${f.name}`);
        }
        break;
      }
    }
    return 0;
  } finally {
    m.close();
  }
}

class CliError extends Error {}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export function buildProgram(): Command {
  const program = new Command('uniprobe')
    .description('Linux kprobes and uprobes, reproduced on emulated x86-64, i386, ppc32, ppc64 and sparc64 guests')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ outputError: (s, write) => write(s.replace(/^error: /, 'uniprobe: error: ')) })
    .addHelpText('after', EXIT_HELP);

  program
    .command('run')
    .description('run a static ELF program under emulation, with probe events attached (the target is read from the ELF header)')
    .argument('<elf>', 'static ELF executable for x86_64, i386, ppc32, ppc64 or sparc64')
    .argument('[args...]', 'arguments for the program (put them after --)')
    .option('-e, --event <def>', 'probe definition in kprobe_events/uprobe_events syntax (repeatable)', collect, [])
    .addOption(new Option('--arch <target>', 'expected target; fail if the ELF is for another').choices([...TARGETS]))
    .addOption(new Option('--format <fmt>', 'trace format').choices(['text', 'json']).default('text'))
    .option('-o, --output <file>', 'write trace events (and --stats) to FILE (default: stderr)')
    .option('--stats', 'print per-event hits and misses at exit (like kprobe_profile)')
    .option('--stats-svg <file>', 'write the per-probe hits and misses (the --stats counters) as a standalone SVG bar chart')
    .option('--seed <n>', 'scheduler seed: same seed, same interleaving', intOption('--seed', 0, 2 ** 32 - 1), 1)
    .option('--cpus <n>', 'number of vCPUs', intOption('--cpus', 1, 64), 1)
    .option('--max-insns <n>', 'stop a guest after about N instructions (exit status 124)', intOption('--max-insns', 1, Number.MAX_SAFE_INTEGER), 2_000_000_000)
    .option(
      '--max-memory <size>',
      'guest memory limit: anonymous memory, brk, private copies and page cache (K/M/G suffixes); past it mmap fails with ENOMEM, brk keeps the old break, a copy-on-write fault is an OOM kill',
      sizeOption('--max-memory', LIMIT_RANGE.maxMemory[0], LIMIT_RANGE.maxMemory[1]),
      DEFAULT_LIMITS.maxMemory,
    )
    .option(
      '--max-tasks <n>',
      'live threads and processes (like RLIMIT_NPROC); past it fork/clone fail with EAGAIN',
      intOption('--max-tasks', LIMIT_RANGE.maxTasks[0], LIMIT_RANGE.maxTasks[1]),
      DEFAULT_LIMITS.maxTasks,
    )
    .option(
      '--max-files <n>',
      'open descriptors per process (RLIMIT_NOFILE); past it open/dup fail with EMFILE',
      intOption('--max-files', LIMIT_RANGE.maxFiles[0], LIMIT_RANGE.maxFiles[1]),
      DEFAULT_LIMITS.maxFiles,
    )
    .option('--strace', 'print each system call the guest makes to stderr')
    .option('--lockdep', 'print every lockdep report (lock-order inversion, sleep in atomic, ...) the run makes, to stderr (also: UNIPROBE_LOCKDEP=1)')
    .option('--no-kprobe-optimization', 'never jump-optimize kprobes (sysctl debug.kprobes-optimization = 0); every hit traps')
    .option('--mount <path>', 'also show this host file or directory (with its subtree) to the guest, read-only; changes stay in memory (repeatable)', collect, [])
    .option('--root <dir>', 'show the guest this host directory as its whole / (like qemu-user -L or a chroot), instead of the named paths')
    .option('--cwd <dir>', "the guest's working directory (default: the current one; with --root, a path inside it, default /)")
    .addHelpText(
      'after',
      `
Examples:
  uniprobe run fixtures/x86_64/fib -e 'p:myk ksys_write fd=$arg1 count=$arg3:u64'
  uniprobe run fixtures/x86_64/fib -e 'r:myr ksys_write ret=$retval:s64' --format json
  uniprobe run fixtures/ppc64/fib -e 'p:w ksys_write text=+0($arg2):ustring' --stats
  uniprobe run fixtures/x86_64/fib-nolibc -e 'r:fibret fixtures/x86_64/fib-nolibc:0x1050 n=$arg1:u32 ret=$retval:u64'
${EXIT_HELP}`,
    )
    .action(async function (this: Command, elf: string, args: string[]) {
      program.setOptionValue('__status', await runCommand(elf, args, this.opts<RunOpts>()));
    });

  program
    .command('list')
    .description("show what the guest kernel's tracefs/debugfs files would: events, kprobes, blacklist, functions")
    .addArgument(
      new Argument('[what]', 'what to list')
        .choices(['events', 'kprobes', 'blacklist', 'functions'])
        .default('events'),
    )
    .option('-e, --event <def>', 'probe definition (repeatable)', collect, [])
    .addOption(new Option('--arch <target>', 'target whose guest kernel to use').choices([...TARGETS]).default('x86_64'))
    .option('--no-kprobe-optimization', 'list kprobes as with sysctl debug.kprobes-optimization = 0 (no [OPTIMIZED])')
    .addHelpText(
      'after',
      `
What:
  events     the definitions listed back the way kprobe_events/uprobe_events shows them
  kprobes    /sys/kernel/debug/kprobes/list with the events enabled (as during \`run\`)
  blacklist  /sys/kernel/debug/kprobes/blacklist of the target's guest kernel
  functions  the guest kernel's functions, like /proc/kallsyms (address, t/T, name)

Examples:
  uniprobe list -e 'p:myk ksys_write fd=%di' -e 'r ksys_write $retval'
  uniprobe list kprobes --arch ppc32 -e 'p vfs_write' -e 'r:ret vfs_write $retval'
  uniprobe list blacklist --arch sparc64
${EXIT_HELP}`,
    )
    .action(async function (this: Command, what: ListWhat) {
      const out = LineSink.stdout();
      program.setOptionValue('__status', await listCommand(what, this.opts<ListOpts>(), (l) => out.write(l)));
    });

  program
    .command('demo')
    .description('probe the bundled sample program on every supported target and print the trace (what `npm start` does)')
    .addHelpText('after', EXIT_HELP)
    .action(async () => {
      const { runDemo } = await import('./demo.js');
      program.setOptionValue('__status', await runDemo());
    });

  program.addCommand(explainCommand(program));
  program.addCommand(verifyCommand(program));
  program.addCommand(regressCommand(program));
  program.addCommand(scenarioCommand(program));
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
    const colour = useColour(process.stderr);
    if (e instanceof DefinitionError) {
      process.stderr.write(`${definitionErrorText(e.probeError, colour)}\n`);
      return EXIT.ERROR;
    }
    if (e instanceof CliError || isUniprobeError(e)) {
      process.stderr.write(`${errorLine((e as Error).message, colour)}\n`);
      return EXIT.ERROR;
    }
    process.stderr.write(`${errorLine(`internal error: ${(e as Error)?.message ?? String(e)}`, colour)}\n`);
    if (process.env.UNIPROBE_DEBUG) process.stderr.write(`${(e as Error)?.stack}\n`);
    return EXIT.ERROR;
  }
}
