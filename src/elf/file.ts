/**
 * Reading an ELF file from disk with clean errors: every failure is UniprobeError('IO') whose
 * message starts with the path, then parseElf's own validation (UniprobeError('ELF')).
 */
import { readFile, stat } from 'node:fs/promises';
import { readFileSync, statSync, type Stats } from 'node:fs';
import { UniprobeError } from '../errors.js';
import { parseElf, type ElfFile, type ParseOptions } from './elf.js';

/** Larger files are refused before reading (the engine's programs are small static binaries). */
export const MAX_ELF_FILE_SIZE = 1 << 30;

function ioError(path: string, e: unknown): UniprobeError {
  const code = typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : '';
  const reason: Record<string, string> = {
    ENOENT: 'No such file or directory',
    ENOTDIR: 'Not a directory (a path component is not a directory)',
    EISDIR: 'is a directory',
    EACCES: 'Permission denied',
    EPERM: 'Operation not permitted',
    ELOOP: 'Too many levels of symbolic links',
    ENAMETOOLONG: 'File name too long',
    EMFILE: 'Too many open files',
  };
  const text = reason[code] ?? `cannot read file${code ? ` (${code})` : ''}`;
  return new UniprobeError('IO', `${path}: ${text}`, { cause: e });
}

function checkStats(path: string, st: Stats): void {
  if (st.isDirectory()) throw new UniprobeError('IO', `${path}: is a directory`);
  if (!st.isFile()) throw new UniprobeError('IO', `${path}: not a regular file`);
  if (st.size > MAX_ELF_FILE_SIZE) {
    throw new UniprobeError('IO', `${path}: file too large (${st.size} bytes; limit ${MAX_ELF_FILE_SIZE})`);
  }
}

/** Reads `path` and returns its raw bytes, with IO errors as UniprobeError('IO'). */
export async function readFileBytes(path: string): Promise<Uint8Array> {
  let st: Stats;
  try {
    st = await stat(path);
  } catch (e) {
    throw ioError(path, e);
  }
  checkStats(path, st);
  try {
    const buf = await readFile(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (e) {
    throw ioError(path, e);
  }
}

export function readFileBytesSync(path: string): Uint8Array {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw ioError(path, e);
  }
  checkStats(path, st);
  try {
    const buf = readFileSync(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (e) {
    throw ioError(path, e);
  }
}

/** Reads and parses an ELF file; the path names the file in every error. */
export async function readElfFile(path: string, options: ParseOptions = {}): Promise<ElfFile> {
  return parseElf(await readFileBytes(path), path, options);
}

export function readElfFileSync(path: string, options: ParseOptions = {}): ElfFile {
  return parseElf(readFileBytesSync(path), path, options);
}
