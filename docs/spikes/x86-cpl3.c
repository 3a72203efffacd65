/*
 * Spike for issue 14 (the user/kernel boundary): measures a Unicorn 2.1.1 fact recorded in
 * docs/unicorn.md ("Privilege levels and the boundary"). Not part of the engine.
 * Build and run:
 *   cc -O2 -o /tmp/spike x86-cpl3.c ~/.cache/uniprobe/unicorn-2.1.1/libunicorn.so.2 \
 *      -Wl,-rpath,$HOME/.cache/uniprobe/unicorn-2.1.1 && /tmp/spike
 */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
typedef void uc_engine;
int uc_open(int arch, int mode, uc_engine **uc);
int uc_mem_map(uc_engine *uc, uint64_t address, size_t size, uint32_t perms);
int uc_mem_write(uc_engine *uc, uint64_t address, const void *bytes, size_t size);
int uc_emu_start(uc_engine *uc, uint64_t begin, uint64_t until, uint64_t timeout, size_t count);
int uc_hook_add(uc_engine *uc, size_t *hh, int type, void *callback, void *user_data, uint64_t begin, uint64_t end, ...);
int uc_reg_read(uc_engine *uc, int regid, void *value);
int uc_reg_write(uc_engine *uc, int regid, const void *value);
typedef struct { uint16_t selector; uint64_t base; uint32_t limit; uint32_t flags; } mmr;
static void intr(uc_engine *uc, uint32_t no, void *ud) { uint64_t rip; uc_reg_read(uc, 41, &rip); printf("  interrupt %u at rip=%#lx\n", no, rip); }
static void sys(uc_engine *uc, void *ud) { uint64_t cs=0, ss=0; uc_reg_read(uc, 11, &cs); uc_reg_read(uc, 49, &ss); printf("  syscall hook cs=%#lx ss=%#lx\n", cs, ss); }
int main() {
  const char *names[] = {"cli", "hlt", "wrmsr", "mov cr3,rax", "out dx,al", "lgdt", "syscall", "rdtsc", "in al,dx"};
  uint8_t ins[][8] = {{0xFA}, {0xF4}, {0x0F,0x30}, {0x0F,0x22,0xD8}, {0xEE}, {0x0F,0x01,0x14,0x25,0,0x50,0,0}, {0x0F,0x05}, {0x0F,0x31}, {0xEC}};
  int lens[] = {1,1,2,3,1,8,2,2,1};
  for (int i = 0; i < 9; i++) {
    uc_engine *uc; uc_open(4, 1 << 3, &uc);
    uc_mem_map(uc, 0x1000, 0x1000, 7); uc_mem_map(uc, 0x5000, 0x1000, 7);
    uint64_t gdt[] = {0, 0x00209A0000000000ULL, 0x0000920000000000ULL, 0x0000F20000000000ULL, 0x0020FA0000000000ULL};
    uc_mem_write(uc, 0x5000, gdt, sizeof gdt);
    mmr g = {0, 0x5000, sizeof gdt - 1, 0}; int e1 = uc_reg_write(uc, 243, &g);
    struct { uint32_t rid; uint64_t v; } msr = {0xC0000080, 0x501}; int e2 = uc_reg_write(uc, 248, &msr);
    msr.rid = 0xC0000081; msr.v = (0x10ULL << 48) | (0x08ULL << 32); int e3 = uc_reg_write(uc, 248, &msr);
    uc_mem_map(uc, 0x2000, 0x1000, 7);
    uint8_t k[] = {0x48,0xC7,0xC1,0x00,0x20,0x00,0x00, 0x49,0xC7,0xC3,0x02,0x02,0x00,0x00, 0x48,0x0F,0x07};
    uc_mem_write(uc, 0x1000, k, sizeof k);
    uint64_t rcs=0, rss=0; uc_reg_read(uc, 11, &rcs); uc_reg_read(uc, 49, &rss);
    uint8_t code[16]; memcpy(code, ins[i], lens[i]); code[lens[i]] = 0x90; code[lens[i]+1] = 0x90;
    uc_mem_write(uc, 0x2000, code, lens[i] + 2);
    size_t h, h2; uc_hook_add(uc, &h, 1 << 0, intr, 0, 1, 0); uc_hook_add(uc, &h2, 1 << 1, sys, 0, 1, 0, 699);
    int e = uc_emu_start(uc, 0x1000, 0x2000 + lens[i] + 2, 0, 0); uc_reg_read(uc, 11, &rcs); uc_reg_read(uc, 49, &rss);
    uint64_t rip; uc_reg_read(uc, 41, &rip);
    printf("%-12s gdtr=%d ss=%d cs=%d (cs=%#lx ss=%#lx) -> err=%d rip=%#lx\n", names[i], e1, e2, e3, rcs, rss, e, rip);
  }
}
