// Charts of the experiments that need one view of their own: LB-count responsiveness (and, as they
// come, service under a flood, failover, overlays). Pure, like specs.ts.
import type { TopLevelSpec } from 'vega-lite';
import type { PointResult, RunResult } from '../results/types.ts';
import { mean, median } from '../stats/descriptive.ts';
import { colorEnc, eventMarkLayers, measureRowsSpec, metricsOf, RATE_TITLE, rateOf, rateUnit, SCHEMA, seriesLabeler, timelineReps, WIDTH, type Chart } from './specs.ts';
import { probeSuccess } from '../load/flood.ts';

export type ExperimentChartId = 'lb-nodes' | 'overlay' | 'flood' | 'failover' | 'family';

export interface LbNodesDatum {
  series: string;
  /** Seconds since the measurement started: the end of a tester second, or an event's moment. */
  t: number;
  measure: 'messages/s' | 'LB nodes';
  value: number;
}

export interface RouteUpdateDatum {
  series: string;
  at: number;
  /** The router's update delay for this change (ms), or how long applying took where none was measured. */
  ms: number;
  label: string;
  lane: number;
}

const LB_NODE_EVENTS = /lb-nodes/;

function lbNodeReps(result: RunResult) {
  return timelineReps(result).filter(({ rep }) => (rep.events ?? []).some((e) => LB_NODE_EVENTS.test(e.action) && e.inLb !== undefined));
}

/**
 * Per series (first repetition), the answered messages in each second and the LB nodes in the
 * route as a step: the point's backend count until the first event, then what each event left.
 */
export function lbNodesData(result: RunResult): LbNodesDatum[] {
  return lbNodeReps(result).flatMap(({ series, rep }) => {
    const samples = metricsOf(rep).samples!;
    const point = result.points.find((p) => p.repetitions.includes(rep))!;
    const end = samples.at(-1)!.t + 1;
    const steps: LbNodesDatum[] = [{ series, t: 0, measure: 'LB nodes', value: point.params.backends }];
    for (const e of rep.events ?? []) if (e.inLb !== undefined && !e.error) steps.push({ series, t: e.at, measure: 'LB nodes', value: e.inLb });
    steps.push({ series, t: end, measure: 'LB nodes', value: steps.at(-1)!.value });
    return [...samples.map((s) => ({ series, t: s.t + 1, measure: 'messages/s' as const, value: s.messages })), ...steps];
  });
}

export function routeUpdateData(result: RunResult): RouteUpdateDatum[] {
  return lbNodeReps(result).flatMap(({ series, rep }) =>
    (rep.events ?? [])
      .filter((e) => e.inLb !== undefined)
      .map((e, k) => ({
        series,
        at: e.at,
        ms: e.updateMs ?? e.tookMs,
        label: e.error ? 'failed' : e.updateMs !== undefined ? `${fmtMs(e.updateMs)} ms` : `(${e.tookMs} ms)`,
        lane: k % 2,
      })),
  );
}

const fmtMs = (ms: number) => (ms < 10 ? ms.toFixed(1) : String(Math.round(ms)));

export function lbNodesSpec(result: RunResult): TopLevelSpec | null {
  const values = lbNodesData(result);
  if (!values.length) return null;
  const updates = routeUpdateData(result);
  const series = [...new Set(values.map((d) => d.series))];
  const x = { field: 't', type: 'quantitative', title: 'Time (s since measurement start)', scale: { domain: [0, Math.max(...values.map((d) => d.t))], nice: false } };
  const maxNodes = Math.max(...values.filter((d) => d.measure === 'LB nodes').map((d) => d.value));
  return {
    $schema: SCHEMA,
    title: { text: 'Throughput against LB nodes', subtitle: ['first repetition of each LB; dashed lines: LB-node changes,', 'labelled with the route update delay'] },
    data: { values: [...values, ...updates] },
    facet: { field: 'series', type: 'nominal', sort: series, header: { title: null, labelAngle: 0, labelAnchor: 'start', labelFontWeight: 'bold', labelFontSize: 12 } },
    columns: 1,
    // Independent at both levels: vega-lite cannot place a layer's own axes under a shared facet scale.
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: WIDTH,
      height: 130,
      layer: [
        {
          transform: [{ filter: "datum.measure === 'messages/s'" }],
          mark: { type: 'line', point: { size: 14 }, strokeWidth: 2, color: '#4c78a8' },
          encoding: { x, y: { field: 'value', type: 'quantitative', title: 'Messages/s answered', axis: { titleColor: '#4c78a8' } } },
        },
        {
          transform: [{ filter: "datum.measure === 'LB nodes'" }],
          mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2, color: '#f58518' },
          encoding: {
            x,
            y: { field: 'value', type: 'quantitative', title: 'LB nodes', scale: { domain: [0, maxNodes + 1] }, axis: { orient: 'right', titleColor: '#f58518', tickMinStep: 1 } },
          },
        },
        ...eventMarkLayers(),
      ],
      resolve: { scale: { y: 'independent' } },
    },
  } as TopLevelSpec;
}

// ---------------------------------------------------------------- overlay axis

/** The point as if `key` were not among its params: for labels of charts that put that param on an axis. */
const withoutParam = (p: PointResult, key: string): PointResult => {
  const { [key]: _drop, ...params } = p.params;
  return { ...p, params: params as PointResult['params'] };
};


/** One LB at one value of a swept axis drawn as grouped bars (overlay, address family). */
interface AxisDatum {
  /** The LB, with any other swept parameter that varies. */
  lb: string;
  value: string;
  backends: number;
  /** Median over repetitions, in the run's unit. */
  rate: number;
  /** This value's rate as a share of the same LB's at the base value, where both were measured. */
  ofBase?: number;
  mtu?: number;
}

/** Per LB and value of `key`, at the largest backend count measured under every value: the median rate. */
function axisData(result: RunResult, key: 'overlay' | 'family', base: string): AxisDatum[] {
  const swept = result.points.filter((p) => p.params[key] !== undefined && p.repetitions.length > 0);
  if (new Set(swept.map((p) => p.params[key])).size < 2) return [];
  // Labelled as if the axis were not swept: it is the bars' other axis, not part of the LB's name.
  const without = (p: PointResult) => withoutParam(p, key);
  const label = seriesLabeler({ ...result, points: result.points.map(without) });
  const values = [...new Set(swept.map((p) => String(p.params[key])))];
  const counts = [...new Set(swept.map((p) => p.params.backends))].filter((n) => values.every((v) => swept.some((p) => String(p.params[key]) === v && p.params.backends === n)));
  if (!counts.length) return [];
  const n = Math.max(...counts);
  const rows = swept
    .filter((p) => p.params.backends === n)
    .map((p): AxisDatum => ({ lb: label(without(p)), value: String(p.params[key]), backends: n, rate: median(p.repetitions.map(rateOf)), ...(p.network ? { mtu: p.network.mtu } : {}) }));
  for (const r of rows) {
    const b = rows.find((x) => x.lb === r.lb && x.value === base);
    if (b && r.value !== base && b.rate > 0) r.ofBase = r.rate / b.rate;
  }
  return rows;
}

function axisBarSpec(result: RunResult, values: AxisDatum[], o: { title: string; subtitle: string; legend: string; colour: (d: AxisDatum) => string }): TopLevelSpec {
  const lbs = [...new Set(values.map((v) => v.lb))];
  const x = { field: 'lb', type: 'nominal', title: null, sort: lbs, axis: { labelAngle: 0 } };
  const xOffset = { field: 'value', type: 'nominal', sort: [...new Set(values.map((v) => v.value))] };
  const y = { field: 'rate', type: 'quantitative', title: `${RATE_TITLE[rateUnit(result)]} (median)` };
  return {
    $schema: SCHEMA,
    title: { text: o.title, subtitle: o.subtitle },
    data: { values: values.map((v) => ({ ...v, label: v.ofBase !== undefined ? `${Math.round(100 * v.ofBase)}%` : '', colour: o.colour(v) })) },
    width: WIDTH,
    height: 260,
    layer: [
      { mark: { type: 'bar' }, encoding: { x, xOffset, y, color: { field: 'colour', type: 'nominal', title: o.legend } } },
      { mark: { type: 'text', dy: -6, fontSize: 10 }, encoding: { x, xOffset, y, text: { field: 'label' } } },
    ],
  } as TopLevelSpec;
}

export interface OverlayDatum {
  lb: string;
  overlay: string;
  backends: number;
  rate: number;
  /** This overlay's rate as a share of the same LB's without one (none), where both were measured. */
  ofNone?: number;
  mtu?: number;
}

export function overlayData(result: RunResult): OverlayDatum[] {
  return axisData(result, 'overlay', 'none').map(({ value, ofBase, ...d }) => ({ ...d, overlay: value, ...(ofBase !== undefined ? { ofNone: ofBase } : {}) }));
}

export function overlaySpec(result: RunResult): TopLevelSpec | null {
  const values = axisData(result, 'overlay', 'none');
  if (!values.length) return null;
  return axisBarSpec(result, values, {
    title: 'Overlay cost',
    subtitle: `each LB at ${values[0]!.backends} backends; labels: rate as a share of the same LB without an overlay`,
    legend: 'Backend network',
    colour: (v) => `${v.value}${v.mtu ? ` (MTU ${v.mtu})` : ''}`,
  });
}

/** Per LB, the median rate over IPv4 and over IPv6, v6 as a share of v4. */
export function familyData(result: RunResult): AxisDatum[] {
  return axisData(result, 'family', '4');
}

export function familySpec(result: RunResult): TopLevelSpec | null {
  const values = familyData(result);
  if (!values.length) return null;
  return axisBarSpec(result, values, {
    title: 'IPv4 and IPv6',
    subtitle: `each LB at ${values[0]!.backends} backends; labels: the IPv6 rate as a share of the same LB's IPv4 rate`,
    legend: 'Address family',
    colour: (v) => `IPv${v.value}`,
  });
}

// ---------------------------------------------------------------- service under a flood

export const FLOOD_MEASURES = ['probe success (%)', 'probe p99 (ms)', 'CPU busy (cores)'] as const;

export interface FloodDatum {
  /** The LB, with any other varying parameter but the flood rate. */
  series: string;
  /** The flood rate as set (packets/s). */
  floodPps: number;
  measure: (typeof FLOOD_MEASURES)[number];
  /** Median over repetitions. */
  value: number;
}

/** Per LB and flood rate (largest backend count): the probe's success and p99, and the CPU busy on the LB node. */
export function floodData(result: RunResult): FloodDatum[] {
  const pts = result.points.filter((p) => typeof p.params.floodPps === 'number' && p.repetitions.length > 0);
  if (new Set(pts.map((p) => p.params.floodPps)).size < 2) return [];
  const n = Math.max(...pts.map((p) => p.params.backends));
  const label = seriesLabeler({ ...result, points: result.points.map((p) => withoutParam(p, 'floodPps')) });
  return pts
    .filter((p) => p.params.backends === n && 'requests' in p.repetitions[0]!.metrics)
    .flatMap((p) => {
      const series = label(withoutParam(p, 'floodPps'));
      const floodPps = p.params.floodPps as number;
      const reps = p.repetitions;
      const cpu = reps.filter((r) => r.samples?.lb?.length).map((r) => mean(r.samples!.lb!.map((s) => s.cpu.busy)));
      return [
        { series, floodPps, measure: FLOOD_MEASURES[0], value: 100 * median(reps.map((r) => probeSuccess(metricsOf(r)))) },
        { series, floodPps, measure: FLOOD_MEASURES[1], value: median(reps.map((r) => metricsOf(r).latencyUs.p99 / 1000)) },
        ...(cpu.length ? [{ series, floodPps, measure: FLOOD_MEASURES[2], value: median(cpu) }] : []),
      ];
    });
}

/** Lowest and highest share of the set rate that trafgen reached, over every flooded repetition. */
export function floodReached(result: RunResult): [number, number] | undefined {
  const shares = result.points.flatMap((p) => p.repetitions.flatMap((r) => (r.flood ? [r.flood.sentPerSec / r.flood.targetPps] : [])));
  return shares.length ? [Math.min(...shares), Math.max(...shares)] : undefined;
}

export function floodSpec(result: RunResult): TopLevelSpec | null {
  const values = floodData(result).filter((d) => Number.isFinite(d.value));
  if (!values.length) return null;
  const series = [...new Set(values.map((d) => d.series))];
  return measureRowsSpec({
    title: 'Service under a flood',
    subtitle: 'the probe (the scenario\'s load) beside a background flood at the VIP; median over repetitions',
    values,
    measures: FLOOD_MEASURES,
    height: 130,
    spec: {
      mark: { type: 'line', point: true, strokeWidth: 2 },
      encoding: {
        x: { field: 'floodPps', type: 'quantitative', title: 'Flood (packets/s, as set)', axis: { format: '~s' } },
        y: { field: 'value', type: 'quantitative', title: null, scale: { zero: true } },
        color: { ...colorEnc(result), scale: { domain: series } },
      },
    },
  });
}

// ---------------------------------------------------------------- failover (fail-lb-node)

export const FAILOVER_MEASURES = ['no answers at all (ms)', 'failures went on for (ms)', 'connections lost (%)'] as const;

export interface FailoverDatum {
  series: string;
  /** "lb0 link-down", "be3 link-down": which node, how. */
  event: string;
  measure: (typeof FAILOVER_MEASURES)[number];
  /** Median over repetitions. */
  value: number;
  /** connections lost: the ideal (those through the failed node). */
  ideal?: number;
  repetitions: number;
}

/** Per LB (largest backend count), each fail-lb-node event's outage, how long failures went on, and its loss. */
export function failoverData(result: RunResult): FailoverDatum[] {
  const label = seriesLabeler(result);
  const out: FailoverDatum[] = [];
  const n = Math.max(0, ...result.points.map((p) => p.params.backends));
  for (const p of result.points.filter((x) => x.params.backends === n)) {
    const reps = p.repetitions.filter((r) => r.events?.some((e) => e.action === 'fail-lb-node' && !e.error));
    if (!reps.length) continue;
    const evs = reps.map((r) => r.events!.find((e) => e.action === 'fail-lb-node' && !e.error)!);
    // Runs recorded before events carried `how` had it only in the scenario.
    const how = evs[0]!.how ?? (result.scenario as { events?: { action: string; how?: string }[] }).events?.find((e) => e.action === 'fail-lb-node')?.how ?? 'link-down';
    const event = `${evs[0]!.target.join(',')} ${how}`;
    const base = { series: label(p), event, repetitions: reps.length };
    const gaps = evs.filter((e) => e.interruption).map((e) => e.interruption!.ms);
    if (gaps.length) out.push({ ...base, measure: FAILOVER_MEASURES[0], value: median(gaps) });
    out.push({ ...base, measure: FAILOVER_MEASURES[1], value: median(evs.map((e) => e.lastFailureMs ?? 0)) });
    out.push({ ...base, measure: FAILOVER_MEASURES[2], value: 100 * median(evs.map((e) => e.observedLoss)), ideal: 100 * median(evs.map((e) => e.idealLoss)) });
  }
  return out;
}

export function failoverSpec(result: RunResult): TopLevelSpec | null {
  const values = failoverData(result);
  if (!values.length) return null;
  const series = [...new Set(values.map((d) => d.series))];
  const x = { field: 'series', type: 'nominal', title: null, sort: series, axis: { labelAngle: 0 } };
  return measureRowsSpec({
    title: 'Failing an LB node',
    subtitle: 'median over repetitions; black ticks: the connections through the failed node (ideal loss)',
    values: values.map((v) => ({ ...v, label: `${Math.round(v.value)}` })),
    measures: FAILOVER_MEASURES,
    height: 110,
    spec: {
      layer: [
        { mark: { type: 'bar' }, encoding: { x, y: { field: 'value', type: 'quantitative', title: null }, color: { ...colorEnc(result), scale: { domain: series }, legend: null } } },
        { mark: { type: 'text', dy: -6, fontSize: 10 }, encoding: { x, y: { field: 'value', type: 'quantitative' }, text: { field: 'label' } } },
        { transform: [{ filter: 'isValid(datum.ideal)' }], mark: { type: 'tick', color: 'black', thickness: 2 }, encoding: { x, y: { field: 'ideal', type: 'quantitative' } } },
      ],
    },
  });
}

export function experimentCharts(result: RunResult): (Chart & { id: ExperimentChartId })[] {
  const out: (Chart & { id: ExperimentChartId })[] = [];
  const ln = lbNodesSpec(result);
  if (ln) {
    out.push({
      id: 'lb-nodes',
      title: 'Throughput against the number of LB nodes',
      caption:
        "Messages answered per second (blue, left axis) while the number of LB nodes in the router's multipath route (orange, right axis) changes on the scenario's timeline, first repetition of each LB. " +
        "Each dashed line is a change, labelled with the router's update delay: from the change being issued (route write or BGP announce/withdraw) until its table showed the new set of next hops, from `ip monitor` where it saw the update. " +
        'A dip after a change is connections the new hashing broke, reconnecting; its depth and width are the responsiveness.',
      spec: ln,
    });
  }
  const fo = failoverSpec(result);
  if (fo) {
    out.push({
      id: 'failover',
      title: 'Failing an LB node',
      caption:
        "What the clients saw when an LB node failed unannounced (fail-lb-node), per LB, from the traffic tester: " +
        'the span without a single answer on any connection, from the last answer before to the first after (an active/backup pair fails over in this time; ECMP, whose other nodes keep answering, shows none); ' +
        'how long connections kept breaking or failing to open after the event (a dead path left in a static route keeps it up to the next event or the end; BGP withdraws it after its hold time); ' +
        'and the share of connections alive at the event that were lost, against those through the failed node (black ticks: all of them for an active node, its share for an ECMP node).',
      spec: fo,
    });
  }
  const fl = floodSpec(result);
  if (fl) {
    const reached = floodReached(result);
    const packet = result.points.flatMap((p) => p.repetitions).find((r) => r.flood)?.flood?.packet;
    out.push({
      id: 'flood',
      title: 'Service under a flood',
      caption:
        `The scenario's load as a probe while trafgen floods the VIP with ${packet === 'udp' ? '60-byte UDP datagrams' : '60-byte TCP SYNs'}, each from a random address of the client's source pool and a random port, at each rate (x, as set). ` +
        "Top: the share of the probe's attempts that got an answer; middle: its 99th-percentile latency; bottom: CPUs busy during the measurement, from the LB node's sampler " +
        "(on the one-host netns topology that is the whole host's, the flood's generator included). " +
        (reached ? `trafgen reached ${Math.round(100 * reached[0])}–${Math.round(100 * reached[1])}% of the set rates (result: repetitions[].flood).` : ''),
      spec: fl,
    });
  }
  const fam = familySpec(result);
  if (fam) {
    out.push({
      id: 'family',
      title: 'IPv4 and IPv6',
      caption:
        'Median rate per load balancer over IPv4 and over IPv6 (2001:2::/48) on the same dual-stack topology, one point each; the label is the IPv6 rate as a share of the IPv4 one. ' +
        'IPv6 headers are 20 bytes longer, and each datapath has its own IPv6 code (ip6tables, nft ip6, the proxies\' v6 sockets).',
      spec: fam,
    });
  }
  const ov = overlaySpec(result);
  if (ov) {
    const nets = [...new Map(result.points.filter((p) => p.network).map((p) => [p.network!.overlay, p.network!])).values()];
    out.push({
      id: 'overlay',
      title: 'Throughput by backend network',
      caption:
        'Median rate per load balancer with the backends on the LB node\'s own segment (none) and behind each swept overlay, each overlay a topology of its own built for its points; the label is the share of the rate without an overlay. ' +
        nets.map((n) => `${n.overlay}: ${n.encapsulation}, MTU ${n.mtu} over links of ${n.underlayMtu}.`).join(' '),
      spec: ov,
    });
  }
  return out;
}
