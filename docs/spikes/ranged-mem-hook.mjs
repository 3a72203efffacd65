// Spike for issue 14 (the user/kernel boundary), recorded in docs/unicorn.md. Run from docs/spikes after npm run build: node ranged-mem-hook.mjs
import { Engine, UC_ARCH, UC_MODE, UC_PROT } from '../../dist/src/emu/unicorn.js';
const N = 5_000_000;
function run(hook) {
  const e = new Engine(UC_ARCH.X86, UC_MODE.MODE_64);
  e.memMap(0x1000n, 0x2000, UC_PROT.ALL);
  e.memMap(0x200000n, 0x2000, UC_PROT.ALL);
  // mov ecx,N; l: mov rax,[0x2000]; add rax,1; mov [0x2000],rax; dec ecx; jnz l; hlt
  const code = [0xB9, N & 255, (N >> 8) & 255, (N >> 16) & 255, (N >>> 24) & 255,
    0x48,0x8B,0x04,0x25,0x00,0x20,0x00,0x00, 0x48,0x83,0xC0,0x01, 0x48,0x89,0x04,0x25,0x00,0x20,0x00,0x00, 0xFF,0xC9, 0x75, 0x100-24, 0xF4];
  e.memWrite(0x1000n, Uint8Array.from(code));
  let hits = 0;
  if (hook) e.hookMem(1 << 10 | 1 << 11, () => { hits++; }, 0x200000n, 0x201fffn);
  const t = process.hrtime.bigint();
  const r = e.start(0x1000n, 0x1000n + BigInt(code.length), 0);
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  const v = new DataView(e.memRead(0x2000n, 8).buffer).getBigUint64(0, true);
  e.close();
  return { hook, err: r.err, v, hits, ms: ms.toFixed(0) };
}
for (const h of [false, true, false, true]) console.log(run(h));
