// LB-count responsiveness on real namespaces: a scripted timeline of ECMP LB-node counts runs while
// the traffic tester holds connections; every step reaches the router's table (its update delay
// measured from `ip monitor`), connections on withdrawn nodes break, and the report draws
// throughput against the LB-node count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lbNodesData, routeUpdateData } from '../../harness/report/experiment-specs.ts';
import { missingCapability, runScenarioOk } from './helpers.ts';

const skip = missingCapability(['ip', 'node', 'bird']);

test('an LB-node timeline 5 → 2 → 5 → 3 under load: each step applied and timed, withdrawn nodes lose their connections, one chart', { skip, timeout: 300_000 }, async () => {
  const r = await runScenarioOk([
    'name: lb-count-e2e',
    'topology: {kind: netns}',
    'loadBalancers: [{kind: ecmp, name: ecmp-static, nexthops: classic}, {kind: ecmp, name: ecmp-bgp, mode: bgp}]',
    'sweep: {backends: [5]}',
    'load: {generator: traffic, connections: 60, rate: 600, duration: 11s, warmup: 0.5s, timeout: 1s, sourceAddresses: 60}',
    'repetitions: 1',
    'events:',
    '  - {action: lb-node-timeline, at: 2s, every: 3s, counts: [2, 5, 3]}',
  ]);
  for (const p of r.result!.points) {
    assert.equal(p.error, undefined, `${p.id}: ${p.error}`);
    const ev = p.repetitions[0]!.events!;
    assert.deepEqual(
      ev.map((e) => [e.action, e.target, e.inLb]),
      [
        ['remove-lb-nodes', ['be2', 'be3', 'be4'], 2],
        ['add-lb-nodes', ['be2', 'be3', 'be4'], 5],
        ['remove-lb-nodes', ['be3', 'be4'], 3],
      ],
      p.id,
    );
    for (const e of ev) {
      assert.equal(e.error, undefined, `${p.id} ${e.action}: ${e.error}`);
      assert.ok(Math.abs(e.at - e.scheduledAt) < 0.5, `${p.id} ${e.action} at ${e.at}, scheduled ${e.scheduledAt}`);
      assert.ok(e.updateMs !== undefined && e.updateMs >= 0 && e.updateMs <= e.tookMs, `${p.id}: update delay ${e.updateMs} within the ${e.tookMs} ms the change took`);
    }
    const [down] = ev;
    for (const b of ['be2', 'be3', 'be4']) {
      const on = down!.perBackend[b];
      if (on) assert.equal(on.lost, on.alive, `${p.id}: connections through withdrawn ${b} break: ${JSON.stringify(down!.perBackend)}`);
    }
    assert.ok(down!.lost > 0, `${p.id}: the drop to 2 nodes broke connections`);
  }
  const data = lbNodesData(r.result!);
  const steps = data.filter((d) => d.series === 'ecmp-static' && d.measure === 'LB nodes').map((d) => d.value);
  assert.deepEqual(steps, [5, 2, 5, 3, 3]);
  assert.equal(routeUpdateData(r.result!).length, 6);
  const [runDir] = await readdir(join(r.work, 'reports'));
  const html = await readFile(join(r.work, 'reports', runDir!, 'index.html'), 'utf8');
  assert.match(html, /Throughput against the number of LB nodes/);
});
