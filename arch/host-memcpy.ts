/**
 * libc's memcpy on raw host addresses, for the back-ends that reach into Unicorn's CPU state by
 * address where no API goes (arch/x86/cpu-state.ts, arch/sparc/cpu-state.ts): `copyIn` writes
 * host bytes to an address, `copyOut` reads an address into host bytes. Only for addresses
 * already verified (a wrong guess is read through /proc/self/mem first, which fails cleanly).
 */
import koffi from 'koffi';

type Memcpy = (dst: unknown, src: unknown, n: number) => unknown;
let fns: { copyIn: Memcpy; copyOut: Memcpy } | undefined;

export function hostMemcpy(): { copyIn: Memcpy; copyOut: Memcpy } {
  if (!fns) {
    const l = koffi.load('libc.so.6');
    fns = {
      copyIn: l.func('memcpy', 'uint64_t', ['uint64_t', 'const uint8_t *', 'size_t']) as Memcpy,
      copyOut: l.func('memcpy', 'uint64_t', ['_Out_ uint8_t *', 'uint64_t', 'size_t']) as Memcpy,
    };
  }
  return fns;
}
