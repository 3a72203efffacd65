/**
 * kref: a reference count whose last put runs a release function. `getUnlessZero` is the
 * lookup-side primitive of seed 002: an object found through a pointer that is only protected
 * by a spinlock may already be dying (count 0, release pending); taking a reference then must
 * fail instead of resurrecting it.
 */
export class Kref {
  private count: number;
  /** Misuse seen (refcount_t's warnings): get on 0, put below 0. */
  readonly warnings: string[] = [];

  constructor(
    readonly name: string,
    initial = 1,
  ) {
    this.count = initial;
  }

  get value(): number {
    return this.count;
  }

  /** kref_get: the caller already holds a reference, so the count cannot be 0. */
  get(): void {
    if (this.count === 0) this.warnings.push(`refcount_t: addition on 0; use-after-free (${this.name})`);
    this.count++;
  }

  /** kref_get_unless_zero: take a reference only if the object is not already dying. */
  getUnlessZero(): boolean {
    if (this.count === 0) return false;
    this.count++;
    return true;
  }

  /** kref_put: drop a reference; the last one calls `release`. True when released. */
  put(release: () => void): boolean {
    if (this.count <= 0) {
      this.warnings.push(`refcount_t: underflow; use-after-free (${this.name})`);
      return false;
    }
    if (--this.count === 0) {
      release();
      return true;
    }
    return false;
  }
}
