/** The seed scenarios, in seed order (`uniprobe scenario --list`). */
import { hmmMirror } from './hmm-mirror.js';
import { kprobeUnregister } from './kprobe-unregister.js';
import { notifierAlloc } from './notifier-alloc.js';
import type { Scenario } from './scenario.js';
import { uprobeMmap } from './uprobe-mmap.js';

export const SCENARIOS: readonly Scenario[] = [uprobeMmap, hmmMirror, kprobeUnregister, notifierAlloc];

export function scenarioByName(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}

export { sweep, formatSweep, type Scenario, type Sweep, type Variant } from './scenario.js';
