// Scenario thresholds (k6-style): `req_per_s > 50000`, `latency.p99 < 5ms`, `connection_loss < 0.3`.
// Checked per point on the median over its repetitions once the run is done; any violation makes
// `lbbench run` exit 99 with the list. The metric names are compare-reports' (METRICS).
import type { PointResult, RunResult } from '../results/types.ts';
import { METRICS } from './compare.ts';
import { median } from '../stats/descriptive.ts';

export interface Threshold {
  expr: string;
  metric: string;
  op: '<' | '<=' | '>' | '>=';
  /** In the metric's own unit (latency: µs). */
  value: number;
}

export interface ThresholdResult {
  expr: string;
  point: string;
  /** Median over the point's repetitions. */
  actual: number;
  ok: boolean;
}

const EXPR = /^\s*([a-z_][a-z0-9_.]*)\s*(<=|>=|<|>)\s*([0-9]+(?:\.[0-9]+)?(?:e[0-9]+)?)\s*(us|µs|ms|s|%|k|M)?\s*$/;
const LATENCY_SCALE: Record<string, number> = { us: 1, µs: 1, ms: 1000, s: 1e6 };

/** Pure: one threshold, or a message saying what to write instead. */
export function parseThreshold(expr: string): Threshold | string {
  const m = EXPR.exec(expr);
  const names = METRICS.map((x) => x.name);
  if (!m) return `expected "<metric> <op> <value>", e.g. "req_per_s > 50000" or "latency.p99 < 5ms" (metrics: ${names.join(', ')})`;
  const [, metric, op, num, unit] = m as unknown as [string, string, Threshold['op'], string, string | undefined];
  if (!names.includes(metric)) return `unknown metric "${metric}"; valid: ${names.join(', ')}`;
  let value = Number(num);
  const latency = metric.startsWith('latency.');
  if (unit && unit in LATENCY_SCALE) {
    if (!latency) return `${metric} is not a latency; "${unit}" only applies to latency.p50 / latency.p99`;
    value *= LATENCY_SCALE[unit]!;
  } else if (latency) {
    return `give ${metric} a unit: "${num}ms" or "${num}us"`;
  } else if (unit === '%') value /= 100;
  else if (unit === 'k') value *= 1e3;
  else if (unit === 'M') value *= 1e6;
  return { expr: expr.trim(), metric, op, value };
}

const holds = (actual: number, t: Threshold) =>
  t.op === '<' ? actual < t.value : t.op === '<=' ? actual <= t.value : t.op === '>' ? actual > t.value : actual >= t.value;

/** Pure: every threshold at every point that measured its metric. */
export function checkThresholds(result: RunResult, thresholds: Threshold[]): ThresholdResult[] {
  return thresholds.flatMap((t) => {
    const def = METRICS.find((m) => m.name === t.metric)!;
    return result.points.flatMap((p: PointResult) => {
      const values = p.repetitions.map(def.of).filter((x): x is number => x !== undefined);
      if (!values.length) return [];
      const actual = median(values);
      return [{ expr: t.expr, point: p.id, actual, ok: holds(actual, t) }];
    });
  });
}
