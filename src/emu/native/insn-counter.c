/*
 * uniprobe's instruction counter: a UC_HOOK_BLOCK callback in C.
 *
 * Unicorn stops a run after `count` instructions (uc_emu_start) but does not say how many ran
 * when the run ended earlier (a system call that blocks, a copy-on-write fault, an exit). The
 * engine used to charge such a run its whole budget, an upper bound that grew with every early
 * stop. This hook counts what really runs, per translated block. Its cost is that of a call at
 * every block entry (busybox sha256sum, 68 M blocks per 16 MiB: 1.3-1.4x the bare run, of which
 * an empty callback is 1.06-1.13x; the same hook in JavaScript costs 30x the whole run). Unicorn
 * 2.1.1 calls a lone block hook directly from the translated code (its "inline hook"), so the
 * callback's own body is the part left to keep small (see `count`).
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
  uint64_t fixed_shift;  /* 16: log2 of bytes per instruction, for uniprobe_count_block_fixed */
  uint64_t fixed_width;  /* 24: bytes per instruction (ppc, sparc); 0 = variable length (x86) */
  uint64_t last_pc;      /* 32: the last block counted: its pc, */
  uint64_t last_size;    /* 40: size in bytes */
  uint64_t last_icount;  /* 48: and instruction count */
  uint64_t misses;       /* 56: cache misses (statistics) */
  void *emu_stop;        /* 64: uc_emu_stop */
  void *ctl;             /* 72: uc_ctl */
  uint64_t ctl_request;  /* 80: the uc_ctl code for a TB_REQUEST_CACHE read-write with 2 args */
  uint64_t stopped;      /* 88: 1 once this hook ended a run (the engine clears it before each run) */
  uint64_t stopped_pc;   /* 96: the block it ended the run at */
  uint64_t reserved[3];  /* 104..127 */
  struct cache_entry cache[CACHE_SLOTS]; /* 128 */
};

/*
 * The hook runs at the entry of every translated block, so its cost is part of the engine's floor.
 * The common case is kept a leaf that saves no registers: the stop and the cache miss go to an
 * out-of-line function by a tail call. Measured on busybox sha256sum (68 M blocks): an empty
 * callback costs about 1.06x the bare run; this hook's first version, with its slow paths inline
 * (six register saves per block) and a division for the fixed width, cost 1.5x.
 */
static inline void count(struct counter *c, uint64_t pc, uint32_t size, uint32_t n)
{
  c->last_pc = pc;
  c->last_size = size;
  c->last_icount = n;
  c->retired += n;
}

#define BUDGET_SPENT(c) ((c)->stop_at != 0 && (c)->retired >= (c)->stop_at)

static inline struct cache_entry *slot(struct counter *c, uint64_t pc, uint32_t size)
{
  return &c->cache[(pc ^ (pc >> 13) ^ ((uint64_t)size << 7)) & (CACHE_SLOTS - 1)];
}

static __attribute__((noinline, cold)) void count_slowly(void *uc, uint64_t pc, uint32_t size, struct counter *c)
{
  /* An uncounted run's budget (Engine.run) is spent: Unicorn checks the stop before the block
   * runs, so the run ends at this block's first instruction, which the engine takes back. */
  if (BUDGET_SPENT(c)) {
    c->stop_at = 0;
    c->stopped = 1;
    c->stopped_pc = pc;
    ((uc_emu_stop_t)c->emu_stop)(uc);
  }
  if (c->fixed_width) {
    count(c, pc, size, (size + (1u << c->fixed_shift) - 1) >> c->fixed_shift);
    return;
  }
  struct cache_entry *e = slot(c, pc, size);
  if (e->icount != 0 && e->pc == pc && e->size == size) {
    count(c, pc, size, e->icount);
    return;
  }
  /* A miss: ask Unicorn for the block being entered (found in its jump cache, not translated). */
  c->misses++;
  uc_tb tb = {0, 0, 0};
  uint32_t n = 0;
  if (((uc_ctl_t)c->ctl)(uc, (int)c->ctl_request, pc, &tb) == 0 && tb.pc == pc && tb.icount != 0)
    n = tb.icount;
  if (n == 0) {
    count(c, pc, size, 1); /* unknown: count the block as one instruction, never cache a guess */
    return;
  }
  e->pc = pc;
  e->size = size;
  e->icount = n;
  count(c, pc, size, n);
}

/* Variable-length instruction sets (x86): the count comes from the cache keyed by (pc, size). */
void uniprobe_count_block(void *uc, uint64_t pc, uint32_t size, void *user_data)
{
  struct counter *c = user_data;
  struct cache_entry *e = slot(c, pc, size);
  if (__builtin_expect(BUDGET_SPENT(c) || e->icount == 0 || e->pc != pc || e->size != size, 0)) {
    count_slowly(uc, pc, size, c);
    return;
  }
  count(c, pc, size, e->icount);
}

/* Fixed-width instruction sets (ppc, sparc): size >> fixed_shift, no division. */
void uniprobe_count_block_fixed(void *uc, uint64_t pc, uint32_t size, void *user_data)
{
  struct counter *c = user_data;
  if (__builtin_expect(BUDGET_SPENT(c), 0)) {
    count_slowly(uc, pc, size, c);
    return;
  }
  count(c, pc, size, (size + (1u << c->fixed_shift) - 1) >> c->fixed_shift);
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
