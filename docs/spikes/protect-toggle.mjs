// Spike for issue 14 (the user/kernel boundary), recorded in docs/unicorn.md. Run from docs/spikes after npm run build: node protect-toggle.mjs
import { Engine, UC_ARCH, UC_MODE, UC_PROT } from '../../dist/src/emu/unicorn.js';
const RIP = 41;
const N = Number(process.argv[2] ?? 200000);
function run(toggle, kernelBig) {
  const e = new Engine(UC_ARCH.X86, UC_MODE.MODE_64);
  e.memMap(0x1000n, 0x1000, UC_PROT.ALL);
  const KSIZE = kernelBig ? 16 << 20 : 0x2000;
  e.memMap(0x200000n, KSIZE, UC_PROT.ALL);
  const user = [0xB9, ...le32(N), 0x0F, 0x05, 0xFF, 0xC9, 0x75, 0xFA, 0xF4];
  e.memWrite(0x1000n, Uint8Array.from(user));
  const k = [0x48,0x8B,0x04,0x25,0x00,0x10,0x20,0x00, 0x48,0x83,0xC0,0x01, 0x48,0x89,0x04,0x25,0x00,0x10,0x20,0x00, 0x0F,0x05];
  e.memWrite(0x200000n, Uint8Array.from(k));
  if (toggle) e.memProtect(0x200000n, KSIZE, UC_PROT.EXEC);
  let saved = 0n;
  e.hookInsn(699, () => {
    const rip = e.regRead(RIP);
    if (rip < 0x200000n) { saved = rip; if (toggle) e.memProtect(0x200000n, KSIZE, UC_PROT.ALL); e.regWrite(RIP, 0x200000n - 2n); }
    else { if (toggle) e.memProtect(0x200000n, KSIZE, UC_PROT.EXEC); e.regWrite(RIP, saved); }
  });
  const t = process.hrtime.bigint();
  let r, pc = 0x1000n, starts = 0; for (;;) { r = e.start(pc, 0x1010n, 0); starts++; pc = e.regRead(RIP); if (r.err || pc === 0x100cn || pc === 0x100bn) break; }
  const dt = Number(process.hrtime.bigint() - t) / 1e6;
  const endRip = e.regRead(RIP); const rcx = e.regRead(22);
  const cnt = new DataView(e.memRead(0x201000n, 8).buffer).getBigUint64(0, true);
  e.close();
  return { starts, endRip, rcx, toggle, kernelBig, err: r.err, cnt, ms: dt.toFixed(1), usPerSyscall: (dt * 1000 / N).toFixed(2) };
}
function le32(v) { return [v & 255, (v >> 8) & 255, (v >> 16) & 255, (v >>> 24) & 255]; }
for (const [t, b] of [[false, false], [true, false], [true, true], [false, false], [true, false]]) console.log(run(t, b));
