/* Tiny freestanding program used as an ELF reader fixture (see build.sh).
 * Built with -static -nostdlib -ffreestanding: no libc, _start is ours. */

int counter = 3;                 /* .data */
static int scratch[16];          /* .bss  */
__thread int tls_value = 7;      /* PT_TLS (never touched at run time) */

__attribute__((noinline)) int add(int a, int b)
{
	return a + b;
}

__attribute__((noinline)) int fib(int n)
{
	int a = 0, b = 1;
	for (int i = 0; i < n; i++) {
		int t = add(a, b);
		a = b;
		b = t;
	}
	return a;
}

__attribute__((noinline)) static int helper(int x)
{
	scratch[x & 15] += x;
	return scratch[x & 15] + counter;
}

static void sys_exit(int code)
{
#if defined(__x86_64__)
	__asm__ volatile("syscall" : : "a"(60), "D"(code) : "rcx", "r11", "memory");
#elif defined(__i386__)
	__asm__ volatile("int $0x80" : : "a"(1), "b"(code) : "memory");
#elif defined(__powerpc__)
	register long r0 __asm__("r0") = 1;
	register long r3 __asm__("r3") = code;
	__asm__ volatile("sc" : "+r"(r0), "+r"(r3) : : "memory", "cr0");
#elif defined(__sparc__)
	register long g1 __asm__("g1") = 1;
	register long o0 __asm__("o0") = code;
	__asm__ volatile("ta 0x6d" : "+r"(g1), "+r"(o0) : : "memory");
#endif
	for (;;)
		;
}

void _start(void)
{
	sys_exit(fib(10) + helper(counter) - 61);
}
