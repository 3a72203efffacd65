#!/bin/sh
# Rebuilds the ELF reader's real fixtures from prog.c with the Debian cross compilers.
# The binaries are committed; tests compare the parser against readelf when it is installed.
set -eu
cd "$(dirname "$0")"
FLAGS="-O1 -static -nostdlib -ffreestanding -fno-asynchronous-unwind-tables -fno-stack-protector -fno-pie -no-pie -Wl,--build-id=none"
x86_64-linux-gnu-gcc    $FLAGS -o prog-x86_64        prog.c
i686-linux-gnu-gcc      $FLAGS -o prog-i386          prog.c
powerpc-linux-gnu-gcc   $FLAGS -o prog-ppc32         prog.c
powerpc64-linux-gnu-gcc $FLAGS -mabi=elfv1 -o prog-ppc64-elfv1 prog.c
powerpc64-linux-gnu-gcc $FLAGS -mabi=elfv2 -o prog-ppc64-elfv2 prog.c
# sparc64's default maximum page size is 1 MiB, which pads the file to 1 MiB; use the 8 KiB page.
sparc64-linux-gnu-gcc   $FLAGS -Wl,-z,max-page-size=0x2000 -o prog-sparc64 prog.c
# Stripped: section headers kept (.shstrtab), no .symtab.
x86_64-linux-gnu-gcc    $FLAGS -s -o prog-x86_64-stripped prog.c
