import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, copyFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readResult } from '../../harness/results/reader.ts';
import type { RunResult } from '../../harness/results/types.ts';
import {
  charts,
  distributionData,
  distributionSpec,
  latencyCdfData,
  latencyCdfSpec,
  largestBackends,
  seriesOrder,
  summaryRows,
  throughputData,
  throughputSpec,
} from '../../harness/report/specs.ts';
import { renderSvg } from '../../harness/report/render.ts';
import { renderReport, reportFromResultDir, summaryTable } from '../../harness/report/index.ts';
import { median } from '../../harness/stats/descriptive.ts';

const FIXTURE = new URL('../fixtures/results/synthetic-run.json', import.meta.url).pathname;
const LBS = ['router', 'nginx-l7', 'haproxy-http'];

const load = () => readResult(FIXTURE);

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
  const rps = p.repetitions.map((x) => x.metrics.requestsPerSec);
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
  const at99 = p.repetitions.map((x) => x.metrics.latencyCdf.find(([pct]) => pct === 99)![1]);
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
  assert.equal(nginx[0]!.requests, p.repetitions.reduce((s, x) => s + x.metrics.perBackend.be0!, 0));

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
  const rps = p.repetitions.map((x) => x.metrics.requestsPerSec);
  assert.equal(h.rps.median, median(rps));
  assert.equal(h.rps.min, Math.min(...rps));
  assert.equal(h.repetitions, 3);
  assert.ok(h.rps.cvPct > 0 && h.rps.cvPct < 10);
  assert.equal(h.latencyUs.p99, median(p.repetitions.map((x) => x.metrics.latencyUs.p99)));
  assert.equal(h.errorsTotal, 3);
  assert.deepEqual(h.warnings, ['3 request errors']);
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
  assert.match(lines[1]!, /^LB\s+backends\s+req\/s\s+min–max\s+CV%\s+p50 ms\s+p99 ms\s+errors\s+reps\s+notes$/);
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
  r.status = 'failed';
  assert.match(summaryTable(r), /results are partial/);
});

test('charts carry titles and axis titles with units', async () => {
  const r: RunResult = await load();
  for (const c of charts(r)) {
    const s = c.spec as any;
    assert.ok(s.title?.text, c.id);
    assert.ok(s.width > 0 && s.height > 0, c.id);
    const encs = [s.encoding, ...(s.layer ?? []).map((l: any) => l.encoding)].filter(Boolean);
    const titles = encs
      .flatMap((e: any) => [e.x, e.y])
      .filter((ch: any) => ch?.type === 'quantitative' && ch.title)
      .map((ch: any) => ch.title);
    assert.ok(titles.length >= 1, c.id);
    assert.ok(titles.every((x: string) => /\(.+\)/.test(x)), `${c.id}: ${titles.join(' | ')}`);
  }
});
