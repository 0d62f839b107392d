import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareRuns, environmentWarnings, overallVerdict, pointKey } from '../../harness/compare/compare.ts';
import { formatJson, formatMarkdown, formatTable } from '../../harness/compare/format.ts';
import { checkThresholds, parseThreshold, type Threshold } from '../../harness/compare/thresholds.ts';
import { readResult } from '../../harness/results/reader.ts';
import { main } from '../../harness/cli.ts';
import type { RunResult } from '../../harness/results/types.ts';

const FIXTURE = new URL('../fixtures/results/synthetic-run.json', import.meta.url).pathname;

/** A run whose every request metric is the fixture's times `scale[lb]` and whose latency is divided by it; rep i gets a small fixed wobble. */
async function scaled(scale: Record<string, number>, reps = 6, wobble = 0.01): Promise<RunResult> {
  const r = structuredClone(await readResult(FIXTURE));
  for (const p of r.points) {
    const f = scale[p.lb.name] ?? 1;
    const first = p.repetitions[0]!;
    p.repetitions = Array.from({ length: reps }, (_, i) => {
      const w = 1 + wobble * (((i * 7) % 5) - 2) / 2;
      const m = structuredClone(first.metrics) as { requestsPerSec: number; latencyUs: Record<string, number> };
      m.requestsPerSec *= f * w;
      for (const k of Object.keys(m.latencyUs)) m.latencyUs[k] = m.latencyUs[k]! / (f * w);
      return { ...structuredClone(first), index: i, metrics: m as never };
    });
  }
  return r;
}

test('the same numbers twice: no change on every metric (A/A)', async () => {
  const a = await scaled({});
  const { comparisons, unmatched } = compareRuns(a, await scaled({}));
  assert.deepEqual(unmatched, []);
  assert.equal(comparisons.length, 9 * 3, '9 points × req/s, p50, p99');
  assert.ok(comparisons.every((c) => c.verdict === 'no change'), comparisons.filter((c) => c.verdict !== 'no change').map((c) => `${c.lb} ${c.metric} ${c.verdict}`).join('\n'));
  assert.equal(overallVerdict(comparisons), 'no change');
});

test('nginx-l7 20% slower: regressed on its throughput and latency, the others no change', async () => {
  const { comparisons } = compareRuns(await scaled({}), await scaled({ 'nginx-l7': 0.8 }));
  for (const c of comparisons) {
    const expected = c.lb === 'nginx-l7' ? 'regressed' : 'no change';
    assert.equal(c.verdict, expected, `${c.lb} ${JSON.stringify(c.params)} ${c.metric}: ratio ${c.ratio} [${c.ciLow}, ${c.ciHigh}] p ${c.p}`);
    if (c.lb === 'nginx-l7' && c.metric === 'req_per_s') assert.ok(Math.abs(c.ratio - 0.8) < 0.01);
    if (c.lb === 'nginx-l7' && c.metric === 'latency.p99') assert.ok(c.ratio > 1.2, 'latency is lower-is-better: a higher ratio regresses');
  }
  assert.equal(overallVerdict(comparisons), 'regressed');
});

test('faster is improved; too few repetitions is inconclusive, with a warning that says what to do', async () => {
  const better = compareRuns(await scaled({}), await scaled({ router: 1.3 }));
  assert.ok(better.comparisons.filter((c) => c.lb === 'router').every((c) => c.verdict === 'improved'));
  assert.equal(overallVerdict(better.comparisons), 'improved');
  const few = compareRuns(await scaled({}, 2), await scaled({ router: 1.3 }, 2));
  assert.ok(few.comparisons.every((c) => c.verdict === 'inconclusive'));
  assert.match(few.comparisons[0]!.warnings.join('\n'), /only 2 repetitions — use repetitions: 5 or more/);
});

test('points are matched by LB and params; different hosts are warned about', async () => {
  const a = await scaled({});
  const b = await scaled({});
  b.points = b.points.filter((p) => p.lb.name !== 'haproxy-http');
  b.points[0]!.params = { ...b.points[0]!.params, connections: 64 };
  b.host = { ...b.host, kernel: '6.1.0-99-amd64', sysctls: { ...b.host.sysctls, 'net.core.somaxconn': '1' } };
  const { comparisons, unmatched } = compareRuns(a, b);
  assert.deepEqual(unmatched, [b.points[0]!.id]);
  assert.equal(comparisons.length, 5 * 3);
  const w = environmentWarnings(a, b);
  assert.ok(w.some((x) => x.startsWith('kernel differs: ')), w.join('\n'));
  assert.ok(w.some((x) => x.startsWith('sysctl net.core.somaxconn differs')), w.join('\n'));
  assert.notEqual(pointKey(a.points[0]!), pointKey(b.points[0]!));
});

test('different topologies are warned about, key by key, with the remedy', async () => {
  const a = await scaled({});
  assert.deepEqual(environmentWarnings(a, await scaled({})), []);
  const b = await scaled({});
  b.scenario = { ...b.scenario, topology: { ...(b.scenario.topology as object), linkRate: 20_000_000, backendWorkers: 2 } };
  assert.deepEqual(environmentWarnings(a, b), [
    'topology backendWorkers differs: 1 vs 2 — the runs measured different topologies; run both on the same one unless the topology is what you compare',
    'topology linkRate differs: unset vs 20000000 — the runs measured different topologies; run both on the same one unless the topology is what you compare',
  ]);
  // A result without a recorded topology (or with a name only) is not a crash.
  const c = await scaled({});
  c.scenario = {};
  assert.equal(environmentWarnings(a, c).length, 3);
});

test('outputs: table, markdown and the documented JSON shape', async () => {
  const { comparisons } = compareRuns(await scaled({}), await scaled({ 'nginx-l7': 0.8 }));
  const report = { base: 'A', candidate: 'B', verdict: overallVerdict(comparisons), comparisons, warnings: [] };
  assert.match(formatTable(report), /^B vs A: REGRESSED\nLB +params +metric +base +candidate +change +95% CI +p +verdict\n/);
  assert.match(formatTable(report), /nginx-l7 +connections=32 threads=1 backends=1|nginx-l7 +backends=1 connections=32 threads=1/);
  const md = formatMarkdown(report);
  assert.match(md, /^### lbbench: 🔴 regressed\n/);
  assert.match(md, /\| nginx-l7 \| .* \| req_per_s \| .* \| -20\.0% \| .* \| 🔴 regressed \|/);
  const json = JSON.parse(formatJson(report));
  assert.equal(json.verdict, 'regressed');
  const c = json.comparisons.find((x: { lb: string; metric: string }) => x.lb === 'nginx-l7' && x.metric === 'req_per_s');
  for (const k of ['lb', 'params', 'metric', 'base', 'candidate', 'ratio', 'ciLow', 'ciHigh', 'p', 'verdict']) assert.ok(k in c, k);
});

test('CLI: exit 0 without a regression, 10 with one, 2 for bad input; --format json parses', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lbb-compare-'));
  const write = async (name: string, r: RunResult) => {
    await mkdir(join(dir, name));
    await writeFile(join(dir, name, 'result.json'), JSON.stringify(r));
    return join(dir, name);
  };
  const a = await write('a', await scaled({}));
  const same = await write('same', await scaled({}));
  const worse = await write('worse', await scaled({ router: 0.7 }));
  const run = async (...args: string[]) => {
    const out: string[] = [];
    const code = await main(['compare-reports', ...args], { out: (s) => out.push(s), err: (s) => out.push(s) });
    return { code, out: out.join('\n') };
  };
  assert.equal((await run(a, same)).code, 0);
  const bad = await run(a, same, worse, '--format', 'json');
  assert.equal(bad.code, 10, bad.out);
  const [first, second] = bad.out.split(/\n(?=\{)/).map((t) => JSON.parse(t));
  assert.deepEqual([first.verdict, second.verdict], ['no change', 'regressed']);
  assert.equal((await run(a, join(dir, 'missing'))).code, 2);
  const t = await run(a, same, '--threshold', '3');
  assert.equal(t.code, 2);
  assert.match(t.out, /--threshold 3: expected a fraction such as 0\.05/);
});

test('thresholds: parsed with units, checked on each point\'s median, errors say what to write', async () => {
  assert.deepEqual(parseThreshold('latency.p99 < 5ms'), { expr: 'latency.p99 < 5ms', metric: 'latency.p99', op: '<', value: 5000 });
  assert.deepEqual(parseThreshold('req_per_s >= 50k'), { expr: 'req_per_s >= 50k', metric: 'req_per_s', op: '>=', value: 50000 });
  assert.deepEqual(parseThreshold('connection_loss < 30%'), { expr: 'connection_loss < 30%', metric: 'connection_loss', op: '<', value: 0.3 });
  assert.match(parseThreshold('rps > 5') as string, /^unknown metric "rps"; valid: req_per_s, /);
  assert.match(parseThreshold('latency.p99 < 5') as string, /give latency\.p99 a unit: "5ms" or "5us"/);
  assert.match(parseThreshold('req_per_s > 5ms') as string, /not a latency/);
  assert.match(parseThreshold('fast please') as string, /^expected "<metric> <op> <value>"/);
  const r = await scaled({ 'nginx-l7': 0.5 });
  const rps = (await readResult(FIXTURE)).points.find((p) => p.lb.name === 'nginx-l7')!.repetitions[0]!.metrics as { requestsPerSec: number };
  const limit = parseThreshold(`req_per_s > ${Math.round(rps.requestsPerSec * 0.7)}`) as Threshold;
  const checked = checkThresholds(r, [limit]);
  assert.equal(checked.length, 9);
  assert.deepEqual(checked.filter((c) => !c.ok).map((c) => c.point).sort(), ['nginx-l7/backends=1', 'nginx-l7/backends=2', 'nginx-l7/backends=4'].filter((id) => checked.some((c) => c.point === id && c.actual <= limit.value)));
  assert.ok(checked.some((c) => !c.ok));
});
