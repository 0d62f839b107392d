// Scenario thresholds on a real run: a threshold no LB can meet makes `lbbench run` exit 99 with
// the violations listed; thresholds that hold leave the exit code alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { missingCapability, runScenarioCli } from './helpers.ts';

test('thresholds: exit 99 and the list when violated, 0 when they hold', { skip: missingCapability(['ip', 'nginx', 'wrk']), timeout: 120_000 }, async () => {
  const scenario = (thresholds: string) => ['name: thresholds-e2e', 'loadBalancers: [{kind: router}]', 'load: {duration: 1s, warmup: 0.3s}', 'repetitions: 1', `thresholds: ${thresholds}`];
  const bad = await runScenarioCli(scenario('["req_per_s > 1e9", "latency.p99 < 10s"]'));
  assert.equal(bad.code, 99, bad.out);
  assert.match(bad.out, /thresholds: 1 violated\n {2}✗ router\/backends=1: req_per_s > 1e9 \(median [\d,]+\)/);
  const good = await runScenarioCli(scenario('["req_per_s > 10", "latency.p99 < 10s"]'));
  assert.equal(good.code, 0, good.out);
  assert.match(good.out, /thresholds: all 2 hold at every point/);
});
