/** The ELF reader: public surface. */
export * from './constants.js';
export { parseElf, ElfFile, MAX_TEXT_READ } from './elf.js';
export type { ParseOptions, SymbolLocation } from './elf.js';
export { readElfFile, readElfFileSync, readFileBytes, readFileBytesSync, MAX_ELF_FILE_SIZE } from './file.js';
export { fileTypeName } from './header.js';
export type { ElfHeader } from './header.js';
export type { Ppc64Abi } from './ppc64.js';
export { ByteReader, elfError, hex } from './reader.js';
export type { ElfClass, Endianness } from './reader.js';
export type { ElfSection } from './sections.js';
export { segmentFlagsString } from './segments.js';
export type { ProgramHeader } from './segments.js';
export type { ElfSymbol, SymbolTableKind } from './symbols.js';
export { targetOf, TARGETS } from './target.js';
export type { Target, TargetIdent } from './target.js';
