/**
 * `uniprobe explain ELF [SYMBOL...] [--kernel] [--format text|json]`: the placement map.
 * Registered by main.ts; errors are thrown (UniprobeError) and worded by main's handler.
 */
import { Command, Option } from 'commander';
import { explain, explainJson, explainText } from '../placement/explain.js';
import { LineSink } from './terminal.js';

interface ExplainOpts {
  kernel?: boolean;
  format: 'text' | 'json';
}

/** Sets the command's exit status where main() reads it (the root program's `__status`). */
export function setStatus(cmd: Command, status: number): void {
  let root = cmd;
  while (root.parent) root = root.parent;
  root.setOptionValue('__status', status);
}

/** `program` = the root command, whose settings (exit override, error wording) are inherited. */
export function explainCommand(program: Command): Command {
  return new Command('explain')
    .copyInheritedSettings(program)
    .description('placement map: for every instruction, may a uprobe (or with --kernel a kprobe) go there, how it runs, the slot bytes and the cost per hit')
    .argument('<elf>', 'static ELF for x86_64, i386, ppc32, ppc64 or sparc64 (with --kernel: selects the target whose guest kernel is mapped)')
    .argument('[symbols...]', 'functions to map (default: every function)')
    .option('--kernel', 'map kprobes on the guest kernel of the ELF\'s target instead of uprobes on the ELF')
    .addOption(new Option('--format <fmt>', 'output format').choices(['text', 'json']).default('text'))
    .addHelpText(
      'after',
      `
Placement: emulate (the handler path performs the instruction, no slot), boost (kprobes: slot
copy + jump back), step (slot copy + step trap), or refused with the kernel's errno and reason.
Cost per hit: host crossings / guest instructions executed in the slot (steady state).

Examples:
  uniprobe explain fixtures/x86_64/fib-nolibc fib
  uniprobe explain fixtures/sparc64/fib-nolibc --format json
  uniprobe explain fixtures/ppc64/fib-nolibc --kernel ksys_write vfs_write

Exit status: 0, or 1 for an error (unreadable ELF, unknown function), 2 for bad usage.
`,
    )
    .action(async function (this: Command, elf: string, symbols: string[]) {
      const o = this.opts<ExplainOpts>();
      const doc = await explain(elf, { kernel: o.kernel, symbols });
      const out = LineSink.stdout();
      if (o.format === 'json') out.write(explainJson(doc));
      else for (const line of explainText(doc)) out.write(line);
      setStatus(this, 0);
    });
}
