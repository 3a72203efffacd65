/**
 * Test helper: runs binutils readelf (`readelf -h -l -S -s --wide`) on a file and parses what the
 * ELF reader tests compare against. Returns undefined when no readelf is installed, so the
 * comparison can be skipped cleanly.
 */
import { execFileSync } from 'node:child_process';

export interface ReadelfPhdr {
  type: string;
  offset: bigint;
  vaddr: bigint;
  paddr: bigint;
  filesz: bigint;
  memsz: bigint;
  flags: string; // "R E"
  align: bigint;
}

export interface ReadelfSection {
  index: number;
  nameAndType: string; // "name<spaces>TYPE", whitespace collapsed
  addr: bigint;
  offset: bigint;
  size: bigint;
  entsize: bigint;
  flags: string;
  link: number;
  info: number;
  align: bigint;
}

export interface ReadelfSymbol {
  table: string;
  index: number;
  value: bigint;
  size: bigint;
  type: string;
  bind: string;
  vis: string;
  extra: string | undefined; // e.g. "<localentry>: 8"
  ndx: string;
  name: string;
}

export interface ReadelfOutput {
  entry: bigint;
  flags: number;
  phnum: number;
  shnum: number;
  shstrndx: number;
  phdrs: ReadelfPhdr[];
  sections: ReadelfSection[];
  symbols: ReadelfSymbol[];
}

const TRIPLES: Record<string, string> = {
  x86_64: 'x86_64-linux-gnu-readelf',
  i386: 'i686-linux-gnu-readelf',
  ppc32: 'powerpc-linux-gnu-readelf',
  ppc64: 'powerpc64-linux-gnu-readelf',
  sparc64: 'sparc64-linux-gnu-readelf',
};

const found = new Map<string, boolean>();
function works(tool: string): boolean {
  let ok = found.get(tool);
  if (ok === undefined) {
    try {
      execFileSync(tool, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
      ok = true;
    } catch {
      ok = false;
    }
    found.set(tool, ok);
  }
  return ok;
}

/** The readelf to use for a target (cross one if installed, else the host's), or undefined. */
export function readelfFor(target: string): string | undefined {
  const cross = TRIPLES[target];
  if (cross !== undefined && works(cross)) return cross;
  return works('readelf') ? 'readelf' : undefined;
}

const big = (s: string): bigint => BigInt(s.startsWith('0x') ? s : `0x${s}`);

export function runReadelf(tool: string, path: string): ReadelfOutput {
  const text = execFileSync(tool, ['-h', '-l', '-S', '-s', '--wide', path], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    env: { ...process.env, LC_ALL: 'C' },
  });
  return parseReadelf(text);
}

export function parseReadelf(text: string): ReadelfOutput {
  const out: ReadelfOutput = { entry: 0n, flags: 0, phnum: 0, shnum: 0, shstrndx: 0, phdrs: [], sections: [], symbols: [] };
  let mode: 'none' | 'sections' | 'phdrs' | 'symbols' = 'none';
  let table = '';
  const phdrRe = /^\s+(\S+)\s+(0x[0-9a-f]+) (0x[0-9a-f]+) (0x[0-9a-f]+) (0x[0-9a-f]+) (0x[0-9a-f]+) (.{3}) (0x[0-9a-f]+)$/;
  const secRe = /^\s+\[\s*(\d+)\]\s(.*?)\s+([0-9a-f]+) ([0-9a-f]+) ([0-9a-f]+) ([0-9a-f]+) (.{3})\s*(\d+)\s+(\d+)\s+(\d+)$/;
  const symRe = /^\s*(\d+): ([0-9a-f]+)\s+(0x[0-9a-f]+|\d+) (\S+)\s+(\S+)\s+(\S+)\s+(?:\[([^\]]*)\]\s+)?(\S+)(?: (.*))?$/;
  for (const line of text.split('\n')) {
    let m: RegExpMatchArray | null;
    if ((m = line.match(/^\s+Entry point address:\s+(0x[0-9a-f]+)/))) out.entry = big(m[1]!);
    else if ((m = line.match(/^\s+Flags:\s+(0x[0-9a-f]+)/))) out.flags = Number(m[1]);
    else if ((m = line.match(/^\s+Number of program headers:\s+(\d+)/))) out.phnum = Number(m[1]);
    else if ((m = line.match(/^\s+Number of section headers:\s+(\d+)/))) out.shnum = Number(m[1]);
    else if ((m = line.match(/^\s+Section header string table index:\s+(\d+)/))) out.shstrndx = Number(m[1]);
    else if (/^Section Headers:/.test(line)) mode = 'sections';
    else if (/^Program Headers:/.test(line)) mode = 'phdrs';
    else if ((m = line.match(/^Symbol table '([^']*)'/))) {
      mode = 'symbols';
      table = m[1]!;
    } else if (/^ Section to Segment mapping:/.test(line) || /^Key to Flags:/.test(line)) mode = 'none';
    else if (mode === 'phdrs' && (m = line.match(phdrRe))) {
      out.phdrs.push({
        type: m[1]!,
        offset: big(m[2]!),
        vaddr: big(m[3]!),
        paddr: big(m[4]!),
        filesz: big(m[5]!),
        memsz: big(m[6]!),
        flags: m[7]!,
        align: big(m[8]!),
      });
    } else if (mode === 'sections' && (m = line.match(secRe))) {
      out.sections.push({
        index: Number(m[1]),
        nameAndType: m[2]!.replace(/\s+/g, ' ').trim(),
        addr: big(m[3]!),
        offset: big(m[4]!),
        size: big(m[5]!),
        entsize: big(m[6]!),
        flags: m[7]!.trim(),
        link: Number(m[8]),
        info: Number(m[9]),
        align: BigInt(m[10]!),
      });
    } else if (mode === 'symbols' && (m = line.match(symRe))) {
      out.symbols.push({
        table,
        index: Number(m[1]),
        value: big(m[2]!),
        size: m[3]!.startsWith('0x') ? BigInt(m[3]!) : BigInt(m[3]!),
        type: m[4]!,
        bind: m[5]!,
        vis: m[6]!,
        extra: m[7],
        ndx: m[8]!,
        name: m[9] ?? '',
      });
    }
  }
  return out;
}
