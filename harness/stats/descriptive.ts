// Descriptive statistics over repetition samples. Pure and dependency-free.
//
// Empty input gives NaN rather than 0 or a throw: a point whose repetitions all failed must not
// show up as "0 req/s", and callers (report tables) render NaN as "–".

function finite(xs: readonly number[]): number[] {
  return xs.filter((x) => Number.isFinite(x));
}

export function min(xs: readonly number[]): number {
  const v = finite(xs);
  return v.length ? Math.min(...v) : NaN;
}

export function max(xs: readonly number[]): number {
  const v = finite(xs);
  return v.length ? Math.max(...v) : NaN;
}

export function mean(xs: readonly number[]): number {
  const v = finite(xs);
  if (!v.length) return NaN;
  let s = 0;
  for (const x of v) s += x;
  return s / v.length;
}

/**
 * Sample standard deviation (n − 1): repetitions are a sample of what the setup can do, not the
 * whole population. NaN for fewer than two values — one run says nothing about spread.
 */
export function stdev(xs: readonly number[]): number {
  const v = finite(xs);
  if (v.length < 2) return NaN;
  const m = mean(v);
  let ss = 0;
  for (const x of v) ss += (x - m) ** 2;
  return Math.sqrt(ss / (v.length - 1));
}

/** Coefficient of variation (stdev / mean), a fraction; NaN when the mean is 0 or undefined. */
export function cv(xs: readonly number[]): number {
  const m = mean(xs);
  if (!Number.isFinite(m) || m === 0) return NaN;
  return stdev(xs) / Math.abs(m);
}

/**
 * Quantile q ∈ [0, 1] with linear interpolation between closest ranks (R type 7, numpy's
 * default), so results match what users get from their own scripts.
 */
export function quantile(xs: readonly number[], q: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile: q must be in [0, 1], got ${q}`);
  const v = finite(xs).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const h = (v.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return v[lo]! + (h - lo) * (v[hi]! - v[lo]!);
}

export function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}
