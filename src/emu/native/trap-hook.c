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
};

static void around(struct trap_hook *t, void *uc, uint32_t arg)
{
  t->ndirty = 0;
  t->loaded = t->n > 0 && t->read_batch(uc, t->ids, t->ptrs, t->n) == 0;
  t->js(arg);
  int32_t n = t->ndirty;
  t->ndirty = 0;
  if (n > 0) {
    int e = t->write_batch(uc, t->dirty_ids, t->dirty_ptrs, n);
    if (e != 0 && t->err == 0)
      t->err = e;
  }
}

/* UC_HOOK_INTR: void (*)(uc_engine *, uint32_t intno, void *user_data) */
void uniprobe_trap_intr(void *uc, uint32_t intno, void *user_data)
{
  around(user_data, uc, intno);
}

/* UC_HOOK_INSN (x86 syscall, sysenter): void (*)(uc_engine *, void *user_data) */
void uniprobe_trap_insn(void *uc, void *user_data)
{
  around(user_data, uc, 0);
}

uint64_t uniprobe_trap_hook_size(void)
{
  return sizeof(struct trap_hook);
}
