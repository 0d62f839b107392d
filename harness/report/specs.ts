// Pure functions: RunResult → vega-lite spec / table rows. No I/O, no clock, no randomness, so a
// spec can be asserted in a unit test and the same result always draws the same chart.
//
// A "series" is one line on a chart: the LB name, plus any swept parameter other than backends
// that varies across points (e.g. "nginx-l7 (connections=64)"), so sweeps over connections don't
// get averaged into one line.
import type { TopLevelSpec } from 'vega-lite';
import { cv, max, median, min } from '../stats/descriptive.ts';
import type { PointResult, RunResult } from '../results/types.ts';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const WIDTH = 560;
const HEIGHT = 320;

/** Above this CV a point's median is too noisy to compare with its neighbours. */
export const CV_WARN_PCT = 10;
/** Fewer repetitions than this give a spread nobody should trust. */
export const MIN_REPS = 3;

const byName = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

function otherParams(p: PointResult): Record<string, unknown> {
  const { backends: _b, ...rest } = p.params;
  return rest;
}

/** Params (besides backends) that take more than one value in this run. */
function varyingParams(points: PointResult[]): string[] {
  const seen = new Map<string, Set<string>>();
  for (const p of points) for (const [k, v] of Object.entries(otherParams(p))) {
    if (!seen.has(k)) seen.set(k, new Set());
    seen.get(k)!.add(JSON.stringify(v));
  }
  const keys = [...seen.keys()].filter(
    (k) => seen.get(k)!.size > 1 || points.some((p) => !(k in p.params)),
  );
  return keys.sort(byName);
}

export function seriesLabeler(result: RunResult): (p: PointResult) => string {
  const keys = varyingParams(result.points);
  return (p) => {
    if (!keys.length) return p.lb.name;
    const parts = keys.filter((k) => k in p.params).map((k) => `${k}=${String(p.params[k])}`);
    return parts.length ? `${p.lb.name} (${parts.join(', ')})` : p.lb.name;
  };
}

/** Series in the order the scenario lists them; every chart uses it so colours match across charts. */
export function seriesOrder(result: RunResult): string[] {
  const label = seriesLabeler(result);
  return [...new Set(result.points.map(label))];
}

const measured = (p: PointResult) => p.repetitions.length > 0;

/** Largest backend count that has measured points — where LBs differ most. */
export function largestBackends(result: RunResult): number | undefined {
  const counts = result.points.filter(measured).map((p) => p.params.backends);
  return counts.length ? Math.max(...counts) : undefined;
}

function colorEnc(result: RunResult) {
  return { field: 'series', type: 'nominal' as const, title: 'Load balancer', scale: { domain: seriesOrder(result) } };
}

// ---------------------------------------------------------------- (a) throughput vs backends

export interface ThroughputDatum {
  series: string;
  backends: number;
  median: number;
  min: number;
  max: number;
  repetitions: number;
}

export function throughputData(result: RunResult): ThroughputDatum[] {
  const label = seriesLabeler(result);
  return result.points.filter(measured).map((p) => {
    const rps = p.repetitions.map((r) => r.metrics.requestsPerSec);
    return {
      series: label(p),
      backends: p.params.backends,
      median: median(rps),
      min: min(rps),
      max: max(rps),
      repetitions: rps.length,
    };
  });
}

export function throughputSpec(result: RunResult): TopLevelSpec | null {
  const values = throughputData(result);
  if (!values.length) return null;
  const xs = [...new Set(values.map((d) => d.backends))].sort((a, b) => a - b);
  // Doubling sweeps (1, 2, 4, … 64) bunch up at the left on a linear axis.
  const logX = xs.length >= 3 && xs[xs.length - 1]! / xs[0]! >= 8;
  const yTitle = 'Requests/s (median, band: min–max)';
  return {
    $schema: SCHEMA,
    title: { text: 'Throughput vs. number of backends', subtitle: 'median over repetitions; shaded band: min–max spread' },
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    encoding: {
      x: {
        field: 'backends',
        type: 'quantitative',
        title: logX ? 'Backends (count, log₂ scale)' : 'Backends (count)',
        scale: logX ? { type: 'log', base: 2 } : { zero: false },
        axis: { values: xs, format: 'd' },
      },
      color: colorEnc(result),
    },
    layer: [
      {
        mark: { type: 'area', opacity: 0.18 },
        encoding: {
          y: { field: 'min', type: 'quantitative', title: yTitle },
          y2: { field: 'max' },
        },
      },
      {
        mark: { type: 'line', point: true, strokeWidth: 2 },
        encoding: { y: { field: 'median', type: 'quantitative', title: yTitle } },
      },
    ],
  } as TopLevelSpec;
}

// ---------------------------------------------------------------- (b) latency CDF

export interface CdfDatum {
  series: string;
  percentile: number;
  latencyMs: number;
}

/** Per series at the largest backend count: for each percentile, the median latency over reps. */
export function latencyCdfData(result: RunResult): CdfDatum[] {
  const n = largestBackends(result);
  const label = seriesLabeler(result);
  const out: CdfDatum[] = [];
  for (const p of result.points) {
    if (!measured(p) || p.params.backends !== n) continue;
    const byPct = new Map<number, number[]>();
    for (const r of p.repetitions) {
      for (const [pct, us] of r.metrics.latencyCdf ?? []) {
        if (!byPct.has(pct)) byPct.set(pct, []);
        byPct.get(pct)!.push(us);
      }
    }
    for (const pct of [...byPct.keys()].sort((a, b) => a - b)) {
      const us = median(byPct.get(pct)!);
      // A log axis can't place 0 µs; wrk reports whole µs, so 0 only appears on broken input.
      if (us > 0) out.push({ series: label(p), percentile: pct, latencyMs: us / 1000 });
    }
  }
  return out;
}

export function latencyCdfSpec(result: RunResult): TopLevelSpec | null {
  const values = latencyCdfData(result);
  if (!values.length) return null;
  return {
    $schema: SCHEMA,
    title: {
      text: `Latency CDF at ${largestBackends(result)} backends`,
      subtitle: 'median over repetitions of each percentile',
    },
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    mark: { type: 'line', strokeWidth: 2 },
    encoding: {
      x: { field: 'latencyMs', type: 'quantitative', title: 'Latency (ms, log scale)', scale: { type: 'log' } },
      y: { field: 'percentile', type: 'quantitative', title: 'Percentile (%)', scale: { domain: [0, 100] } },
      order: { field: 'percentile', type: 'quantitative' },
      color: colorEnc(result),
    },
  } as TopLevelSpec;
}

// ---------------------------------------------------------------- (c) per-backend distribution

export interface DistributionDatum {
  series: string;
  backend: string;
  requests: number;
  /** Percent of this series' requests that this backend served. */
  sharePct: number;
}

/**
 * Shares are summed over repetitions. Series without per-backend counters are left out; a
 * router baseline sending everything to one backend is expected and shown as such.
 */
export function distributionData(result: RunResult): DistributionDatum[] {
  const n = largestBackends(result);
  const label = seriesLabeler(result);
  const out: DistributionDatum[] = [];
  for (const p of result.points) {
    if (!measured(p) || p.params.backends !== n) continue;
    const counts = new Map<string, number>();
    for (const r of p.repetitions) {
      for (const [be, c] of Object.entries(r.metrics.perBackend ?? {})) counts.set(be, (counts.get(be) ?? 0) + c);
    }
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    if (total <= 0) continue;
    for (const be of [...counts.keys()].sort(byName)) {
      const c = counts.get(be)!;
      out.push({ series: label(p), backend: be, requests: c, sharePct: (100 * c) / total });
    }
  }
  return out;
}

export function distributionSpec(result: RunResult): TopLevelSpec | null {
  const values = distributionData(result);
  if (!values.length) return null;
  const n = largestBackends(result)!;
  const backends = [...new Set(values.map((d) => d.backend))].sort(byName);
  const series = seriesOrder(result).filter((s) => values.some((d) => d.series === s));
  const width = Math.min(1100, Math.max(WIDTH, backends.length * series.length * 14));
  return {
    $schema: SCHEMA,
    title: {
      text: `Requests per backend at ${n} backends`,
      subtitle: `share of each LB's requests, summed over repetitions; dashed line: even share (${(100 / n).toFixed(1)}%)`,
    },
    width,
    height: HEIGHT - 40,
    data: { values },
    layer: [
      {
        mark: { type: 'bar' },
        encoding: {
          x: { field: 'backend', type: 'nominal', title: 'Backend', sort: backends, axis: { labelAngle: 0 } },
          xOffset: { field: 'series', type: 'nominal', sort: series },
          y: { field: 'sharePct', type: 'quantitative', title: 'Share of requests (%)' },
          color: colorEnc(result),
        },
      },
      {
        mark: { type: 'rule', strokeDash: [4, 4], color: '#444' },
        encoding: { y: { datum: 100 / n, type: 'quantitative' } },
      },
    ],
  } as TopLevelSpec;
}

// ---------------------------------------------------------------- (d) summary table

export interface SummaryRow {
  pointId: string;
  lb: string;
  lbKind: string;
  series: string;
  backends: number;
  /** Params other than backends. */
  params: Record<string, unknown>;
  repetitions: number;
  /** NaN when no repetition was measured. */
  rps: { median: number; min: number; max: number; cvPct: number };
  /** Median over repetitions, µs. */
  latencyUs: { p50: number; p99: number };
  errorsTotal: number;
  error?: string;
  warnings: string[];
}

export function summaryRows(result: RunResult): SummaryRow[] {
  const label = seriesLabeler(result);
  return result.points.map((p) => {
    const reps = p.repetitions;
    const rps = reps.map((r) => r.metrics.requestsPerSec);
    const errorsTotal = reps.reduce((s, r) => {
      const e = r.metrics.errors;
      return s + e.connect + e.read + e.write + e.timeout + e.status;
    }, 0);
    const cvPct = 100 * cv(rps);
    const warnings: string[] = [];
    if (reps.length > 0 && reps.length < MIN_REPS) {
      warnings.push(`only ${reps.length} repetition${reps.length > 1 ? 's' : ''}: raise repetitions to ≥ ${MIN_REPS}`);
    }
    if (cvPct > CV_WARN_PCT) {
      warnings.push(`CV ${cvPct.toFixed(1)}% > ${CV_WARN_PCT}%: noisy; pin CPUs and let the host settle`);
    }
    if (errorsTotal > 0) warnings.push(`${errorsTotal} request errors`);
    const saturated = reps.filter((r) => (r.metrics as { tester?: { saturated?: boolean } }).tester?.saturated).length;
    if (saturated) {
      warnings.push(`the connect tester used a full CPU in ${saturated} of ${reps.length} repetitions: the rate is the tester's limit, not the LB's`);
    }
    const fairness = reps.map((r) => (r.metrics as { fairness?: number }).fairness).filter((f): f is number => typeof f === 'number');
    if (fairness.length) warnings.push(`fairness (Jain) ${median(fairness).toFixed(3)}`);
    const row: SummaryRow = {
      pointId: p.id,
      lb: p.lb.name,
      lbKind: p.lb.kind,
      series: label(p),
      backends: p.params.backends,
      params: otherParams(p),
      repetitions: reps.length,
      rps: { median: median(rps), min: min(rps), max: max(rps), cvPct },
      latencyUs: {
        p50: median(reps.map((r) => r.metrics.latencyUs.p50)),
        p99: median(reps.map((r) => r.metrics.latencyUs.p99)),
      },
      errorsTotal,
      warnings,
    };
    if (p.error !== undefined) row.error = p.error;
    return row;
  });
}

// ---------------------------------------------------------------- all charts

export interface Chart {
  id: 'throughput' | 'latency-cdf' | 'distribution';
  title: string;
  caption: string;
  spec: TopLevelSpec;
}

/** The charts this result has data for, in report order. */
export function charts(result: RunResult): Chart[] {
  const n = largestBackends(result);
  const out: Chart[] = [];
  const t = throughputSpec(result);
  if (t) {
    out.push({
      id: 'throughput',
      title: 'Throughput vs. number of backends',
      caption:
        'Median requests/s over repetitions per load balancer; the shaded band spans the slowest to the fastest repetition. ' +
        'A flattening line is where the LB (or the generator, on a small host) saturates.',
      spec: t,
    });
  }
  const c = latencyCdfSpec(result);
  if (c) {
    out.push({
      id: 'latency-cdf',
      title: `Latency CDF at ${n} backends`,
      caption:
        `Share of requests (y) completed within a latency (x, log scale) at ${n} backends; ` +
        'each percentile is the median over repetitions. Further left is faster; the top of each curve is the tail.',
      spec: c,
    });
  }
  const d = distributionSpec(result);
  if (d) {
    const present = new Set(distributionData(result).map((x) => x.series));
    const label = seriesLabeler(result);
    const atN = result.points.filter((p) => measured(p) && p.params.backends === n).map(label);
    const missing = [...new Set(atN)].filter((s) => !present.has(s));
    out.push({
      id: 'distribution',
      title: `Requests per backend at ${n} backends`,
      caption:
        `Share of each load balancer's requests served by each backend at ${n} backends, from the backends' own counters. ` +
        'The dashed line is a perfectly even split; the router baseline forwards to one backend by design.' +
        (missing.length ? ` No per-backend counts for: ${missing.join(', ')}.` : ''),
      spec: d,
    });
  }
  return out;
}
