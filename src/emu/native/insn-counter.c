/*
 * uniprobe's instruction counter: a UC_HOOK_BLOCK callback in C.
 *
 * Unicorn stops a run after `count` instructions (uc_emu_start) but does not say how many ran
 * when the run ended earlier (a system call that blocks, a copy-on-write fault, an exit). The
 * engine used to charge such a run its whole budget, an upper bound that grew with every early
 * stop. This hook counts what really runs, per translated block, at a cost too small to measure
 * (13 M blocks of fib(29) + a sieve in C: within noise of no hook; the same hook in JavaScript
 * costs 30x the whole run).
 *
 * Semantics (the engine's accounting, see src/emu/insn-counter.ts):
 * - A block's instructions are counted when the block is entered (Unicorn calls the hook before
 *   the block's exit-request check, so a block may be counted and then not run at all).
 * - A run that ends inside the last block counted (a fault, Unicorn's instruction budget, a stop
 *   requested before the block's first instruction) has the instructions from the resume PC to
 *   the block's end taken back by the engine; Unicorn's per-instruction budget hook makes that PC
 *   exact. (The engine cannot know whether Unicorn honours a stop it requested: a PC written in
 *   the same hook cancels it. So the count never depends on a stop having happened.)
 *
 * The block's instruction count: fixed-width ISAs give it as size / width; otherwise (x86) it is
 * Unicorn's own count for the block (uc_ctl TB_REQUEST_CACHE, which finds the block being
 * entered in the jump cache without translating), remembered in a direct-mapped cache keyed by
 * (pc, size) that the engine clears whenever it flushes translations.
 *
 * Budgets without Unicorn's count (issue 15): a run with count = 0 has no per-instruction hook,
 * which costs about 3x on all code; the engine then bounds the run here instead (`stop_at`), at
 * block granularity: the run ends before the first block entered once the budget is spent.
 *
 * No header from Unicorn is needed: uc_ctl and uc_emu_stop are passed in as pointers by the engine
 * (dlsym on the library it loaded), so this file links against nothing.
 */
#include <stdint.h>

typedef struct {
  uint64_t pc;
  uint16_t icount;
  uint16_t size;
} uc_tb; /* Unicorn 2.1's struct uc_tb */

typedef int (*uc_ctl_t)(void *uc, int control, ...);
typedef int (*uc_emu_stop_t)(void *uc);

#define CACHE_SLOTS 8192 /* power of two */

struct cache_entry {
  uint64_t pc;
  uint32_t size;
  uint32_t icount; /* 0 = empty */
};

/* Shared with JavaScript: the layout is mirrored by src/emu/insn-counter.ts (offsets in bytes). */
struct counter {
  uint64_t retired;      /*  0: instructions counted so far (monotonic) */
  uint64_t stop_at;      /*  8: end the run at the first block entered once retired >= stop_at (0: never) */
  uint64_t unused3;      /* 16 */
  uint64_t fixed_width;  /* 24: bytes per instruction (ppc, sparc); 0 = variable length (x86) */
  uint64_t last_pc;      /* 32: the last block counted: its pc, */
  uint64_t last_size;    /* 40: size in bytes */
  uint64_t last_icount;  /* 48: and instruction count */
  uint64_t misses;       /* 56: cache misses (statistics) */
  void *emu_stop;        /* 64: uc_emu_stop */
  void *ctl;             /* 72: uc_ctl */
  uint64_t ctl_request;  /* 80: the uc_ctl code for a TB_REQUEST_CACHE read-write with 2 args */
  uint64_t reserved[5];  /* 88..127 */
  struct cache_entry cache[CACHE_SLOTS]; /* 128 */
};

static uint32_t lookup(struct counter *c, void *uc, uint64_t pc, uint32_t size)
{
  uint64_t h = (pc ^ (pc >> 13) ^ ((uint64_t)size << 7)) & (CACHE_SLOTS - 1);
  struct cache_entry *e = &c->cache[h];
  if (e->icount != 0 && e->pc == pc && e->size == size)
    return e->icount;
  c->misses++;
  uc_tb tb = {0, 0, 0};
  uint32_t n = 0;
  if (((uc_ctl_t)c->ctl)(uc, (int)c->ctl_request, pc, &tb) == 0 && tb.pc == pc && tb.icount != 0)
    n = tb.icount;
  if (n == 0)
    return 1; /* unknown: count the block as one instruction, never cache a guess */
  e->pc = pc;
  e->size = size;
  e->icount = n;
  return n;
}

void uniprobe_count_block(void *uc, uint64_t pc, uint32_t size, void *user_data)
{
  struct counter *c = user_data;
  /* An uncounted run's budget (Engine.run): Unicorn checks the stop before the block
   * runs, so the run ends at this block's first instruction, which the engine takes back. */
  if (c->stop_at != 0 && c->retired >= c->stop_at) {
    c->stop_at = 0;
    ((uc_emu_stop_t)c->emu_stop)(uc);
  }
  uint32_t n = c->fixed_width ? (size + (uint32_t)c->fixed_width - 1) / (uint32_t)c->fixed_width : lookup(c, uc, pc, size);
  c->last_pc = pc;
  c->last_size = size;
  c->last_icount = n;
  c->retired += n;
}

/* The engine flushed translations: instruction boundaries may have changed (a breakpoint). */
void uniprobe_counter_flush(struct counter *c)
{
  for (uint32_t i = 0; i < CACHE_SLOTS; i++)
    c->cache[i].icount = 0;
}

uint64_t uniprobe_counter_size(void)
{
  return sizeof(struct counter);
}
