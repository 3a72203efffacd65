/**
 * register_kprobe's address checks as pure functions: the core (kprobes.ts) runs them when it
 * registers, and the placement map (src/placement) runs the same ones to say what registration
 * would answer — so the two cannot drift apart. Each refusal carries Linux's errno (by name, from
 * the kernel layer's table) and the reason in words.
 *
 * Order, as register_kprobe does it: _kprobe_addr (exactly one of symbol / address; the symbol
 * looked up; the address must fall inside a function), check_kprobe_address_safe (kernel text,
 * not blacklisted), then arch_prepare_kprobe's can_probe boundary check (x86: -EILSEQ), then the
 * arch's own analysis. Jump optimization (optprobes) adds `canOptimize`.
 */
import { isRefusal, type OptFunction, type OptimizedInsn, type ProbeArch, type ProbeRefusal } from '../../arch/probes.js';
import { E } from '../kernel/errno.js';
import type { KernelImage } from '../kernel/kernel-image.js';

const refuse = (errno: number, reason: string): ProbeRefusal => ({ refused: true, errno, reason });

/** Where a probe request resolved to: its address and the start of its function. */
export interface KprobeSite {
  readonly addr: bigint;
  readonly funcStart: bigint;
}

/** What a registration asks for (struct kprobe's symbol_name / addr / offset). */
export interface KprobeRequest {
  readonly symbolName?: string;
  readonly addr?: bigint;
  readonly offset?: number;
}

/** _kprobe_addr: exactly one of symbol/address; symbol+offset re-split into function+offset. */
export function resolveKprobeAddr(k: KernelImage, p: KprobeRequest): KprobeSite | ProbeRefusal {
  if ((p.symbolName === undefined) === (p.addr === undefined)) return refuse(E.EINVAL, 'give exactly one of a symbol and an address');
  let addr: bigint;
  if (p.symbolName !== undefined) {
    // kallsyms knows data symbols too: such a probe is found, then refused as not text.
    const sym = k.symbol(p.symbolName) ?? k.elf.symbolByName(p.symbolName);
    if (!sym) return refuse(E.ENOENT, `no symbol ${p.symbolName} in the kernel`);
    // kprobe_lookup_name: the arch's probe entry (ppc64 ELFv2: the local one, past the TOC set-up).
    addr = k.arch.functionEntry(sym).probe + BigInt(p.offset ?? 0);
  } else addr = p.addr! + BigInt(p.offset ?? 0);
  return siteAt(k, addr);
}

/** The function containing `addr`, or the refusal for an address outside every function. */
export function siteAt(k: KernelImage, addr: bigint): KprobeSite | ProbeRefusal {
  const loc = k.elf.symbolAt(addr);
  if (!loc) return refuse(E.EINVAL, 'not inside any function of the kernel: not text a kprobe may go to');
  return { addr, funcStart: loc.symbol.codeAddress };
}

/** Why `addr` is blacklisted (NOKPROBE / entry text / the arch's ranges), or undefined. */
export function blacklistReason(k: KernelImage, arch: ProbeArch, addr: bigint): string | undefined {
  for (const r of k.blacklist) if (addr >= r.start && addr < r.end) return r.why;
  for (const [s, e] of arch.blacklistRanges ?? []) {
    const a = k.symbol(s)?.value;
    const b = k.symbol(e)?.value;
    if (a !== undefined && b !== undefined && addr >= a && addr < b) return `${s}..${e}`;
  }
  return undefined;
}

/** check_kprobe_address_safe: kernel text, not blacklisted. */
export function checkAddressSafe(k: KernelImage, arch: ProbeArch, addr: bigint): ProbeRefusal | undefined {
  if (!k.isText(addr)) return refuse(E.EINVAL, 'not kernel text');
  const bl = blacklistReason(k, arch, addr);
  if (bl !== undefined) return refuse(E.EINVAL, `blacklisted: ${bl}`);
  return undefined;
}

/** Original text (never breakpoints or jumps): the kernel ELF's bytes, clipped to the text. */
export function originalText(k: KernelImage, addr: bigint, len: number): Uint8Array {
  const n = Math.max(0, Math.min(len, Number(k.textEnd - addr)));
  return k.elf.textBytesAt(addr, n);
}

/** can_probe: `addr` must be where an instruction starts, decoding from its function's start. */
export function checkBoundary(k: KernelImage, arch: ProbeArch, site: KprobeSite): ProbeRefusal | undefined {
  if (arch.isInsnBoundary((a, n) => originalText(k, a, n), site.funcStart, site.addr)) return undefined;
  return refuse(E.EILSEQ, 'not an instruction boundary (mid-instruction)');
}

/** Every check before arch_prepare_kprobe, in registration's order: the site, or the refusal. */
export function checkKprobeAddress(k: KernelImage, arch: ProbeArch, p: KprobeRequest): KprobeSite | ProbeRefusal {
  const site = resolveKprobeAddr(k, p);
  if (isRefusal(site)) return site;
  return checkAddressSafe(k, arch, site.addr) ?? checkBoundary(k, arch, site) ?? site;
}

/** kallsyms_lookup_size_offset: the bounds of the function containing `addr`. */
export function functionBounds(k: KernelImage, addr: bigint): OptFunction | undefined {
  const loc = k.elf.symbolAt(addr);
  if (!loc) return undefined;
  const start = loc.symbol.codeAddress;
  return { start, end: start + loc.symbol.size };
}

/**
 * arch_prepare_optimized_kprobe for a detour at `entry`/`body` (or without placement when they
 * are undefined): the arch's can_optimize and copy checks, then the detour's reach (-ERANGE).
 * The generic conditions (sysctl, disabled, post handler, another probe inside) are the
 * optimizer's: they depend on state, not on the text.
 */
export function canOptimize(k: KernelImage, arch: ProbeArch, addr: bigint, detour?: { entry: bigint; body: bigint }): OptimizedInsn | ProbeRefusal {
  const fn = functionBounds(k, addr);
  if (!fn) return refuse(E.EINVAL, 'not inside a known function');
  const prep = arch.optimize.prepareOptimized((a, n) => originalText(k, a, n), fn, addr);
  if (isRefusal(prep) || !detour) return prep;
  return prep.placementRefusal(detour.entry, detour.body) ?? prep;
}
