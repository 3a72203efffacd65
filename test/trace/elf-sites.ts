/** Where a function of a fixture program is, as a uprobe definition needs it (a file offset). */
import { readElfFileSync } from '../../src/elf/index.js';

const PT_LOAD = 1;

/**
 * The entry of function `name` in the ELF at `path`: its virtual address — the local entry on
 * ppc64 ELFv2, where the program's own calls land — and the file offset of that address.
 */
export function functionSite(path: string, name: string): { vaddr: bigint; offset: bigint } {
  const elf = readElfFileSync(path);
  const sym = elf.symbols.find((s) => s.name === name && s.type === 2);
  if (!sym) throw new Error(`${path}: no function ${name}`);
  const vaddr = sym.localEntry;
  const seg = elf.phdrs.find((p) => p.type === PT_LOAD && vaddr >= p.vaddr && vaddr < p.vaddr + p.filesz);
  if (!seg) throw new Error(`${path}: ${name} is in no loaded segment`);
  return { vaddr, offset: vaddr - seg.vaddr + seg.offset };
}
