/**
 * Two-way lookup over a generated name → number table (arch/<family>/syscalls-<target>.ts).
 * Generic code speaks names ("write", "mmap2"); only the arch knows the numbers.
 */
export class SyscallTable {
  private readonly byNumber = new Map<number, string>();
  private readonly byName: Readonly<Record<string, number>>;

  constructor(byName: Readonly<Record<string, number>>) {
    this.byName = byName;
    for (const [name, nr] of Object.entries(byName)) if (!this.byNumber.has(nr)) this.byNumber.set(nr, name);
  }

  name(nr: number): string | undefined {
    return this.byNumber.get(nr);
  }

  number(name: string): number | undefined {
    return Object.prototype.hasOwnProperty.call(this.byName, name) ? this.byName[name] : undefined;
  }
}
