/**
 * The machine's deterministic randomness (scheduling decisions, AT_RANDOM, getrandom): a
 * SplitMix64 stream from the user's seed, so `--seed N` replays a run exactly.
 */
export class Rng {
  private state: bigint;

  constructor(seed: number | bigint) {
    this.state = BigInt.asUintN(64, BigInt(seed));
  }

  next64(): bigint {
    this.state = BigInt.asUintN(64, this.state + 0x9e3779b97f4a7c15n);
    let z = this.state;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    return z ^ (z >> 31n);
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Number(this.next64() % BigInt(n));
  }

  /** `n` bytes: each 64-bit draw gives 8 bytes, least significant first. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    const whole = n - (n % 8);
    // Whole words through a DataView (getrandom of 32 MiB: 3 s byte by byte in BigInt).
    const view = new DataView(out.buffer);
    for (let i = 0; i < whole; i += 8) view.setBigUint64(i, this.next64(), true);
    if (whole < n) {
      let v = this.next64();
      for (let j = whole; j < n; j++) {
        out[j] = Number(v & 0xffn);
        v >>= 8n;
      }
    }
    return out;
  }
}
