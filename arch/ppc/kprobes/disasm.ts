/**
 * Capstone (`@alexaltea/capstone-js`, an emscripten build) for the fixed-width back-ends' listings.
 *
 * The module is CommonJS and its factory is asynchronous (it instantiates WebAssembly), while
 * `ProbeArch.decode` is synchronous: callers that want mnemonics `await loadDisassembler()` once;
 * until then `disasmText` answers undefined and the back-ends print `.long 0x…`. Nothing here
 * decides anything: the probe back-ends decode the fields they need by hand (tables.ts), so a
 * missing or failing Capstone never changes whether or how an instruction is probed.
 */
import { loadCapstone } from '../../capstone.js';

export type DisasmKind = 'ppc32' | 'ppc64' | 'sparc64';

interface CsInsn {
  mnemonic: string;
  op_str: string;
  size: number;
}
interface CsHandle {
  disasm(bytes: number[] | Uint8Array, addr: number | bigint, count?: number): CsInsn[];
}
interface CsModule {
  Capstone: new (arch: number, mode: number) => CsHandle;
  [k: string]: unknown;
}

let loading: Promise<void> | undefined;
const handles = new Map<DisasmKind, CsHandle>();

/** Load Capstone once (idempotent); rejects only if the package is missing or broken. */
export function loadDisassembler(): Promise<void> {
  loading ??= (async () => {
    const cs = (await loadCapstone()) as CsModule;
    const n = (k: string): number => cs[k] as number;
    handles.set('ppc32', new cs.Capstone(n('ARCH_PPC'), n('MODE_32') | n('MODE_BIG_ENDIAN')));
    handles.set('ppc64', new cs.Capstone(n('ARCH_PPC'), n('MODE_64') | n('MODE_BIG_ENDIAN')));
    handles.set('sparc64', new cs.Capstone(n('ARCH_SPARC'), n('MODE_V9') | n('MODE_BIG_ENDIAN')));
  })();
  return loading;
}

/** "mnemonic operands" of the 4-byte word at `addr`, or undefined (not loaded, or not decodable). */
export function disasmText(kind: DisasmKind, addr: bigint, bytes: Uint8Array): string | undefined {
  const h = handles.get(kind);
  if (!h) return undefined;
  try {
    const [i] = h.disasm(Array.from(bytes.subarray(0, 4)), addr, 1);
    if (!i || i.size !== 4) return undefined;
    return i.op_str ? `${i.mnemonic} ${i.op_str}` : i.mnemonic;
  } catch {
    return undefined;
  }
}

/** The fallback listing of an instruction word. */
export const wordText = (w: number): string => `.long 0x${(w >>> 0).toString(16).padStart(8, '0')}`;

export const be32 = (b: Uint8Array, at = 0): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

export function wordsBytes(...words: number[]): Uint8Array {
  const b = new Uint8Array(words.length * 4);
  const v = new DataView(b.buffer);
  words.forEach((w, i) => v.setUint32(i * 4, w >>> 0));
  return b;
}
