/**
 * A target's user numbering of signals and sa_flags, against the generic one the kernel core
 * uses. x86 and powerpc are the generic numbering; sparc renumbers (SIGCHLD 20, SIGBUS 10,
 * SIGUSR1 30…) and has SIGEMT, which takes the generic slot of SIGSTKFLT (sparc has none).
 * The facts come from the arch (SignalAbi.numbers, saFlags); this file only applies them.
 */
import type { SaFlagBits, SignalAbi, SignalName } from '../../../arch/types.js';
import { GSIG, NSIG, SA, SIGRTMIN } from './numbers.js';

export class SignalNumbering {
  private readonly toGen = new Map<number, number>();
  private readonly fromGen = new Map<number, number>();
  readonly identity: boolean;
  private readonly flagPairs: Array<[user: number, generic: number]>;

  constructor(abi: SignalAbi) {
    const nums = abi.numbers ?? {};
    for (const [name, user] of Object.entries(nums) as Array<[SignalName, number]>) {
      const g = name === 'SIGEMT' ? GSIG.SIGSTKFLT : GSIG[name];
      this.toGen.set(user, g);
      this.fromGen.set(g, user);
    }
    this.identity = this.toGen.size === 0;
    const f: SaFlagBits = abi.saFlags;
    this.flagPairs = (Object.keys(SA) as Array<keyof typeof SA>).filter((k) => f[k] !== 0).map((k) => [f[k] >>> 0, SA[k] >>> 0]);
  }

  /** A user signal number as the generic one (numbers >= SIGRTMIN are the same everywhere). */
  toGeneric(user: number): number {
    return user >= SIGRTMIN ? user : (this.toGen.get(user) ?? user);
  }

  fromGeneric(sig: number): number {
    return sig >= SIGRTMIN ? sig : (this.fromGen.get(sig) ?? sig);
  }

  /** A user sigset_t (bit n-1 = user signal n) as a generic one, and back. */
  setToGeneric(user: bigint): bigint {
    return this.identity ? user : this.mapSet(user, (n) => this.toGeneric(n));
  }

  setFromGeneric(set: bigint): bigint {
    return this.identity ? set : this.mapSet(set, (n) => this.fromGeneric(n));
  }

  private mapSet(s: bigint, f: (n: number) => number): bigint {
    let out = 0n;
    for (let n = 1; n <= NSIG; n++) if (s & (1n << BigInt(n - 1))) out |= 1n << BigInt(f(n) - 1);
    return out;
  }

  /** sa_flags: the target's bits as the generic ones (bits with no meaning here are kept apart). */
  flagsToGeneric(user: number): { flags: number; unknown: number } {
    let flags = 0;
    let rest = user >>> 0;
    for (const [u, g] of this.flagPairs) {
      if (rest & u) {
        flags |= g;
        rest &= ~u;
      }
    }
    return { flags: flags >>> 0, unknown: rest >>> 0 };
  }

  flagsFromGeneric(flags: number, unknown: number): number {
    let out = unknown;
    for (const [u, g] of this.flagPairs) if (flags & g) out |= u;
    return out >>> 0;
  }
}

const cache = new WeakMap<SignalAbi, SignalNumbering>();
/** The numbering of a target's signal ABI (built once per ABI). */
export function numberingOf(abi: SignalAbi): SignalNumbering {
  let n = cache.get(abi);
  if (!n) {
    n = new SignalNumbering(abi);
    cache.set(abi, n);
  }
  return n;
}
