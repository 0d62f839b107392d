// Pure functions: RunResult → vega-lite spec / table rows. No I/O, no clock, no randomness, so a
// spec can be asserted in a unit test and the same result always draws the same chart.
//
// A "series" is one line on a chart: the LB name, plus any swept parameter other than backends
// that varies across points (e.g. "nginx-l7 (connections=64)"), so sweeps over connections don't
// get averaged into one line.
import type { TopLevelSpec } from 'vega-lite';
import { cv, max, mean, median, min } from '../stats/descriptive.ts';
import type { TrafficSample } from '../load/traffic.ts';
import { busiestDirection, processCores } from '../sampler/bottleneck.ts';
import type { EventResult, PointResult, Repetition, RunResult } from '../results/types.ts';
import { experimentCharts, type ExperimentChartId } from './experiment-specs.ts';

export const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
export const WIDTH = 560;
export const HEIGHT = 320;

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

export function colorEnc(result: RunResult) {
  return { field: 'series', type: 'nominal' as const, title: 'Load balancer', scale: { domain: seriesOrder(result) } };
}

/** The request generators' metrics (wrk, connect, traffic), whichever other kinds the result type grows. */
type RequestMetrics = Extract<Repetition['metrics'], { requestsPerSec: number }>;

/** What only some request generators record (connect, traffic). */
interface ExtraMetrics {
  fairness?: number;
  connectionsPerBackend?: Record<string, number>;
  samples?: TrafficSample[];
  tester?: { saturated?: boolean; rate?: number };
}

export const metricsOf = (r: Repetition) => r.metrics as RequestMetrics & ExtraMetrics;

/** What a result's headline number counts: requests, packets that arrived, or stream bits. */
export type RateUnit = 'req/s' | 'pps' | 'Gbit/s' | 'conn/s';

export function rateUnit(result: RunResult): RateUnit {
  const m = result.points.flatMap((p) => p.repetitions)[0]?.metrics;
  // UDP streams are a packet-rate test: their datagrams per second are the headline.
  if (m && 'connectionsPerSec' in m) return 'conn/s';
  return m && ('packets' in m || ('stream' in m && m.stream.udp)) ? 'pps' : m && 'stream' in m ? 'Gbit/s' : 'req/s';
}

/** One repetition's headline number in its result's unit. */
export function rateOf(r: Repetition): number {
  const m = r.metrics;
  if ('packets' in m) return m.packets.receivedPerSec;
  if ('stream' in m) return m.stream.udp ? m.stream.udp.packetsPerSec : m.stream.bitsPerSec / 1e9;
  if ('connectionsPerSec' in m) return m.connectionsPerSec;
  return m.requestsPerSec;
}

const RATE_CAPTION: Record<RateUnit, string> = {
  'req/s': 'requests/s',
  pps: 'packets/s that arrived at the backends',
  'Gbit/s': 'Gbit/s that arrived',
  'conn/s': 'connections/s',
};
export const RATE_TITLE: Record<RateUnit, string> = { 'req/s': 'Requests/s', pps: 'Packets/s that arrived', 'Gbit/s': 'Gbit/s that arrived', 'conn/s': 'Connections/s' };

/**
 * Per series, the measured point with the most backends among those `has` accepts, in series
 * order: the connection charts show one point per LB, and more backends is where LBs differ most.
 */
export function largestPerSeries(result: RunResult, has: (p: PointResult) => boolean): { series: string; point: PointResult }[] {
  const label = seriesLabeler(result);
  const best = new Map<string, PointResult>();
  for (const p of result.points) {
    if (!measured(p) || !has(p)) continue;
    const cur = best.get(label(p));
    if (!cur || p.params.backends > cur.params.backends) best.set(label(p), p);
  }
  return seriesOrder(result).flatMap((series) => (best.has(series) ? [{ series, point: best.get(series)! }] : []));
}

/** "remove-backends be8,be9", as the run log names events. */
export function eventName(e: Pick<EventResult, 'action' | 'target'>): string {
  return `${e.action}${e.target.length ? ` ${e.target.join(',')}` : ''}`;
}

/** Whole percent, with one decimal below 10% so a small but real loss doesn't read as 0%. */
export function fmtPct(fraction: number): string {
  const v = 100 * fraction;
  if (!Number.isFinite(v)) return '–';
  return `${v > 0 && v < 10 ? Number(v.toFixed(1)) : v.toFixed(0)}%`;
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
    const rps = p.repetitions.map(rateOf);
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

/** The x axis of throughput charts: the backend counts measured, on a log₂ scale for doubling sweeps. */
export function backendsAxis(values: { backends: number }[]) {
  const xs = [...new Set(values.map((d) => d.backends))].sort((a, b) => a - b);
  // Doubling sweeps (1, 2, 4, … 64) bunch up at the left on a linear axis.
  const logX = xs.length >= 3 && xs[xs.length - 1]! / xs[0]! >= 8;
  return {
    field: 'backends',
    type: 'quantitative' as const,
    title: logX ? 'Backends (count, log₂ scale)' : 'Backends (count)',
    scale: logX ? { type: 'log' as const, base: 2 } : { zero: false },
    axis: { values: xs, format: 'd' },
  };
}

/**
 * The rate the topology's linkRate allows: the link's bits/s over the bits one unit (request,
 * packet) put on the LB's busiest interface direction, as the samplers measured it (median over
 * every sampled repetition). Undefined without a link rate or samples.
 */
export function linkCeiling(result: RunResult): { rate: number; bitsPerUnit: number; linkBitsPerSec: number } | undefined {
  const link = (result.scenario?.topology as { linkRate?: unknown } | undefined)?.linkRate;
  if (typeof link !== 'number' || !(link > 0)) return undefined;
  const perUnit: number[] = [];
  for (const p of result.points) {
    for (const r of p.repetitions) {
      const lb = r.samples?.lb;
      const rate = rateOf(r);
      if (!lb?.length || !(rate > 0) || 'stream' in r.metrics) continue;
      const busiest = busiestDirection(lb).bitsPerSec;
      if (busiest > 0) perUnit.push(busiest / rate);
    }
  }
  if (!perUnit.length) return undefined;
  const bitsPerUnit = median(perUnit);
  return { rate: link / bitsPerUnit, bitsPerUnit, linkBitsPerSec: link };
}

export function throughputSpec(result: RunResult): TopLevelSpec | null {
  const values = throughputData(result);
  if (!values.length) return null;
  const yTitle = `${RATE_TITLE[rateUnit(result)]} (median, band: min–max)`;
  const ceiling = linkCeiling(result);
  const ceilingLayers = ceiling
    ? [
        // One row of their own and no x or colour: one line across the chart, not one per point.
        { data: { values: [{}] }, mark: { type: 'rule', strokeDash: [6, 3], color: '#b42318' }, encoding: { x: null, color: null, y: { datum: ceiling.rate, type: 'quantitative' } } },
        {
          data: { values: [{}] },
          mark: { type: 'text', align: 'right', dy: -6, color: '#b42318', x: 'width' },
          encoding: { x: null, color: null, y: { datum: ceiling.rate, type: 'quantitative' }, text: { value: `link ceiling ${Math.round(ceiling.rate).toLocaleString('en-US')} ${rateUnit(result)}` } },
        },
      ]
    : [];
  return {
    $schema: SCHEMA,
    title: { text: 'Throughput vs. number of backends', subtitle: 'median over repetitions; shaded band: min–max spread' },
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    encoding: {
      x: backendsAxis(values),
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
      ...ceilingLayers,
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
      for (const [pct, us] of metricsOf(r).latencyCdf ?? []) {
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

/** Latency on a log x axis, percentile up: every latency CDF chart reads the same way. */
export const CDF_AXES = {
  x: { field: 'latencyMs', type: 'quantitative' as const, title: 'Latency (ms, log scale)', scale: { type: 'log' as const } },
  y: { field: 'percentile', type: 'quantitative' as const, title: 'Percentile (%)', scale: { domain: [0, 100] } },
  order: { field: 'percentile', type: 'quantitative' as const },
};

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
      ...CDF_AXES,
      color: colorEnc(result),
    },
  } as TopLevelSpec;
}

// ---------------------------------------------------------------- (c) per-backend distribution

export interface DistributionDatum {
  series: string;
  backend: string;
  /** Requests, or connections when the unit is connections. */
  count: number;
  /** Percent of this series' requests (connections) that this backend served. */
  sharePct: number;
}

const atLargest = (result: RunResult) => {
  const n = largestBackends(result);
  return result.points.filter((p) => measured(p) && p.params.backends === n);
};

/**
 * The traffic tester's connections carry many messages each for as long as they live, so its
 * requests per backend say more about how long connections lasted than where they were sent.
 */
export function distributionUnit(result: RunResult): 'requests' | 'connections' | 'packets' {
  const reps = atLargest(result).flatMap((p) => p.repetitions);
  if (reps.some((r) => metricsOf(r).connectionsPerBackend)) return 'connections';
  return reps.some((r) => 'packets' in r.metrics) ? 'packets' : 'requests';
}

const capitalized = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * Shares are summed over repetitions. Series without per-backend counters are left out; a
 * router baseline sending everything to one backend is expected and shown as such.
 */
export function distributionData(result: RunResult): DistributionDatum[] {
  const label = seriesLabeler(result);
  const byConnections = distributionUnit(result) === 'connections';
  const out: DistributionDatum[] = [];
  for (const p of atLargest(result)) {
    // iperf3 sends all of a point's traffic to be0 by design (stream.placement), whatever the LB,
    // so its bytes per backend say nothing about balancing.
    if (p.repetitions.some((r) => 'stream' in r.metrics)) continue;
    const counts = new Map<string, number>();
    for (const r of p.repetitions) {
      const m = metricsOf(r);
      // Backends nobody's connection ended on are absent from connectionsPerBackend; the
      // counters name all of the point's, and the fairness index counts them as 0 too.
      const source = byConnections ? { ...Object.fromEntries(Object.keys(m.perBackend ?? {}).map((be) => [be, 0])), ...m.connectionsPerBackend } : m.perBackend;
      for (const [be, c] of Object.entries(source ?? {})) counts.set(be, (counts.get(be) ?? 0) + c);
    }
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    if (total <= 0) continue;
    for (const be of [...counts.keys()].sort(byName)) {
      const c = counts.get(be)!;
      out.push({ series: label(p), backend: be, count: c, sharePct: (100 * c) / total });
    }
  }
  return out;
}

export interface FairnessDatum {
  series: string;
  /** Jain's index, median over repetitions: 1 is a perfectly even spread, 1/n all on one backend. */
  fairness: number;
  repetitions: number;
}

/** For the points the distribution chart shows, where the generator computed the index. */
export function fairnessData(result: RunResult): FairnessDatum[] {
  const label = seriesLabeler(result);
  return atLargest(result).flatMap((p) => {
    const f = p.repetitions.map((r) => metricsOf(r).fairness).filter((x): x is number => typeof x === 'number');
    return f.length ? [{ series: label(p), fairness: median(f), repetitions: f.length }] : [];
  });
}

export function distributionSpec(result: RunResult): TopLevelSpec | null {
  const values = distributionData(result);
  if (!values.length) return null;
  const n = largestBackends(result)!;
  const unit = distributionUnit(result);
  const backends = [...new Set(values.map((d) => d.backend))].sort(byName);
  const series = seriesOrder(result).filter((s) => values.some((d) => d.series === s));
  const width = Math.min(1100, Math.max(WIDTH, backends.length * series.length * 14));
  const fairness = fairnessData(result);
  // In the legend rather than in the series name: the name is the colour key shared by all charts.
  const labelExpr = fairness.reduceRight(
    (rest, f) => `datum.label === ${JSON.stringify(f.series)} ? ${JSON.stringify(`${f.series} · Jain ${f.fairness.toFixed(3)}`)} : ${rest}`,
    'datum.label',
  );
  const color = fairness.length ? { ...colorEnc(result), legend: { labelExpr, labelLimit: 360 } } : colorEnc(result);
  const subtitle = [`share of each LB's ${unit}, summed over repetitions; dashed line: even share (${(100 / n).toFixed(1)}%)`];
  if (fairness.length) subtitle.push("legend: Jain's fairness index (1 = even), median over repetitions");
  return {
    $schema: SCHEMA,
    title: { text: `${capitalized(unit)} per backend at ${n} backends`, subtitle },
    width,
    height: HEIGHT - 40,
    data: { values },
    layer: [
      {
        mark: { type: 'bar' },
        encoding: {
          x: { field: 'backend', type: 'nominal', title: 'Backend', sort: backends, axis: { labelAngle: 0 } },
          xOffset: { field: 'series', type: 'nominal', sort: series },
          y: { field: 'sharePct', type: 'quantitative', title: `Share of ${unit} (%)` },
          color,
        },
      },
      {
        mark: { type: 'rule', strokeDash: [4, 4], color: '#444' },
        encoding: { y: { datum: 100 / n, type: 'quantitative' } },
      },
    ],
  } as TopLevelSpec;
}

// ---------------------------------------------------------------- (d) connections over time

export const TIMELINE_METRICS = ['active', 'new', 'lost', 'failed connects'] as const;
export type TimelineMetric = (typeof TIMELINE_METRICS)[number];

export interface TimelineDatum {
  series: string;
  /** End of the second the value is for (s since measurement start): a loss shows after the event that caused it. */
  t: number;
  metric: TimelineMetric;
  /** Connections open at t for active, else connections in the second before t. */
  value: number;
}

export interface TimelineEventDatum {
  series: string;
  /** Seconds since measurement start, on the same clock as the samples. */
  at: number;
  label: string;
  /** Text row, alternating so that labels of events close together don't overprint. */
  lane: number;
}

/** One repetition per series: averaging timelines would smear the moment of each loss. */
export function timelineReps(result: RunResult): { series: string; rep: Repetition }[] {
  const firstWithSamples = (p: PointResult) => p.repetitions.find((r) => metricsOf(r).samples?.length);
  return largestPerSeries(result, (p) => firstWithSamples(p) !== undefined).map(({ series, point }) => ({ series, rep: firstWithSamples(point)! }));
}

export function connectionTimelineData(result: RunResult): TimelineDatum[] {
  return timelineReps(result).flatMap(({ series, rep }) =>
    metricsOf(rep).samples!.flatMap((s) => {
      const t = s.t + 1;
      return [
        { series, t, metric: 'active' as const, value: s.active },
        { series, t, metric: 'new' as const, value: s.new },
        { series, t, metric: 'lost' as const, value: s.lost },
        { series, t, metric: 'failed connects' as const, value: s.failedConnects },
      ];
    }),
  );
}

export function timelineEventData(result: RunResult): TimelineEventDatum[] {
  return timelineReps(result).flatMap(({ series, rep }) =>
    (rep.events ?? []).map((e, k) => ({ series, at: e.at, label: `${eventName(e)}${e.error ? ' (failed)' : ''}`, lane: k % 2 })),
  );
}

/** A dashed rule per event row ({at, label, lane}) with its label at the top, lanes alternating. */
export function eventMarkLayers() {
  const isEvent = 'isValid(datum.label)';
  return [
    {
      transform: [{ filter: isEvent }],
      mark: { type: 'rule', strokeDash: [4, 3], color: '#444' },
      encoding: { x: { field: 'at', type: 'quantitative' } },
    },
    {
      transform: [{ filter: isEvent }, { calculate: '2 + 12 * datum.lane', as: 'labelY' }],
      mark: { type: 'text', align: 'left', baseline: 'top', dx: 3, fontSize: 10, color: '#333' },
      encoding: { x: { field: 'at', type: 'quantitative' }, y: { field: 'labelY', type: 'quantitative', scale: null }, text: { field: 'label' } },
    },
  ];
}

export function connectionTimelineSpec(result: RunResult): TopLevelSpec | null {
  const samples = connectionTimelineData(result);
  if (!samples.length) return null;
  const events = timelineEventData(result);
  const series = [...new Set(samples.map((d) => d.series))];
  const x = {
    field: 't',
    type: 'quantitative',
    title: 'Time (s since measurement start)',
    scale: { domain: [0, Math.max(...samples.map((d) => d.t))], nice: false },
  };
  const color = {
    field: 'metric',
    type: 'nominal',
    title: 'Connections',
    scale: { domain: [...TIMELINE_METRICS], range: ['#4c78a8', '#54a24b', '#e45756', '#f58518'] },
  };
  const y = { field: 'value', type: 'quantitative', title: 'Connections (count)' };
  return {
    $schema: SCHEMA,
    title: {
      text: 'Connections over time',
      // Short lines: the headless renderer sizes the SVG by a generous estimate of text width.
      subtitle: ['first repetition of each LB; dashed lines: events', "active: open at each second's end; new, lost, failed: during that second"],
    },
    // One array for both kinds of rows: a facet splits only the top-level data.
    data: { values: [...samples, ...events] },
    facet: {
      field: 'series',
      type: 'nominal',
      sort: series,
      header: { title: null, labelAngle: 0, labelAnchor: 'start', labelFontWeight: 'bold', labelFontSize: 12 },
    },
    columns: 1,
    // One scale for all: the tester opens all its connections in the first second, so new starts
    // as high as active anyway, and the panels stay comparable.
    spec: {
      width: WIDTH,
      height: 120,
      layer: [
        {
          transform: [{ filter: "datum.metric === 'active'" }],
          mark: { type: 'line', strokeWidth: 2 },
          encoding: { x, y, color },
        },
        {
          transform: [{ filter: "isValid(datum.metric) && datum.metric !== 'active'" }],
          mark: { type: 'line', point: { size: 18 }, strokeWidth: 1.5 },
          encoding: { x, y, color },
        },
        ...eventMarkLayers(),
      ],
    },
  } as TopLevelSpec;
}

// ---------------------------------------------------------------- (e) connection loss per event

export interface EventLossDatum {
  series: string;
  /** "#1 remove-backends be8,be9": numbered, as the same action can come twice. */
  event: string;
  /** Medians over repetitions. */
  observedPct: number;
  idealPct: number;
  alive: number;
  lost: number;
  repetitions: number;
  /** Repetitions in which applying the event failed. */
  failed: number;
}

interface EventSummary {
  index: number;
  name: string;
  observed: number;
  ideal: number;
  alive: number;
  lost: number;
  repetitions: number;
  failed: number;
}

/** The k-th event of every repetition is the same scheduled event: the schedule runs in `at` order each time. */
function eventSummaries(p: PointResult): EventSummary[] {
  const count = Math.max(0, ...p.repetitions.map((r) => r.events?.length ?? 0));
  return Array.from({ length: count }, (_, k) => {
    const es = p.repetitions.flatMap((r) => (r.events?.[k] ? [r.events[k]] : []));
    return {
      index: k,
      name: eventName(es[0]!),
      observed: median(es.map((e) => e.observedLoss)),
      ideal: median(es.map((e) => e.idealLoss)),
      alive: median(es.map((e) => e.alive)),
      lost: median(es.map((e) => e.lost)),
      repetitions: es.length,
      failed: es.filter((e) => e.error !== undefined).length,
    };
  });
}

export function eventLossData(result: RunResult): EventLossDatum[] {
  return largestPerSeries(result, (p) => p.repetitions.some((r) => r.events?.length)).flatMap(({ series, point }) =>
    eventSummaries(point).map((e) => ({
      series,
      event: `#${e.index + 1} ${e.name}`,
      observedPct: 100 * e.observed,
      idealPct: 100 * e.ideal,
      alive: e.alive,
      lost: e.lost,
      repetitions: e.repetitions,
      failed: e.failed,
    })),
  );
}

export function eventLossSpec(result: RunResult): TopLevelSpec | null {
  const values = eventLossData(result);
  if (!values.length) return null;
  const events = [...new Set(values.map((d) => d.event))];
  const series = seriesOrder(result).filter((s) => values.some((d) => d.series === s));
  const x = { field: 'event', type: 'nominal', title: 'Event', sort: events, axis: { labelAngle: 0, labelLimit: 220 } };
  const xOffset = { field: 'series', type: 'nominal', sort: series };
  const yTitle = 'Lost (% of connections alive)';
  return {
    $schema: SCHEMA,
    title: {
      text: 'Observed vs. ideal loss per event',
      subtitle: [
        'bars: observed loss, median over repetitions',
        'black ticks: ideal (the share on the backends taken away)',
        'labels: lost / alive connections (median)',
      ],
    },
    width: Math.min(1100, Math.max(WIDTH, events.length * series.length * 48)),
    height: HEIGHT - 40,
    data: { values },
    layer: [
      {
        mark: { type: 'bar' },
        encoding: {
          x,
          xOffset,
          y: { field: 'observedPct', type: 'quantitative', title: yTitle },
          color: colorEnc(result),
          tooltip: [
            { field: 'series', title: 'Load balancer' },
            { field: 'event', title: 'Event' },
            { field: 'observedPct', type: 'quantitative', title: 'Observed loss (%)', format: '.1f' },
            { field: 'idealPct', type: 'quantitative', title: 'Ideal loss (%)', format: '.1f' },
            { field: 'lost', type: 'quantitative', title: 'Lost (connections)' },
            { field: 'alive', type: 'quantitative', title: 'Alive (connections)' },
            { field: 'repetitions', type: 'quantitative', title: 'Repetitions' },
          ],
        },
      },
      {
        mark: { type: 'tick', color: '#222', thickness: 2 },
        encoding: { x, xOffset, y: { field: 'idealPct', type: 'quantitative', title: yTitle } },
      },
      {
        transform: [
          { calculate: 'max(datum.observedPct, datum.idealPct)', as: 'labelAt' },
          { calculate: "format(datum.lost, ',.1~f') + '/' + format(datum.alive, ',.1~f')", as: 'counts' },
        ],
        mark: { type: 'text', baseline: 'bottom', dy: -3, fontSize: 9, color: '#333' },
        encoding: { x, xOffset, y: { field: 'labelAt', type: 'quantitative', title: yTitle }, text: { field: 'counts' } },
      },
    ],
  } as TopLevelSpec;
}

// ---------------------------------------------------------------- (f) packet rate and loss

export interface PacketRateDatum {
  series: string;
  backends: number;
  /** Medians over repetitions, packets (datagrams) per second. */
  receivedPps: number;
  sentPps: number;
  /** Median over repetitions, 0–1. */
  lossFraction: number;
  /** What arrived: frame bits for packet generators, UDP payload bits for iperf3. Median. */
  gbitPerSec: number;
  repetitions: number;
  /** Formatted here, with fmtPct, so the chart rounds loss as the summary table does. */
  label: string;
}

interface PacketRateSample {
  received: number;
  sent: number;
  loss: number;
  bitsPerSec: number;
}

function packetRateOf(r: Repetition): PacketRateSample | undefined {
  const m = r.metrics;
  if ('packets' in m) {
    return { received: m.packets.receivedPerSec, sent: m.packets.sentPerSec, loss: m.packets.lossFraction, bitsPerSec: m.packets.receivedBitsPerSec };
  }
  if ('stream' in m && m.stream.udp) {
    const u = m.stream.udp;
    // udp.packets is iperf3's loss denominator (arrived + lost), which is what was sent as lbbench
    // runs it (no -R). Over the receiver's duration, like packetsPerSec, so the two share a clock.
    return { received: u.packetsPerSec, sent: u.packets / m.durationS, loss: u.lossFraction, bitsPerSec: m.stream.bitsPerSec };
  }
  return undefined;
}

const hasPacketRate = (p: PointResult) => p.repetitions.some((r) => packetRateOf(r) !== undefined);

export function packetRateData(result: RunResult): PacketRateDatum[] {
  return largestPerSeries(result, hasPacketRate).map(({ series, point }) => {
    const xs = point.repetitions.flatMap((r) => packetRateOf(r) ?? []);
    const loss = median(xs.map((x) => x.loss));
    const gbit = median(xs.map((x) => x.bitsPerSec)) / 1e9;
    return {
      series,
      backends: point.params.backends,
      receivedPps: median(xs.map((x) => x.received)),
      sentPps: median(xs.map((x) => x.sent)),
      lossFraction: loss,
      gbitPerSec: gbit,
      repetitions: xs.length,
      label: `${fmtPct(loss)} lost\n${Number.isFinite(gbit) ? gbit.toFixed(3) : '–'} Gbit/s`,
    };
  });
}

/** "at 2 backends" when every LB is shown at the same count; a sweep where some failed there mixes counts. */
function packetRateWhere(values: PacketRateDatum[]): string {
  const counts = [...new Set(values.map((d) => d.backends))];
  return counts.length === 1 ? `at ${counts[0]} backend${counts[0] === 1 ? '' : 's'}` : 'each LB at its largest backend count';
}

const LABEL_LINE_HEIGHT = 12;

export function packetRateSpec(result: RunResult): TopLevelSpec | null {
  const values = packetRateData(result);
  if (!values.length) return null;
  const series = values.map((d) => d.series);
  const x = { field: 'series', type: 'nominal', title: 'Load balancer', sort: series, axis: { labelAngle: 0, labelLimit: 160 } };
  const yTitle = 'Packets/s (pps, median over repetitions)';
  return {
    $schema: SCHEMA,
    title: {
      text: 'Packet rate and loss per load balancer',
      subtitle: [`bars: packets/s that arrived, ${packetRateWhere(values)}`, 'black ticks: packets/s sent', 'labels: share lost, Gbit/s that arrived (medians)'],
    },
    width: Math.min(1100, Math.max(WIDTH, values.length * 90)),
    height: HEIGHT - 40,
    data: { values },
    layer: [
      {
        mark: { type: 'bar' },
        encoding: {
          x,
          y: { field: 'receivedPps', type: 'quantitative', title: yTitle },
          // The legend would repeat the x axis; the domain still keeps colours as on the other charts.
          color: { ...colorEnc(result), legend: null },
          tooltip: [
            { field: 'series', title: 'Load balancer' },
            { field: 'backends', type: 'quantitative', title: 'Backends' },
            { field: 'receivedPps', type: 'quantitative', title: 'Arrived (pps)', format: ',.0f' },
            { field: 'sentPps', type: 'quantitative', title: 'Sent (pps)', format: ',.0f' },
            { field: 'lossFraction', type: 'quantitative', title: 'Lost', format: '.2%' },
            { field: 'gbitPerSec', type: 'quantitative', title: 'Arrived (Gbit/s)', format: '.3f' },
            { field: 'repetitions', type: 'quantitative', title: 'Repetitions' },
          ],
        },
      },
      {
        mark: { type: 'tick', color: '#222', thickness: 2 },
        encoding: { x, y: { field: 'sentPps', type: 'quantitative', title: yTitle } },
      },
      {
        transform: [{ calculate: 'max(datum.receivedPps, datum.sentPps)', as: 'labelAt' }],
        // Vega puts a multi-line text's first line at the anchor whatever the baseline: lifting it
        // by one line keeps the second line off the tick.
        mark: { type: 'text', baseline: 'bottom', dy: -4 - LABEL_LINE_HEIGHT, fontSize: 10, lineHeight: LABEL_LINE_HEIGHT, lineBreak: '\n', color: '#333' },
        encoding: { x, y: { field: 'labelAt', type: 'quantitative', title: yTitle }, text: { field: 'label' } },
      },
    ],
  } as TopLevelSpec;
}

// ---------------------------------------------------------------- (g) summary table

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
  /** The LB could not run on this host and the scenario skipped it (error says why). */
  skipped?: boolean;
  /** Something the reader should act on or distrust. */
  warnings: string[];
  /** Facts worth a glance that the columns don't show (fairness, loss per event). */
  notes: string[];
  /**
   * Median rate as a share of the plain-router baseline's at the same backends and params, from
   * the same run (the LVS HOWTO's "director minus routing"): what the LB costs. Absent without one.
   */
  vsBaseline?: number;
  /** What limited the point: the verdict most repetitions got, and how many got it. */
  limit?: { verdict: string; count: number; of: number };
  /** CPU-seconds on the LB node per million units (see PointResult.cpuPerMillion). */
  cpuPerMillion?: number;
}

/** Below this share of its set message rate a traffic run is flagged. */
const TRAFFIC_SHORT_FRACTION = 0.9;

export function summaryRows(result: RunResult): SummaryRow[] {
  const label = seriesLabeler(result);
  const rows = result.points.map((p) => {
    const reps = p.repetitions;
    const rps = reps.map(rateOf);
    const requestReps = reps.filter((r) => 'requestsPerSec' in r.metrics);
    const errorsTotal = requestReps.reduce((s, r) => {
      const e = metricsOf(r).errors;
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
    const saturated = reps.filter((r) => metricsOf(r).tester?.saturated).length;
    if (saturated) {
      warnings.push(`the tester used a full CPU in ${saturated} of ${reps.length} repetitions: the rate is the tester's limit, not the LB's`);
    }
    // The traffic tester sends at a set rate; falling short means replies came late or connections were down.
    const short = requestReps.filter((r) => {
      const m = metricsOf(r);
      return m.tester?.rate !== undefined && m.requestsPerSec < TRAFFIC_SHORT_FRACTION * m.tester.rate;
    }).length;
    if (short) {
      const rate = metricsOf(requestReps[0]!).tester!.rate!;
      warnings.push(`answered under ${100 * TRAFFIC_SHORT_FRACTION}% of the ${rate} messages/s asked for in ${short} of ${reps.length} repetitions: connections were down or replies late`);
    }
    const verdicts = reps.flatMap((r) => (r.bottleneck ? [r.bottleneck.verdict] : []));
    let limit: SummaryRow['limit'];
    if (verdicts.length) {
      const counts = new Map<string, number>();
      for (const v of verdicts) counts.set(v, (counts.get(v) ?? 0) + 1);
      const [verdict, count] = [...counts].sort((a, b) => b[1] - a[1])[0]!;
      limit = { verdict, count, of: reps.length };
      const gen = counts.get('generator') ?? 0;
      if (gen) warnings.push(`generator-bound in ${gen} of ${reps.length} repetitions: the rate is the generator's limit, not the LB's (more generator threads or CPUs)`);
    }
    const notes: string[] = [];
    const packets = reps.flatMap((r) => ('packets' in r.metrics ? [r.metrics.packets] : []));
    if (packets.length) {
      notes.push(`sent ${Math.round(median(packets.map((x) => x.sentPerSec))).toLocaleString('en-US')} pps, lost ${fmtPct(median(packets.map((x) => x.lossFraction)))}, ${(median(packets.map((x) => x.receivedBitsPerSec)) / 1e9).toFixed(3)} Gbit/s of ${packets[0]!.frameBytes}-byte frames`);
    }
    const streams = reps.flatMap((r) => ('stream' in r.metrics ? [r.metrics.stream] : []));
    const retrans = streams.map((x) => x.retransmits).filter((x): x is number => x !== undefined);
    if (retrans.length) notes.push(`${Math.round(median(retrans))} TCP retransmits`);
    const udp = streams.flatMap((x) => (x.udp ? [x.udp] : []));
    if (udp.length) {
      notes.push(`UDP: lost ${fmtPct(median(udp.map((u) => u.lossFraction)))}, jitter ${median(udp.map((u) => u.jitterMs)).toFixed(3)} ms, ${(median(streams.map((x) => x.bitsPerSec)) / 1e9).toFixed(3)} Gbit/s`);
    }
    const fairness = reps.map((r) => metricsOf(r).fairness).filter((f): f is number => typeof f === 'number');
    if (fairness.length) notes.push(`fairness (Jain) ${median(fairness).toFixed(3)}`);
    for (const e of eventSummaries(p)) {
      const failed = e.failed ? `, failed in ${e.failed} of ${e.repetitions}` : '';
      notes.push(`${e.name}: lost ${fmtPct(e.observed)} (ideal ${fmtPct(e.ideal)})${failed}`);
    }
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
        p50: median(requestReps.map((r) => metricsOf(r).latencyUs.p50)),
        p99: median(requestReps.map((r) => metricsOf(r).latencyUs.p99)),
      },
      errorsTotal,
      warnings,
      notes,
    };
    if (p.error !== undefined) row.error = p.error;
    if (p.skipped) row.skipped = true;
    if (limit) row.limit = limit;
    if (p.cpuPerMillion !== undefined) row.cpuPerMillion = p.cpuPerMillion;
    return row;
  });
  const key = (r: SummaryRow) => `${r.backends}|${JSON.stringify(r.params)}`;
  const baseline = new Map(rows.filter((r) => r.lbKind === 'router' && r.repetitions > 0).map((r) => [key(r), r.rps.median]));
  for (const r of rows) {
    const b = baseline.get(key(r));
    if (r.lbKind !== 'router' && b && r.repetitions > 0 && Number.isFinite(r.rps.median)) r.vsBaseline = r.rps.median / b;
  }
  return rows;
}

// ---------------------------------------------------------------- (g) CPU per LB

export const CPU_PARTS = ['user', 'system', 'softirq'] as const;

export interface CpuDatum {
  series: string;
  /** Host CPU state (user, system, softirq), or whose processes: "generator", "LB node". */
  part: string;
  cores: number;
}

/**
 * Per series at the largest backend count, the median over repetitions of the mean over the
 * measurement: the LB node's CPUs split by state (the whole host on the netns topology, where
 * every role shares them), and the cores each node's own processes used.
 */
export function cpuData(result: RunResult): CpuDatum[] {
  const label = seriesLabeler(result);
  const out: CpuDatum[] = [];
  for (const p of atLargest(result)) {
    const reps = p.repetitions.filter((r) => r.samples?.lb?.length);
    if (!reps.length) continue;
    for (const part of CPU_PARTS) out.push({ series: label(p), part, cores: median(reps.map((r) => mean(r.samples!.lb!.map((x) => x.cpu[part])))) });
    for (const node of ['client', 'lb']) {
      const cores = median(reps.map((r) => processCores(r.samples?.[node])));
      if (cores > 0) out.push({ series: label(p), part: node === 'client' ? 'generator' : 'LB node', cores });
    }
  }
  return out;
}

export function cpuSpec(result: RunResult): TopLevelSpec | null {
  const values = cpuData(result);
  if (!values.length) return null;
  const series = seriesOrder(result).filter((x) => values.some((d) => d.series === x));
  const host = values.filter((d) => (CPU_PARTS as readonly string[]).includes(d.part));
  const procs = values.filter((d) => !(CPU_PARTS as readonly string[]).includes(d.part));
  const cpus = result.host.cpus;
  return {
    $schema: SCHEMA,
    title: { text: `CPU during the measurement at ${largestBackends(result)} backends`, subtitle: `bars: the LB node's CPUs by state (cores of ${cpus}); ticks: cores used by the generator's and the LB node's own processes` },
    width: WIDTH,
    height: Math.max(120, 36 * series.length),
    layer: [
      {
        data: { values: host },
        mark: { type: 'bar' },
        encoding: {
          y: { field: 'series', type: 'nominal', title: null, sort: series },
          x: { field: 'cores', type: 'quantitative', title: 'Cores (mean over the measurement, median over repetitions)', stack: 'zero', scale: { domain: [0, cpus] } },
          color: { field: 'part', type: 'nominal', title: 'CPU state', scale: { domain: [...CPU_PARTS], range: ['#4c78a8', '#f58518', '#e45756'] } },
          order: { field: 'part', sort: 'ascending' },
        },
      },
      {
        data: { values: procs },
        mark: { type: 'tick', thickness: 3, size: 26 },
        encoding: {
          y: { field: 'series', type: 'nominal', sort: series },
          x: { field: 'cores', type: 'quantitative' },
          color: { field: 'part', type: 'nominal', title: 'Processes', scale: { domain: ['generator', 'LB node'], range: ['#111111', '#54a24b'] } },
        },
      },
    ],
    // Two colour keys: CPU states for the bars, whose processes for the ticks.
    resolve: { scale: { color: 'independent' }, legend: { color: 'independent' } },
  } as TopLevelSpec;
}

// ---------------------------------------------------------------- (h) CPU cost, and load with CPU over time

export interface CpuCostDatum {
  series: string;
  backends: number;
  cpuPerMillion: number;
}

export function cpuCostData(result: RunResult): CpuCostDatum[] {
  const label = seriesLabeler(result);
  return result.points.filter((p) => measured(p) && p.cpuPerMillion !== undefined).map((p) => ({ series: label(p), backends: p.params.backends, cpuPerMillion: p.cpuPerMillion! }));
}

export function cpuCostSpec(result: RunResult): TopLevelSpec | null {
  const values = cpuCostData(result);
  if (!values.length) return null;
  const unit = rateUnit(result) === 'req/s' ? 'requests' : rateUnit(result) === 'conn/s' ? 'connections' : 'packets';
  return {
    $schema: SCHEMA,
    title: { text: `CPU cost per million ${unit}`, subtitle: 'CPU-seconds on the LB node, median over repetitions; where the LB\'s own cost can be told apart' },
    width: WIDTH,
    height: HEIGHT - 80,
    data: { values },
    mark: { type: 'bar' },
    encoding: {
      x: { field: 'backends', type: 'ordinal', title: 'Backends (count)', axis: { labelAngle: 0 } },
      xOffset: { field: 'series', type: 'nominal' },
      y: { field: 'cpuPerMillion', type: 'quantitative', title: `CPU-seconds per million ${unit}` },
      color: colorEnc(result),
    },
  } as TopLevelSpec;
}

export interface LoadCpuDatum {
  series: string;
  t: number;
  /** "packets/s in (LB)" or "CPU busy (cores)". */
  measure: string;
  value: number;
}

const LOAD_MEASURE = "packets/s into the LB node";
const CPU_MEASURE = 'CPU busy (cores)';

/**
 * Per series at its largest backend count, the first sampled repetition second by second: the
 * packets arriving on the LB node's busiest interface, and the CPUs busy. Whatever the generator,
 * packets are what every datapath handles.
 */
export function loadCpuData(result: RunResult): LoadCpuDatum[] {
  const out: LoadCpuDatum[] = [];
  for (const { series, point } of largestPerSeries(result, (p) => p.repetitions.some((r) => r.samples?.lb?.length))) {
    const lb = point.repetitions.find((r) => r.samples?.lb?.length)!.samples!.lb!;
    const names = [...new Set(lb.flatMap((x) => Object.keys(x.ifaces)))];
    const busiest = names.sort((a, b) => lb.reduce((s, x) => s + (x.ifaces[b]?.rxPps ?? 0), 0) - lb.reduce((s, x) => s + (x.ifaces[a]?.rxPps ?? 0), 0))[0];
    for (const x of lb) {
      if (busiest) out.push({ series, t: x.t, measure: LOAD_MEASURE, value: x.ifaces[busiest]?.rxPps ?? 0 });
      out.push({ series, t: x.t, measure: CPU_MEASURE, value: x.cpu.busy });
    }
  }
  return out;
}

/** One row per `measure` (in this order) over a shared x, each row on a y scale of its own. */
export function measureRowsSpec(o: { title: string; subtitle: string; values: object[]; measures: readonly string[]; height: number; spec: Record<string, unknown> }): TopLevelSpec {
  return {
    $schema: SCHEMA,
    title: { text: o.title, subtitle: o.subtitle },
    data: { values: o.values },
    facet: { row: { field: 'measure', type: 'nominal', title: null, sort: [...o.measures], header: { labelAngle: 0, labelAlign: 'left' } } },
    resolve: { scale: { y: 'independent' } },
    spec: { width: WIDTH, height: o.height, ...o.spec },
  } as TopLevelSpec;
}

export function loadCpuSpec(result: RunResult): TopLevelSpec | null {
  const values = loadCpuData(result);
  if (!values.some((v) => v.measure === LOAD_MEASURE)) return null;
  return measureRowsSpec({
    title: 'Load and CPU over time',
    subtitle: 'first sampled repetition, each LB at its largest backend count; one point per sampler interval',
    values,
    measures: [LOAD_MEASURE, CPU_MEASURE],
    height: 140,
    spec: {
      mark: { type: 'line', point: true, strokeWidth: 2 },
      encoding: {
        x: { field: 't', type: 'quantitative', title: 'Seconds since sampling started' },
        y: { field: 'value', type: 'quantitative', title: null },
        color: colorEnc(result),
      },
    },
  });
}

// ---------------------------------------------------------------- all charts

export interface Chart {
  id: 'throughput' | 'packet-rate' | 'latency-cdf' | 'distribution' | 'connections-over-time' | 'event-loss' | 'cpu' | 'cpu-cost' | 'load-cpu' | ExperimentChartId;
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
        `Median ${RATE_CAPTION[rateUnit(result)]} over repetitions per load balancer; the shaded band spans the slowest to the fastest repetition. ` +
        'A flattening line is where the LB (or the generator, on a small host) saturates.' +
        (linkCeiling(result)
          ? ` The dashed red line is the link's ceiling: the topology's linkRate over the bits one request put on the LB's busiest interface direction (${Math.round(linkCeiling(result)!.bitsPerUnit)} bits, measured by the samplers).`
          : ''),
      spec: t,
    });
  }
  const pr = packetRateSpec(result);
  if (pr) {
    const shown = largestPerSeries(result, hasPacketRate).flatMap(({ point }) => point.repetitions);
    const trafgen = shown.some((r) => r.raw.tool === 'trafgen');
    const iperf3 = shown.some((r) => 'stream' in r.metrics);
    out.push({
      id: 'packet-rate',
      title: 'Packet rate and loss per load balancer',
      caption:
        [
          `Packets per second that arrived at the backends (bars) against what the generator sent (black ticks), median over repetitions, ${packetRateWhere(packetRateData(result))}.`,
          'The gap between them is what the LB (or the path) dropped; each label gives that loss as a share of what was sent, and the Gbit/s that arrived' +
            (iperf3 ? ' (for iperf3, of UDP payload; sent is the datagrams iperf3 counted, arrived plus lost).' : ' (of whole frames).'),
          ...(trafgen
            ? ["trafgen runs on this host next to the LB, and on veth links the receive path (the LB's included) runs in the sender's context, so the rate also includes the generator's cost: compare LBs with each other, not with a NIC's line rate."]
            : []),
        ].join(' '),
      spec: pr,
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
    const missing = [...new Set(atLargest(result).map(label))].filter((s) => !present.has(s));
    const unit = distributionUnit(result);
    out.push({
      id: 'distribution',
      title: `${capitalized(unit)} per backend at ${n} backends`,
      caption:
        (unit === 'connections'
          ? `Share of each load balancer's connections on each backend at ${n} backends, by the backend each connection was on when it ended (or the run did), as the traffic tester saw it. `
          : unit === 'packets'
            ? `Share of each load balancer's packets that arrived at each backend at ${n} backends, from the backends' own counters. `
            : `Share of each load balancer's requests served by each backend at ${n} backends, from the backends' own counters. `) +
        'The dashed line is a perfectly even split; the router baseline forwards to one backend by design.' +
        (fairnessData(result).length ? " The legend gives Jain's fairness index per load balancer: 1 is an even spread, 1/n everything on one backend." : '') +
        (missing.length ? ` No per-backend counts for: ${missing.join(', ')}.` : ''),
      spec: d,
    });
  }
  const cpu = cpuSpec(result);
  if (cpu) {
    out.push({
      id: 'cpu',
      title: `CPU during the measurement at ${n} backends`,
      caption:
        "The LB node's CPUs split into user, system (with hard interrupts) and softirq time, in cores, averaged over each repetition's measurement (median over repetitions); the ticks give the cores the generator's and the LB node's own processes used. " +
        'On the netns topology every role shares the host\'s CPUs, so the bars are the whole host: a kernel datapath shows up as softirq wherever the packet was, a user-space LB as its processes. ' +
        'A generator tick near its thread count means the generator, not the LB, set the rate (see Limit in the summary).',
      spec: cpu,
    });
  }
  const cost = cpuCostSpec(result);
  if (cost) {
    out.push({
      id: 'cpu-cost',
      title: 'CPU cost per million',
      caption:
        "CPU-seconds the LB node spent per million units of the run's rate, median over repetitions: for user-space LBs their own processes, for an LB node with CPUs of its own all of them. " +
        "Kernel datapaths on the one-host netns topology have no bar: their cost is softirq time on whichever CPU the packet was, shared with every other role.",
      spec: cost,
    });
  }
  const lc = loadCpuSpec(result);
  if (lc) {
    out.push({
      id: 'load-cpu',
      title: 'Load and CPU over time',
      caption:
        "Packets per second arriving on the LB node's busiest interface and the CPUs busy, per sampler interval, during each LB's first sampled repetition at its largest backend count. " +
        'A rate that stops growing while CPU sits at the host\'s CPU count is a CPU-bound host; a dip in both is a stall (a reload, an event).',
      spec: lc,
    });
  }
  const tl = connectionTimelineSpec(result);
  if (tl) {
    out.push({
      id: 'connections-over-time',
      title: 'Connections over time',
      caption:
        'Open connections, and connections opened, lost and failed to open in each second, during the first repetition, ' +
        "one panel per load balancer at its largest backend count. Dashed lines mark the scenario's events: " +
        'the tester reopens every connection it loses, so a loss shows as matching lost and new spikes.',
      spec: tl,
    });
  }
  out.push(...experimentCharts(result));
  const el = eventLossSpec(result);
  if (el) {
    out.push({
      id: 'event-loss',
      title: 'Observed vs. ideal loss per event',
      caption:
        'Share of the connections alive at each event that were lost before the next one, median over repetitions (bars), against the ideal (black ticks): ' +
        'the share that was on the backends removed or killed, which a consistent LB without connection state breaks. ' +
        'Adding backends ideally breaks nothing; an LB that keeps connection state can stay below the ideal for removals.',
      spec: el,
    });
  }
  return out;
}
