/**
 * `npm start` (uniprobe demo): the sample program on every target with a kprobe on ksys_write and
 * a uretprobe on main. Checked against the qemu-user recording of the same program
 * (fixtures/manifest.json): one write(2) per output line, each on fd 1 with that line's length,
 * the program's output unchanged between the trace lines, and main's return value = the exit
 * status qemu-user recorded.
 */
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/cli/demo.js';
import { manifest, supported } from '../helpers.js';

describe('uniprobe demo (npm start)', () => {
  it('probes the sample on every target: writes and main\'s return agree with qemu-user', async () => {
    let out = '';
    expect(await runDemo((s) => void (out += s))).toBe(0);
    const sections = out.split(/^== /m).slice(1);
    expect(sections.map((s) => s.slice(0, s.indexOf(':')))).toEqual([...supported]);
    for (const section of sections) {
      const target = section.slice(0, section.indexOf(':'));
      const want = manifest.find((e) => e.target === target && e.name === 'fib-nolibc')!;
      const lines = section.split('\n').slice(1);
      const writes = lines.filter((l) => /: write: \(ksys_write\+/.test(l));
      const outLines = want.stdout.split('\n').filter((l) => l !== '');
      expect(writes.map((l) => l.match(/fd=(0x[0-9a-f]+) len=(0x[0-9a-f]+)$/)!.slice(1).map(Number)), target).toEqual(outLines.map((l) => [1, l.length + 1]));
      // The program's own output, in order, once the trace lines are taken out.
      const program = lines.filter((l) => !/^\s+fib-nolibc-\d+\s+\[\d+\]/.test(l) && !l.startsWith('-- ') && l !== '');
      expect(program.join('\n') + '\n', target).toBe(want.stdout);
      const ret = lines.find((l) => /: main: \(/.test(l))!;
      expect(Number(ret.match(/ret=(0x[0-9a-f]+)$/)![1]), target).toBe(want.exit);
      expect(section, target).toContain(`-- exit status ${want.exit} `);
      expect(section, target).toContain(`write ${outLines.length} hit(s), main 1 hit(s)`);
    }
  });
});
