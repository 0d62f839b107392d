// Comparing two samples of benchmark repetitions (base vs candidate). Pure and dependency-free.
//
// Samples are small (typically 3–30 repetitions) and rarely normal — a run that hit a noisy
// neighbour is an outlier, not a Gaussian tail — so everything here is rank- or resampling-based:
// a ratio of medians with a bootstrap confidence interval for "how big", a Mann–Whitney U test for
// "is it real", Holm for "we asked many questions", and a verdict that combines them.
//
// Non-finite values are dropped, as in descriptive.ts: a failed repetition is NaN, not a
// measurement. Callers passing n1/n2 to verdict() should count finite values only.

import { median } from './descriptive.ts';

function finite(xs: readonly number[]): number[] {
  return xs.filter((x) => Number.isFinite(x));
}

/**
 * Mulberry32, a tiny 32-bit seeded PRNG (Tommy Ettinger's, the usual JavaScript one): uniform
 * floats in [0, 1). Not cryptographic; here only so that bootstrap results are reproducible — the
 * same data and seed give the same confidence interval on every machine and every run.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// Bootstrap confidence interval for the ratio of medians

export interface BootstrapOptions {
  /** Number of bootstrap resamples (default 10 000). */
  resamples?: number;
  /** Two-sided confidence level in (0, 1) (default 0.95). */
  confidence?: number;
  /** PRNG seed (default 1); the result is a pure function of the data and the options. */
  seed?: number;
}

export interface RatioCI {
  /** median(cand) / median(base) on the observed samples. */
  ratio: number;
  low: number;
  high: number;
}

/**
 * Ratio with the zero conventions used by bootstrapRatioCI. Values are non-negative, so the only
 * special cases are a zero base: 0/0 is taken as 1 because the medians are equal (two runs that
 * both lost no packets did not change), and x/0 for x > 0 is Infinity, which verdict() compares
 * like any other number (a CI of [Infinity, Infinity] is beyond every noise band).
 */
function ratioOf(c: number, b: number): number {
  if (b > 0) return c / b;
  return c === 0 ? 1 : Infinity;
}

/** Median of a typed array, sorted in place (the resample buffer is scratch anyway). */
function medianInPlace(v: Float64Array): number {
  v.sort();
  const h = (v.length - 1) / 2;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return lo === hi ? v[lo]! : (v[lo]! + v[hi]!) / 2;
}

/** R type 7 quantile of sorted values; equal neighbours are returned as is so Infinity survives. */
function quantileSorted(v: Float64Array, q: number): number {
  const h = (v.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  if (v[lo] === v[hi] || h === lo) return v[lo]!;
  return v[lo]! + (h - lo) * (v[hi]! - v[lo]!);
}

function checkSample(name: string, xs: readonly number[]): number[] {
  const v = finite(xs);
  if (!v.length) throw new RangeError(`${name}: sample has no finite values`);
  if (v.some((x) => x < 0)) throw new RangeError(`${name}: ratios of medians need non-negative values`);
  return v;
}

/**
 * Ratio of medians median(cand) / median(base) with a percentile bootstrap confidence interval:
 * each sample is resampled independently with replacement, the ratio of the resample medians is
 * taken `resamples` times, and the CI is the (1 − confidence)/2 and (1 + confidence)/2 quantiles
 * (R type 7) of those ratios.
 *
 * Why medians and a percentile bootstrap: one outlier repetition must not move the estimate, and
 * the sampling distribution of a ratio of medians has no usable closed form at n = 5. With very
 * few repetitions the bootstrap is optimistic (a resample can only contain observed values), which
 * is why verdict() also wants a rank test and a minimum number of repetitions.
 *
 * Values must be non-negative (rates, durations, loss fractions): a negative median makes a ratio
 * meaningless, so that throws a RangeError, as do empty samples (after dropping non-finite
 * values) and bad options. A zero base median is not an error — zero packet loss is a normal
 * result — see ratioOf() for how 0/0 (→ 1) and x/0 (→ Infinity) are treated.
 */
export function bootstrapRatioCI(base: readonly number[], cand: readonly number[], opts: BootstrapOptions = {}): RatioCI {
  const resamples = opts.resamples ?? 10_000;
  const confidence = opts.confidence ?? 0.95;
  const seed = opts.seed ?? 1;
  if (!Number.isInteger(resamples) || resamples < 1) throw new RangeError(`bootstrapRatioCI: resamples must be a positive integer, got ${resamples}`);
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`bootstrapRatioCI: confidence must be in (0, 1), got ${confidence}`);
  if (!Number.isFinite(seed)) throw new RangeError(`bootstrapRatioCI: seed must be a finite number, got ${seed}`);
  const b = checkSample('bootstrapRatioCI base', base);
  const c = checkSample('bootstrapRatioCI cand', cand);

  const rng = mulberry32(seed);
  const bs = new Float64Array(b.length);
  const cs = new Float64Array(c.length);
  const ratios = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < b.length; i++) bs[i] = b[Math.floor(rng() * b.length)]!;
    for (let i = 0; i < c.length; i++) cs[i] = c[Math.floor(rng() * c.length)]!;
    ratios[r] = ratioOf(medianInPlace(cs), medianInPlace(bs));
  }
  ratios.sort();
  const tail = (1 - confidence) / 2;
  return {
    ratio: ratioOf(median(c), median(b)),
    low: quantileSorted(ratios, tail),
    high: quantileSorted(ratios, 1 - tail),
  };
}

// ---------------------------------------------------------------------------------------------
// Mann–Whitney U

export interface MannWhitneyResult {
  /**
   * U of sample a: the number of pairs (a_i, b_j) with a_i > b_j, plus 0.5 for every tied pair.
   * This is R's wilcox.test W and scipy.stats.mannwhitneyu's statistic for its first argument;
   * U of b is n1·n2 − U.
   */
  u: number;
  /** Two-sided p-value, in [0, 1]. */
  p: number;
  /** True when p comes from the exact null distribution of U, false for the normal approximation. */
  exact: boolean;
}

export interface MannWhitneyOptions {
  /**
   * 'auto' (default): exact when it is valid and cheap (see exactEligible), normal otherwise.
   * 'exact' throws a RangeError when the exact distribution does not apply (ties, or too large).
   */
  method?: 'auto' | 'exact' | 'normal';
}

/**
 * Largest n1·n2 for which the exact distribution is considered; the DP below costs about
 * (n1·n2)²/4 additions, ~1.6 M at this bound — nothing next to a benchmark run.
 */
export const EXACT_MAX_PAIRS = 2500;

/**
 * Whether the exact distribution is used for samples of these sizes (ties aside). The DP counts
 * arrangements in doubles; while C(n1 + n2, n1) ≤ 2^53 every count — and so the p-value's
 * numerator and denominator — is an exact integer. That admits 28 + 28 but not 30 + 30, and
 * unbalanced designs such as 3 + 500, where the normal approximation is at its worst. Beyond it
 * the samples are large and the normal approximation is close — except for extreme designs like
 * 2 + 1300, which benchmark repetitions never produce.
 */
export function exactEligible(n1: number, n2: number): boolean {
  if (n1 * n2 > EXACT_MAX_PAIRS) return false;
  const k = Math.min(n1, n2);
  const N = n1 + n2;
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (N - k + i)) / i;
  return c <= 2 ** 53;
}

/**
 * Number of arrangements of m a's and n b's (no ties) giving each U = 0 … m·n, for the U of the
 * a's. Recurrence on the largest of the m + n values: if it is an a, it beats all n b's
 * (f(m−1, n, k−n)); if it is a b, it beats nothing (f(m, n−1, k)).
 */
function exactUCounts(m: number, n: number): Float64Array {
  // prev[j] = distribution for (i − 1, j); rows are rolled over i.
  let prev: Float64Array[] = Array.from({ length: n + 1 }, () => Float64Array.of(1));
  for (let i = 1; i <= m; i++) {
    const cur: Float64Array[] = [Float64Array.of(1)];
    for (let j = 1; j <= n; j++) {
      const d = new Float64Array(i * j + 1);
      const up = prev[j]!;
      for (let k = 0; k < up.length; k++) d[k + j] += up[k]!;
      const left = cur[j - 1]!;
      for (let k = 0; k < left.length; k++) d[k] += left[k]!;
      cur.push(d);
    }
    prev = cur;
  }
  return prev[n]!;
}

/**
 * Upper-tail of the standard normal via erfc; Numerical Recipes' erfcc (Chebyshev fit, fractional
 * error < 1.2e-7 everywhere), ample for p-values and free of dependencies.
 */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/**
 * Two-sided Mann–Whitney U (Wilcoxon rank-sum) test: does one sample tend to have larger values
 * than the other? Rank-based, so it needs no normality and shrugs off an outlier repetition.
 *
 * Exact when there are no ties (anywhere in the pooled sample) and exactEligible(n1, n2):
 * p = min(1, 2·min(P(U ≤ u), P(U ≥ u))) under the null, as R's wilcox.test(exact = TRUE) and
 * scipy's method="exact". Otherwise the normal approximation with the tie-corrected variance
 * σ² = n1·n2/12 · ((N + 1) − Σ(t³ − t)/(N(N − 1))) and a continuity correction of 0.5, as
 * scipy's method="asymptotic" (use_continuity=True). If every value is tied σ = 0 and there is
 * no evidence of a difference: p = 1.
 *
 * Note that with 3 + 3 values the smallest possible exact p is 0.1, with 4 + 4 it is 2/70.
 *
 * Non-finite values are dropped; an empty sample throws a RangeError.
 */
export function mannWhitneyU(a: readonly number[], b: readonly number[], opts: MannWhitneyOptions = {}): MannWhitneyResult {
  const method = opts.method ?? 'auto';
  const x = finite(a);
  const y = finite(b);
  if (!x.length || !y.length) throw new RangeError('mannWhitneyU: both samples need at least one finite value');
  const n1 = x.length;
  const n2 = y.length;
  const N = n1 + n2;

  let u = 0;
  for (const xi of x) for (const yj of y) u += xi > yj ? 1 : xi === yj ? 0.5 : 0;

  const pooled = [...x, ...y].sort((p, q) => p - q);
  let tieTerm = 0;
  for (let i = 0; i < N; ) {
    let j = i + 1;
    while (j < N && pooled[j] === pooled[i]) j++;
    const t = j - i;
    tieTerm += t * t * t - t;
    i = j;
  }
  const ties = tieTerm > 0;
  const exactOk = !ties && exactEligible(n1, n2);
  if (method === 'exact' && !exactOk) {
    throw new RangeError(`mannWhitneyU: exact distribution needs no ties and exactEligible(${n1}, ${n2})`);
  }

  if (method !== 'normal' && exactOk) {
    const counts = exactUCounts(n1, n2);
    let below = 0; // #arrangements with U ≤ u
    let above = 0; // #arrangements with U ≥ u
    let total = 0;
    for (let k = 0; k < counts.length; k++) {
      total += counts[k]!;
      if (k <= u) below += counts[k]!;
      if (k >= u) above += counts[k]!;
    }
    return { u, p: Math.min(1, (2 * Math.min(below, above)) / total), exact: true };
  }

  const mu = (n1 * n2) / 2;
  const sigma2 = ((n1 * n2) / 12) * (N + 1 - tieTerm / (N * (N - 1)));
  if (!(sigma2 > 0)) return { u, p: 1, exact: false };
  const z = Math.max(0, Math.abs(u - mu) - 0.5) / Math.sqrt(sigma2);
  return { u, p: Math.min(1, Math.max(0, erfc(z / Math.SQRT2))), exact: false };
}

// ---------------------------------------------------------------------------------------------
// Multiple comparisons

/**
 * Holm–Bonferroni adjusted p-values, in input order: sorted ascending, the i-th smallest (from 0)
 * is multiplied by (m − i), made non-decreasing with a running maximum, and capped at 1 — as R's
 * p.adjust(p, "holm"). Controls the family-wise error rate like Bonferroni but is uniformly more
 * powerful, and needs no independence assumption: a comparison of many metrics of the same runs
 * is anything but independent. Throws a RangeError for a value outside [0, 1] (or NaN).
 */
export function holm(pValues: readonly number[]): number[] {
  for (const p of pValues) if (!(p >= 0 && p <= 1)) throw new RangeError(`holm: p-values must be in [0, 1], got ${p}`);
  const m = pValues.length;
  const order = pValues.map((_, i) => i).sort((i, j) => pValues[i]! - pValues[j]! || i - j);
  const out = new Array<number>(m);
  let running = 0;
  order.forEach((idx, rank) => {
    running = Math.max(running, Math.min(1, (m - rank) * pValues[idx]!));
    out[idx] = running;
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Verdict

export type Verdict = 'improved' | 'regressed' | 'no change' | 'inconclusive';

export interface VerdictInput {
  /** median(cand) / median(base) and its confidence interval, e.g. from bootstrapRatioCI. */
  ratio: number;
  low: number;
  high: number;
  /** p-value of a difference test (Holm-adjusted when many comparisons are judged together). */
  p: number;
  /** Noise band as a fraction: ratios within [1 − threshold, 1 + threshold] count as no change. */
  threshold: number;
  higherIsBetter: boolean;
  /** Significance level (default 0.05). */
  alpha?: number;
  /** Fewer repetitions than this on either side is always inconclusive (default 3). */
  minReps?: number;
  /** Repetitions (finite values) in base and candidate. */
  n1: number;
  n2: number;
}

/**
 * Decide what a comparison means. Rules, in order, and why:
 *
 * 1. Too few repetitions on either side (< minReps), or a NaN anywhere → inconclusive. Below a
 *    handful of runs neither the bootstrap (which only re-uses observed values and so understates
 *    the spread) nor the rank test can be trusted, and a missing number is not evidence.
 * 2. The whole CI inside the noise band [1 − t, 1 + t] → no change, whatever p says. A difference
 *    can be real (tiny p with very stable runs) and still too small to matter; the noise band is
 *    the user's statement of what matters.
 * 3. p < alpha and the whole CI beyond the band → improved or regressed, depending on the side and
 *    on higherIsBetter. Both are required: the rank test guards against a bootstrap CI that is
 *    too narrow at small n, the CI guards against significant-but-irrelevant shifts. With the
 *    default alpha and 3 + 3 repetitions the exact test cannot get below p = 0.1, so such a
 *    comparison can never claim a change — deliberately: three runs are too few to call one.
 * 4. p ≥ alpha, the CI overlaps the band, and it lies within twice the band → no change. At
 *    n ≈ 5 the CI of two samples from the same setup is commonly a bit wider than the band (the
 *    bootstrap of a median jumps between order statistics), and demanding it to fit inside would
 *    turn most identical runs into "inconclusive". Nothing seen points to a change and no effect
 *    beyond 2t is plausible, which is what a user means by "no change".
 * 5. Everything else → inconclusive: a CI too wide to rule out a relevant change (noisy runs), a
 *    significant shift that may or may not exceed the band, or the two tests disagreeing (CI
 *    beyond the band but not significant). More or steadier repetitions are the answer, not a
 *    guess.
 *
 * Infinite bounds (a zero base median, see bootstrapRatioCI) compare like any other number.
 * Bad parameters (threshold outside [0, 1), alpha outside (0, 1), low > high, negative counts)
 * throw a RangeError: those are programming errors, not measurements.
 */
export function verdict(o: VerdictInput): Verdict {
  const alpha = o.alpha ?? 0.05;
  const minReps = o.minReps ?? 3;
  const t = o.threshold;
  if (!(t >= 0 && t < 1)) throw new RangeError(`verdict: threshold must be in [0, 1), got ${t}`);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`verdict: alpha must be in (0, 1), got ${alpha}`);
  if (!(Number.isInteger(minReps) && minReps >= 1)) throw new RangeError(`verdict: minReps must be a positive integer, got ${minReps}`);
  for (const [k, n] of [['n1', o.n1], ['n2', o.n2]] as const) {
    if (!(Number.isInteger(n) && n >= 0)) throw new RangeError(`verdict: ${k} must be a non-negative integer, got ${n}`);
  }
  if (o.low > o.high) throw new RangeError(`verdict: CI low ${o.low} > high ${o.high}`);

  if ([o.ratio, o.low, o.high, o.p].some(Number.isNaN)) return 'inconclusive';
  if (Math.min(o.n1, o.n2) < minReps) return 'inconclusive';

  const bandLow = 1 - t;
  const bandHigh = 1 + t;
  if (o.low >= bandLow && o.high <= bandHigh) return 'no change';

  const up = o.higherIsBetter ? 'improved' : 'regressed';
  const down = o.higherIsBetter ? 'regressed' : 'improved';
  if (o.p < alpha) {
    if (o.low > bandHigh) return up;
    if (o.high < bandLow) return down;
    return 'inconclusive';
  }

  const overlapsBand = o.high >= bandLow && o.low <= bandHigh;
  if (overlapsBand && o.low >= 1 - 2 * t && o.high <= 1 + 2 * t) return 'no change';
  return 'inconclusive';
}
