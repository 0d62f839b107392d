import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PROJECT_ROOT, loadScenario, parseScenarioText } from '../../harness/scenario/load.ts';
import { describePlan, formatSeconds, plan } from '../../harness/scenario/plan.ts';
import type { Scenario } from '../../harness/scenario/schema.ts';

const scenario = (...lines: string[]): Promise<Scenario> =>
  parseScenarioText(['name: p', 'topology: {}', ...lines].join('\n') + '\n', 'p.yaml');

test('quickstart: 7 LBs × 3 backend counts, LB order first, backends as written', async () => {
  const points = plan(await loadScenario(join(PROJECT_ROOT, 'scenarios', 'quickstart.yaml')));
  assert.equal(points.length, 21);
  assert.deepEqual(
    points.slice(0, 4).map((p) => p.id),
    ['router/backends=1', 'router/backends=2', 'router/backends=4', 'iptables-dnat/backends=1'],
  );
  assert.equal(points.at(-1)!.id, 'haproxy-http/backends=4');
  assert.deepEqual(points[13]!.params, { backends: 2, connections: 32, threads: 1 });
  assert.equal(points[13]!.id, 'nginx-l7/backends=2');
  assert.deepEqual(points[13]!.lb, { kind: 'nginx', mode: 'l7', workers: 1, upstreamKeepalive: true, name: 'nginx-l7' });
  assert.ok(points.every((p) => p.repetitions === 3));
  assert.equal(new Set(points.map((p) => p.id)).size, points.length);
});

test('backends keep the order written; connections and threads come from load when not swept', async () => {
  const s = await scenario('loadBalancers: [{kind: router}]', 'sweep: {backends: [4, 1]}', 'load: {connections: 10, threads: 2}');
  assert.deepEqual(
    plan(s).map((p) => [p.id, p.params]),
    [
      ['router/backends=4', { backends: 4, connections: 10, threads: 2 }],
      ['router/backends=1', { backends: 1, connections: 10, threads: 2 }],
    ],
  );
});

test('swept axes nest backends > connections > threads and appear in the id', async () => {
  const s = await scenario(
    'loadBalancers: [{kind: nginx, mode: l4}, {kind: router, name: base}]',
    'sweep: {backends: [1, 2], connections: [8, 64], threads: [1, 2]}',
    'repetitions: 5',
  );
  const points = plan(s);
  assert.equal(points.length, 2 * 2 * 2 * 2);
  assert.deepEqual(
    points.slice(0, 5).map((p) => p.id),
    [
      'nginx-l4/backends=1,connections=8,threads=1',
      'nginx-l4/backends=1,connections=8,threads=2',
      'nginx-l4/backends=1,connections=64,threads=1',
      'nginx-l4/backends=1,connections=64,threads=2',
      'nginx-l4/backends=2,connections=8,threads=1',
    ],
  );
  assert.equal(points[8]!.id, 'base/backends=1,connections=8,threads=1');
  assert.ok(points.every((p) => p.repetitions === 5));
});

test('only the axes listed under sweep are in the id, even with a single value', async () => {
  const s = await scenario('loadBalancers: [{kind: router}]', 'sweep: {threads: [2]}', 'load: {connections: 16}');
  assert.deepEqual(
    plan(s).map((p) => [p.id, p.params]),
    [['router/backends=1,threads=2', { backends: 1, connections: 16, threads: 2 }]],
  );
});

test('plan is pure: same input, same output, input untouched', async () => {
  const s = await scenario('loadBalancers: [{kind: router}, {kind: nftables}]', 'sweep: {backends: [1, 3]}');
  const before = structuredClone(s);
  assert.deepEqual(plan(s), plan(s));
  assert.deepEqual(s, before);
});

test('describePlan counts points and measurements and estimates the time', async () => {
  const quick = plan(await loadScenario(join(PROJECT_ROOT, 'scenarios', 'quickstart.yaml')));
  // 21 points × 3 repetitions × (1s warm-up + 5s + 1s settle) = 441s
  assert.equal(
    describePlan(quick),
    '21 points (7 load balancers × backends 1,2,4) × 3 repetitions = 63 measurements, about 7m21s plus setup',
  );
  const swept = await scenario(
    'loadBalancers: [{kind: router}]',
    'sweep: {connections: [8, 64]}',
    'load: {duration: 2s, warmup: 500ms}',
    'settle: 0.5',
    'repetitions: 1',
  );
  assert.equal(
    describePlan(plan(swept)),
    '2 points (1 load balancer × backends 1 × connections 8,64) × 1 repetition = 2 measurements, about 6s plus setup',
  );
  assert.equal(describePlan([]), 'nothing to run: the plan has no points');
});

test('formatSeconds', () => {
  assert.deepEqual([formatSeconds(44.6), formatSeconds(60), formatSeconds(441), formatSeconds(7500)], ['45s', '1m00s', '7m21s', '2h05m']);
});
