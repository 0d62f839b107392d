// compare-reports: base run vs candidate run(s), point by point and metric by metric, with a
// verdict a CI job can act on. Pure: results in, comparisons out (reading files is the CLI's job).
import { ConfigError } from '../errors.ts';
import type { CompareReport } from './format.ts';
import type { PointResult, Repetition, RunResult } from '../results/types.ts';
import { cv, median } from '../stats/descriptive.ts';
import { bootstrapRatioCI, holm, mannWhitneyU, verdict as decide } from '../stats/compare.ts';

export type Verdict = 'improved' | 'regressed' | 'no change' | 'inconclusive';

export interface Comparison {
  lb: string;
  params: Record<string, unknown>;
  metric: string;
  /** Medians over repetitions. */
  base: number;
  candidate: number;
  /** candidate / base (medians), with its bootstrap confidence interval. */
  ratio: number;
  ciLow: number;
  ciHigh: number;
  /** Mann-Whitney U, two-sided, Holm-adjusted over the points compared on this metric. */
  p: number;
  verdict: Verdict;
  higherIsBetter: boolean;
  n: { base: number; candidate: number };
  warnings: string[];
}

export interface CompareOptions {
  /** Noise band: changes within ±threshold (fraction) are "no change". */
  threshold: number;
  alpha: number;
  seed: number;
  resamples: number;
}

export const DEFAULT_COMPARE: CompareOptions = { threshold: 0.05, alpha: 0.05, seed: 1, resamples: 10_000 };
const FEW_REPS = 5;
const NOISY_CV = 0.1;

interface MetricDef {
  name: string;
  higherIsBetter: boolean;
  /** The repetition's value, or undefined when this kind of result has no such metric. */
  of(r: Repetition): number | undefined;
}

const num = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);

/** What is compared, per kind of result; a metric absent from either side is skipped. */
export const METRICS: MetricDef[] = [
  { name: 'req_per_s', higherIsBetter: true, of: (r) => num((r.metrics as { requestsPerSec?: number }).requestsPerSec) },
  { name: 'latency.p50', higherIsBetter: false, of: (r) => num((r.metrics as { latencyUs?: { p50: number } }).latencyUs?.p50) },
  { name: 'latency.p99', higherIsBetter: false, of: (r) => num((r.metrics as { latencyUs?: { p99: number } }).latencyUs?.p99) },
  { name: 'pps', higherIsBetter: true, of: (r) => ('packets' in r.metrics ? r.metrics.packets.receivedPerSec : 'stream' in r.metrics ? num(r.metrics.stream.udp?.packetsPerSec) : undefined) },
  { name: 'packet_loss', higherIsBetter: false, of: (r) => ('packets' in r.metrics ? r.metrics.packets.lossFraction : 'stream' in r.metrics ? num(r.metrics.stream.udp?.lossFraction) : undefined) },
  { name: 'gbit_per_s', higherIsBetter: true, of: (r) => ('stream' in r.metrics ? r.metrics.stream.bitsPerSec / 1e9 : undefined) },
  {
    name: 'connection_loss',
    higherIsBetter: false,
    of: (r) => {
      if (r.events?.length) return r.events.reduce((a, e) => a + e.lost, 0) / Math.max(1, r.events.reduce((a, e) => a + e.alive, 0));
      const c = (r.metrics as { connections?: { total: number; lost?: number } }).connections;
      return c && c.lost !== undefined && c.total > 0 ? c.lost / c.total : undefined;
    },
  },
  { name: 'conn_per_s', higherIsBetter: true, of: (r) => ('connectionsPerSec' in r.metrics ? r.metrics.connectionsPerSec : undefined) },
];

/** Points are the same experiment when the LB (name and options) and the params match. */
export function pointKey(p: PointResult): string {
  const sorted = (o: Record<string, unknown>) => JSON.stringify(Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b))));
  return `${sorted(p.lb)}|${sorted(p.params)}`;
}

/** Differences between the two hosts that make a comparison of them suspect, each with its remedy. */
export function environmentWarnings(base: RunResult, cand: RunResult): string[] {
  const out: string[] = [];
  const [a, b] = [base.host, cand.host];
  const differ = (what: string, x: unknown, y: unknown, remedy = 'compare runs from the same host and setup') => {
    if (JSON.stringify(x) !== JSON.stringify(y)) out.push(`${what} differs: ${JSON.stringify(x) ?? 'unset'} vs ${JSON.stringify(y) ?? 'unset'} — ${remedy}`);
  };
  const keys = (x?: Record<string, unknown>, y?: Record<string, unknown>) => new Set([...Object.keys(x ?? {}), ...Object.keys(y ?? {})]);
  differ('kernel', a.kernel, b.kernel);
  differ('CPU model', a.cpuModel, b.cpuModel);
  differ('CPU count', a.cpus, b.cpus);
  for (const tool of keys(a.tools, b.tools)) differ(`${tool} version`, a.tools?.[tool], b.tools?.[tool]);
  for (const k of keys(a.sysctls, b.sysctls)) differ(`sysctl ${k}`, a.sysctls?.[k], b.sysctls?.[k]);
  // The topology is part of the experiment (a shaped link, more backend workers): a difference
  // there explains a change as well as the code under test does.
  const [ta, tb] = [base.scenario?.topology, cand.scenario?.topology].map((t) => (t && typeof t === 'object' ? (t as Record<string, unknown>) : {})) as [Record<string, unknown>, Record<string, unknown>];
  for (const k of keys(ta, tb)) differ(`topology ${k}`, ta[k], tb[k], 'the runs measured different topologies; run both on the same one unless the topology is what you compare');
  return out;
}

function sampleWarnings(side: string, reps: Repetition[], values: number[]): string[] {
  const w: string[] = [];
  if (values.length < FEW_REPS) w.push(`${side}: only ${values.length} repetitions — use repetitions: ${FEW_REPS} or more for a verdict you can trust`);
  const c = cv(values);
  if (c > NOISY_CV) w.push(`${side}: CV ${(100 * c).toFixed(1)}% — noisy; pin CPUs (cpus: auto) and let the host settle`);
  const saturated = reps.filter((r) => (r.metrics as { tester?: { saturated?: boolean } }).tester?.saturated).length;
  if (saturated) w.push(`${side}: the load generator saturated its CPU in ${saturated} repetitions — the numbers are the generator's limit`);
  const bound = reps.filter((r) => r.bottleneck?.verdict === 'generator').length;
  if (bound && !saturated) w.push(`${side}: generator-bound in ${bound} of ${reps.length} repetitions (samplers) — a change in the LB may not show; give the generator more threads or CPUs`);
  return w;
}

/** Every metric of every point the two runs share, with Holm-adjusted p-values and verdicts. */
export function compareRuns(base: RunResult, cand: RunResult, opts: CompareOptions = DEFAULT_COMPARE): { comparisons: Comparison[]; unmatched: string[] } {
  const byKey = new Map(base.points.map((p) => [pointKey(p), p]));
  const raw: (Omit<Comparison, 'p' | 'verdict'> & { pRaw: number })[] = [];
  const unmatched: string[] = [];
  for (const cp of cand.points) {
    const bp = byKey.get(pointKey(cp));
    if (!bp) {
      unmatched.push(cp.id);
      continue;
    }
    for (const m of METRICS) {
      const bv = bp.repetitions.map(m.of).filter((x): x is number => x !== undefined);
      const cv_ = cp.repetitions.map(m.of).filter((x): x is number => x !== undefined);
      if (!bv.length || !cv_.length) continue;
      const ci = bootstrapRatioCI(bv, cv_, { seed: opts.seed, resamples: opts.resamples });
      const { p } = mannWhitneyU(bv, cv_);
      raw.push({
        lb: cp.lb.name,
        params: cp.params,
        metric: m.name,
        base: median(bv),
        candidate: median(cv_),
        ratio: ci.ratio,
        ciLow: ci.low,
        ciHigh: ci.high,
        pRaw: p,
        higherIsBetter: m.higherIsBetter,
        n: { base: bv.length, candidate: cv_.length },
        warnings: [...sampleWarnings('base', bp.repetitions, bv), ...sampleWarnings('candidate', cp.repetitions, cv_)],
      });
    }
  }
  // One family per metric: "did req/s change at any point" is the question a CI gate asks, and
  // correcting over every metric of every point at once would need dozens of repetitions per point.
  const adjusted = new Array<number>(raw.length);
  for (const metric of new Set(raw.map((r) => r.metric))) {
    const idx = raw.flatMap((r, i) => (r.metric === metric ? [i] : []));
    holm(idx.map((i) => raw[i]!.pRaw)).forEach((p, k) => (adjusted[idx[k]!] = p));
  }
  const comparisons = raw.map(({ pRaw: _p, ...r }, i) => {
    const p = adjusted[i]!;
    const v = decide({ ratio: r.ratio, low: r.ciLow, high: r.ciHigh, p, threshold: opts.threshold, higherIsBetter: r.higherIsBetter, alpha: opts.alpha, n1: r.n.base, n2: r.n.candidate });
    return { ...r, p, verdict: v };
  });
  return { comparisons, unmatched };
}

/** One candidate against the base, as every output format (and the comparison page) takes it. */
export function compareReport(base: { label: string; result: RunResult }, cand: { label: string; result: RunResult }, opts: CompareOptions = DEFAULT_COMPARE): CompareReport {
  const { comparisons, unmatched } = compareRuns(base.result, cand.result, opts);
  if (!comparisons.length) {
    throw new ConfigError(`${cand.label} and ${base.label} have no point in common (same LB name, options and params)`, [], 'compare runs of the same scenario');
  }
  return {
    base: base.label,
    candidate: cand.label,
    verdict: overallVerdict(comparisons),
    comparisons,
    warnings: [...environmentWarnings(base.result, cand.result), ...(unmatched.length ? [`not in the base run, not compared: ${unmatched.join(', ')}`] : [])],
  };
}

/** The run's verdict: any regression wins; then any improvement; all "no change" is no change. */
export function overallVerdict(comparisons: Comparison[]): Verdict {
  if (comparisons.some((c) => c.verdict === 'regressed')) return 'regressed';
  if (comparisons.some((c) => c.verdict === 'improved')) return 'improved';
  if (comparisons.length && comparisons.every((c) => c.verdict === 'no change')) return 'no change';
  return 'inconclusive';
}
