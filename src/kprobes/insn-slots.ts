/**
 * The kprobe instruction-slot cache (kernel/kprobes.c's kprobe_insn_cache): pages of fixed-size
 * slots carved from the kernel's executable slot area; each slot CLEAN, USED or DIRTY.
 *
 * A slot freed "dirty" (a boosted probe's: a CPU may still be executing it with nothing pinning
 * it) becomes reusable only after a grace period — garbage collection runs synchronize_rcu, then
 * turns DIRTY into CLEAN. Probes freed after unregister's own grace period are freed clean.
 * The cache has its own mutex, nested inside kprobe_mutex.
 *
 * A slot that becomes reusable (CLEAN) is filled with the arch's poison (ProbeArch.slotPoison:
 * traps from every instruction boundary) — Linux leaves the old copy there, uniprobe poisons so
 * a CPU still stepping a slot after a premature free (seed 003's bug) crashes at once, and the
 * crash names the slot and the vCPU (`poisonHits`). A DIRTY slot is poisoned only when garbage
 * collection cleans it: until that grace period ends a boosted CPU may legitimately run it.
 */
import { UniprobeError } from '../errors.js';
import { KPROBE_LOCKS, Mutex, type Kthread, type SyncWorld } from '../sync/index.js';

/** A vCPU that executed a freed (poisoned) slot: a use after free. */
export interface PoisonHit {
  readonly slot: bigint;
  /** Where in the slot it trapped. */
  readonly addr: bigint;
  readonly cpu: number;
  /** "comm[tid]" of the task on that vCPU. */
  readonly task: string;
}

const SLOT_CLEAN = 0;
const SLOT_DIRTY = 1;
const SLOT_USED = 2;

interface InsnPage {
  readonly base: bigint;
  readonly state: Uint8Array;
  nused: number;
  ngarbage: number;
}

export class InsnSlotCache {
  readonly mutex: Mutex;
  private readonly pages: InsnPage[] = [];
  private nextPage: bigint;
  private garbage = 0;
  /** Grace periods spent collecting garbage (tests). */
  collections = 0;
  /** Slots executed after they were freed (see the header). */
  readonly poisonHits: PoisonHit[] = [];
  /** Slot base → poisoned since its last free (cleared when handed out again). */
  private readonly poisoned = new Set<bigint>();

  constructor(
    private readonly world: SyncWorld,
    private readonly area: { base: bigint; size: number },
    readonly slotSize: number,
    readonly pageSize: number,
    /** Writes the poison over a slot (kernel text write, between guest runs). */
    private readonly poison?: (slot: bigint) => void,
  ) {
    this.mutex = new Mutex(world.sched, KPROBE_LOCKS.insnSlotCache);
    this.nextPage = area.base;
  }

  get slotsPerPage(): number {
    return Math.floor(this.pageSize / this.slotSize);
  }

  /** get_insn_slot: a clean slot, collecting garbage or adding a page when none is free. */
  async get(t: Kthread): Promise<bigint> {
    await this.mutex.lock(t, 'get_insn_slot');
    try {
      for (let pass = 0; pass < 2; pass++) {
        for (const pg of this.pages) {
          if (pg.nused === this.slotsPerPage) continue;
          const i = pg.state.indexOf(SLOT_CLEAN);
          if (i < 0) continue;
          pg.state[i] = SLOT_USED;
          pg.nused++;
          const slot = pg.base + BigInt(i * this.slotSize);
          this.poisoned.delete(slot);
          return slot;
        }
        if (pass === 0 && this.garbage > 0) await this.collect(t);
      }
      if (this.nextPage + BigInt(this.pageSize) > this.area.base + BigInt(this.area.size)) {
        throw new UniprobeError('PROBE', `out of kprobe insn slots (${this.area.size} bytes of slot area)`, { errno: 12 });
      }
      const pg: InsnPage = { base: this.nextPage, state: new Uint8Array(this.slotsPerPage), nused: 1, ngarbage: 0 };
      this.nextPage += BigInt(this.pageSize);
      pg.state[0] = SLOT_USED;
      this.pages.push(pg);
      return pg.base;
    } finally {
      this.mutex.unlock(t);
    }
  }

  /** free_insn_slot: clean = reusable now; dirty = only after the next garbage collection. */
  async free(t: Kthread, slot: bigint, dirty: boolean): Promise<void> {
    await this.mutex.lock(t, 'free_insn_slot');
    try {
      const pg = this.pages.find((p) => slot >= p.base && slot < p.base + BigInt(this.pageSize));
      if (!pg) throw new Error(`free_insn_slot: 0x${slot.toString(16)} is not a slot`);
      const i = Number(slot - pg.base) / this.slotSize;
      if (pg.state[i] !== SLOT_USED) throw new Error(`free_insn_slot: slot 0x${slot.toString(16)} is not in use`);
      if (dirty) {
        pg.state[i] = SLOT_DIRTY;
        pg.ngarbage++;
        if (++this.garbage > this.slotsPerPage) await this.collect(t);
      } else {
        pg.state[i] = SLOT_CLEAN;
        pg.nused--;
        this.poisonSlot(slot);
      }
    } finally {
      this.mutex.unlock(t);
    }
  }

  /** Slot state, for tests and listings. */
  stateOf(slot: bigint): 'clean' | 'dirty' | 'used' | undefined {
    const pg = this.pages.find((p) => slot >= p.base && slot < p.base + BigInt(this.pageSize));
    if (!pg) return undefined;
    return (['clean', 'dirty', 'used'] as const)[pg.state[Number(slot - pg.base) / this.slotSize]!];
  }

  /**
   * A breakpoint trap at `addr` (called after the kprobe trap path declined it): inside a
   * poisoned slot it is a use after free — recorded, then left to the default (SIGTRAP kills
   * the task, as an oops would). Never claims the trap.
   */
  noteTrap(addr: bigint, cpu: number, task: { readonly process: { readonly comm: string }; readonly tid: number }): void {
    // Every breakpoint trap passes here: nothing is formatted unless a poisoned slot was hit.
    if (this.poisoned.size === 0) return;
    const slot = this.area.base + ((addr - this.area.base) / BigInt(this.slotSize)) * BigInt(this.slotSize);
    if (!this.poisoned.has(slot)) return;
    this.poisonHits.push({ slot, addr, cpu, task: `${task.process.comm}[${task.tid}]` });
  }

  private poisonSlot(slot: bigint): void {
    if (!this.poison) return;
    this.poison(slot);
    this.poisoned.add(slot);
  }

  isSlotAddress(addr: bigint): boolean {
    return this.pages.some((p) => addr >= p.base && addr < p.base + BigInt(this.pageSize));
  }

  /** collect_garbage_slots: one grace period, then every dirty slot is clean. Mutex held. */
  private async collect(t: Kthread): Promise<void> {
    await this.world.rcu.synchronize(t, 'collect_garbage_slots');
    this.collections++;
    for (const pg of this.pages) {
      for (let i = 0; i < pg.state.length; i++) {
        if (pg.state[i] === SLOT_DIRTY) {
          pg.state[i] = SLOT_CLEAN;
          pg.nused--;
          this.poisonSlot(pg.base + BigInt(i * this.slotSize));
        }
      }
      pg.ngarbage = 0;
    }
    this.garbage = 0;
  }
}
