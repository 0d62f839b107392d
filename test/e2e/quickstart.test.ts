// The quickstart scenario, short: every LB kind on real namespaces with real nginx/haproxy/wrk,
// through the CLI in-process, then the result file and the report are checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../harness/cli.ts';
import { readResult } from '../../harness/results/reader.ts';
import { resultProblems } from '../../harness/results/schema.ts';
import { charts } from '../../harness/report/specs.ts';
import { missingCapability, namespacesWithPrefix } from './helpers.ts';
import type { RequestMetrics } from '../../harness/results/types.ts';

const skip = missingCapability(['ip', 'nginx', 'wrk', 'haproxy', 'iptables', 'nft']);

test('quickstart, 1 s points: every LB serves, spreads over all backends, result validates, report has every chart', { skip, timeout: 600_000 }, async () => {
  const work = await mkdtemp(join(tmpdir(), 'lbb-e2e-'));
  const out: string[] = [];
  const io = { out: (s: string) => out.push(s), err: (s: string) => out.push(s) };
  const code = await main(
    ['run', 'scenarios/quickstart.yaml', '--duration', '1s', '--warmup', '0.3s', '--repetitions', '1', '--out', join(work, 'results'), '--reports', join(work, 'reports')],
    io,
  );
  const text = out.join('\n');
  assert.equal(code, 0, text);
  assert.match(text, /\[1\/21\] router\/backends=1/, 'progress lines');
  assert.match(text, /report: .*index\.html/);

  const [runId] = await readdir(join(work, 'results'));
  const raw = JSON.parse(await readFile(join(work, 'results', runId!, 'result.json'), 'utf8'));
  assert.deepEqual(resultProblems(raw), [], 'result.json matches the result contract');
  const result = await readResult(join(work, 'results', runId!));
  assert.equal(result.status, 'complete');
  assert.equal(result.points.length, 21);
  assert.deepEqual(namespacesWithPrefix(`lbb-${runId!.slice(-4)}-`), [], 'namespaces torn down');

  const names = new Set(result.points.map((p) => p.lb.name));
  assert.deepEqual([...names].sort(), ['haproxy-http', 'haproxy-tcp', 'iptables-dnat', 'nftables', 'nginx-l4', 'nginx-l7', 'router']);
  for (const p of result.points) {
    assert.equal(p.error, undefined, `${p.id} failed: ${p.error}`);
    assert.ok(p.lbDescribe?.config, `${p.id} has a config dump`);
    const [rep0] = p.repetitions;
    assert.ok(rep0, `${p.id} has a repetition`);
    const rep = rep0 as typeof rep0 & { metrics: RequestMetrics };
    assert.ok(rep.metrics.requestsPerSec > 0, `${p.id} req/s > 0`);
    assert.ok(rep.raw.stdout.includes('Requests/sec'), `${p.id} keeps wrk's raw output`);
    const served = Object.values(rep.metrics.perBackend);
    assert.equal(served.length, p.params.backends, `${p.id}: one counter per backend`);
    if (p.lb.kind === 'router') {
      assert.ok(served[0]! > 0, `${p.id}: the baseline serves from be0`);
    } else {
      for (const [be, n] of Object.entries(rep.metrics.perBackend)) assert.ok(n > 0, `${p.id}: ${be} served nothing: ${JSON.stringify(rep.metrics.perBackend)}`);
    }
    // The backends' own counters and wrk's count must describe the same requests (warm-up excluded).
    const total = served.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - rep.metrics.requests) <= Math.max(50, rep.metrics.requests * 0.05), `${p.id}: backends counted ${total}, wrk ${rep.metrics.requests}`);
  }

  const html = await readFile(join(work, 'reports', runId!, 'index.html'), 'utf8');
  const expectedCharts = charts(result).length;
  assert.ok(expectedCharts >= 3, 'throughput, latency CDF, distribution');
  assert.equal((html.match(/<svg/g) ?? []).length, expectedCharts, 'one SVG per chart');
  for (const n of names) assert.ok(html.includes(n), `report mentions ${n}`);
});
