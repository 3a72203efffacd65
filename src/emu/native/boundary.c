/*
 * uniprobe's user/kernel boundary: a UC_HOOK_TLB_FILL callback in C (Unicorn 2.1's virtual TLB,
 * UC_CTL_TLB_TYPE = UC_TLB_VIRTUAL).
 *
 * Unicorn runs the guest kernel and the user program with one set of page permissions, so the
 * boundary Linux's page tables draw (kernel pages are supervisor-only) is drawn here instead: the
 * engine tells this struct which mode the CPU is in (src/emu/boundary.ts), and a TLB fill for a
 * user-mode access to a kernel range is pointed at a physical page nothing is mapped at (the
 * "hole"). The access then fails as an ordinary unmapped access, through the engine's usual
 * UC_HOOK_MEM_*_UNMAPPED path, with the hole's address + the offset in the page: the engine turns
 * that back into the virtual address (struct boundary.denied_page), so the signal carries the
 * exact fault address Linux reports. Refusing the fill instead would end the run with
 * UC_ERR_EXCEPTION and no address (docs/unicorn.md).
 *
 * Only TLB misses come here (a hit never calls back): unprobed compute costs nothing. Entries
 * filled in kernel mode would let user mode through, so the engine flushes the TLB on every
 * return to user mode; hole entries would fault the kernel, so it flushes on entry when one was
 * made (denied_since_flush).
 *
 * Translation: physical = virtual & phys_mask (Unicorn's own truncation of high address bits on
 * x86-64, ppc64 real mode and sparc64, where the engine maps kernel regions a second time, at
 * their alias). No header from Unicorn is needed: this file links against nothing.
 */
#include <stdbool.h>
#include <stdint.h>

typedef struct {
  uint64_t paddr;
  int perms;
} uc_tlb_entry; /* Unicorn 2.1's struct uc_tlb_entry */

#define MAX_RANGES 8

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
};

bool uniprobe_tlb_fill(void *uc, uint64_t vaddr, int type, uc_tlb_entry *e, void *user_data)
{
  struct boundary *b = user_data;
  (void)uc;
  (void)type;
  b->fills++;
  e->perms = 7; /* the region's own protection still applies (Unicorn checks it on access) */
  e->paddr = vaddr & b->phys_mask;
  if (b->user) {
    for (uint64_t i = 0; i < b->nranges; i++) {
      if (vaddr >= b->ranges[2 * i] && vaddr <= b->ranges[2 * i + 1]) {
        e->paddr = b->hole;
        b->denied_page = vaddr;
        b->denied_since_flush = 1;
        b->denied++;
        break;
      }
    }
  }
  return true;
}

uint64_t uniprobe_boundary_size(void)
{
  return sizeof(struct boundary);
}
