/*
 * Spike for issue 14 (the user/kernel boundary): measures a Unicorn 2.1.1 fact recorded in
 * docs/unicorn.md ("Privilege levels and the boundary"). Not part of the engine.
 * Build and run:
 *   cc -O2 -o /tmp/spike boundary-tlb.c ~/.cache/uniprobe/unicorn-2.1.1/libunicorn.so.2 \
 *      -Wl,-rpath,$HOME/.cache/uniprobe/unicorn-2.1.1 && /tmp/spike
 */
#include <stdio.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
typedef void uc_engine;
typedef struct { uint64_t paddr; int perms; } uc_tlb_entry;
int uc_open(int arch, int mode, uc_engine **uc);
int uc_mem_map(uc_engine *uc, uint64_t address, size_t size, uint32_t perms);
int uc_mem_write(uc_engine *uc, uint64_t address, const void *bytes, size_t size);
int uc_mem_read(uc_engine *uc, uint64_t address, void *bytes, size_t size);
int uc_emu_start(uc_engine *uc, uint64_t begin, uint64_t until, uint64_t timeout, size_t count);
int uc_hook_add(uc_engine *uc, size_t *hh, int type, void *callback, void *user_data, uint64_t begin, uint64_t end, ...);
int uc_reg_read(uc_engine *uc, int regid, void *value);
int uc_reg_write(uc_engine *uc, int regid, const void *value);
int uc_ctl(uc_engine *uc, int control, ...);
int uc_close(uc_engine *uc);
#define RIP 41
#define CTL_W(t, n) ((t) | (n) << 26 | 1 << 30)  /* UC_CTL_IO_WRITE = 1 <<30? */
static int user_mode = 1; static long fills = 0, denied = 0;
static uint64_t saved;
static int toggle_mode; /* 0 = cpu tlb, 1 = virtual tlb with flush */
static bool fill(uc_engine *uc, uint64_t vaddr, int type, uc_tlb_entry *r, void *ud) {
  fills++;
  r->paddr = vaddr & ~0xfffULL; r->perms = 7;
  if (user_mode && vaddr >= 0x200000 && vaddr < 0x202000) { denied++; return false; }
  return true;
}
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static void on_syscall(uc_engine *uc, void *ud) {
  uint64_t rip; uc_reg_read(uc, RIP, &rip);
  if (rip < 0x200000) { saved = rip; user_mode = 0; if (toggle_mode) uc_ctl(uc, (11) | (0 << 26) | (1u << 30)); rip = 0x200000 - 2; }
  else { user_mode = 1; if (toggle_mode) uc_ctl(uc, (11) | (0 << 26) | (1u << 30)); rip = saved; }
  uc_reg_write(uc, RIP, &rip);
}
int main(int argc, char **argv) {
  int N = 200000;
  for (toggle_mode = 0; toggle_mode < 2; toggle_mode++) for (int work = 0; work < 2; work++) {
    uc_engine *uc; uc_open(4, 1 << 3, &uc);
    if (toggle_mode) { int e = uc_ctl(uc, 12 | (1 << 26) | (1u << 30), 1); if (e) printf("tlb mode err %d\n", e); }
    uc_mem_map(uc, 0x1000, 0x10000, 7); uc_mem_map(uc, 0x200000, 0x2000, 7);
    /* user: mov ecx,N; l: [work: touch 8 pages] syscall; dec ecx; jnz l; hlt */
    uint8_t code[256]; int n = 0;
    code[n++] = 0xB9; memcpy(code + n, &N, 4); n += 4; int loop = n;
    if (work) for (int p = 0; p < 8; p++) { uint8_t st[] = {0x48,0x89,0x04,0x25,0,0,0,0}; uint32_t a = 0x3000 + p * 0x1000; memcpy(st+4,&a,4); memcpy(code+n, st, 8); n += 8; }
    code[n++]=0x0F; code[n++]=0x05; code[n++]=0xFF; code[n++]=0xC9; code[n++]=0x75; code[n] = (uint8_t)(loop - (n + 1)); n++; code[n++]=0xF4;
    uc_mem_write(uc, 0x1000, code, n);
    uint8_t k[] = {0x48,0x8B,0x04,0x25,0x00,0x10,0x20,0x00, 0x48,0x83,0xC0,0x01, 0x48,0x89,0x04,0x25,0x00,0x10,0x20,0x00, 0x0F,0x05};
    uc_mem_write(uc, 0x200000, k, sizeof k);
    size_t h; uc_hook_add(uc, &h, 1 << 1, on_syscall, 0, 1, 0, 699);
    if (toggle_mode) { size_t h2; int e = uc_hook_add(uc, &h2, 1 << 17, fill, 0, 1, 0); if (e) printf("hook err %d\n", e); }
    fills = 0; user_mode = 1;
    double t = now(); int e = uc_emu_start(uc, 0x1000, 0x1000 + n, 0, 0); t = now() - t;
    uint64_t cnt; uc_mem_read(uc, 0x201000, &cnt, 8);
    printf("virtual_tlb=%d touch8pages=%d err=%d cnt=%lu fills=%ld  %.2f us/syscall\n", toggle_mode, work, e, cnt, fills, t * 1e6 / N);
    uc_close(uc);
  }
  /* boundary check: user load from kernel page under virtual tlb */
  { uc_engine *uc; uc_open(4, 1 << 3, &uc); uc_ctl(uc, 12 | (1 << 26) | (1u << 30), 1);
    uc_mem_map(uc, 0x1000, 0x1000, 7); uc_mem_map(uc, 0x200000, 0x2000, 7);
    uint8_t c[] = {0x48,0x8B,0x04,0x25,0x00,0x10,0x20,0x00, 0xF4}; uc_mem_write(uc, 0x1000, c, sizeof c);
    size_t h2; uc_hook_add(uc, &h2, 1 << 17, fill, 0, 1, 0); user_mode = 1; denied = 0;
    int e = uc_emu_start(uc, 0x1000, 0x1009, 0, 0); uint64_t rip; uc_reg_read(uc, RIP, &rip);
    printf("user read of kernel page: err=%d rip=%#lx denied=%ld\n", e, rip, denied); }
  return 0;
}
