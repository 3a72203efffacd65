/**
 * Tiny sparc64 guest programs for test/arch/sparc64.test.ts: the source, and the words GNU as
 * (`sparc64-linux-gnu-as -Av9`, linked at 0x100000 with .bss at 0x104000) made of it. Expected
 * results come from running the same linked programs under qemu-sparc64 (qemu 7.2), except where
 * a note says they were derived by hand.
 */
export interface SparcProgram {
  /** What it checks and where the expected result comes from. */
  about: string;
  source: string;
  words: number[];
}

export const recursion: SparcProgram = {
  about: 'sum(20) by recursion with save / ret; restore: 21 frames, more than the 8 windows. qemu-sparc64: exit 210.',
  source: `
	.text
	.globl _start
_start:
	mov 20, %o0
	call sum
	 nop
	mov 188, %g1
	ta 0x6d
sum:	save %sp, -176, %sp
	brz,pn %i0, 1f
	 mov %i0, %l0
	call sum
	 sub %i0, 1, %o0
	add %o0, %l0, %i0
1:	ret
	 restore
`,
  words: [
    0x90102014, 0x40000004, 0x01000000, 0x821020bc, 0x91d0206d, 0x9de3bf50, 0x02c60005, 0xa0100018,
    0x7ffffffd, 0x90262001, 0xb0020010, 0x81c7e008, 0x81e80000,
  ],
};

export const overflowSpills: SparcProgram = {
  about: "sum(20), each frame records its %sp; at the bottom every frame's saved %l0 is read from its window save area without flushw. qemu-sparc64: frames 0..6 (resident) read 0, frames 7..20 (spilled by overflow) read n; exit 210.",
  source: `
! sum(20) recursion; every frame records its %sp in sps[n]; at the bottom
! (n = 0) read each frame's saved %l0 from its window save area
! (%sp + 2047) into out[n] without any flushw: frames whose windows were
! spilled by overflow show n, resident ones still show 0. Then print out[].
	.text
	.globl _start
_start:
	mov 20, %o0
	call sum
	 nop
	mov 188, %g1
	ta 0x6d
sum:	save %sp, -176, %sp
	sethi %hi(0x104000), %g4          ! sps[] at 0x104000, out[] at 0x104100
	sllx %i0, 3, %g5
	stx %sp, [%g4 + %g5]
	brz,pn %i0, 2f
	 mov %i0, %l0
	call sum
	 sub %i0, 1, %o0
	add %o0, %l0, %i0
1:	ret
	 restore
2:	mov 0, %g3                         ! n = 0..20
3:	sllx %g3, 3, %g5
	ldx [%g4 + %g5], %g2               ! sps[n]
	ldx [%g2 + 2047], %g2              ! its saved %l0
	add %g5, 0x100, %g5
	stx %g2, [%g4 + %g5]               ! out[n]
	cmp %g3, 20
	bne,pt %xcc, 3b
	 add %g3, 1, %g3
	mov 1, %o0
	add %g4, 0x100, %o1
	mov 168, %o2
	mov 4, %g1
	ta 0x6d
	ba,pt %xcc, 1b
	 nop
	.bss
	.skip 0x400
`,
  words: [
    0x90102014, 0x40000004, 0x01000000, 0x821020bc, 0x91d0206d, 0x9de3bf50, 0x09000410, 0x8b2e3003,
    0xdc710005, 0x02c60007, 0xa0100018, 0x7ffffffa, 0x90262001, 0xb0020010, 0x81c7e008, 0x81e80000,
    0x86102000, 0x8b28f003, 0xc4590005, 0xc458a7ff, 0x8a016100, 0xc4710005, 0x80a0e014, 0x126ffffa,
    0x8600e001, 0x90102001, 0x92012100, 0x941020a8, 0x82102004, 0x91d0206d, 0x106ffff0, 0x01000000,
  ],
};

export const flushw: SparcProgram = {
  about: "flushw: g reads f's save area before (0: resident) and after a flushw. qemu-sparc64: 8 zero bytes, then f's %l0-%l7 = 0x30..0x37 and %i0-%i5 = 0x61..0x66; exit 0.",
  source: `
! flushw: f fills its window with known values and calls g; g reads f's
! window save area (f's %sp + 2047 = g's %fp + 2047) before and after a
! flushw (before: still zero, the window is resident), then \`ta 3\`
! (ST_FLUSH_WINDOWS) with nothing left to flush. Prints the 8-byte "before"
! word, then f's %l0-%l7 and %i0-%i5 as found in memory (112 bytes).
	.text
	.globl _start
_start:
	sethi %hi(0x104000), %g4
	call f
	 nop
	mov 0, %o0
	mov 188, %g1
	ta 0x6d
f:	save %sp, -176, %sp
	mov 0x30, %l0
	mov 0x31, %l1
	mov 0x32, %l2
	mov 0x33, %l3
	mov 0x34, %l4
	mov 0x35, %l5
	mov 0x36, %l6
	mov 0x37, %l7
	mov 0x61, %i0
	mov 0x62, %i1
	mov 0x63, %i2
	mov 0x64, %i3
	mov 0x65, %i4
	mov 0x66, %i5
	call g
	 nop
	ret
	 restore
g:	save %sp, -176, %sp
	ldx [%fp + 2047], %g2
	stx %g2, [%g4]
	flushw
	mov 1, %o0
	mov %g4, %o1
	mov 8, %o2
	mov 4, %g1
	ta 0x6d
	mov 1, %o0
	add %fp, 2047, %o1
	mov 112, %o2
	mov 4, %g1
	ta 0x6d
	ret
	 restore
	.bss
	.skip 0x400
`,
  words: [
    0x09000410, 0x40000005, 0x01000000, 0x90102000, 0x821020bc, 0x91d0206d, 0x9de3bf50, 0xa0102030,
    0xa2102031, 0xa4102032, 0xa6102033, 0xa8102034, 0xaa102035, 0xac102036, 0xae102037, 0xb0102061,
    0xb2102062, 0xb4102063, 0xb6102064, 0xb8102065, 0xba102066, 0x40000004, 0x01000000, 0x81c7e008,
    0x81e80000, 0x9de3bf50, 0xc45fa7ff, 0xc4710000, 0x81580000, 0x90102001, 0x92100004, 0x94102008,
    0x82102004, 0x91d0206d, 0x90102001, 0x9207a7ff, 0x94102070, 0x82102004, 0x91d0206d, 0x81c7e008,
    0x81e80000,
  ],
};

export const ta3: SparcProgram = {
  about: 'the same with `ta 3` (Linux ST_FLUSH_WINDOWS, ttable_64.S entry 0x103) instead of flushw; qemu-sparc64 7.2 does not implement ta 3 ("Unhandled trap: 0x103"), so the expectation is the flushw program\'s output.',
  source: `
! flushw: f fills its window with known values and calls g; g reads f's
! window save area (f's %sp + 2047 = g's %fp + 2047) before and after a
! flushw (before: still zero, the window is resident), then \`ta 3\`
! (ST_FLUSH_WINDOWS) with nothing left to flush. Prints the 8-byte "before"
! word, then f's %l0-%l7 and %i0-%i5 as found in memory (112 bytes).
	.text
	.globl _start
_start:
	sethi %hi(0x104000), %g4
	call f
	 nop
	mov 0, %o0
	mov 188, %g1
	ta 0x6d
f:	save %sp, -176, %sp
	mov 0x30, %l0
	mov 0x31, %l1
	mov 0x32, %l2
	mov 0x33, %l3
	mov 0x34, %l4
	mov 0x35, %l5
	mov 0x36, %l6
	mov 0x37, %l7
	mov 0x61, %i0
	mov 0x62, %i1
	mov 0x63, %i2
	mov 0x64, %i3
	mov 0x65, %i4
	mov 0x66, %i5
	call g
	 nop
	ret
	 restore
g:	save %sp, -176, %sp
	ldx [%fp + 2047], %g2
	stx %g2, [%g4]
	nop
	ta 3
	mov 1, %o0
	mov %g4, %o1
	mov 8, %o2
	mov 4, %g1
	ta 0x6d
	mov 1, %o0
	add %fp, 2047, %o1
	mov 112, %o2
	mov 4, %g1
	ta 0x6d
	ret
	 restore
	.bss
	.skip 0x400
`,
  words: [
    0x09000410, 0x40000005, 0x01000000, 0x90102000, 0x821020bc, 0x91d0206d, 0x9de3bf50, 0xa0102030,
    0xa2102031, 0xa4102032, 0xa6102033, 0xa8102034, 0xaa102035, 0xac102036, 0xae102037, 0xb0102061,
    0xb2102062, 0xb4102063, 0xb6102064, 0xb8102065, 0xba102066, 0x40000004, 0x01000000, 0x81c7e008,
    0x81e80000, 0x9de3bf50, 0xc45fa7ff, 0xc4710000, 0x01000000, 0x91d02003, 0x90102001, 0x92100004,
    0x94102008, 0x82102004, 0x91d0206d, 0x90102001, 0x9207a7ff, 0x94102070, 0x82102004, 0x91d0206d,
    0x81c7e008, 0x81e80000,
  ],
};

export const delaySlots: SparcProgram = {
  about: 'traps in delay slots (syscall after taken/untaken bcs and after call, save after call, return with a delay insn, restore after brnz, flushw after brnz,a). qemu-sparc64: "ABCDEFGHI", exit 7.',
  source: `
! Traps taken in delay slots, each printing one letter; the expected output
! "ABCDEFGHI" and exit status 7 come from qemu-sparc64.
	.text
	.globl _start
_start:
	sethi %hi(0x104000), %g4           ! one-byte buffer
	! 1. syscall in the delay slot of a taken bcs: the carry is set before the
	!    branch and cleared by the (successful) write: still taken.
	mov 0x41, %o0
	call putc_setup                     ! o1 = buf with 'A', o0 = 1, o2 = 1, g1 = 4
	 nop
	subcc %g0, 1, %g0                   ! C = 1
	bcs,pt %xcc, 1f
	 ta 0x6d                            ! write 'A'
	ba,a,pt %xcc, bad
1:	mov 0x42, %o0                       ! 'B'
	call putc
	 nop
	! 2. the same, not taken: carry clear, so fall through.
	mov 0x43, %o0
	call putc_setup
	 nop
	addcc %g0, %g0, %g0                 ! C = 0
	bcs,pt %xcc, bad
	 ta 0x6d                            ! write 'C'
	mov 0x44, %o0                       ! 'D'
	call putc
	 nop
	! 3. syscall in the delay slot of a call: continues in the callee.
	mov 0x45, %o0
	call putc_setup
	 nop
	call after_e
	 ta 0x6d                            ! write 'E'
	! 4. save in the delay slot of a call; the callee returns with ret; restore.
	call callee_saved
	 save %sp, -176, %sp
	! 5. return with a non-nop delay slot (runs in the caller's window).
	mov 0x47, %o0                       ! 'G' - 1 + 1
	call ret_inc
	 sub %o0, 1, %o0
	call putc
	 nop
	! 6. restore in the delay slot of a taken brnz (register condition).
	call brz_restore
	 mov 0x48, %o0                      ! returns 'H' via restore %i0, 0, %o0
	call putc
	 nop
	! 7. annulled branch: delay slot (a flushw) runs only when taken.
	mov 1, %o0
	brnz,a,pt %o0, 2f
	 flushw
	ba,a,pt %xcc, bad
2:	mov 0x49, %o0                       ! 'I'
	call putc
	 nop
	mov 7, %o0
	mov 188, %g1
	ta 0x6d
bad:	mov 99, %o0
	mov 188, %g1
	ta 0x6d

after_e:                                ! leaf: prints 'F', returns to the caller of after_e
	mov %o7, %g5
	mov 0x46, %o0
	call putc
	 nop
	jmp %g5 + 8
	 nop

callee_saved:                           ! entered already in a new window
	ret
	 restore

ret_inc:                                ! returns its argument + 1
	save %sp, -176, %sp
	return %i7 + 8
	 add %o0, 1, %o0

brz_restore:
	save %sp, -176, %sp
	brnz,pt %i0, 3f
	 restore %i0, 0, %o0
	ba,a,pt %xcc, bad
3:	retl
	 nop

putc_setup:                             ! o0 = char -> o0 = 1, o1 = buf, o2 = 1, g1 = 4
	stb %o0, [%g4]
	mov %g4, %o1
	mov 1, %o0
	mov 1, %o2
	retl
	 mov 4, %g1

putc:                                   ! o0 = char
	save %sp, -176, %sp
	stb %i0, [%g4]
	mov 1, %o0
	mov %g4, %o1
	mov 1, %o2
	mov 4, %g1
	ta 0x6d
	ret
	 restore
	.bss
	.skip 0x400
`,
  words: [
    0x09000410, 0x90102041, 0x40000040, 0x01000000, 0x80a02001, 0x0a680003, 0x91d0206d, 0x30680027,
    0x90102042, 0x4000003f, 0x01000000, 0x90102043, 0x40000036, 0x01000000, 0x80800000, 0x0a68001f,
    0x91d0206d, 0x90102044, 0x40000036, 0x01000000, 0x90102045, 0x4000002d, 0x01000000, 0x4000001a,
    0x91d0206d, 0x4000001e, 0x9de3bf50, 0x90102047, 0x4000001d, 0x90222001, 0x4000002a, 0x01000000,
    0x4000001c, 0x90102048, 0x40000026, 0x01000000, 0x90102001, 0x2aca0003, 0x81580000, 0x30680007,
    0x90102049, 0x4000001f, 0x01000000, 0x90102007, 0x821020bc, 0x91d0206d, 0x90102063, 0x821020bc,
    0x91d0206d, 0x8a10000f, 0x90102046, 0x40000015, 0x01000000, 0x81c16008, 0x01000000, 0x81c7e008,
    0x81e80000, 0x9de3bf50, 0x81cfe008, 0x90022001, 0x9de3bf50, 0x0ace0003, 0x91ee2000, 0x306fffef,
    0x81c3e008, 0x01000000, 0xd0290000, 0x92100004, 0x90102001, 0x94102001, 0x81c3e008, 0x82102004,
    0x9de3bf50, 0xf0290000, 0x90102001, 0x92100004, 0x94102001, 0x82102004, 0x91d0206d, 0x81c7e008,
    0x81e80000,
  ],
};

export const delaySlots2: SparcProgram = {
  about: 'return through %l0, rd %pc in a return delay slot, save in the delay slot of a conditional branch (taken and not), call+restore sibling call. qemu-sparc64: "abcde", exit 5.',
  source: `
! More delay-slot shapes; prints "abcde", exit status 5 (qemu-sparc64).
	.text
	.globl _start
_start:
	sethi %hi(0x104000), %g4
	! a. \`return\` through a local register (no register renaming possible).
	mov 0x60, %o0
	call ret_local
	 nop
	call putc                           ! 'a' = 0x60 + 1
	 nop
	! b. \`rd %pc\` in the delay slot of \`return\`: the address of the rd itself.
	call ret_rdpc
	 nop
	set rdpc_insn, %g5
	sub %o0, %g5, %o0                   ! 0 when right
	call putc
	 add %o0, 0x62, %o0                 ! 'b'
	! c. save in the delay slot of a conditional branch, taken and not taken.
	mov 1, %o0
	call save_in_branch                 ! taken: returns 0x63 'c'
	 nop
	call putc
	 nop
	mov 0, %o0
	call save_in_branch                 ! not taken: returns 0x64 'd'
	 nop
	call putc
	 nop
	! d. sibling call: \`call target; restore\` in the middle function.
	call middle
	 mov 0x65, %o0
	call putc                           ! 'e'
	 nop
	mov 5, %o0
	mov 188, %g1
	ta 0x6d

ret_local:
	save %sp, -176, %sp
	add %i7, 8, %l0
	return %l0
	 add %o0, 1, %o0

ret_rdpc:
	save %sp, -176, %sp
	return %i7 + 8
rdpc_insn:
	 rd %pc, %o0

save_in_branch:                         ! %o0 != 0: taken
	cmp %o0, 0
	bne,pt %xcc, 1f
	 save %sp, -176, %sp
	ret
	 restore %g0, 0x64, %o0
1:	ret
	 restore %g0, 0x63, %o0

middle:
	save %sp, -176, %sp
	call leaf_id                        ! tail call: leaf returns straight to our caller
	 restore
leaf_id:
	retl
	 nop

putc:                                   ! o0 = char
	save %sp, -176, %sp
	stb %i0, [%g4]
	mov 1, %o0
	mov %g4, %o1
	mov 1, %o2
	mov 4, %g1
	ta 0x6d
	ret
	 restore
	.bss
	.skip 0x400
`,
  words: [
    0x09000410, 0x90102060, 0x4000001c, 0x01000000, 0x4000002d, 0x01000000, 0x4000001c, 0x01000000,
    0x0b000400, 0x8a116090, 0x90220005, 0x40000026, 0x90022062, 0x90102001, 0x40000017, 0x01000000,
    0x40000021, 0x01000000, 0x90102000, 0x40000012, 0x01000000, 0x4000001c, 0x01000000, 0x40000015,
    0x90102065, 0x40000018, 0x01000000, 0x90102005, 0x821020bc, 0x91d0206d, 0x9de3bf50, 0xa007e008,
    0x81cc0000, 0x90022001, 0x9de3bf50, 0x81cfe008, 0x91414000, 0x80a22000, 0x12680004, 0x9de3bf50,
    0x81c7e008, 0x91e82064, 0x81c7e008, 0x91e82063, 0x9de3bf50, 0x40000002, 0x81e80000, 0x81c3e008,
    0x01000000, 0x9de3bf50, 0xf0290000, 0x90102001, 0x92100004, 0x94102001, 0x82102004, 0x91d0206d,
    0x81c7e008, 0x81e80000,
  ],
};

export const enosys: SparcProgram = {
  about: 'an unknown system call: carry set and %o0 = ENOSYS in Linux/sparc numbering. qemu-sparc64: exit 90.',
  source: `
! An unknown system call: carry set, %o0 = ENOSYS in Linux/sparc numbering (90).
	.text
	.globl _start
_start:
	mov 999, %g1
	ta 0x6d
	bcs,pt %xcc, 1f
	 nop
	mov 1, %o0                          ! no carry: exit(1)
1:	mov 188, %g1
	ta 0x6d
`,
  words: [
    0x821023e7, 0x91d0206d, 0x0a680003, 0x01000000, 0x90102001, 0x821020bc, 0x91d0206d,
  ],
};

export const threadCcr: SparcProgram = {
  about: "two threads of one address space; the parent's loop reads condition codes set four instructions earlier while the child spins with Z = 1. Hand-derived: exit 1000 & 0xff = 232 (qemu-sparc64 7.2 hangs on this clone).",
  source: `
! Condition codes survive switches between two threads of one address space.
! clone(CLONE_VM|CLONE_SIGHAND|CLONE_THREAD, new stack); the child spins with
! Z = 1 forever; the parent counts 1000 iterations of a loop whose bne reads
! the condition codes set four instructions earlier, then exit_group(count).
	.text
	.globl _start
_start:
	sethi %hi(0x10900), %o0
	or %o0, %lo(0x10900), %o0
	sethi %hi(0x106000), %o1            ! child stack top (bss)
	sub %o1, 2047 + 192, %o1            ! biased
	mov 0, %o2
	mov 0, %o3
	mov 0, %o4
	mov 217, %g1                        ! clone
	ta 0x6d
	brnz,pn %o1, child
	 nop
	mov 1000, %l0
	mov 0, %l1
1:	subcc %l0, 1, %l0
	add %l1, 1, %l1
	nop
	nop
	bne,pt %xcc, 1b
	 nop
	mov %l1, %o0
	mov 188, %g1
	ta 0x6d
child:
2:	subcc %g0, %g0, %g0
	ba,pt %xcc, 2b
	 nop
	.bss
	.skip 0x2000
`,
  words: [
    0x11000042, 0x90122100, 0x13000418, 0x922268bf, 0x94102000, 0x96102000, 0x98102000, 0x821020d9,
    0x91d0206d, 0x0ac2400d, 0x01000000, 0xa01023e8, 0xa2102000, 0xa0a42001, 0xa2046001, 0x01000000,
    0x01000000, 0x126ffffc, 0x01000000, 0x90100011, 0x821020bc, 0x91d0206d, 0x80a00000, 0x106fffff,
    0x01000000,
  ],
};

