/**
 * End-of-run warning for a uprobe on a file the program never mapped.
 *
 * A uprobe belongs to a file (an inode), not to a process: Linux accepts one on any file and
 * installs it only when some process maps that file's text (uprobe_mmap). A probe on a file the
 * run never mapped — another build of the program, a library it does not load — is therefore never
 * hit, and nothing says so. The watcher notes every file mapped by any process of the run; at the
 * end, each uprobe event with a probe on a file never mapped gets one warning line.
 */
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Machine } from '../kernel/machine.js';
import type { Mm } from '../mm/mm.js';
import type { Vma } from '../mm/vma.js';
import type { TraceSession } from '../trace/attach.js';

export interface NeverMappedWatch {
  /** One `uniprobe: warning: …` line per (uprobe event, file) never mapped during the run. */
  warnings(session: TraceSession | undefined): string[];
}

/** Start noting mapped files: call before the run (after spawn is fine: live mappings count). */
export function watchMappedFiles(m: Machine): NeverMappedWatch {
  const mapped = new Set<string>();
  const note = (v: Vma): void => void (v.file && mapped.add(v.file.path));
  // New address spaces (exec, fork) and every later mmap; fork's copies map nothing new.
  const watch = (mm: Mm): void => {
    for (const v of mm.vmas) note(v);
    mm.mapHooks.push(note);
  };
  m.mmAttachHooks.push(watch);
  for (const mm of new Set(m.processes.map((p) => p.mm))) watch(mm);
  return {
    warnings(session) {
      const out: string[] = [];
      for (const ev of session?.registry.events() ?? []) {
        if (ev.flavor !== 'uprobe') continue;
        const paths = new Set<string>();
        for (const p of ev.probes) if (p.definition.location.type === 'file') paths.add(p.definition.location.path);
        for (const path of paths) {
          if (mapped.has(realPath(path))) continue;
          out.push(`uniprobe: warning: uprobe '${ev.event}' on ${path} was never hit: the program never mapped that file`);
        }
      }
      return out;
    },
  };
}

function realPath(path: string): string {
  try {
    // As the event resolved it (trace/attach.ts): relative to the cwd, links followed.
    return realpathSync(resolve(path));
  } catch {
    return resolve(path);
  }
}
