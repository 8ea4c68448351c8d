// Sizes for people: docker's units.HumanSize (decimal, %.3g, as `images`, `ps -s` and progress
// print them) and binary sizes for limits (64 GiB), with Go's %g formatting that HumanSize needs.
// The lowest layer: imports nothing of shale's, so the registry's progress, the archive's limits
// and the CLI all print sizes the same way.

/** The exact decimal expansion of a finite positive double: its digits (no trailing zeros) and decimal point position. */
function exactDecimal(x: number): { digits: string; dp: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const expBits = Number((bits >> 52n) & 0x7ffn);
  let mant = bits & ((1n << 52n) - 1n);
  let e2: number;
  if (expBits === 0) e2 = -1074;
  else {
    mant |= 1n << 52n;
    e2 = expBits - 1075;
  }
  let digits: string;
  let dp: number;
  if (e2 >= 0) {
    digits = (mant << BigInt(e2)).toString();
    dp = digits.length;
  } else {
    // mant * 2^e2 = mant * 5^-e2 / 10^-e2
    digits = (mant * 5n ** BigInt(-e2)).toString();
    dp = digits.length + e2;
  }
  return { digits: digits.replace(/0+$/, '') || '0', dp };
}

/** Go's strconv.FormatFloat(v, 'g', prec, 64), i.e. fmt's %.<prec>g: round half to even on exact ties, trailing zeros dropped. */
export function goFormatG(v: number, prec: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  if (v === 0) return '0';
  const neg = v < 0;
  let { digits, dp } = exactDecimal(Math.abs(v));
  if (digits.length > prec) {
    const head = digits.slice(0, prec);
    const next = Number(digits[prec]);
    const rest = digits.slice(prec + 1);
    const up = next > 5 || (next === 5 && (/[1-9]/.test(rest) || Number(head[head.length - 1]) % 2 === 1));
    let d = BigInt(head);
    if (up) d += 1n;
    let s = d.toString();
    if (s.length > prec) {
      dp++;
      s = s.slice(0, prec);
    }
    digits = s.replace(/0+$/, '') || '0';
  }
  const exp = dp - 1;
  let out: string;
  if (exp < -4 || exp >= prec) {
    out = digits[0] + (digits.length > 1 ? '.' + digits.slice(1) : '') + 'e' + (exp < 0 ? '-' : '+') + String(Math.abs(exp)).padStart(2, '0');
  } else if (dp <= 0) {
    out = '0.' + '0'.repeat(-dp) + digits;
  } else if (dp >= digits.length) {
    out = digits + '0'.repeat(dp - digits.length);
  } else {
    out = digits.slice(0, dp) + '.' + digits.slice(dp);
  }
  return neg ? '-' + out : out;
}

/** docker's units.HumanSize: decimal units, %.3g ("1.99MB", "0B", "100kB", "1e+03kB"). */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${goFormatG(v, 3)}${units[i]}`;
}

/** A limit or an amount of disk in binary units (`64 GiB`, `256 MiB`). */
export function humanBytes(n: number): string {
  for (const [u, f] of [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (n >= f) return `${+(n / f).toFixed(1)} ${u}`;
  }
  return `${n} B`;
}

/** docker's units.BytesSize: binary units with %.4g (`1.5MiB`, `64MiB`), as `docker stats` prints memory. */
export function bytesSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${goFormatG(v, 4)}${units[i]}`;
}
