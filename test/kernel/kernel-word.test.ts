/**
 * KernelImage.readWordInto, the trap hooks' way to the word a kernel-mode trap stopped on (ppc:
 * breakpoint or not, at every kprobe hit): the bytes the guest sees now (a patched breakpoint
 * included), in the image and in the kprobe slot area, and nothing anywhere else.
 */
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/kernel/machine.js';
import type { Target } from '../../arch/types.js';
import { supported } from '../helpers.js';

const TARGETS = (['x86_64', 'i386', 'ppc32', 'ppc64', 'sparc64'] as Target[]).filter((t) => supported.has(t));

describe.each(TARGETS)('%s: KernelImage.readWordInto', (target) => {
  it('reads the words of the image and the slot area as they are now, and refuses every other address', () => {
    const m = new Machine({ target });
    try {
      const k = m.kernel;
      const out = new Uint8Array(4);
      const entry = k.symbol('ksys_write')!.codeAddress;
      expect(k.readWordInto(entry, out)).toBe(true);
      expect([...out]).toEqual([...k.elf.textBytesAt(entry, 4)]);
      // A patch (a breakpoint) is what the next read sees.
      const bp = Uint8Array.of(0xde, 0xad, 0xbe, 0xef);
      m.patchKernelText(entry, bp);
      expect(k.readWordInto(entry, out)).toBe(true);
      expect([...out]).toEqual([...bp]);
      // The first and last words of the image; the slot area's first word.
      expect(k.readWordInto(k.base, out)).toBe(true);
      expect(k.readWordInto(k.end - 4n, out)).toBe(true);
      expect(k.readWordInto(k.insnAreaBase, out)).toBe(true);
      expect([...out]).toEqual([...m.readKernelText(k.insnAreaBase, 4)]);
      // Nothing outside, nor a word that would run past the image's end (where the slot area
      // begins: the two are separate host memory) or the slot area's.
      expect(k.insnAreaBase).toBe(k.end);
      for (const a of [k.base - 4n, k.end - 3n, k.end - 1n, 0n, 0x1000n, k.stackArenaBase]) {
        expect(k.readWordInto(a, out), `0x${a.toString(16)}`).toBe(false);
      }
    } finally {
      m.close();
    }
  });
});
