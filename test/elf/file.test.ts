/** readElfFile: IO failures are UniprobeError('IO') whose message starts with the path. */
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { UniprobeError } from '../../src/errors.js';
import { readElfFile, readElfFileSync, readFileBytes } from '../../src/elf/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'uniprobe-elf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function ioError(path: string): Promise<UniprobeError> {
  const errs: unknown[] = [];
  await readElfFile(path).catch((e: unknown) => errs.push(e));
  try {
    readElfFileSync(path);
  } catch (e) {
    errs.push(e);
  }
  expect(errs.length).toBe(2);
  for (const e of errs) {
    expect(e).toBeInstanceOf(UniprobeError);
    expect((e as UniprobeError).code).toBe('IO');
    expect((e as UniprobeError).message.startsWith(`${path}: `)).toBe(true);
  }
  expect((errs[0] as Error).message).toBe((errs[1] as Error).message);
  return errs[0] as UniprobeError;
}

describe('readElfFile', () => {
  it('reads and parses a real file (async and sync)', async () => {
    const p = join(here, 'data', 'prog-i386');
    const a = await readElfFile(p);
    const b = readElfFileSync(p);
    expect(a.file).toBe(p);
    expect(a.target).toBe('i386');
    expect(b.entry).toBe(a.entry);
  });

  it('missing file', async () => {
    const p = join(dir, 'does-not-exist');
    expect((await ioError(p)).message).toBe(`${p}: No such file or directory`);
  });

  it('a directory', async () => {
    expect((await ioError(dir)).message).toBe(`${dir}: is a directory`);
  });

  it('a path through a regular file', async () => {
    const f = join(dir, 'plain');
    writeFileSync(f, 'x');
    const p = join(f, 'child');
    expect((await ioError(p)).message).toMatch(/: Not a directory/);
  });

  it('not a regular file', async () => {
    expect((await ioError('/dev/null')).message).toBe('/dev/null: not a regular file');
  });

  it('a dangling symlink', async () => {
    const l = join(dir, 'dangling');
    symlinkSync(join(dir, 'nowhere'), l);
    expect((await ioError(l)).message).toBe(`${l}: No such file or directory`);
  });

  it.skipIf(process.getuid?.() === 0)('unreadable file', async () => {
    const f = join(dir, 'secret');
    writeFileSync(f, 'x');
    chmodSync(f, 0);
    expect((await ioError(f)).message).toBe(`${f}: Permission denied`);
  });

  it('an existing non-ELF file gives an ELF error naming the path', async () => {
    const f = join(dir, 'script.sh');
    writeFileSync(f, '#!/bin/sh\nexit 0\n');
    await expect(readElfFile(f)).rejects.toMatchObject({ code: 'ELF', message: `${f}: not an ELF file (bad magic: 23 21 2f 62, expected 7f 45 4c 46)` });
    const bytes = await readFileBytes(f);
    expect(bytes.length).toBe(17);
  });
});
