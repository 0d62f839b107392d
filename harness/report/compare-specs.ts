// The comparison page's charts: both runs on one chart (the base dashed, the candidate solid, one
// colour per load balancer as on the run pages), and every comparison's ratio with its interval
// against the noise band. Pure, like specs.ts.
import type { TopLevelSpec } from 'vega-lite';
import type { Comparison, Verdict } from '../compare/compare.ts';
import { paramValue } from '../compare/format.ts';
import type { RunResult } from '../results/types.ts';
import { CDF_AXES, HEIGHT, RATE_TITLE, SCHEMA, WIDTH, backendsAxis, latencyCdfData, rateUnit, seriesOrder, throughputData } from './specs.ts';

export type Side = 'base' | 'candidate';
const SIDES: Side[] = ['base', 'candidate'];

/** Dashed base, solid candidate: readable in greyscale print and for colour-blind readers. */
const dash = {
  field: 'run',
  type: 'nominal' as const,
  title: 'Run',
  scale: { domain: SIDES, range: [[6, 4], [1, 0]] },
};

function colorFor(base: RunResult, cand: RunResult) {
  const domain = [...new Set([...seriesOrder(base), ...seriesOrder(cand)])];
  return { field: 'series', type: 'nominal' as const, title: 'Load balancer', scale: { domain } };
}

const tagged = <T>(rows: T[], run: Side) => rows.map((r) => ({ ...r, run }));

export function throughputOverlaySpec(base: RunResult, cand: RunResult): TopLevelSpec | null {
  // Different units mean different experiments; one axis can't carry both.
  if (rateUnit(base) !== rateUnit(cand)) return null;
  const values = [...tagged(throughputData(base), 'base'), ...tagged(throughputData(cand), 'candidate')];
  if (!values.length) return null;
  const yTitle = `${RATE_TITLE[rateUnit(base)]} (median)`;
  return {
    $schema: SCHEMA,
    title: { text: 'Throughput vs. number of backends, both runs', subtitle: 'median over repetitions; dashed: base, solid: candidate; band: min–max' },
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    encoding: {
      x: backendsAxis(values),
      color: colorFor(base, cand),
    },
    layer: [
      {
        mark: { type: 'area', opacity: 0.12 },
        encoding: { y: { field: 'min', type: 'quantitative', title: yTitle }, y2: { field: 'max' }, detail: { field: 'run' } },
      },
      {
        mark: { type: 'line', point: true, strokeWidth: 2 },
        encoding: { y: { field: 'median', type: 'quantitative', title: yTitle }, strokeDash: dash },
      },
    ],
  } as TopLevelSpec;
}

export function latencyCdfOverlaySpec(base: RunResult, cand: RunResult): TopLevelSpec | null {
  const values = [...tagged(latencyCdfData(base), 'base'), ...tagged(latencyCdfData(cand), 'candidate')];
  if (!values.some((v) => v.run === 'base') || !values.some((v) => v.run === 'candidate')) return null;
  return {
    $schema: SCHEMA,
    title: { text: 'Latency CDF, both runs', subtitle: 'at each run\'s largest backend count; dashed: base, solid: candidate' },
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    mark: { type: 'line', strokeWidth: 2 },
    encoding: {
      ...CDF_AXES,
      color: colorFor(base, cand),
      strokeDash: dash,
      detail: { field: 'run' },
    },
  } as TopLevelSpec;
}

export interface RatioDatum {
  /** "router · backends=4": one row of the chart. */
  point: string;
  metric: string;
  changePct: number;
  lowPct: number;
  highPct: number;
  verdict: Verdict;
}

const VERDICT_COLORS: Record<Verdict, string> = { improved: '#067647', regressed: '#b42318', 'no change': '#667085', inconclusive: '#b54708' };

export function ratioData(comparisons: Comparison[]): RatioDatum[] {
  const pct = (r: number) => 100 * (r - 1);
  // Only the params that tell points apart: the rest would push the labels off the chart.
  const values = new Map<string, Set<string>>();
  for (const c of comparisons) for (const [k, v] of Object.entries(c.params)) values.set(k, (values.get(k) ?? new Set()).add(paramValue(v)));
  const keys = [...values.keys()].filter((k) => values.get(k)!.size > 1 || comparisons.some((c) => !(k in c.params)));
  return comparisons
    .filter((c) => [c.ratio, c.ciLow, c.ciHigh].every(Number.isFinite))
    .map((c) => ({
      point: [c.lb, ...keys.filter((k) => k in c.params).map((k) => `${k}=${paramValue(c.params[k])}`)].join(' · '),
      metric: c.metric,
      changePct: pct(c.ratio),
      lowPct: pct(c.ciLow),
      highPct: pct(c.ciHigh),
      verdict: c.verdict,
    }));
}

/** A forest plot: per metric, every point's change with its 95% interval over the noise band. */
export function ratioSpec(comparisons: Comparison[], threshold: number): TopLevelSpec | null {
  const values = ratioData(comparisons);
  if (!values.length) return null;
  const points = [...new Set(values.map((v) => v.point))];
  const metrics = [...new Set(values.map((v) => v.metric))];
  const verdicts = Object.keys(VERDICT_COLORS) as Verdict[];
  const band = 100 * threshold;
  return {
    $schema: SCHEMA,
    title: { text: 'Change per point and metric', subtitle: `candidate vs base, ratio of medians with its 95% interval; grey band: the ±${band.toFixed(0)}% noise threshold` },
    data: { values },
    facet: { row: { field: 'metric', type: 'nominal', title: null, sort: metrics, header: { labelAngle: 0, labelAlign: 'left' } } },
    resolve: { scale: { x: 'independent' } },
    spec: {
      width: WIDTH - 120,
      height: { step: 18 },
      layer: [
        {
          mark: { type: 'rect', color: '#eaecf0' },
          encoding: { x: { datum: -band, type: 'quantitative' }, x2: { datum: band } },
        },
        { mark: { type: 'rule', color: '#98a2b3' }, encoding: { x: { datum: 0, type: 'quantitative' } } },
        {
          mark: { type: 'rule', strokeWidth: 2 },
          encoding: {
            y: { field: 'point', type: 'nominal', title: null, sort: points, axis: { labelLimit: 280 } },
            x: { field: 'lowPct', type: 'quantitative', title: 'Change (%)' },
            x2: { field: 'highPct' },
            color: { field: 'verdict', type: 'nominal', title: 'Verdict', scale: { domain: verdicts, range: verdicts.map((v) => VERDICT_COLORS[v]) } },
          },
        },
        {
          mark: { type: 'point', filled: true, size: 50 },
          encoding: {
            y: { field: 'point', type: 'nominal', sort: points },
            x: { field: 'changePct', type: 'quantitative' },
            color: { field: 'verdict', type: 'nominal', scale: { domain: verdicts, range: verdicts.map((v) => VERDICT_COLORS[v]) } },
          },
        },
      ],
    },
  } as TopLevelSpec;
}
