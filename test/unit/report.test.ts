import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, copyFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compile } from 'vega-lite';
import { readResult } from '../../harness/results/reader.ts';
import { resultProblems } from '../../harness/results/schema.ts';
import type { Repetition } from '../../harness/results/types.ts';
import {
  charts,
  connectionTimelineData,
  connectionTimelineSpec,
  distributionData,
  distributionSpec,
  distributionUnit,
  eventLossData,
  eventLossSpec,
  fairnessData,
  fmtPct,
  latencyCdfData,
  latencyCdfSpec,
  largestBackends,
  packetRateData,
  packetRateSpec,
  rateUnit,
  seriesOrder,
  summaryRows,
  throughputData,
  throughputSpec,
  timelineEventData,
} from '../../harness/report/specs.ts';
import { renderSvg } from '../../harness/report/render.ts';
import { renderReport, reportFromResultDir, summaryTable } from '../../harness/report/index.ts';
import { median } from '../../harness/stats/descriptive.ts';
import { jainFairness } from '../../harness/load/connect.ts';

const FIXTURE = new URL('../fixtures/results/synthetic-run.json', import.meta.url).pathname;
const LBS = ['router', 'nginx-l7', 'haproxy-http'];
// Generator traffic: 2 LBs × 6 backends × 2 repetitions, each removing be4,be5 at 3 s and adding them back at 6 s.
const EVENTS_FIXTURE = new URL('../fixtures/results/events-run.json', import.meta.url).pathname;
const EVENT_LBS = ['xdp', 'nginx-l4'];

// trafgen: 3 LBs × 2 backends × 2 repetitions of 60-byte SYNs (nfqueue drops about half).
const PPS_FIXTURE = new URL('../fixtures/results/pps-run.json', import.meta.url).pathname;
const PPS_LBS = ['iptables-dnat', 'nfqueue', 'xdp'];
// iperf3 over UDP: 2 LBs × 1 backend × 2 repetitions of 64-byte datagrams.
const UDP_FIXTURE = new URL('../fixtures/results/udp-run.json', import.meta.url).pathname;
const UDP_LBS = ['nftables', 'xdp'];

const load = () => readResult(FIXTURE);
const loadEvents = () => readResult(EVENTS_FIXTURE);
const loadPps = () => readResult(PPS_FIXTURE);
const loadUdp = () => readResult(UDP_FIXTURE);

// The request generators' metrics, plus what connect and traffic add; the result type also has other kinds.
type TrafficLike = Extract<Repetition['metrics'], { requestsPerSec: number }> & {
  fairness: number;
  connectionsPerBackend: Record<string, number>;
  samples: { t: number; active: number; new: number; lost: number; failedConnects: number }[];
};
const m = (r: Repetition) => r.metrics as TrafficLike;

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'lbb-report-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

// Layered specs keep encodings per layer; tests look channels up wherever they are.
function enc(spec: any, channel: string, layer?: number): any {
  return (layer === undefined ? spec.encoding : spec.layer[layer].encoding)?.[channel] ?? spec.encoding?.[channel];
}

test('specs are pure: same input, same output, input untouched', async () => {
  const r = await load();
  const before = structuredClone(r);
  const a = charts(r);
  const b = charts(r);
  assert.deepEqual(a, b);
  assert.deepEqual(r, before);
  assert.deepEqual(a.map((c) => c.id), ['throughput', 'latency-cdf', 'distribution']);
});

test('series keep scenario order so colours match across charts', async () => {
  const r = await load();
  assert.deepEqual(seriesOrder(r), LBS);
  for (const c of charts(r)) {
    const color = (c.spec as any).encoding?.color ?? (c.spec as any).layer.find((l: any) => l.encoding?.color).encoding.color;
    assert.deepEqual(color.scale.domain, LBS, c.id);
  }
});

test('throughput: median and min–max per LB and backend count', async () => {
  const r = await load();
  const data = throughputData(r);
  assert.equal(data.length, 9);
  const p = r.points.find((x) => x.id === 'nginx-l7/backends=4')!;
  const rps = p.repetitions.map((x) => m(x).requestsPerSec);
  const d = data.find((x) => x.series === 'nginx-l7' && x.backends === 4)!;
  assert.equal(d.median, median(rps));
  assert.equal(d.min, Math.min(...rps));
  assert.equal(d.max, Math.max(...rps));
  assert.equal(d.repetitions, 3);

  const spec = throughputSpec(r) as any;
  assert.equal(spec.width, 560);
  assert.equal(spec.height, 320);
  assert.match(spec.title.text, /Throughput/);
  assert.deepEqual(spec.data.values, data);
  assert.equal(enc(spec, 'x').field, 'backends');
  assert.match(enc(spec, 'x').title, /Backends \(count/);
  assert.deepEqual(enc(spec, 'x').axis.values, [1, 2, 4]);
  assert.equal(enc(spec, 'color').field, 'series');
  assert.deepEqual(spec.layer.map((l: any) => l.mark.type), ['area', 'line']);
  assert.deepEqual([enc(spec, 'y', 0).field, enc(spec, 'y2', 0).field], ['min', 'max']);
  assert.equal(enc(spec, 'y', 1).field, 'median');
  assert.match(enc(spec, 'y', 1).title, /Requests\/s/);
});

test('throughput uses a log₂ x axis for doubling sweeps', async () => {
  const r = await load();
  const counts = [1, 2, 4, 8, 16];
  r.points = counts.map((n) => ({ ...structuredClone(r.points[3]!), id: `nginx-l7/backends=${n}`, params: { backends: n, connections: 32, threads: 1 } }));
  const x = enc(throughputSpec(r), 'x');
  assert.deepEqual(x.scale, { type: 'log', base: 2 });
  assert.deepEqual(x.axis.values, counts);
});

test('a second varying parameter splits lines instead of averaging them', async () => {
  const r = await load();
  const extra = structuredClone(r.points.filter((p) => p.lb.name === 'nginx-l7'));
  for (const p of extra) {
    p.params.connections = 64;
    p.id += '/connections=64';
  }
  r.points.push(...extra);
  assert.deepEqual(seriesOrder(r), [
    'router (connections=32)',
    'nginx-l7 (connections=32)',
    'haproxy-http (connections=32)',
    'nginx-l7 (connections=64)',
  ]);
  assert.equal(throughputData(r).length, 12);
});

test('latency CDF: median per percentile at the largest backend count, ms on a log axis', async () => {
  const r = await load();
  assert.equal(largestBackends(r), 4);
  const data = latencyCdfData(r);
  for (const lb of LBS) assert.equal(data.filter((d) => d.series === lb).length, 20, lb);
  const p = r.points.find((x) => x.id === 'haproxy-http/backends=4')!;
  const at99 = p.repetitions.map((x) => m(x).latencyCdf.find(([pct]) => pct === 99)![1]);
  const d = data.find((x) => x.series === 'haproxy-http' && x.percentile === 99)!;
  assert.equal(d.latencyMs, median(at99) / 1000);
  for (const lb of LBS) {
    const ys = data.filter((x) => x.series === lb).map((x) => x.latencyMs);
    assert.deepEqual(ys, [...ys].sort((a, b) => a - b), `${lb} CDF is monotonic`);
  }

  const spec = latencyCdfSpec(r) as any;
  assert.match(spec.title.text, /at 4 backends/);
  assert.equal(spec.mark.type, 'line');
  assert.equal(spec.encoding.x.field, 'latencyMs');
  assert.equal(spec.encoding.x.scale.type, 'log');
  assert.match(spec.encoding.x.title, /ms/);
  assert.equal(spec.encoding.y.field, 'percentile');
  assert.match(spec.encoding.y.title, /%/);
  assert.ok(spec.width > 0 && spec.height > 0);
});

test('distribution: share per backend, router on one backend, LBs without counters skipped', async () => {
  const r = await load();
  const data = distributionData(r);
  const router = data.filter((d) => d.series === 'router');
  assert.deepEqual(router.map((d) => [d.backend, d.sharePct]), [['be0', 100]]);
  const nginx = data.filter((d) => d.series === 'nginx-l7');
  assert.deepEqual(nginx.map((d) => d.backend), ['be0', 'be1', 'be2', 'be3']);
  assert.ok(Math.abs(nginx.reduce((s, d) => s + d.sharePct, 0) - 100) < 1e-9);
  for (const d of nginx) assert.ok(Math.abs(d.sharePct - 25) < 1, `${d.backend} ${d.sharePct}`);
  const p = r.points.find((x) => x.id === 'nginx-l7/backends=4')!;
  assert.equal(nginx[0]!.count, p.repetitions.reduce((s, x) => s + x.metrics.perBackend.be0!, 0));
  assert.equal(distributionUnit(r), 'requests');

  const spec = distributionSpec(r) as any;
  assert.match(spec.title.text, /at 4 backends/);
  assert.equal(spec.layer[0].mark.type, 'bar');
  assert.equal(enc(spec, 'x', 0).field, 'backend');
  assert.equal(enc(spec, 'xOffset', 0).field, 'series');
  assert.equal(enc(spec, 'y', 0).field, 'sharePct');
  assert.match(enc(spec, 'y', 0).title, /%/);
  assert.equal(spec.layer[1].encoding.y.datum, 25, 'even-share reference line');

  for (const p of r.points) if (p.lb.name === 'haproxy-http') for (const x of p.repetitions) x.metrics.perBackend = {};
  assert.deepEqual([...new Set(distributionData(r).map((d) => d.series))], ['router', 'nginx-l7']);
  assert.match(charts(r).find((c) => c.id === 'distribution')!.caption, /No per-backend counts for: haproxy-http/);
});

test('summary rows: spread, latency medians, errors, warnings, failed points', async () => {
  const r = await load();
  r.points.push({ id: 'nftables/backends=4', lb: { kind: 'nftables', name: 'nftables' }, params: { backends: 4, connections: 32, threads: 1 }, repetitions: [], error: 'nft: syntax error' });
  const rows = summaryRows(r);
  assert.equal(rows.length, 10);
  const h = rows.find((x) => x.pointId === 'haproxy-http/backends=4')!;
  const p = r.points.find((x) => x.id === 'haproxy-http/backends=4')!;
  const rps = p.repetitions.map((x) => m(x).requestsPerSec);
  assert.equal(h.rps.median, median(rps));
  assert.equal(h.rps.min, Math.min(...rps));
  assert.equal(h.repetitions, 3);
  assert.ok(h.rps.cvPct > 0 && h.rps.cvPct < 10);
  assert.equal(h.latencyUs.p99, median(p.repetitions.map((x) => m(x).latencyUs.p99)));
  assert.equal(h.errorsTotal, 3);
  assert.deepEqual(h.warnings, ['3 request errors']);
  assert.deepEqual(h.notes, []);
  const failed = rows.at(-1)!;
  assert.equal(failed.error, 'nft: syntax error');
  assert.ok(Number.isNaN(failed.rps.median));
  assert.equal(failed.repetitions, 0);
  // A failed point with no data draws nothing, but the charts still come out.
  assert.equal(throughputData(r).length, 9);
});

test('each chart renders to SVG naming every LB in it', async () => {
  const r = await load();
  for (const c of charts(r)) {
    const svg = await renderSvg(c.spec);
    assert.ok(svg.startsWith('<svg'), c.id);
    for (const lb of LBS) assert.ok(svg.includes(lb), `${c.id} mentions ${lb}`);
  }
});

const EXTERNAL = /(?:href|src)\s*=\s*["']?\s*(?:https?:)?\/\/|url\(\s*["']?\s*(?:https?:)?\/\/|@import/i;

function withoutNamespaces(html: string): string {
  return html.replace(/\sxmlns(?::\w+)?="[^"]*"/g, '');
}

test('renderReport writes a self-contained page with one <svg> per chart', async (t) => {
  const r = await load();
  const out = await tempDir(t);
  const file = await renderReport(r, join(out, 'nested'));
  assert.equal(file, join(out, 'nested', 'index.html'));
  const html = await readFile(file, 'utf8');
  assert.equal(html.match(/<svg/g)!.length, charts(r).length);
  assert.equal(html.match(/<figure/g)!.length, charts(r).length);
  assert.equal(html.match(/<figcaption/g)!.length, charts(r).length);
  // URLs may appear as escaped text (haproxy -v prints its homepage), never inside markup.
  const tags = withoutNamespaces(html).match(/<[^>]*>/g)!;
  assert.deepEqual(tags.filter((tag) => /https?:\/\//.test(tag)), [], 'no URLs in markup besides XML namespaces');
  assert.doesNotMatch(withoutNamespaces(html), EXTERNAL);
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /<link/i);
  for (const s of ['l7-scaling', r.runId, 'Status: Complete', '6.18.0-lbb', 'AMD EPYC 7B13', 'wrk 4.1.0', '5a29080e1c0d', '<table', '<details']) {
    assert.ok(html.includes(s), s);
  }
  assert.ok(html.includes('worker_processes 1;'), 'LB config dump');
});

test('a partial run says so loudly, with its error and failed points', async (t) => {
  const r = await load();
  r.status = 'interrupted';
  r.error = 'interrupted by SIGINT';
  r.points[8]!.error = 'wrk: connection refused';
  const html = await readFile(await renderReport(r, await tempDir(t)), 'utf8');
  assert.match(html, /class="status partial"[^>]*>Status: Interrupted — the results below are partial/);
  assert.ok(html.includes('interrupted by SIGINT'));
  assert.match(html, /<tr class="error"><td>haproxy-http<\/td>/);
  assert.match(html, /<h2 id="errors">Point errors<\/h2>.*haproxy-http\/backends=4/s);

  r.status = 'running';
  const crashed = await readFile(await renderReport(r, await tempDir(t)), 'utf8');
  assert.match(crashed, /Did not finish/);
});

test('text from result files is HTML-escaped', async (t) => {
  const r = await load();
  const evil = '</pre></details><script>alert(1)</script><img src=x onerror=alert(2)>';
  r.points[3]!.lbDescribe = { version: '<b>v</b>', config: evil };
  r.points[3]!.error = evil;
  r.points[3]!.lb.name = '<i>nginx</i>';
  r.host.tools.wrk = '<script>x</script>';
  (r.scenario as Record<string, unknown>).name = '"><script>alert(3)</script>';
  r.runId = '<run&id>';
  const html = await readFile(await renderReport(r, await tempDir(t)), 'utf8');
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /<img/i);
  assert.doesNotMatch(html, /<i>nginx/);
  assert.ok(html.includes('&lt;/pre&gt;&lt;/details&gt;&lt;script&gt;alert(1)&lt;/script&gt;'));
  assert.ok(html.includes('&lt;run&amp;id&gt;'));
  assert.ok(html.includes('&lt;b&gt;v&lt;/b&gt;'));
});

test('no measured points: no charts, still a page', async (t) => {
  const r = await load();
  for (const p of r.points) {
    p.repetitions = [];
    p.error = 'LB failed to start';
  }
  r.status = 'failed';
  assert.deepEqual(charts(r), []);
  const html = await readFile(await renderReport(r, await tempDir(t)), 'utf8');
  assert.equal(html.match(/<svg/g), null);
  assert.match(html, /nothing to chart/);
});

test('reportFromResultDir reads results/<run-id>/ and writes reports/<run-id>/index.html', async (t) => {
  const root = await tempDir(t);
  const r = await load();
  const resultDir = join(root, 'results', r.runId);
  await mkdir(resultDir, { recursive: true });
  await copyFile(FIXTURE, join(resultDir, 'result.json'));
  const file = await reportFromResultDir(resultDir, join(root, 'reports'));
  assert.equal(file, join(root, 'reports', r.runId, 'index.html'));
  await access(file);
});

test('summaryTable: aligned plain-text columns for the terminal', async () => {
  const r = await load();
  r.points[0]!.error = 'boom';
  const text = summaryTable(r);
  const lines = text.split('\n');
  assert.match(lines[0]!, /^l7-scaling · run 20250614-091203-7f3a · complete$/);
  assert.match(lines[1]!, /^LB\s+backends\s+req\/s\s+min–max\s+CV%\s+p50 ms\s+p99 ms\s+errors\s+reps\s+vs router\s+limit\s+CPU-s\/M\s+notes$/);
  const rule = lines[2]!;
  assert.match(rule, /^[- ]+$/);
  const gaps = [...rule].flatMap((c, i) => (c === ' ' ? [i] : []));
  const body = lines.slice(3);
  assert.equal(body.length, 9);
  for (const l of [lines[1]!, ...body]) {
    for (const g of gaps.filter((g) => g < l.length)) assert.equal(l[g], ' ', `column gap at ${g} in ${JSON.stringify(l)}`);
  }
  assert.match(body[0]!, /^router\s+1\s+[\d,]+\s+[\d,]+–[\d,]+/);
  assert.match(body[0]!, /FAILED: boom$/);
  assert.ok(body.some((l) => l.startsWith('haproxy-http') && l.includes('3 request errors')));
  assert.doesNotMatch(text, /partial/);
  // Every LB against the plain router of the same run, at the same backend count.
  const rows = summaryRows(r);
  for (const row of rows) {
    const router = rows.find((x) => x.lbKind === 'router' && x.backends === row.backends)!;
    if (row.lbKind === 'router') assert.equal(row.vsBaseline, undefined);
    else assert.ok(Math.abs(row.vsBaseline! - row.rps.median / router.rps.median) < 1e-12, row.pointId);
  }
  assert.match(body.find((l) => l.startsWith('nginx-l7'))!, /\s30%$/);
  r.status = 'failed';
  assert.match(summaryTable(r), /results are partial/);
});

test('charts carry titles and axis titles with units', async () => {
  for (const r of [await load(), await loadEvents(), await loadPps(), await loadUdp()]) for (const c of charts(r)) {
    // A faceted chart sizes and encodes its panels in .spec.
    const s = c.spec as any;
    const inner = s.spec ?? s;
    assert.ok(s.title?.text, c.id);
    assert.ok(inner.width > 0 && inner.height > 0, c.id);
    const encs = [inner.encoding, ...(inner.layer ?? []).map((l: any) => l.encoding)].filter(Boolean);
    const titles = encs
      .flatMap((e: any) => [e.x, e.y])
      .filter((ch: any) => ch?.type === 'quantitative' && ch.title)
      .map((ch: any) => ch.title);
    assert.ok(titles.length >= 1, c.id);
    assert.ok(titles.every((x: string) => /\(.+\)/.test(x)), `${c.id}: ${titles.join(' | ')}`);
  }
});

// ---------------------------------------------------------------- connection loss and events (generator traffic)

function compileWarnings(spec: unknown): string[] {
  const warnings: string[] = [];
  const logger: any = {
    level: () => logger,
    info: () => logger,
    debug: () => logger,
    warn: (...a: unknown[]) => (warnings.push(a.join(' ')), logger),
    error: (...a: unknown[]) => (warnings.push(a.join(' ')), logger),
  };
  compile(spec as any, { logger });
  return warnings;
}

test('events: charts() adds the connection charts only when their data is there', async () => {
  const r = await loadEvents();
  const before = structuredClone(r);
  assert.deepEqual(charts(r).map((c) => c.id), ['throughput', 'latency-cdf', 'distribution', 'connections-over-time', 'event-loss']);
  assert.deepEqual(charts(r).map((c) => c.title).slice(2), ['Connections per backend at 6 backends', 'Connections over time', 'Observed vs. ideal loss per event']);
  assert.deepEqual(r, before);

  const noEvents = await loadEvents();
  for (const p of noEvents.points) for (const x of p.repetitions) delete x.events;
  assert.deepEqual(charts(noEvents).map((c) => c.id), ['throughput', 'latency-cdf', 'distribution', 'connections-over-time']);
  assert.deepEqual(timelineEventData(noEvents), []);
  assert.equal(eventLossSpec(noEvents), null);

  const noSamples = await loadEvents();
  for (const p of noSamples.points) for (const x of p.repetitions) delete (x.metrics as Partial<TrafficLike>).samples;
  assert.deepEqual(charts(noSamples).map((c) => c.id), ['throughput', 'latency-cdf', 'distribution', 'event-loss']);
  assert.equal(connectionTimelineSpec(noSamples), null);
});

test('connections over time: the first repetition per LB, values at the end of their second, events where they happened', async () => {
  const r = await loadEvents();
  // [active, new, lost, failed connects] per second of repetition 0 (repetition 1 differs).
  const seconds: Record<string, number[][]> = {
    xdp: [[60, 60, 0, 0], [60, 0, 0, 0], [59, 4, 5, 0], [60, 17, 16, 0], [60, 0, 0, 0], [60, 1, 1, 0], [60, 3, 3, 0], [60, 0, 0, 0], [60, 0, 0, 0], [60, 0, 0, 0]],
    'nginx-l4': [[60, 60, 0, 0], ...Array.from({ length: 9 }, () => [60, 0, 0, 0])],
  };
  const metrics = ['active', 'new', 'lost', 'failed connects'] as const;
  const expected = EVENT_LBS.flatMap((series) =>
    seconds[series]!.flatMap((vals, t) => metrics.map((metric, i) => ({ series, t: t + 1, metric, value: vals[i]! }))),
  );
  assert.deepEqual(connectionTimelineData(r), expected);
  assert.deepEqual(timelineEventData(r), [
    { series: 'xdp', at: 2.91, label: 'remove-backends be4,be5', lane: 0 },
    { series: 'xdp', at: 5.904, label: 'add-backends be4,be5', lane: 1 },
    { series: 'nginx-l4', at: 2.862, label: 'remove-backends be4,be5', lane: 0 },
    { series: 'nginx-l4', at: 5.866, label: 'add-backends be4,be5', lane: 1 },
  ]);

  const spec = connectionTimelineSpec(r) as any;
  assert.equal(spec.title.text, 'Connections over time');
  assert.equal(spec.facet.field, 'series');
  assert.deepEqual(spec.facet.sort, EVENT_LBS);
  assert.equal(spec.data.values.length, expected.length + 4);
  assert.deepEqual(spec.spec.layer.map((l: any) => l.mark.type), ['line', 'line', 'rule', 'text']);
  assert.deepEqual(spec.spec.layer[0].encoding.color.scale.domain, [...metrics]);
  assert.equal(spec.spec.layer[0].encoding.x.field, 't');
  assert.deepEqual(spec.spec.layer[0].encoding.x.scale.domain, [0, 10]);
  assert.equal(spec.spec.layer[2].encoding.x.field, 'at');
  assert.equal(spec.spec.layer[3].encoding.text.field, 'label');

  // An event that failed to apply is labelled so; a sweep's smaller points are not drawn.
  r.points[0]!.repetitions[0]!.events![1]!.error = 'setBackends: timed out';
  const smaller = structuredClone(r.points[0]!);
  smaller.id = 'xdp/backends=4';
  smaller.params.backends = 4;
  for (const x of smaller.repetitions) for (const s of m(x).samples) s.active = 40;
  r.points.unshift(smaller);
  assert.equal(timelineEventData(r)[1]!.label, 'add-backends be4,be5 (failed)');
  assert.ok(connectionTimelineData(r).every((d) => d.metric !== 'active' || d.value !== 40));
});

test('observed vs ideal loss: medians over repetitions per LB and event', async () => {
  const r = await loadEvents();
  assert.deepEqual(eventLossData(r), [
    { series: 'xdp', event: '#1 remove-backends be4,be5', observedPct: 100 * median([21 / 60, 19 / 60]), idealPct: 100 * median([18 / 60, 17 / 60]), alive: 60, lost: 20, repetitions: 2, failed: 0 },
    { series: 'xdp', event: '#2 add-backends be4,be5', observedPct: 100 * median([4 / 60, 6 / 60]), idealPct: 0, alive: 60, lost: 5, repetitions: 2, failed: 0 },
    { series: 'nginx-l4', event: '#1 remove-backends be4,be5', observedPct: 100 * median([0, 1 / 60]), idealPct: 100 * (20 / 60), alive: 60, lost: 0.5, repetitions: 2, failed: 0 },
    { series: 'nginx-l4', event: '#2 add-backends be4,be5', observedPct: 0, idealPct: 0, alive: 60, lost: 0, repetitions: 2, failed: 0 },
  ]);

  const spec = eventLossSpec(r) as any;
  assert.equal(spec.title.text, 'Observed vs. ideal loss per event');
  assert.deepEqual(spec.layer.map((l: any) => l.mark.type), ['bar', 'tick', 'text']);
  assert.equal(enc(spec, 'x', 0).field, 'event');
  assert.deepEqual(enc(spec, 'x', 0).sort, ['#1 remove-backends be4,be5', '#2 add-backends be4,be5']);
  assert.equal(enc(spec, 'xOffset', 0).field, 'series');
  assert.equal(enc(spec, 'y', 0).field, 'observedPct');
  assert.equal(enc(spec, 'y', 1).field, 'idealPct');
  assert.match(enc(spec, 'y', 0).title, /%/);
  assert.deepEqual(enc(spec, 'color', 0).scale.domain, EVENT_LBS);
  assert.deepEqual(enc(spec, 'tooltip', 0).map((t: any) => t.field), ['series', 'event', 'observedPct', 'idealPct', 'lost', 'alive', 'repetitions']);

  r.points[0]!.repetitions[1]!.events![0]!.error = 'setBackends: timed out';
  assert.equal(eventLossData(r)[0]!.failed, 1);
});

test('distribution of a traffic run: connections per backend, with the fairness index per LB', async () => {
  const r = await loadEvents();
  assert.equal(distributionUnit(r), 'connections');
  const xdp = [31, 31, 29, 32, 24, 23];
  const nginx = [21, 20, 20, 20, 20, 20];
  assert.deepEqual(distributionData(r), [
    ...xdp.map((count, i) => ({ series: 'xdp', backend: `be${i}`, count, sharePct: (100 * count) / 170 })),
    ...nginx.map((count, i) => ({ series: 'nginx-l4', backend: `be${i}`, count, sharePct: (100 * count) / 121 })),
  ]);
  assert.deepEqual(fairnessData(r), [
    { series: 'xdp', fairness: median([jainFairness([16, 15, 14, 17, 12, 11]), jainFairness([15, 16, 15, 15, 12, 12])]), repetitions: 2 },
    { series: 'nginx-l4', fairness: median([1, jainFairness([11, 10, 10, 10, 10, 10])]), repetitions: 2 },
  ]);

  const spec = distributionSpec(r) as any;
  assert.equal(spec.title.text, 'Connections per backend at 6 backends');
  assert.equal(enc(spec, 'y', 0).title, 'Share of connections (%)');
  assert.deepEqual(enc(spec, 'color', 0).scale.domain, EVENT_LBS);
  assert.match(enc(spec, 'color', 0).legend.labelExpr, /"xdp · Jain 0\.983"/);
  const svg = await renderSvg(spec);
  assert.ok(svg.includes('xdp · Jain 0.983') && svg.includes('nginx-l4 · Jain 0.999'), 'fairness in the legend');

  // A backend no connection ended on still has a bar, at 0.
  for (const x of r.points[1]!.repetitions) delete m(x).connectionsPerBackend.be5;
  const be5 = distributionData(r).find((d) => d.series === 'nginx-l4' && d.backend === 'be5')!;
  assert.deepEqual([be5.count, be5.sharePct], [0, 0]);
});

test('distribution of a connect run: requests from the counters, fairness in the legend', async () => {
  const r = await load();
  const fair = [0.97, 0.95, 0.99];
  r.points.find((p) => p.id === 'nginx-l7/backends=4')!.repetitions.forEach((x, i) => (m(x).fairness = fair[i]!));
  assert.equal(distributionUnit(r), 'requests');
  assert.deepEqual(fairnessData(r), [{ series: 'nginx-l7', fairness: 0.97, repetitions: 3 }]);
  const spec = distributionSpec(r) as any;
  assert.match(spec.title.text, /^Requests per backend/);
  const svg = await renderSvg(spec);
  assert.ok(svg.includes('nginx-l7 · Jain 0.970'));
  assert.ok(!svg.includes('haproxy-http · Jain'), 'no index where the generator computed none');
  assert.ok(summaryRows(r).find((x) => x.pointId === 'nginx-l7/backends=4')!.notes.includes('fairness (Jain) 0.970'));
  // Without any fairness the legend is the plain one the other charts have.
  assert.equal(enc(distributionSpec(await load()), 'color', 0).legend, undefined);
});

test('events: every chart compiles without vega-lite warnings and renders to SVG', async () => {
  for (const r of [await load(), await loadEvents()]) {
    for (const c of charts(r)) {
      assert.deepEqual(compileWarnings(c.spec), [], c.id);
      const svg = await renderSvg(c.spec);
      assert.ok(svg.startsWith('<svg'), c.id);
      for (const lb of seriesOrder(r)) assert.ok(svg.includes(lb), `${c.id} mentions ${lb}`);
    }
  }
  const r = await loadEvents();
  const timeline = await renderSvg(connectionTimelineSpec(r)!);
  assert.ok(timeline.includes('remove-backends be4,be5') && timeline.includes('add-backends be4,be5'), 'event labels');
  const loss = await renderSvg(eventLossSpec(r)!);
  assert.ok(loss.includes('#1 remove-backends be4,be5') && loss.includes('20/60') && loss.includes('0.5/60'), 'events and counts');
});

test('events: colours follow the LB order; the timeline colours its metrics and puts LBs in panels', async () => {
  const r = await loadEvents();
  assert.deepEqual(seriesOrder(r), EVENT_LBS);
  for (const c of charts(r)) {
    const s = c.spec as any;
    if (c.id === 'connections-over-time') {
      assert.deepEqual(s.facet.sort, EVENT_LBS);
      continue;
    }
    const color = s.encoding?.color ?? s.layer.find((l: any) => l.encoding?.color).encoding.color;
    assert.deepEqual(color.scale.domain, EVENT_LBS, c.id);
  }
});

test('summary notes: fairness and loss per event, medians over repetitions', async () => {
  const r = await loadEvents();
  const notes = Object.fromEntries(summaryRows(r).map((x) => [x.series, x.notes]));
  assert.deepEqual(notes, {
    xdp: ['fairness (Jain) 0.983', 'remove-backends be4,be5: lost 33% (ideal 29%)', 'add-backends be4,be5: lost 8.3% (ideal 0%)'],
    'nginx-l4': ['fairness (Jain) 0.999', 'remove-backends be4,be5: lost 0.8% (ideal 33%)', 'add-backends be4,be5: lost 0% (ideal 0%)'],
  });
  assert.ok(summaryRows(r).every((x) => !x.warnings.some((w) => /fairness|lost/.test(w))), 'notes are not warnings');
  r.points[0]!.repetitions[1]!.events![0]!.error = 'setBackends: timed out';
  assert.equal(summaryRows(r)[0]!.notes[1], 'remove-backends be4,be5: lost 33% (ideal 29%), failed in 1 of 2');
  assert.match(summaryTable(r), /^xdp .*fairness \(Jain\) 0\.983; remove-backends be4,be5: lost 33% \(ideal 29%\), failed in 1 of 2; add-backends be4,be5: lost 8\.3% \(ideal 0%\)$/m);

  assert.deepEqual([0, 0.07, 1 / 120, 0.29166, 1, NaN].map(fmtPct), ['0%', '7%', '0.8%', '29%', '100%', '–']);
});

test('events: the report page has the new charts and notes', async (t) => {
  const r = await loadEvents();
  const html = await readFile(await renderReport(r, await tempDir(t)), 'utf8');
  assert.equal(html.match(/<svg/g)!.length, 5);
  for (const s of [
    '<figure id="chart-connections-over-time">',
    '<strong>Connections over time.</strong>',
    '<figure id="chart-event-loss">',
    '<strong>Observed vs. ideal loss per event.</strong>',
    '<strong>Connections per backend at 6 backends.</strong>',
    '<span class="note">remove-backends be4,be5: lost 33% (ideal 29%)</span>',
    '<span class="note">fairness (Jain) 0.999</span>',
  ]) {
    assert.ok(html.includes(s), s);
  }
  assert.doesNotMatch(withoutNamespaces(html), EXTERNAL);
  assert.doesNotMatch(html, /<script/i);
});

test('a traffic run that answered well under its set message rate is flagged; one at the rate is not', async () => {
  const r = await loadEvents();
  assert.ok(summaryRows(r).every((row) => !row.warnings.some((w) => /messages\/s asked for/.test(w))));
  (r.points[0]!.repetitions[1]!.metrics as TrafficLike).requestsPerSec = 200;
  const [xdp, nginx] = summaryRows(r);
  assert.ok(xdp!.warnings.includes('answered under 90% of the 300 messages/s asked for in 1 of 2 repetitions: connections were down or replies late'), xdp!.warnings.join('\n'));
  assert.ok(!nginx!.warnings.some((w) => /asked for/.test(w)));
});

// ---------------------------------------------------------------- packet rate (trafgen, iperf3 UDP)

interface RateSample {
  received: number;
  sent: number;
  loss: number;
  bits: number;
}
// The fixtures' raw counts, turned into rates the way trafgen's and iperf3's drivers do.
const trafgenRep = (sent: number, durationS: number, received: number): RateSample => ({
  received: received / durationS,
  sent: sent / durationS,
  loss: 1 - received / sent,
  bits: (received * 60 * 8) / durationS,
});
const udpRep = (durationS: number, packets: number, lost: number): RateSample => ({
  received: (packets - lost) / durationS,
  sent: packets / durationS,
  loss: lost / packets,
  bits: ((packets - lost) * 64 * 8) / durationS,
});
function rateRow(series: string, backends: number, reps: RateSample[], label: string) {
  return {
    series,
    backends,
    receivedPps: median(reps.map((x) => x.received)),
    sentPps: median(reps.map((x) => x.sent)),
    lossFraction: median(reps.map((x) => x.loss)),
    gbitPerSec: median(reps.map((x) => x.bits)) / 1e9,
    repetitions: reps.length,
    label,
  };
}
const PPS_ROWS = () => [
  rateRow('iptables-dnat', 2, [trafgenRep(611584, 2.990584, 572343), trafgenRep(598210, 2.991207, 560014)], '6.4% lost\n0.091 Gbit/s'),
  rateRow('nfqueue', 2, [trafgenRep(589402, 2.990912, 301109), trafgenRep(601877, 2.990455, 298417)], '50% lost\n0.048 Gbit/s'),
  rateRow('xdp', 2, [trafgenRep(617290, 2.990102, 617226), trafgenRep(620114, 2.990333, 620114)], '0% lost\n0.099 Gbit/s'),
];
const UDP_ROWS = () => [
  rateRow('nftables', 1, [udpRep(3.000211, 482117, 9803), udpRep(3.000187, 476530, 12044)], '2.3% lost\n0.080 Gbit/s'),
  rateRow('xdp', 1, [udpRep(3.000164, 561240, 1120), udpRep(3.000198, 558903, 398)], '0.1% lost\n0.095 Gbit/s'),
];

test('packet and UDP fixtures are valid results', async () => {
  for (const f of [PPS_FIXTURE, UDP_FIXTURE]) assert.deepEqual(resultProblems(JSON.parse(await readFile(f, 'utf8'))), [], f);
  assert.equal(rateUnit(await loadPps()), 'pps');
  assert.equal(rateUnit(await loadUdp()), 'pps');
});

test('packet rate: medians of what arrived and what was sent, loss and Gbit/s per LB', async () => {
  const pps = await loadPps();
  assert.deepEqual(packetRateData(pps), PPS_ROWS());
  const udp = await loadUdp();
  assert.deepEqual(packetRateData(udp), UDP_ROWS());

  const spec = packetRateSpec(pps) as any;
  assert.equal(spec.title.text, 'Packet rate and loss per load balancer');
  assert.match(spec.title.subtitle[0], /at 2 backends$/);
  assert.deepEqual(spec.data.values, PPS_ROWS());
  assert.deepEqual(spec.layer.map((l: any) => l.mark.type), ['bar', 'tick', 'text']);
  assert.equal(enc(spec, 'x', 0).field, 'series');
  assert.deepEqual(enc(spec, 'x', 0).sort, PPS_LBS);
  assert.deepEqual([0, 1, 2].map((i) => enc(spec, 'y', i).field), ['receivedPps', 'sentPps', 'labelAt']);
  assert.match(enc(spec, 'y', 0).title, /\(pps/);
  assert.equal(enc(spec, 'text', 2).field, 'label');
  assert.deepEqual(enc(spec, 'color', 0).scale.domain, PPS_LBS);
  assert.match((packetRateSpec(udp) as any).title.subtitle[0], /at 1 backend$/);
  assert.deepEqual(enc(packetRateSpec(udp), 'color', 0).scale.domain, UDP_LBS);
});

test('packet rate: each LB at its largest backend count with packet data', async () => {
  const r = await loadPps();
  const smaller = structuredClone(r.points[2]!);
  smaller.id = 'xdp/backends=1';
  smaller.params.backends = 1;
  for (const x of smaller.repetitions) if ('packets' in x.metrics) x.metrics.packets.receivedPerSec = 1;
  r.points.push(smaller);
  assert.deepEqual(packetRateData(r), PPS_ROWS());

  // An LB that failed at the largest count is shown at the largest count it has data for, and said so.
  const failed = r.points[1]!;
  const fallback = structuredClone(failed);
  fallback.id = 'nfqueue/backends=1';
  fallback.params.backends = 1;
  failed.repetitions = [];
  failed.error = 'nfqueue program exited';
  r.points.splice(1, 0, fallback);
  assert.deepEqual(packetRateData(r).map((d) => [d.series, d.backends]), [['iptables-dnat', 2], ['nfqueue', 1], ['xdp', 2]]);
  assert.match((packetRateSpec(r) as any).title.subtitle[0], /each LB at its largest backend count/);
  assert.match(charts(r).find((c) => c.id === 'packet-rate')!.caption, /each LB at its largest backend count/);
});

test('packet rate: charts() adds it for packet and UDP results only', async () => {
  const pps = await loadPps();
  const before = structuredClone(pps);
  assert.deepEqual(charts(pps).map((c) => c.id), ['throughput', 'packet-rate', 'distribution']);
  assert.deepEqual(pps, before);
  const ppsChart = charts(pps).find((c) => c.id === 'packet-rate')!;
  assert.equal(ppsChart.title, 'Packet rate and loss per load balancer');
  assert.match(ppsChart.caption, /arrived at the backends \(bars\) against what the generator sent \(black ticks\)/);
  assert.match(ppsChart.caption, /what the LB \(or the path\) dropped/);
  assert.match(ppsChart.caption, /trafgen runs on this host .* veth .* sender's context/);

  const udp = await loadUdp();
  // iperf3 puts all of a point on be0 whatever the LB: no distribution chart.
  assert.deepEqual(charts(udp).map((c) => c.id), ['throughput', 'packet-rate']);
  assert.deepEqual(distributionData(udp), []);
  const udpChart = charts(udp).find((c) => c.id === 'packet-rate')!;
  assert.match(udpChart.caption, /for iperf3, of UDP payload; sent is the datagrams iperf3 counted, arrived plus lost/);
  assert.doesNotMatch(udpChart.caption, /trafgen/);
  assert.doesNotMatch(udpChart.caption, /\s$/);

  // TCP streams have no packet counts: Gbit/s is their headline and there is nothing to add.
  const tcp = await loadUdp();
  for (const p of tcp.points) for (const x of p.repetitions) {
    if (!('stream' in x.metrics)) continue;
    delete x.metrics.stream.udp;
    x.metrics.stream.protocol = 'tcp';
    x.metrics.stream.retransmits = 12;
  }
  assert.deepEqual(resultProblems(tcp), []);
  assert.equal(rateUnit(tcp), 'Gbit/s');
  assert.deepEqual(packetRateData(tcp), []);
  assert.deepEqual(charts(tcp).map((c) => c.id), ['throughput']);
  assert.deepEqual(summaryRows(tcp)[0]!.notes, ['12 TCP retransmits']);

  // Request results are unchanged.
  assert.deepEqual(charts(await load()).map((c) => c.id), ['throughput', 'latency-cdf', 'distribution']);
  assert.deepEqual(charts(await loadEvents()).map((c) => c.id), ['throughput', 'latency-cdf', 'distribution', 'connections-over-time', 'event-loss']);
  assert.equal(packetRateSpec(await load()), null);
  assert.deepEqual(packetRateData(await loadEvents()), []);
});

test('packet and UDP results: throughput in pps, packets per backend, no latency CDF', async () => {
  const pps = await loadPps();
  const t = throughputData(pps);
  assert.deepEqual(t.map((d) => [d.series, d.backends, d.repetitions]), PPS_LBS.map((lb) => [lb, 2, 2]));
  assert.deepEqual(t.map((d) => d.median), PPS_ROWS().map((d) => d.receivedPps));
  assert.match(enc(throughputSpec(pps), 'y', 1).title, /^Packets\/s that arrived/);
  assert.deepEqual(latencyCdfData(pps), []);
  assert.equal(latencyCdfSpec(pps), null);

  assert.equal(distributionUnit(pps), 'packets');
  const dist = distributionData(pps);
  assert.deepEqual(dist.map((d) => [d.series, d.backend]), PPS_LBS.flatMap((lb) => [[lb, 'be0'], [lb, 'be1']]));
  assert.deepEqual(dist[0], { series: 'iptables-dnat', backend: 'be0', count: 287012 + 280144, sharePct: (100 * (287012 + 280144)) / (572343 + 560014) });
  assert.equal((distributionSpec(pps) as any).title.text, 'Packets per backend at 2 backends');
  assert.equal(enc(distributionSpec(pps), 'y', 0).title, 'Share of packets (%)');
  assert.match(charts(pps).find((c) => c.id === 'distribution')!.caption, /^Share of each load balancer's packets that arrived at each backend at 2 backends/);

  const udp = await loadUdp();
  assert.deepEqual(throughputData(udp).map((d) => d.median), UDP_ROWS().map((d) => d.receivedPps));
  assert.equal(distributionSpec(udp), null);
  assert.equal(connectionTimelineSpec(udp), null);
  assert.equal(eventLossSpec(udp), null);
});

test('packet and UDP results: every chart compiles without vega-lite warnings and renders to SVG', async () => {
  for (const r of [await loadPps(), await loadUdp()]) {
    for (const c of charts(r)) {
      assert.deepEqual(compileWarnings(c.spec), [], c.id);
      const svg = await renderSvg(c.spec);
      assert.ok(svg.startsWith('<svg'), c.id);
      for (const lb of seriesOrder(r)) assert.ok(svg.includes(lb), `${c.id} mentions ${lb}`);
    }
  }
  // Vega draws each line of a label as its own tspan.
  const pps = await renderSvg(packetRateSpec(await loadPps())!);
  for (const s of ['>6.4% lost<', '>0.091 Gbit/s<', '>50% lost<', '>0.048 Gbit/s<', '>0% lost<', '>0.099 Gbit/s<']) assert.ok(pps.includes(s), s);
  const udp = await renderSvg(packetRateSpec(await loadUdp())!);
  for (const s of ['>2.3% lost<', '>0.080 Gbit/s<', '>0.1% lost<', '>0.095 Gbit/s<']) assert.ok(udp.includes(s), s);
});

test('packet and UDP results: summary rows in pps with loss in the notes, latency –', async () => {
  const pps = summaryRows(await loadPps());
  const rows = PPS_ROWS();
  assert.deepEqual(pps.map((x) => x.series), PPS_LBS);
  for (const [i, row] of pps.entries()) {
    assert.equal(row.rps.median, rows[i]!.receivedPps);
    assert.ok(row.rps.min < row.rps.median && row.rps.median < row.rps.max, row.series);
    assert.ok(Number.isNaN(row.latencyUs.p50) && Number.isNaN(row.latencyUs.p99), row.series);
    assert.equal(row.errorsTotal, 0);
    assert.deepEqual(row.warnings, ['only 2 repetitions: raise repetitions to ≥ 3']);
  }
  assert.deepEqual(pps.map((x) => x.notes), [
    ['sent 202,246 pps, lost 6.4%, 0.091 Gbit/s of 60-byte frames'],
    ['sent 199,165 pps, lost 50%, 0.048 Gbit/s of 60-byte frames'],
    ['sent 206,909 pps, lost 0%, 0.099 Gbit/s of 60-byte frames'],
  ]);

  const udp = summaryRows(await loadUdp());
  assert.deepEqual(udp.map((x) => x.rps.median), UDP_ROWS().map((d) => d.receivedPps));
  assert.ok(udp.every((x) => Number.isNaN(x.latencyUs.p50) && x.errorsTotal === 0));
  assert.deepEqual(udp.map((x) => x.notes), [['UDP: lost 2.3%, jitter 0.007 ms, 0.080 Gbit/s'], ['UDP: lost 0.1%, jitter 0.004 ms, 0.095 Gbit/s']]);

  const lines = summaryTable(await loadPps()).split('\n');
  assert.match(lines[1]!, /^LB\s+backends\s+pps\s+min–max\s+CV%\s+p50 ms\s+p99 ms\s+errors/);
  assert.match(lines[3]!, /^iptables-dnat\s+2\s+189,301\s+187,220–191,382\s+1\.6\s+–\s+–\s+0\s+2\s+only 2 repetitions.*; sent 202,246 pps, lost 6\.4%/);
});

test('packet results: the report page has the packet-rate chart and a pps table', async (t) => {
  const r = await loadPps();
  const html = await readFile(await renderReport(r, await tempDir(t)), 'utf8');
  assert.equal(html.match(/<svg/g)!.length, 3);
  for (const s of [
    '<figure id="chart-packet-rate">',
    '<strong>Packet rate and loss per load balancer.</strong>',
    '<strong>Packets per backend at 2 backends.</strong>',
    '<th class="num">pps (median)</th>',
    '<span class="note">sent 199,165 pps, lost 50%, 0.048 Gbit/s of 60-byte frames</span>',
  ]) {
    assert.ok(html.includes(s), s);
  }
  assert.match(html, /<td>xdp<\/td><td class="num">2<\/td><td class="num">206,898<\/td>.*?<td class="num">–<\/td><td class="num">–<\/td>/);
  assert.doesNotMatch(withoutNamespaces(html), EXTERNAL);
});
