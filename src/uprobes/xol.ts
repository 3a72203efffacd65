/**
 * The XOL ("execute out of line") area: one page per mm, a special mapping named "[uprobes]",
 * executable, not inherited by fork (VM_DONTCOPY), placed as high as the layout allows.
 *
 * Slots of UprobeArch.xolSlotBytes bytes are handed out from a bitmap. Slot 0 is reserved for
 * the uretprobe trampoline and holds the breakpoint instruction for the area's whole life; the
 * trampoline address is the area's start. A task holds its slot from pre_xol to post_xol; when
 * every slot is taken the task waits (Linux sleeps on area->wq; here the hit is restarted until
 * a slot is free).
 *
 * Writing a slot's bytes is a text change: it happens with the engine stopped (Unicorn ignores a
 * code write made inside the run for already-translated code), so the area remembers what each
 * slot holds and the hit path only stops the run when a slot must be rewritten.
 *
 * A free slot keeps its copy for the next hit of the same probe; once that probe is gone (deleted
 * from the tree) its copies are dead and are overwritten with the arch's poison
 * (UprobeArch.xolPoison: traps at every boundary), so a task that still ran one would trap
 * visibly instead of executing a stale instruction.
 */
import type { Mm } from '../mm/mm.js';
import { PROT } from '../mm/vma.js';

export class XolArea {
  readonly vaddr: bigint;
  readonly slotBytes: number;
  readonly slots: number;
  private readonly used: Uint8Array;
  /** The bytes last written to each slot (undefined = never written). */
  private readonly contents: Array<Uint8Array | undefined>;
  /** Contents (a uprobe's xolImage) → the slot they were last written to. */
  private readonly home = new Map<Uint8Array, number>();

  private constructor(vaddr: bigint, pageSize: number, slotBytes: number) {
    this.vaddr = vaddr;
    this.slotBytes = slotBytes;
    this.slots = Math.floor(pageSize / slotBytes);
    this.used = new Uint8Array(this.slots);
    this.used[0] = 1;
    this.contents = new Array(this.slots).fill(undefined);
    this.addrs = Array.from({ length: this.slots }, (_, i) => vaddr + BigInt(i * slotBytes));
  }

  /**
   * __create_xol_area + xol_add_vma: map the page in `mm` (engine stopped, mmap_lock held by the
   * caller) and write the trampoline. `at` = a fixed address (fork re-creates the parent's area
   * at the same place so inherited return addresses stay valid). Undefined when no room.
   */
  static create(mm: Mm, swbp: Uint8Array, slotBytes: number, at?: bigint): XolArea | undefined {
    const ps = BigInt(mm.pageSize);
    const hint = at ?? mm.arch.layout.taskSize - ps;
    const addr = mm.mmap({
      addr: hint,
      len: ps,
      prot: PROT.READ | PROT.EXEC,
      fixed: at !== undefined,
      shared: false,
      name: '[uprobes]',
      flags: { dontCopy: true },
    });
    if (addr < 0n) return undefined;
    const area = new XolArea(addr, mm.pageSize, slotBytes);
    mm.write(addr, swbp, true);
    area.contents[0] = swbp;
    return area;
  }

  get trampoline(): bigint {
    return this.vaddr;
  }

  slotAddr(i: number): bigint {
    return this.addrs[i] ?? this.vaddr + BigInt(i * this.slotBytes);
  }

  /** Every slot's address, made once (the hit path asks at every step). */
  private readonly addrs: readonly bigint[];

  /**
   * Where the step trap of a copy `offset` bytes long sits in slot `i`, made once per slot and
   * offset (the hit path asks at every step; a uprobe's offset never changes).
   */
  stepTrapOf(i: number, offset: number): bigint {
    const key = i * 256 + offset;
    let a = this.stepTraps.get(key);
    if (a === undefined) this.stepTraps.set(key, (a = this.slotAddr(i) + BigInt(offset)));
    return a;
  }

  private readonly stepTraps = new Map<number, bigint>();

  /**
   * xol_take_insn_slot: a free slot index, or undefined when all are busy. Given the contents the
   * step needs, a free slot that already holds them comes first, then one never written, then the
   * first free one. Linux copies the instruction into its slot at every hit; here a slot whose
   * bytes change needs the engine stopped (see the header), so a slot that already holds them is
   * what keeps the hit inside the run when several probes are stepped in turn.
   */
  take(image?: Uint8Array): number | undefined {
    if (image !== undefined) {
      const h = this.home.get(image);
      if (h !== undefined && this.used[h] === 0 && this.contents[h] === image) {
        this.used[h] = 1;
        return h;
      }
      const fresh = this.contents.indexOf(undefined, 1);
      if (fresh > 0 && this.used[fresh] === 0) {
        this.used[fresh] = 1;
        return fresh;
      }
    }
    const i = this.used.indexOf(0);
    if (i < 0) return undefined;
    this.used[i] = 1;
    return i;
  }

  /** xol_free_insn_slot. */
  free(i: number): void {
    if (i <= 0 || this.used[i] !== 1) throw new Error(`XOL slot ${i} freed twice`);
    this.used[i] = 0;
  }

  get inUse(): number {
    let n = 0;
    for (const b of this.used) n += b;
    return n - 1;
  }

  /** Does slot `i` already hold `bytes` (no rewrite, no stopped run needed)? */
  holds(i: number, bytes: Uint8Array): boolean {
    const c = this.contents[i];
    if (c === bytes) return true;
    if (c === undefined || c.length !== bytes.length) return false;
    for (let k = 0; k < c.length; k++) if (c[k] !== bytes[k]) return false;
    return true;
  }

  /**
   * The probe whose copy is `image` is gone: poison every free slot that holds it (engine stopped;
   * a slot in use belongs to a task mid-step, which holds the probe and frees the slot after).
   * Returns how many slots were poisoned.
   */
  poisonImage(mm: Mm, image: Uint8Array, poison: Uint8Array): number {
    let n = 0;
    for (let i = 1; i < this.slots; i++) {
      if (this.contents[i] !== image || this.used[i] !== 0) continue;
      mm.write(this.slotAddr(i), poison, true);
      this.contents[i] = poison;
      n++;
    }
    this.home.delete(image);
    return n;
  }

  /** Record and write a slot's bytes (engine stopped). */
  fill(mm: Mm, i: number, bytes: Uint8Array): void {
    mm.write(this.slotAddr(i), bytes, true);
    this.contents[i] = bytes;
    this.home.set(bytes, i);
  }
}
