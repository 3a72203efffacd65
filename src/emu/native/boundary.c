/*
 * uniprobe's MMU for Unicorn: a UC_HOOK_TLB_FILL callback in C (Unicorn 2.1's virtual TLB,
 * UC_CTL_TLB_TYPE = UC_TLB_VIRTUAL). Every TLB miss is a page walk, as on a real CPU, and it does
 * two jobs Unicorn's own memory checks cannot do.
 *
 * 1. The user/kernel boundary. Unicorn runs the guest kernel and the user program with one set of
 *    page permissions, so the boundary Linux's page tables draw (kernel pages are supervisor-only)
 *    is drawn here instead: the engine tells this struct which mode the CPU is in
 *    (src/emu/boundary.ts), and a user-mode access to a kernel range is refused.
 *
 * 2. Precise faults (issue 15). Unicorn 2.1.1 checks a region's permissions after the TLB, in its
 *    store/load helpers, and there a store that no hook accepts is dropped while the rest of the
 *    translated block runs on (cputlb.c store_helper: cpu_exit and return); only the
 *    per-instruction hook of a counted run (uc_emu_start with count > 0) ends the block at the
 *    faulting instruction, and that hook triples the cost of all code. A fill refused here instead
 *    raises the fault from the TLB (unicorn_vtlb.c raise_mmu_exception: cpu_loop_exit_restore),
 *    which QEMU unwinds to the faulting instruction: registers and PC exact, nothing after it run,
 *    with or without a count. So while the engine runs (`strict`), a fill carries the page's real
 *    permissions from a copy of the engine's mappings (`maps`, kept by the engine at every
 *    uc_mem_map / unmap / protect), and an access they forbid (a copy-on-write store, an unmapped
 *    page, a fetch from a page without exec, a user access to the kernel) is refused and recorded
 *    (`refused*`): the run ends with UC_ERR_EXCEPTION at the faulting instruction, and the engine
 *    reads the page and the access here. Unicorn passes the page, not the byte: where the exact
 *    address matters (a signal's si_addr) the engine runs that one instruction again, loosely.
 *
 * Loose fills (strict = 0: between runs, for the engine's own uc_ctl calls, and that one
 * instruction) allow everything and leave the checks to Unicorn, as before; a user access to a
 * kernel range is then pointed at a physical page nothing is mapped at (the "hole"), so it fails
 * as an ordinary unmapped access with the hole's address + the offset in the page, which the
 * engine turns back into the virtual address (denied_page). Loose entries would let a strict run
 * through unchecked, so the engine flushes the TLB before a strict run when one was made (`loose`).
 *
 * Only TLB misses come here (a hit never calls back): unprobed compute costs nothing. Entries
 * filled in kernel mode would let user mode through, so the engine flushes the TLB on every
 * return to user mode; hole entries would fault the kernel, so it flushes on entry when one was
 * made (denied_since_flush).
 *
 * Translation: physical = virtual & phys_mask (Unicorn's own truncation of high address bits on
 * x86-64, ppc64 real mode and sparc64, where the engine maps kernel regions a second time, at
 * their alias); `maps` holds physical ranges, as the engine maps them. No header from Unicorn is
 * needed: this file links against nothing but libc.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  uint64_t paddr;
  int perms;
} uc_tlb_entry; /* Unicorn 2.1's struct uc_tlb_entry */

#define MAX_RANGES 8

/* Unicorn's uc_mem_type for a fill, and UC_PROT_* */
enum { MEM_READ = 16, MEM_WRITE = 17, MEM_FETCH = 18 };
enum { PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4, PROT_ALL = 7 };

/* One mapped physical range, [first, last] inclusive, and its UC_PROT_* permissions. */
struct map {
  uint64_t first;
  uint64_t last;
  uint64_t perms;
};

/* Shared with JavaScript: the layout is mirrored by src/emu/boundary.ts (offsets in bytes). */
struct boundary {
  uint64_t user;               /*  0: 1 while the CPU runs user code */
  uint64_t phys_mask;          /*  8 */
  uint64_t hole;               /* 16: a physical page with nothing mapped at it */
  uint64_t denied_page;        /* 24: the virtual page of the last refused access */
  uint64_t denied_since_flush; /* 32: a hole entry may be in the TLB */
  uint64_t denied;             /* 40: refusals so far (statistics) */
  uint64_t fills;              /* 48: fills so far (statistics) */
  uint64_t nranges;            /* 56 */
  uint64_t ranges[2 * MAX_RANGES]; /* 64: [first, last] pairs (inclusive) user mode may not touch */
  uint64_t strict;             /* 192: fills carry real permissions and refuse (a run is on) */
  uint64_t refused;            /* 200: a fill was refused since the engine last looked */
  uint64_t refused_page;       /* 208: its virtual page */
  uint64_t refused_type;       /* 216: its access (MEM_READ, MEM_WRITE, MEM_FETCH) */
  uint64_t refused_perms;      /* 224: the page's permissions then (0: nothing mapped) */
  uint64_t refused_denied;     /* 232: 1 when it was a user access to a kernel range */
  uint64_t loose;              /* 240: a loose fill was made since the engine last flushed */
  uint64_t nmaps;              /* 248: entries in maps, sorted by first, disjoint */
  uint64_t cap;                /* 256 */
  struct map *maps;            /* 264: owned here (uniprobe_mmu_set, uniprobe_mmu_free) */
};

/* The permissions the engine mapped physical address `pa` with; 0 when nothing is mapped there. */
static uint64_t perms_at(const struct boundary *b, uint64_t pa)
{
  uint64_t lo = 0, hi = b->nmaps;
  while (lo < hi) { /* first entry with first > pa */
    uint64_t mid = lo + (hi - lo) / 2;
    if (b->maps[mid].first <= pa) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return 0;
  const struct map *m = &b->maps[lo - 1];
  return pa <= m->last ? m->perms : 0;
}

static bool refuse(struct boundary *b, uint64_t page, int type, uint64_t perms, bool denied)
{
  b->refused = 1;
  b->refused_page = page;
  b->refused_type = (uint64_t)type;
  b->refused_perms = perms;
  b->refused_denied = denied;
  return false; /* Unicorn raises the fault from the TLB, precisely */
}

bool uniprobe_tlb_fill(void *uc, uint64_t vaddr, int type, uc_tlb_entry *e, void *user_data)
{
  struct boundary *b = user_data;
  (void)uc;
  b->fills++;
  e->perms = PROT_ALL;
  e->paddr = vaddr & b->phys_mask;
  if (b->user) {
    for (uint64_t i = 0; i < b->nranges; i++) {
      if (vaddr >= b->ranges[2 * i] && vaddr <= b->ranges[2 * i + 1]) {
        b->denied_page = vaddr;
        b->denied++;
        if (b->strict)
          return refuse(b, vaddr, type, 0, true);
        e->paddr = b->hole;
        b->denied_since_flush = 1;
        b->loose = 1;
        return true;
      }
    }
  }
  if (!b->strict) {
    /* The region's own protection still applies (Unicorn checks it on access, imprecisely). */
    b->loose = 1;
    return true;
  }
  uint64_t perms = perms_at(b, e->paddr);
  uint64_t need = type == MEM_WRITE ? PROT_WRITE : type == MEM_FETCH ? PROT_EXEC : PROT_READ;
  if (!(perms & need))
    return refuse(b, vaddr, type, perms, false);
  e->perms = (int)perms;
  return true;
}

/*
 * The engine mapped [first, last] with `perms`, or unmapped it (perms = ~0): whatever was there is
 * replaced. O(n) per change, n = the engine's regions (hundreds); -1 when out of memory.
 */
int uniprobe_mmu_set(struct boundary *b, uint64_t first, uint64_t last, uint64_t perms)
{
  if (b->nmaps + 2 > b->cap) {
    uint64_t cap = b->cap ? 2 * b->cap : 64;
    struct map *m = realloc(b->maps, cap * sizeof *m);
    if (!m)
      return -1;
    b->maps = m;
    b->cap = cap;
  }
  /* Entries wholly before the range stay; an entry that straddles its start is cut. */
  uint64_t i = 0;
  while (i < b->nmaps && b->maps[i].last < first)
    i++;
  struct map head = {0, 0, 0}, tail = {0, 0, 0};
  int has_head = 0, has_tail = 0;
  uint64_t j = i; /* entries [i, j) overlap the range */
  while (j < b->nmaps && b->maps[j].first <= last) {
    if (b->maps[j].first < first) {
      head = b->maps[j];
      head.last = first - 1;
      has_head = 1;
    }
    if (b->maps[j].last > last) {
      tail = b->maps[j];
      tail.first = last + 1;
      has_tail = 1;
    }
    j++;
  }
  struct map mid = {first, last, perms};
  int has_mid = perms != ~(uint64_t)0;
  uint64_t add = (uint64_t)(has_head + has_mid + has_tail);
  memmove(&b->maps[i + add], &b->maps[j], (b->nmaps - j) * sizeof(struct map));
  uint64_t k = i;
  if (has_head)
    b->maps[k++] = head;
  if (has_mid)
    b->maps[k++] = mid;
  if (has_tail)
    b->maps[k++] = tail;
  b->nmaps = b->nmaps - (j - i) + add;
  return 0;
}

void uniprobe_mmu_free(struct boundary *b)
{
  free(b->maps);
  b->maps = NULL;
  b->nmaps = b->cap = 0;
}

uint64_t uniprobe_boundary_size(void)
{
  return sizeof(struct boundary);
}
