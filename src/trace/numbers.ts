/**
 * The kernel's number parsers, as the probe-definition parser uses them.
 *
 * The tracefs parser reads every number with `kstrto*` (whole string must be a number) or
 * `simple_strtoul` (reads a prefix), both with base auto-detection: "0x…" (only when a hex digit
 * follows the x) is hex, a leading "0" is octal, anything else decimal. `kstrto*` accept one
 * leading '+', and a single trailing newline (which cannot occur here: lines are split on it).
 * Values are bigint so 64-bit addresses survive; `bits` gives the C type's width (unsigned long
 * is 32 bits on i386/ppc32, 64 bits elsewhere), and overflow is an error (-ERANGE) as in C.
 */

/** Base auto-detection of `_parse_integer_fixup_radix`: where the digits start, and the base. */
function detectRadix(s: string, at: number): { base: number; start: number } {
  if (s[at] === '0') {
    if ((s[at + 1] === 'x' || s[at + 1] === 'X') && isHexDigit(s[at + 2])) return { base: 16, start: at + 2 };
    return { base: 8, start: at };
  }
  return { base: 10, start: at };
}

function isHexDigit(c: string | undefined): boolean {
  return c !== undefined && /^[0-9a-fA-F]$/.test(c);
}

function digitValue(c: string | undefined, base: number): number | undefined {
  if (c === undefined) return undefined;
  const v = parseInt(c, 36);
  return Number.isNaN(v) || v >= base ? undefined : v;
}

/** Digits from `start` in `base`: the value and where they end (no digits: end === start). */
function readDigits(s: string, start: number, base: number): { value: bigint; end: number } {
  let value = 0n;
  let i = start;
  const b = BigInt(base);
  for (;;) {
    const d = digitValue(s[i], base);
    if (d === undefined) break;
    value = value * b + BigInt(d);
    i++;
  }
  return { value, end: i };
}

/**
 * `kstrtoul`/`kstrtouint`/`kstrtoull` with base 0 (or a fixed base): the whole text must be the
 * number. Undefined on any error (the kernel's -EINVAL or -ERANGE).
 */
export function kstrtoul(text: string, bits: number, fixedBase?: number): bigint | undefined {
  let at = 0;
  if (text[0] === '+') at = 1;
  let base: number;
  let start: number;
  if (fixedBase === undefined) ({ base, start } = detectRadix(text, at));
  else {
    base = fixedBase;
    start = at;
    if (fixedBase === 16 && text[at] === '0' && (text[at + 1] === 'x' || text[at + 1] === 'X')) start = at + 2;
  }
  const { value, end } = readDigits(text, start, base);
  if (end === start || end !== text.length) return undefined;
  if (value > (1n << BigInt(bits)) - 1n) return undefined;
  return value;
}

/** `kstrtol` with base 0: an optional '-' (or '+') then an unsigned number; range of a signed `bits`. */
export function kstrtol(text: string, bits: number): bigint | undefined {
  if (text[0] === '-') {
    const mag = kstrtoul(text.slice(1), bits);
    // kstrtoull on the rest: a second sign is not a digit, so "--1" and "-+1" fail.
    if (mag === undefined || text[1] === '+') return undefined;
    if (mag > 1n << BigInt(bits - 1)) return undefined;
    return -mag;
  }
  const v = kstrtoul(text, bits);
  if (v === undefined || v > (1n << BigInt(bits - 1)) - 1n) return undefined;
  return v;
}

/**
 * `simple_strtoul(s + at, &end, 0)`: reads as many digits as it can (no sign), never fails.
 * `end === at` means no digits were read.
 */
export function simpleStrtoul(s: string, at: number): { value: bigint; end: number } {
  const { base, start } = detectRadix(s, at);
  return readDigits(s, start, base);
}

/** Lowercase hex without prefix, zero-padded to `width` digits. */
export function hex(value: bigint, width = 0): string {
  return value.toString(16).padStart(width, '0');
}
