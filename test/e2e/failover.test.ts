// Failing an LB node on real namespaces: keepalived's VRRP moves the VIP to the standby after the
// active node's link goes down (every connection through it breaks, and for a few hundred ms
// nothing answers); ECMP loses only the failed node's connections — and with BGP, once the hold
// timer withdraws the path, the hash-threshold reshuffle breaks more.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { failoverData } from '../../harness/report/experiment-specs.ts';
import type { EventResult } from '../../harness/results/types.ts';
import { missingCapability, runScenarioOk } from './helpers.ts';

const skip = missingCapability(['ip', 'nginx', 'nft', 'node', 'keepalived', 'bird']);

test('fail-lb-node link-down: VRRP fails over within a second losing every connection; ECMP loses the failed node\'s', { skip, timeout: 300_000 }, async () => {
  const r = await runScenarioOk([
    'name: failover-e2e',
    'topology: {kind: netns}',
    'loadBalancers: [{kind: vrrp, advertInt: 0.1}, {kind: ecmp, name: ecmp-static}, {kind: ecmp, name: ecmp-bgp, mode: bgp}]',
    'sweep: {backends: [4]}',
    'load: {generator: traffic, connections: 40, rate: 800, duration: 9s, warmup: 0.5s, timeout: 1s, sourceAddresses: 40}',
    'repetitions: 1',
    'events:',
    '  - {at: 3s, action: fail-lb-node, how: link-down}',
  ]);
  const ev = (name: string): EventResult => {
    const p = r.result!.points.find((x) => x.lb.name === name)!;
    assert.equal(p.error, undefined, `${name}: ${p.error}`);
    const e = p.repetitions[0]!.events![0]!;
    assert.equal(e.error, undefined, `${name}: ${e.error}`);
    return e;
  };
  const v = ev('vrrp');
  assert.deepEqual(v.target, ['lb0']);
  assert.equal(v.how, 'link-down', 'the event records how it failed the node');
  assert.equal(v.lost, v.alive, 'every connection went through the active node and broke');
  assert.equal(v.idealLoss, 1);
  // advert 0.1 s: the backup takes over after 3 missed adverts plus skew (≤ 0.36 s), then a GARP.
  const gap = v.interruption!;
  assert.ok(gap.ms > 150 && gap.ms < 2000, `vrrp: no answers for ${gap.ms} ms`);
  assert.ok(gap.lastAnswerMs! >= -gap.overMs && gap.lastAnswerMs! < 200, `vrrp: last answer ${gap.lastAnswerMs} ms after the event`);
  assert.ok(gap.firstAnswerMs! > 150, `vrrp: first answer ${gap.firstAnswerMs} ms after`);

  for (const name of ['ecmp-static', 'ecmp-bgp']) {
    const e = ev(name);
    assert.deepEqual(e.target, ['be3'], `${name}: the last LB node in the route`);
    assert.equal(e.interruption!.ms, 0, `${name}: the other LB nodes kept answering`);
    const on = e.perBackend.be3!;
    assert.ok(on.alive > 0 && on.lost === on.alive, `${name}: be3's connections broke: ${JSON.stringify(e.perBackend)}`);
    assert.ok(e.lastFailureMs! > 0);
  }
  // Withdrawn by BGP's hold timer, the path leaves a classic (hash-threshold) group: flows on the
  // other paths move too. The static route keeps the dead path, and breaks only what was on it.
  const s = ev('ecmp-static');
  const b = ev('ecmp-bgp');
  assert.ok(s.observedLoss < s.idealLoss + 0.15, `static: ${s.observedLoss} vs ideal ${s.idealLoss}`);
  assert.ok(b.observedLoss > b.idealLoss + 0.1, `bgp: ${b.observedLoss} vs ideal ${b.idealLoss}`);

  const data = failoverData(r.result!);
  assert.deepEqual([...new Set(data.map((d) => d.series))], ['vrrp', 'ecmp-static', 'ecmp-bgp']);
  const [runDir] = await readdir(join(r.work, 'reports'));
  const html = await readFile(join(r.work, 'reports', runDir!, 'index.html'), 'utf8');
  assert.match(html, /Failing an LB node/);
});

test('VRRP over IPv6: the IPv6 VIP moves with unsolicited neighbour advertisements, the addresses survive the link flap', { skip, timeout: 200_000 }, async () => {
  const r = await runScenarioOk([
    'name: failover6-e2e',
    'topology: {kind: netns}',
    'loadBalancers: [{kind: vrrp}]',
    'sweep: {backends: [2], family: [6]}',
    'load: {generator: traffic, connections: 20, rate: 400, duration: 7s, warmup: 0.5s, timeout: 1s, sourceAddresses: 20}',
    'repetitions: 2',
    'events:',
    '  - {at: 3s, action: fail-lb-node}',
  ]);
  const p = r.result!.points[0]!;
  assert.equal(p.error, undefined, p.error);
  assert.match(p.lbDescribe!.config, /2001:2:0:100::1\/128 dev eth0/);
  // The second repetition starts after lb0 came back with its addresses and routes: it fails over again.
  for (const rep of p.repetitions) {
    const e = rep.events![0]!;
    assert.equal(e.lost, e.alive, JSON.stringify(e));
    assert.ok(e.alive === 20 && e.interruption!.ms > 150 && e.interruption!.ms < 2000, JSON.stringify(e));
  }
});

test('fail-lb-node how: kill on vrrp: keepalived dies without a word, the backup takes the VIP while the dead master still forwards, and the next repetition has lb0 back as master', { skip, timeout: 200_000 }, async () => {
  const r = await runScenarioOk([
    'name: failover-kill-e2e',
    'topology: {kind: netns}',
    'loadBalancers: [{kind: vrrp}]',
    'sweep: {backends: [2]}',
    'load: {generator: traffic, connections: 20, rate: 400, duration: 6s, warmup: 0.5s, timeout: 1s, sourceAddresses: 20}',
    'repetitions: 2',
    'events:',
    '  - {at: 2s, action: fail-lb-node, how: kill}',
  ]);
  const p = r.result!.points[0]!;
  assert.equal(p.error, undefined, p.error);
  for (const rep of p.repetitions) {
    const e = rep.events![0]!;
    assert.equal(e.error, undefined, e.error);
    assert.deepEqual(e.target, ['lb0']);
    assert.equal(e.how, 'kill');
    // The backup announces itself after ~3.6 missed adverts and the client follows its ARP: the
    // connections through lb0's conntrack break there, though lb0 never stopped forwarding.
    assert.ok(e.alive === 20 && e.lost === 20, JSON.stringify(e));
    assert.ok(e.interruption!.ms < 1000, `no long silence: lb0 kept forwarding until the client moved (${e.interruption!.ms} ms)`);
  }
});
