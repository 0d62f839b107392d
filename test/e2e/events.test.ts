// Events during a measurement, on real namespaces through the CLI: the traffic tester's
// connections are broken (or not) by what each LB really does when backends go, come back, are
// killed, are re-weighted, or the LB restarts; the result holds each event with observed and ideal
// loss, and the topology ends as it started.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resultProblems } from '../../harness/results/schema.ts';
import { parseTrafficFull } from '../../harness/load/traffic.ts';
import type { EventResult, PointResult } from '../../harness/results/types.ts';
import { missingCapability, namespacesWithPrefix, runScenarioCli } from './helpers.ts';

const skip = missingCapability(['ip', 'nginx', 'iptables', 'nft', 'node', 'bpftool', 'clang']);

const traffic = (duration: string) => `load: {generator: traffic, connections: 60, rate: 300, duration: ${duration}, warmup: 0.5s, timeout: 1s, sourceAddresses: 60}`;

function eventsOf(p: PointResult): EventResult[] {
  assert.equal(p.error, undefined, `${p.id}: ${p.error}`);
  const ev = p.repetitions[0]!.events;
  assert.ok(ev, `${p.id} has events`);
  for (const e of ev) {
    assert.equal(e.error, undefined, `${p.id} ${e.action}: ${e.error}`);
    // The tester started at the agreed moment, so events land where the scenario put them.
    assert.ok(Math.abs(e.at - e.scheduledAt) < 0.3, `${p.id} ${e.action} at ${e.at}, scheduled ${e.scheduledAt}`);
  }
  return ev;
}

test('remove 2 of 6 backends and add them back: stateless hashes break about the removed share, conntrack DNAT breaks none', { skip, timeout: 300_000 }, async () => {
  const before = namespacesWithPrefix('lbb-');
  const r = await runScenarioCli([
    'name: events-scale',
    'topology: {kind: netns}',
    'loadBalancers: [{kind: xdp}, {kind: ecmp, nexthops: resilient}, {kind: iptables-dnat}]',
    'sweep: {backends: [6]}',
    traffic('8s'),
    'repetitions: 1',
    'events:',
    '  - {at: 2s, action: remove-backends, count: 2}',
    '  - {at: 5s, action: add-backends, count: 2}',
  ]);
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(resultProblems(r.raw), [], 'events match the result contract');
  assert.match(r.out, /remove-backends be4,be5 @\d\.\d\ds \(\d+ ms\): lost \d+\/60/);
  for (const p of r.result!.points) {
    const [removed, added] = eventsOf(p);
    assert.deepEqual([removed!.action, removed!.target, added!.action, added!.target], ['remove-backends', ['be4', 'be5'], 'add-backends', ['be4', 'be5']]);
    assert.equal(removed!.alive, 60, `${p.id}: all 60 connections alive at the removal`);
    assert.ok(removed!.idealLoss > 0.1 && removed!.idealLoss < 0.6, `${p.id}: ideal ${removed!.idealLoss}`);
    const onRemoved = ['be4', 'be5'].map((b) => removed!.perBackend[b] ?? { alive: 0, lost: 0 });
    if (p.lb.kind === 'iptables-dnat') {
      // Conntrack keeps established connections on the removed (still running) backends.
      assert.equal(removed!.lost, 0, `${p.id}: ${JSON.stringify(removed)}`);
      assert.equal(added!.lost, 0);
    } else {
      // Every connection on a removed backend breaks (its packets now reach another backend, which resets them).
      for (const b of onRemoved) assert.equal(b.lost, b.alive, `${p.id}: ${JSON.stringify(removed!.perBackend)}`);
      assert.ok(removed!.observedLoss >= removed!.idealLoss, `${p.id}: observed ${removed!.observedLoss} < ideal ${removed!.idealLoss}`);
      assert.ok(removed!.observedLoss < removed!.idealLoss + 0.25, `${p.id}: a consistent hash reshuffles little: ${removed!.observedLoss}`);
      assert.ok((removed!.lostBy.reset ?? 0) > 0, JSON.stringify(removed!.lostBy));
    }
    const m = p.repetitions[0]!.metrics as unknown as { connections: { total: number; lost: number; failedConnects: number }; fairness: number; samples: unknown[] };
    assert.equal(m.samples.length, 8);
    assert.ok(m.fairness > 0.6, `${p.id}: fairness ${m.fairness}`);
    assert.equal(m.connections.failedConnects, 0);
  }
  assert.deepEqual(namespacesWithPrefix('lbb-'), before, 'namespaces gone');
});

test('weights, a killed backend, its restart and an LB restart (nftables random)', { skip, timeout: 300_000 }, async () => {
  const r = await runScenarioCli([
    'name: events-kill',
    'topology: {kind: netns}',
    'loadBalancers: [{kind: nftables, algorithm: random}]',
    'sweep: {backends: [3]}',
    traffic('11s'),
    'repetitions: 1',
    'events:',
    '  - {at: 1.5s, action: set-weights, weights: {be0: 0}}',
    '  - {at: 4s, action: kill-backends, backends: [be1]}',
    '  - {at: 6.5s, action: start-backends, count: 1}',
    '  - {at: 9s, action: restart-lb}',
  ]);
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(resultProblems(r.raw), []);
  const p = r.result!.points[0]!;
  const [weights, kill, start, restart] = eventsOf(p);
  assert.deepEqual(weights!.weights, { be0: 0 });
  assert.equal(weights!.lost, 0, 'conntrack keeps connections through a weight change');
  // Exactly the connections on the killed backend are lost, and that is the ideal.
  assert.deepEqual(kill!.target, ['be1']);
  assert.ok(kill!.perBackend.be1!.alive > 0);
  assert.equal(kill!.lost, kill!.perBackend.be1!.alive, JSON.stringify(kill));
  assert.equal(kill!.observedLoss, kill!.idealLoss);
  assert.deepEqual(start!.target, ['be1']);
  assert.equal(start!.idealLoss, 0);
  assert.equal(restart!.action, 'restart-lb');
  assert.deepEqual(restart!.target, []);
  // Replacements opened after the weight change never went to be0 (weight 0).
  const { records } = parseTrafficFull(p.repetitions[0]!.raw.stdout);
  const replacements = records.filter((c) => c.outcome !== 'connect-failed' && c.start > weights!.at * 1000 + 200 && c.start < restart!.at * 1000);
  assert.ok(replacements.length >= kill!.lost, `${replacements.length} replacements`);
  assert.ok(replacements.every((c) => c.backend !== 'be0'), JSON.stringify(replacements.map((c) => c.backend)));
  // The killed backend came back: the backends' counters of the measurement include be1 again after start.
  assert.ok((p.repetitions[0]!.metrics.perBackend.be1 ?? 0) > 0);
});

test('ECMP: LB nodes withdrawn and announced again, and a restart of the route', { skip, timeout: 300_000 }, async () => {
  const r = await runScenarioCli([
    'name: events-ecmp',
    'topology: {kind: netns}',
    'loadBalancers: [{kind: ecmp, nexthops: classic}]',
    'sweep: {backends: [4]}',
    traffic('8s'),
    'repetitions: 1',
    'events:',
    '  - {at: 1.5s, action: remove-lb-nodes, backends: [be3]}',
    '  - {at: 4s, action: add-lb-nodes, backends: [be3]}',
    '  - {at: 6s, action: restart-lb}',
  ]);
  assert.equal(r.code, 0, r.out);
  const p = r.result!.points[0]!;
  const [out, back, restart] = eventsOf(p);
  assert.ok(out!.perBackend.be3!.alive > 0);
  assert.equal(out!.perBackend.be3!.lost, out!.perBackend.be3!.alive, 'every connection through the withdrawn node breaks');
  // Classic hash-threshold ECMP reshuffles: adding a node back moves connections between the others too.
  assert.ok(back!.lost > 0, JSON.stringify(back));
  assert.equal(restart!.error, undefined);
  assert.ok(p.datapathTimings?.routeUpdateMs?.length, 'route updates were timed');
});
