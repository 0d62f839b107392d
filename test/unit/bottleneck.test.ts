// Bottleneck attribution and the CPU summaries, on sampler data recorded here: a run of router,
// nginx L4 and XDP on the 2-core netns topology (sampled-run.json), two busy loops sharing one CPU
// (each ran half of it and waited the other half), a busy loop alone, and an iperf3 stream at
// 200 Mbit/s.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { compile } from 'vega-lite';
import { attribute, processUse, type BottleneckInput } from '../../harness/sampler/bottleneck.ts';
import { bottleneckOf, cpuPerMillion } from '../../harness/sampler/point.ts';
import { parseSamplerOutput } from '../../harness/sampler/proc.ts';
import { samplesOf } from '../../harness/sampler/series.ts';
import { readResult } from '../../harness/results/reader.ts';
import { charts, cpuCostData, cpuCostSpec, cpuData, cpuSpec, linkCeiling, loadCpuData, loadCpuSpec, rateOf, summaryRows, throughputSpec } from '../../harness/report/specs.ts';
import { limitText } from '../../harness/report/html.ts';

const sampled = (name: string) => samplesOf(parseSamplerOutput(readFileSync(new URL(`../fixtures/sampler/${name}`, import.meta.url), 'utf8')));
const STARVED = sampled('two-loops-one-cpu.txt');
const BUSY = sampled('netns-busy-loop.txt');
const IPERF = sampled('netns-iperf3-200m.txt');
const RUN = new URL('../fixtures/results/sampled-run.json', import.meta.url).pathname;

const base: BottleneckInput = { samples: {}, generatorThreads: 1, backendWorkers: 1, backends: [] };

test('bottleneck: two processes sharing one CPU each ran half and waited half', () => {
  const u = processUse(STARVED);
  assert.ok(u.ran > 0.9 && u.ran < 1.05, `ran ${u.ran}`);
  assert.ok(u.waited > 0.9 && u.waited < 1.05, `waited ${u.waited}`);
});

test('bottleneck: a starved generator, a busy LB, a busy backend, a full link — and the order', () => {
  const gen = attribute({ ...base, samples: { client: STARVED } });
  assert.equal(gen.verdict, 'generator');
  assert.match(gen.evidence[0]!, /^generator: [01]\.\d\d of 1 cores \(\+[01]\.\d\d waiting for a CPU\)$/);
  // As a user-space LB with two workers: it wanted both CPUs' worth.
  assert.equal(attribute({ ...base, samples: { lb: STARVED }, lbWorkers: 2 }).verdict, 'lb');
  assert.equal(attribute({ ...base, samples: { lb: STARVED }, lbWorkers: 4 }).verdict, 'unknown');
  // Kernel datapaths have no workers: process CPU on the LB node says nothing about them.
  assert.equal(attribute({ ...base, samples: { lb: STARVED } }).verdict, 'unknown');
  const be = attribute({ ...base, samples: { be3: BUSY }, backends: ['be3'] });
  assert.equal(be.verdict, 'backend');
  assert.match(be.evidence.find((e) => e.startsWith('backend'))!, /busiest be3 0\.9\d of 1 cores/);
  assert.equal(attribute({ ...base, samples: { be3: BUSY }, backends: ['be3'], backendWorkers: 4 }).verdict, 'unknown');
  const link = attribute({ ...base, samples: { lb: IPERF }, linkBitsPerSec: 200e6 });
  assert.equal(link.verdict, 'link');
  assert.match(link.evidence.find((e) => e.startsWith('link'))!, /^link: 1[89]\d\.\d of 200\.0 Mbit\/s \(lbbvb in\)$/);
  assert.equal(attribute({ ...base, samples: { lb: IPERF }, linkBitsPerSec: 1e9 }).verdict, 'unknown');
  // Generator first: with a starved generator every other limit is the generator's too.
  assert.equal(attribute({ ...base, samples: { client: STARVED, lb: IPERF }, linkBitsPerSec: 200e6 }).verdict, 'generator');
  assert.equal(attribute({ ...base, generatorSaturated: true }).verdict, 'generator');
  assert.ok(attribute({ ...base, generatorSaturated: true }).evidence.includes('generator: fell behind its set rate'));
});

test('bottleneck: the verdicts stored in a recorded run follow from its samples', async () => {
  const r = await readResult(RUN);
  for (const p of r.points) {
    for (const rep of p.repetitions) {
      const again = bottleneckOf(rep.samples!, { lb: p.lb, generatorThreads: 1, backendWorkers: 1, backends: Object.keys(rep.samples!).filter((k) => /^be\d+$/.test(k)) });
      assert.deepEqual(again, rep.bottleneck, p.id);
    }
  }
});

test('CPU per million: user-space LBs by their processes, kernel datapaths only on a node of their own', async () => {
  const r = await readResult(RUN);
  const nginx = r.points.find((p) => p.lb.kind === 'nginx')!;
  const xdp = r.points.find((p) => p.lb.kind === 'xdp')!;
  assert.ok(nginx.cpuPerMillion! > 0);
  assert.equal(xdp.cpuPerMillion, undefined);
  const rep = xdp.repetitions[0]!;
  assert.equal(cpuPerMillion(rep.samples!.lb, rateOf(rep), false, false), undefined);
  const own = cpuPerMillion(rep.samples!.lb, rateOf(rep), true, false)!;
  const busy = rep.samples!.lb!.reduce((a, s) => a + s.cpu.busy, 0) / rep.samples!.lb!.length;
  assert.ok(Math.abs(own - (busy / rateOf(rep)) * 1e6) < 1e-9);
  assert.equal(cpuPerMillion(rep.samples!.lb, 0, true, false), undefined);
});

test('report: CPU chart and the limit column from the samples', async () => {
  const r = await readResult(RUN);
  const d = cpuData(r);
  assert.deepEqual([...new Set(d.map((x) => x.series))], ['router', 'nginx-l4', 'xdp']);
  assert.ok(d.some((x) => x.series === 'nginx-l4' && x.part === 'LB node' && x.cores > 0), 'nginx LB processes');
  assert.ok(!d.some((x) => x.series === 'xdp' && x.part === 'LB node'), 'no LB processes for XDP');
  for (const x of d.filter((x) => x.part === 'softirq')) assert.ok(x.cores > 0 && x.cores <= r.host.cpus);
  compile(cpuSpec(r)!);
  const rows = summaryRows(r);
  for (const row of rows) {
    assert.ok(row.limit, row.pointId);
    assert.match(limitText(row), /^(generator|lb|backend|link|unknown)( \(\d\/2\))?$/);
  }
  const gen = rows.filter((x) => x.limit!.verdict === 'generator');
  for (const row of gen) assert.ok(row.warnings.some((w) => /^generator-bound in \d of 2 repetitions/.test(w)));
});

test('scenario: samplers default to every second, can be slowed or turned off, not made frantic', async () => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { loadScenario } = await import('../../harness/scenario/load.ts');
  const dir = await mkdtemp(join(tmpdir(), 'lbb-samplers-'));
  try {
    const load = async (extra: string) => {
      await writeFile(join(dir, 's.yaml'), `name: s\nloadBalancers: [{kind: router}]\n${extra}\n`);
      return loadScenario(join(dir, 's.yaml'));
    };
    assert.deepEqual((await load('')).samplers, { interval: 1 });
    assert.deepEqual((await load('samplers: {interval: 500ms}')).samplers, { interval: 0.5 });
    assert.equal((await load('samplers: false')).samplers, false);
    await assert.rejects(load('samplers: {interval: 10ms}'), (e: { problems?: string[] }) => {
      assert.match(e.problems?.join('\n') ?? '', /s\.yaml:3:\d+: samplers: a sampler interval below 0\.2s costs more than it tells; write "1s" or "0\.5s"/);
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('link ceiling: linkRate over the measured bits per request, drawn on the throughput chart', async () => {
  const r = await readResult(new URL('../fixtures/results/link-shaped-run.json', import.meta.url).pathname);
  const c = linkCeiling(r)!;
  assert.equal(c.linkBitsPerSec, 20e6);
  // An HTTP request and its small response: a few hundred bytes on the wire, not a few or a few thousand.
  assert.ok(c.bitsPerUnit > 8 * 150 && c.bitsPerUnit < 8 * 1000, `${c.bitsPerUnit} bits per request`);
  assert.ok(Math.abs(c.rate - 20e6 / c.bitsPerUnit) < 1e-6);
  // Nothing measured beat the ceiling by more than the noise.
  for (const row of summaryRows(r)) assert.ok(row.rps.max <= c.rate * 1.05, `${row.pointId} ${row.rps.max} > ${c.rate}`);
  const spec = throughputSpec(r)! as { layer: { mark: { type: string }; encoding: { y?: { datum?: number } } }[] };
  const rule = spec.layer.find((l) => l.mark.type === 'rule')!;
  assert.equal(rule.encoding.y!.datum, c.rate);
  compile(throughputSpec(r)!);
  assert.match(charts(r).find((x) => x.id === 'throughput')!.caption, /dashed red line is the link's ceiling/);
  // Without a link rate there is no ceiling.
  assert.equal(linkCeiling(await readResult(RUN)), undefined);
});

test('report: CPU cost per million and load with CPU over time, from the samples', async () => {
  const r = await readResult(RUN);
  assert.deepEqual(cpuCostData(r).map((d) => d.series), ['nginx-l4'], 'only the user-space LB has a measurable cost on one host');
  assert.ok(cpuCostData(r)[0]!.cpuPerMillion === r.points.find((p) => p.lb.kind === 'nginx')!.cpuPerMillion);
  const lc = loadCpuData(r);
  for (const series of ['router', 'nginx-l4', 'xdp']) {
    const pps = lc.filter((d) => d.series === series && d.measure.startsWith('packets'));
    const cpu = lc.filter((d) => d.series === series && d.measure.startsWith('CPU'));
    assert.ok(pps.length >= 2 && pps.length === cpu.length, series);
    assert.ok(pps.some((d) => d.value > 1000), `${series}: thousands of packets/s arrived at the LB`);
    for (const d of cpu) assert.ok(d.value >= 0 && d.value <= r.host.cpus + 0.05);
  }
  for (const spec of [cpuCostSpec(r)!, loadCpuSpec(r)!]) compile(spec);
  assert.deepEqual(charts(r).map((c) => c.id), ['throughput', 'latency-cdf', 'distribution', 'cpu', 'cpu-cost', 'load-cpu']);
  // A result without samples has none of the CPU charts.
  const plain = await readResult(new URL('../fixtures/results/synthetic-run.json', import.meta.url).pathname);
  assert.ok(!charts(plain).some((c) => c.id.startsWith('cpu') || c.id === 'load-cpu'));
});
