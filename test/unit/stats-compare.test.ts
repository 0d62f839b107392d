import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrapRatioCI, exactEligible, holm, mannWhitneyU, mulberry32, verdict, type Verdict } from '../../harness/stats/compare.ts';

const close = (a: number, b: number, eps = 1e-9) => assert.ok(Math.abs(a - b) <= eps, `${a} ≉ ${b}`);
const relClose = (a: number, b: number, rel = 1e-6) => assert.ok(Math.abs(a - b) <= rel * Math.abs(b), `${a} ≉ ${b} (rel ${rel})`);

// ---------------------------------------------------------------------------------------------
// mulberry32

test('mulberry32 reproduces the reference sequence', () => {
  // From an independent Python port of the canonical JavaScript mulberry32 (a += 0x6D2B79F5 …).
  const r1 = mulberry32(1);
  for (const want of [0.6270739405881613, 0.002735721180215478, 0.5274470399599522, 0.9810509674716741, 0.9683778982143849]) assert.equal(r1(), want);
  const r42 = mulberry32(42);
  for (const want of [0.6011037519201636, 0.44829055899754167, 0.8524657934904099]) assert.equal(r42(), want);
});

test('mulberry32 is deterministic per seed and stays in [0, 1)', () => {
  const a = mulberry32(7);
  const b = mulberry32(7);
  const c = mulberry32(8);
  let differs = false;
  for (let i = 0; i < 10_000; i++) {
    const x = a();
    assert.equal(x, b());
    assert.ok(x >= 0 && x < 1);
    if (x !== c()) differs = true;
  }
  assert.ok(differs);
});

// ---------------------------------------------------------------------------------------------
// Mann–Whitney U

test('exact Mann–Whitney: textbook values', () => {
  // 3 vs 3, complete separation: P(U = 0) = 1/C(6,3) = 1/20, two-sided 0.1.
  assert.deepEqual(mannWhitneyU([1, 2, 3], [4, 5, 6]), { u: 0, p: 0.1, exact: true });
  assert.deepEqual(mannWhitneyU([4, 5, 6], [1, 2, 3]), { u: 9, p: 0.1, exact: true });
  // 5 vs 5, complete separation: 2/C(10,5) = 2/252.
  const r = mannWhitneyU([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]);
  assert.equal(r.u, 0);
  assert.equal(r.exact, true);
  close(r.p, 2 / 252, 1e-15);
  // R's ?wilcox.test example: wilcox.test(x, y, alternative = "g") gives W = 35, p = 0.1272;
  // two-sided is twice that (scipy.stats.mannwhitneyu(..., method="exact") = 0.2544122544122544).
  const x = [0.8, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46];
  const y = [1.15, 0.88, 0.9, 0.74, 1.21];
  const rr = mannWhitneyU(x, y);
  assert.equal(rr.u, 35);
  assert.equal(rr.exact, true);
  close(rr.p, 0.2544122544122544, 1e-12);
  // scipy.stats.mannwhitneyu([10,12,15,9,20,11], [14,18,22,19,16,25,21], method="exact")
  const s = mannWhitneyU([10, 12, 15, 9, 20, 11], [14, 18, 22, 19, 16, 25, 21]);
  assert.equal(s.u, 5);
  close(s.p, 0.022144522144522144, 1e-12);
});

/** Two-sided p by enumerating every split of the pooled values into groups of n1 and n2. */
function bruteForceP(a: number[], b: number[]): number {
  const pooled = [...a, ...b];
  const n1 = a.length;
  const uOf = (xs: number[], ys: number[]) => {
    let u = 0;
    for (const x of xs) for (const y of ys) u += x > y ? 1 : x === y ? 0.5 : 0;
    return u;
  };
  const observed = uOf(a, b);
  let below = 0;
  let above = 0;
  let total = 0;
  const pick = (start: number, chosen: number[]) => {
    if (chosen.length === n1) {
      const xs = chosen.map((i) => pooled[i]!);
      const ys = pooled.filter((_, i) => !chosen.includes(i));
      const u = uOf(xs, ys);
      total++;
      if (u <= observed) below++;
      if (u >= observed) above++;
      return;
    }
    for (let i = start; i < pooled.length; i++) pick(i + 1, [...chosen, i]);
  };
  pick(0, []);
  return Math.min(1, (2 * Math.min(below, above)) / total);
}

test('exact Mann–Whitney agrees with brute-force permutation enumeration', () => {
  const rng = mulberry32(2024);
  const draw = (n: number, shift: number) => Array.from({ length: n }, () => Math.round((rng() + shift) * 1e6) / 1e6);
  for (const [n1, n2] of [[1, 4], [2, 9], [3, 7], [4, 6], [5, 5], [6, 8], [7, 3]] as const) {
    for (const shift of [0, 0.3, 0.8]) {
      const a = draw(n1, 0);
      const b = draw(n2, shift);
      const r = mannWhitneyU(a, b);
      assert.equal(r.exact, true);
      close(r.p, bruteForceP(a, b), 1e-12);
    }
  }
});

test('U convention: pairs a > b plus one half per tie; U(a,b) + U(b,a) = n1·n2', () => {
  // pairs: 3>2 (1), 3=3 (0.5), 5>2, 5>3 (2), 1 beats nothing → 3.5
  assert.equal(mannWhitneyU([1, 3, 5], [2, 3]).u, 3.5);
  assert.equal(mannWhitneyU([2, 3], [1, 3, 5]).u, 2.5);
  const a = [3, 1, 4, 1, 5, 9, 2, 6];
  const b = [5, 3, 5, 8, 9, 7];
  assert.equal(mannWhitneyU(a, b).u + mannWhitneyU(b, a).u, a.length * b.length);
  assert.equal(mannWhitneyU(a, b).p, mannWhitneyU(b, a).p);
});

test('ties use the normal approximation with tie and continuity correction (scipy values)', () => {
  // scipy.stats.mannwhitneyu(a, b, method="asymptotic", use_continuity=True)
  const r = mannWhitneyU([1, 2, 2, 3, 4], [2, 3, 3, 5, 6, 6]);
  assert.equal(r.exact, false);
  assert.equal(r.u, 6);
  relClose(r.p, 0.1130499788563229);
  const s = mannWhitneyU([100, 101, 101, 103, 99, 100, 102], [104, 103, 105, 101, 106, 104, 107, 103]);
  assert.equal(s.exact, false);
  assert.equal(s.u, 4);
  relClose(s.p, 0.00606569472076016);
});

test('normal approximation tracks the exact p at moderate n', () => {
  // 20 vs 20, no ties. scipy: exact 0.016742393803863068, asymptotic 0.017938612870324673.
  const a = [100.012, 102.987, 97.259, 91.094, 95.453, 90.084, 100.601, 113.402, 95.078, 93.795, 104.898, 103.569, 101.054, 90.695, 99.707, 106.953, 86.558, 95.424, 80.988, 87.105];
  const b = [89.583, 105.649, 95.326, 110.713, 109.568, 106.131, 82.832, 102.613, 107.515, 109.133, 92.699, 103.222, 98.215, 99.912, 118.609, 99.925, 107.675, 116.844, 102.164, 106.883];
  const exact = mannWhitneyU(a, b);
  const normal = mannWhitneyU(a, b, { method: 'normal' });
  assert.equal(exact.exact, true);
  assert.equal(normal.exact, false);
  assert.equal(exact.u, 112);
  assert.equal(normal.u, 112);
  close(exact.p, 0.016742393803863068, 1e-12);
  relClose(normal.p, 0.017938612870324673);
  // Same data on small samples (where the approximation is known to be rougher): scipy values.
  relClose(mannWhitneyU([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], { method: 'normal' }).p, 0.012185780355344813);
  relClose(mannWhitneyU([1, 2, 3], [4, 5, 6], { method: 'normal' }).p, 0.08085559837005224);
  // Across many random 10 vs 12 samples the two stay within a few hundredths.
  const rng = mulberry32(99);
  for (let k = 0; k < 50; k++) {
    const x = Array.from({ length: 10 }, () => rng());
    const y = Array.from({ length: 12 }, () => rng() + 0.2);
    const d = Math.abs(mannWhitneyU(x, y).p - mannWhitneyU(x, y, { method: 'normal' }).p);
    assert.ok(d < 0.03, `exact vs normal differ by ${d}`);
  }
});

test('exact while every count is an exact double, normal beyond', () => {
  assert.equal(exactEligible(28, 28), true); // C(56, 28) ≈ 7.6e15 ≤ 2^53
  assert.equal(exactEligible(29, 29), false); // C(58, 29) ≈ 3.0e16
  assert.equal(exactEligible(3, 500), true); // unbalanced: C(503, 3) ≈ 2.1e7
  assert.equal(exactEligible(2, 1300), false); // too many pairs for the DP
  const a = Array.from({ length: 30 }, (_, i) => i * 2);
  const b = Array.from({ length: 30 }, (_, i) => i * 2 + 1);
  const r = mannWhitneyU(a, b);
  assert.equal(r.exact, false);
  assert.ok(r.p > 0.5 && r.p <= 1);
  assert.equal(mannWhitneyU(a.slice(0, 28), b.slice(0, 28)).exact, true);
  assert.throws(() => mannWhitneyU(a, b, { method: 'exact' }), RangeError);
  // An unbalanced design stays exact and still matches enumeration (C(43, 3) = 12 341 splits).
  const rng = mulberry32(11);
  const x = [0.35, 0.9, 0.97];
  const y = Array.from({ length: 40 }, () => Math.round(rng() * 1e6) / 1e6);
  const u = mannWhitneyU(x, y);
  assert.equal(u.exact, true);
  close(u.p, bruteForceP(x, y), 1e-12);
});

test('p is always within [0, 1], including degenerate samples', () => {
  assert.deepEqual(mannWhitneyU([5, 5, 5], [5, 5]), { u: 3, p: 1, exact: false }); // all tied: σ = 0
  assert.deepEqual(mannWhitneyU([1], [2]), { u: 0, p: 1, exact: true });
  assert.equal(mannWhitneyU([1, 2, 3], [1.5, 2.5, 3.5, 0]).p, 1); // U exactly at its mean
  assert.deepEqual(mannWhitneyU([1, 2, 3], [1, 2.5, 3.5, 0]), { u: 6.5, p: 1, exact: false }); // tie, |U − μ| = 0.5
  const rng = mulberry32(5);
  for (let k = 0; k < 200; k++) {
    const x = Array.from({ length: 1 + (k % 9) }, () => Math.floor(rng() * 4));
    const y = Array.from({ length: 1 + (k % 7) }, () => Math.floor(rng() * 4));
    const { p } = mannWhitneyU(x, y);
    assert.ok(p >= 0 && p <= 1, `p = ${p}`);
  }
});

test('mannWhitneyU input handling', () => {
  assert.throws(() => mannWhitneyU([], [1, 2]), RangeError);
  assert.throws(() => mannWhitneyU([1, 2], []), RangeError);
  assert.throws(() => mannWhitneyU([Number.NaN], [1, 2]), RangeError);
  assert.throws(() => mannWhitneyU([1, 2, 2], [3, 4], { method: 'exact' }), RangeError);
  // Non-finite values are dropped, as in descriptive.ts.
  assert.deepEqual(mannWhitneyU([1, Number.NaN, 2, 3], [4, 5, Number.POSITIVE_INFINITY, 6]), { u: 0, p: 0.1, exact: true });
  const a = [3, 1, 2];
  mannWhitneyU(a, [0, 5]);
  assert.deepEqual(a, [3, 1, 2]);
});

// ---------------------------------------------------------------------------------------------
// Holm

test('holm: hand-worked example, returned in input order', () => {
  // sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → running max 0.06
  const adj = holm([0.01, 0.04, 0.03, 0.005]);
  const want = [0.03, 0.06, 0.06, 0.02];
  adj.forEach((p, i) => close(p, want[i]!, 1e-15));
});

test('holm caps at 1, keeps the order of the raw p-values, and handles trivial input', () => {
  assert.deepEqual(holm([0.5, 0.6]), [1, 1]);
  assert.deepEqual(holm([]), []);
  assert.deepEqual(holm([0.03]), [0.03]);
  assert.deepEqual(holm([0.02, 0.02]), [0.04, 0.04]);
  const raw = [0.2, 0.001, 0.04, 0.01, 0.7, 0.03];
  const adj = holm(raw);
  for (let i = 0; i < raw.length; i++) {
    assert.ok(adj[i]! >= raw[i]! && adj[i]! <= 1);
    for (let j = 0; j < raw.length; j++) if (raw[i]! < raw[j]!) assert.ok(adj[i]! <= adj[j]!);
  }
  assert.deepEqual(raw, [0.2, 0.001, 0.04, 0.01, 0.7, 0.03]);
});

test('holm rejects values that are not probabilities', () => {
  assert.throws(() => holm([0.1, 1.2]), RangeError);
  assert.throws(() => holm([-0.1]), RangeError);
  assert.throws(() => holm([Number.NaN]), RangeError);
});

// ---------------------------------------------------------------------------------------------
// Bootstrap

const BASE = [1000, 1012, 991, 1005, 997];

test('bootstrap CI is deterministic for a fixed seed', () => {
  const cand = [1003, 994, 1009, 999, 1008];
  const a = bootstrapRatioCI(BASE, cand, { seed: 3 });
  assert.deepEqual(bootstrapRatioCI(BASE, cand, { seed: 3 }), a);
  assert.deepEqual(bootstrapRatioCI(BASE, cand), bootstrapRatioCI(BASE, cand, { seed: 1, resamples: 10_000, confidence: 0.95 }));
  assert.equal(a.ratio, 1003 / 1000);
  assert.ok(a.low <= a.ratio && a.ratio <= a.high);
});

test('bootstrap CI contains the true ratio for well-separated samples', () => {
  // cand is base × 1.2 with a little independent noise.
  const base = [990, 1005, 1000, 1010, 995, 1002, 998];
  const cand = [1192, 1203, 1196, 1210, 1199, 1188, 1205];
  for (const seed of [1, 2, 3]) {
    const ci = bootstrapRatioCI(base, cand, { seed });
    assert.ok(ci.low < 1.2 && 1.2 < ci.high, JSON.stringify(ci));
    assert.ok(ci.low > 1.15 && ci.high < 1.25, `well separated, so narrow: ${JSON.stringify(ci)}`);
  }
  close(bootstrapRatioCI(base, cand).ratio, 1199 / 1000);
});

test('higher confidence gives a wider interval; constant samples a point', () => {
  const cand = [1040, 1100, 990, 1075, 1020, 1060];
  const narrow = bootstrapRatioCI(BASE, cand, { confidence: 0.8 });
  const wide = bootstrapRatioCI(BASE, cand, { confidence: 0.99 });
  assert.ok(wide.low <= narrow.low && narrow.high <= wide.high);
  assert.ok(wide.high - wide.low > narrow.high - narrow.low);
  assert.deepEqual(bootstrapRatioCI([4, 4, 4], [5, 5]), { ratio: 1.25, low: 1.25, high: 1.25 });
  assert.deepEqual(bootstrapRatioCI([8], [2]), { ratio: 0.25, low: 0.25, high: 0.25 });
});

test('bootstrap: zero base medians follow the documented conventions', () => {
  // 0/0: equal medians → 1 (two runs that both lost nothing did not change).
  assert.deepEqual(bootstrapRatioCI([0, 0, 0], [0, 0, 0, 0]), { ratio: 1, low: 1, high: 1 });
  // x/0 → Infinity, and the interval is ordered.
  assert.deepEqual(bootstrapRatioCI([0, 0, 0], [0.01, 0.02, 0.015]), { ratio: Infinity, low: Infinity, high: Infinity });
  const mixed = bootstrapRatioCI([0, 0, 0, 0.001, 0.002], [0.01, 0.02, 0.015, 0.012]);
  assert.equal(mixed.ratio, Infinity);
  assert.ok(!Number.isNaN(mixed.low) && mixed.low <= mixed.high);
});

test('bootstrap input errors', () => {
  assert.throws(() => bootstrapRatioCI([], [1]), RangeError);
  assert.throws(() => bootstrapRatioCI([1], []), RangeError);
  assert.throws(() => bootstrapRatioCI([Number.NaN, Number.POSITIVE_INFINITY], [1]), RangeError);
  assert.throws(() => bootstrapRatioCI([1, -2, 3], [1]), RangeError);
  assert.throws(() => bootstrapRatioCI([1], [-1]), RangeError);
  assert.throws(() => bootstrapRatioCI([1], [1], { resamples: 0 }), RangeError);
  assert.throws(() => bootstrapRatioCI([1], [1], { resamples: 2.5 }), RangeError);
  assert.throws(() => bootstrapRatioCI([1], [1], { confidence: 1 }), RangeError);
  assert.throws(() => bootstrapRatioCI([1], [1], { confidence: 0 }), RangeError);
  assert.throws(() => bootstrapRatioCI([1], [1], { seed: Number.NaN }), RangeError);
  // Non-finite values are dropped; inputs are not mutated.
  const base = [3, Number.NaN, 1, 2];
  assert.equal(bootstrapRatioCI(base, [4, 4]).ratio, 2);
  assert.ok(Number.isNaN(base[1]!));
  assert.deepEqual(base.filter(Number.isFinite), [3, 1, 2]);
});

// ---------------------------------------------------------------------------------------------
// Verdict

function judge(base: number[], cand: number[], higherIsBetter = true, resamples = 10_000, seed = 1): Verdict {
  const ci = bootstrapRatioCI(base, cand, { resamples, seed });
  const { p } = mannWhitneyU(base, cand);
  return verdict({ ...ci, p, threshold: 0.05, higherIsBetter, n1: base.length, n2: cand.length });
}

test('verdict, fixed data: same setup twice → no change', () => {
  // ratio 1.003, CI ≈ [0.989, 1.012], p = 0.84
  assert.equal(judge(BASE, [1003, 994, 1009, 999, 1008]), 'no change');
});

test('verdict, fixed data: a clear 20% shift with 5 repetitions → improved / regressed', () => {
  const cand = [1195, 1210, 1188, 1206, 1201]; // p = 2/252, CI ≈ [1.18, 1.21]
  assert.equal(judge(BASE, cand, true), 'improved');
  assert.equal(judge(BASE, cand, false), 'regressed');
  assert.equal(judge(cand, BASE, true), 'regressed');
  assert.equal(judge(cand, BASE, false), 'improved');
});

test('verdict, fixed data: huge variance → inconclusive', () => {
  // CV ≈ 30%: ratio 1.15 but CI ≈ [0.66, 1.85], p = 0.69
  assert.equal(judge([1000, 620, 1450, 870, 1230], [1300, 700, 1600, 950, 1150]), 'inconclusive');
});

test('verdict, simulated: operating characteristics with a seeded generator', () => {
  const rng = mulberry32(12345);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  const tally = (n: number, make: () => [number[], number[]]) => {
    const c: Record<Verdict, number> = { improved: 0, regressed: 0, 'no change': 0, inconclusive: 0 };
    for (let k = 0; k < n; k++) {
      const [b, x] = make();
      c[judge(b, x, true, 2000, k)]++;
    }
    return c;
  };
  const sample = (n: number, f: () => number) => Array.from({ length: n }, f);
  // (a) same distribution, 5 reps, CV 2%: no change almost always, never a claimed change.
  const same = tally(200, () => [sample(5, () => 1000 * (1 + 0.02 * gauss())), sample(5, () => 1000 * (1 + 0.02 * gauss()))]);
  assert.ok(same['no change'] >= 190, JSON.stringify(same));
  assert.equal(same.improved + same.regressed, 0, JSON.stringify(same));
  // (b) +20%, 5 reps, CV 2%: improved.
  const shifted = tally(200, () => [sample(5, () => 1000 * (1 + 0.02 * gauss())), sample(5, () => 1200 * (1 + 0.02 * gauss()))]);
  assert.ok(shifted.improved >= 190, JSON.stringify(shifted));
  assert.equal(shifted.regressed, 0);
  // (c) same distribution, 10 reps, CV ≈ 30% (log-normal, stays positive): inconclusive, not a
  // confident "no change" and not a claimed change.
  const noisy = tally(200, () => [sample(10, () => 1000 * Math.exp(0.3 * gauss())), sample(10, () => 1000 * Math.exp(0.3 * gauss()))]);
  assert.ok(noisy.inconclusive >= 190, JSON.stringify(noisy));
  assert.equal(noisy['no change'], 0, JSON.stringify(noisy));
});

test('verdict rules, one by one', () => {
  const v = (o: Partial<Parameters<typeof verdict>[0]>) =>
    verdict({ ratio: 1, low: 1, high: 1, p: 0.5, threshold: 0.05, higherIsBetter: true, n1: 5, n2: 5, ...o });
  // 1. too few repetitions, or missing numbers
  assert.equal(v({ ratio: 1.3, low: 1.25, high: 1.35, p: 0.001, n1: 2 }), 'inconclusive');
  assert.equal(v({ ratio: 1.3, low: 1.25, high: 1.35, p: 0.001, n2: 4, minReps: 5 }), 'inconclusive');
  assert.equal(v({ ratio: Number.NaN, low: Number.NaN, high: Number.NaN }), 'inconclusive');
  assert.equal(v({ p: Number.NaN }), 'inconclusive');
  // 2. CI inside the noise band → no change, even when significant
  assert.equal(v({ ratio: 1.02, low: 1.01, high: 1.03, p: 0.0001 }), 'no change');
  assert.equal(v({ ratio: 1, low: 0.95, high: 1.05, p: 0.5 }), 'no change');
  // 3. significant and the CI beyond the band
  assert.equal(v({ ratio: 1.2, low: 1.1, high: 1.3, p: 0.01 }), 'improved');
  assert.equal(v({ ratio: 0.8, low: 0.7, high: 0.9, p: 0.01 }), 'regressed');
  assert.equal(v({ ratio: 1.2, low: 1.1, high: 1.3, p: 0.01, higherIsBetter: false }), 'regressed');
  assert.equal(v({ ratio: 0.8, low: 0.7, high: 0.9, p: 0.01, higherIsBetter: false }), 'improved');
  assert.equal(v({ ratio: Infinity, low: Infinity, high: Infinity, p: 0.01, higherIsBetter: false }), 'regressed');
  //    significant but the CI straddles the band edge: the size is unclear
  assert.equal(v({ ratio: 1.06, low: 1.03, high: 1.09, p: 0.01 }), 'inconclusive');
  //    CI beyond the band but not significant: the tests disagree
  assert.equal(v({ ratio: 1.2, low: 1.1, high: 1.3, p: 0.1 }), 'inconclusive');
  assert.equal(v({ ratio: 1.2, low: 1.1, high: 1.3, p: 0.04, alpha: 0.01 }), 'inconclusive');
  // 4. not significant, CI overlaps the band and fits in twice the band
  assert.equal(v({ ratio: 1.01, low: 0.92, high: 1.08, p: 0.4 }), 'no change');
  assert.equal(v({ ratio: 1.07, low: 1.06, high: 1.09, p: 0.4 }), 'inconclusive'); // fits 2t, misses the band
  // 5. too wide
  assert.equal(v({ ratio: 1.01, low: 0.85, high: 1.2, p: 0.6 }), 'inconclusive');
  assert.equal(v({ ratio: 1, low: 0, high: Infinity, p: 0.6 }), 'inconclusive');
});

test('with 3 + 3 repetitions a change is never claimed (smallest exact p is 0.1)', () => {
  assert.equal(judge([100, 101, 102], [150, 151, 152]), 'inconclusive');
  assert.equal(judge([100, 101, 102], [100.5, 101.5, 101]), 'no change');
  assert.equal(judge([100, 101, 102, 100.5], [150, 151, 152, 150.5]), 'improved'); // 4 + 4: p = 2/70
});

test('verdict rejects bad parameters', () => {
  const ok = { ratio: 1, low: 1, high: 1, p: 0.5, threshold: 0.05, higherIsBetter: true, n1: 5, n2: 5 };
  assert.equal(verdict(ok), 'no change');
  assert.throws(() => verdict({ ...ok, threshold: -0.1 }), RangeError);
  assert.throws(() => verdict({ ...ok, threshold: 1 }), RangeError);
  assert.throws(() => verdict({ ...ok, threshold: Number.NaN }), RangeError);
  assert.throws(() => verdict({ ...ok, alpha: 0 }), RangeError);
  assert.throws(() => verdict({ ...ok, alpha: 1 }), RangeError);
  assert.throws(() => verdict({ ...ok, minReps: 0 }), RangeError);
  assert.throws(() => verdict({ ...ok, n1: -1 }), RangeError);
  assert.throws(() => verdict({ ...ok, n2: 2.5 }), RangeError);
  assert.throws(() => verdict({ ...ok, low: 1.2, high: 1.1 }), RangeError);
});
