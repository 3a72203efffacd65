/*
 * uniprobe's trap-hook trampolines: UC_HOOK_INTR and UC_HOOK_INSN callbacks in C around the
 * JavaScript trap hook (issue 15, the lean hit path).
 *
 * A probe hit reads the trapped CPU's hit registers and writes back the ones it changed (at least
 * the PC). The engine's trap register cache (src/emu/regcache.ts) already makes that one
 * uc_reg_read_batch and one uc_reg_write_batch per trap; from JavaScript each is a foreign call,
 * and the two were ~40% of a bare trap's cost (measured: int3 + redirect in a loop, 0.83 vs
 * 0.55 µs per trap with this file). Here the read happens before the JavaScript hook is called
 * and the write after it returns, inside the one crossing Unicorn makes anyway.
 *
 * The register arrays belong to the engine's cache (its block of host memory); the engine keeps
 * the pointers here up to date when the cached set changes (never inside a hook). What the hook
 * does in between is unchanged: it reads the copy, records the registers it writes in the cache's
 * dirty list, and says how many there are in `ndirty` before it returns. A hook that had to go
 * around the copy (an aliasing register, a context restore) writes back and re-reads itself, as
 * without this file.
 *
 * No header from Unicorn is needed: the batch calls are passed in as pointers by the engine
 * (dlsym on the library it loaded), so this file links against nothing.
 */
#include <stdint.h>

typedef int (*batch_t)(void *uc, int32_t *ids, void **vals, int32_t count);
typedef void (*js_hook_t)(uint32_t arg);

/*
 * A single-step the probe core armed (src/emu/trap-hook.ts NativeStepTrap): the trap behind an
 * out-of-line copy whose post-step fix-up only moves the PC (arch_uprobe_post_xol of an ordinary
 * instruction: PC = vaddr + length). When that trap comes — this interrupt number, the PC where
 * the trap leaves it — the PC is moved here and the JavaScript hook is not called; the core's
 * bookkeeping (slot freed, task back to running) runs before any other JavaScript of the engine
 * does: at the next trap hook, or when the run ends. One per engine, shared by its trap hooks.
 */
struct native_step {
  int32_t armed;     /*  0 */
  int32_t done;      /*  4: a step completed here since the core last looked */
  uint32_t intno;    /*  8 */
  int32_t pc_reg;    /* 12: Unicorn's id of the PC */
  uint64_t pc_at;    /* 16: the PC as the trap leaves it */
  uint64_t resume;   /* 24: where the task goes on */
};

/* Shared with JavaScript: the layout is mirrored by src/emu/trap-hook.ts (offsets in bytes). */
struct trap_hook {
  batch_t read_batch;   /*  0: uc_reg_read_batch */
  batch_t write_batch;  /*  8: uc_reg_write_batch */
  js_hook_t js;         /* 16: the JavaScript hook (a koffi callback) */
  int32_t n;            /* 24: registers to read before the call (0: the engine caches none) */
  int32_t ndirty;       /* 28: registers to write back after it (set by the JavaScript hook) */
  int32_t loaded;       /* 32: the read before this call succeeded */
  int32_t err;          /* 36: the first write-back error (the engine reports it after the run) */
  int32_t *ids;         /* 40: the cached set */
  void **ptrs;          /* 48: its value cells */
  int32_t *dirty_ids;   /* 56: the registers written */
  void **dirty_ptrs;    /* 64: their value cells */
  struct native_step *step; /* 72: the engine's armed step (UC_HOOK_INTR only) */
  /*
   * The CPU state's own PC field (and sparc's NPC), given by the arch (Engine.keepPcAt), for
   * UC_HOOK_INTR only; 0: the PC goes through uc_reg_write_batch like any register. Why: Unicorn
   * answers a PC write with a restart of its CPU loop (uc.c: quit_request, cpu_exit), so that a
   * PC changed inside a translated block takes effect. An interrupt hook runs after QEMU has left
   * the block (cpu_handle_exception), and the loop looks the next block up at the CPU's PC anyway:
   * the restart only costs (~0.15 µs of each trap, measured on sparc64). Written here, the PC is
   * the same value Unicorn's own write would store (sparc64: NPC = PC + 4, as its reg_write does).
   */
  uint8_t *pc_cell;         /* 80 */
  uint8_t *npc_cell;        /* 88 */
  int32_t pc_reg;           /* 96: Unicorn's id of the PC */
  int32_t pc_bytes;         /* 100: 4 or 8 */
};

static uint64_t cell_get(const uint8_t *cell, int32_t bytes)
{
  return bytes == 8 ? *(const uint64_t *)cell : *(const uint32_t *)cell;
}

static void cell_set(uint8_t *cell, int32_t bytes, uint64_t v)
{
  if (bytes == 8)
    *(uint64_t *)cell = v;
  else
    *(uint32_t *)cell = (uint32_t)v;
}

static void set_pc_direct(struct trap_hook *t, uint64_t pc)
{
  cell_set(t->pc_cell, t->pc_bytes, pc);
  if (t->npc_cell != 0)
    cell_set(t->npc_cell, t->pc_bytes, pc + 4);
}

/* Take the PC out of the dirty list (its value into *pc): the list's last entry fills its place. */
static int32_t take_pc(struct trap_hook *t, int32_t n, uint64_t *pc, int *has)
{
  for (int32_t i = 0; i < n; i++) {
    if (t->dirty_ids[i] != t->pc_reg)
      continue;
    *pc = cell_get(t->dirty_ptrs[i], t->pc_bytes);
    *has = 1;
    t->dirty_ids[i] = t->dirty_ids[n - 1];
    t->dirty_ptrs[i] = t->dirty_ptrs[n - 1];
    return n - 1;
  }
  return n;
}

static void around(struct trap_hook *t, void *uc, uint32_t arg)
{
  t->ndirty = 0;
  t->loaded = t->n > 0 && t->read_batch(uc, t->ids, t->ptrs, t->n) == 0;
  t->js(arg);
  int32_t n = t->ndirty;
  t->ndirty = 0;
  uint64_t pc = 0;
  int has_pc = 0;
  if (t->pc_cell != 0)
    n = take_pc(t, n, &pc, &has_pc);
  if (n > 0) {
    int e = t->write_batch(uc, t->dirty_ids, t->dirty_ptrs, n);
    if (e != 0 && t->err == 0)
      t->err = e;
  }
  if (has_pc)
    set_pc_direct(t, pc);
}

/* UC_HOOK_INTR: void (*)(uc_engine *, uint32_t intno, void *user_data) */
void uniprobe_trap_intr(void *uc, uint32_t intno, void *user_data)
{
  struct trap_hook *t = user_data;
  struct native_step *s = t->step;
  if (s != 0 && s->armed && intno == s->intno) {
    if (t->pc_cell != 0) {
      if (cell_get(t->pc_cell, t->pc_bytes) == s->pc_at) {
        set_pc_direct(t, s->resume);
        s->armed = 0;
        s->done = 1;
        return;
      }
    } else {
      uint64_t pc = 0; /* a 32-bit PC fills the low half (the host is little-endian) */
      int32_t id = s->pc_reg;
      void *cell = &pc;
      if (t->read_batch(uc, &id, &cell, 1) == 0 && pc == s->pc_at) {
        cell = &s->resume;
        if (t->write_batch(uc, &id, &cell, 1) == 0) {
          s->armed = 0;
          s->done = 1;
          return;
        }
      }
    }
  }
  around(t, uc, intno);
}

/*
 * UC_HOOK_INSN (x86 syscall, sysenter): void (*)(uc_engine *, void *user_data). Its struct never
 * has a pc_cell: the hook runs inside the instruction's helper, mid-block, where only Unicorn's
 * own PC write (with its restart) takes effect.
 */
void uniprobe_trap_insn(void *uc, void *user_data)
{
  around(user_data, uc, 0);
}

uint64_t uniprobe_trap_hook_size(void)
{
  return sizeof(struct trap_hook);
}

uint64_t uniprobe_native_step_size(void)
{
  return sizeof(struct native_step);
}
