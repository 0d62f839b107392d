// Failing an LB node: keepalived's config, the routes a downed link takes with it, the outage and
// the failures read from the traffic tester, the loader's checks, and the chart — the last on a run
// recorded on namespaces (vrrp, ecmp static and bgp; lb0's or be3's link down at 3 s).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { keepalivedConf, snatScript } from '../../harness/lb/vrrp.ts';
import { routesVia } from '../../harness/host/link-down.ts';
import { accountEvents, interruptionAt, lastFailure } from '../../harness/run/events.ts';
import { parseTrafficFull, type ConnectionRecord } from '../../harness/load/traffic.ts';
import { scenarioProblems, yaml } from './helpers/scenario-problems.ts';
import { failoverData, failoverSpec } from '../../harness/report/experiment-specs.ts';
import { charts } from '../../harness/report/specs.ts';
import { resultProblems } from '../../harness/results/schema.ts';
import { ParseError } from '../../harness/errors.ts';
import type { RunResult } from '../../harness/results/types.ts';

const run = JSON.parse(readFileSync(new URL('../fixtures/results/failover-run.json', import.meta.url), 'utf8')) as RunResult;

test('keepalived.conf: VRRPv3 for sub-second adverts, the VIP on the client interface, one GARP', () => {
  const conf = keepalivedConf({ node: 'lb0', priority: 150, advertInt: 0.1, vip: '198.18.100.1', dev: 'eth0' });
  for (const line of ['vrrp_version 3', 'state MASTER', 'interface eth0', 'priority 150', 'advert_int 0.1', '198.18.100.1/32 dev eth0', 'vrrp_garp_master_repeat 1']) assert.ok(conf.includes(line), line);
  assert.ok(!conf.includes('vrrp_strict'), 'vrrp_strict would drop traffic to the VIP on the node');
  assert.match(keepalivedConf({ node: 'lb1', priority: 100, advertInt: 1, vip: '198.18.100.1', dev: 'eth0' }), /state BACKUP/);
  assert.match(snatScript('eth1'), /oifname "eth1" masquerade/);
});

test('a downed link takes its routes: the ones to put back are those through it, not the kernel\'s own', () => {
  const shown = ['default via 198.18.1.2 dev eth0 ', '198.18.1.0/24 dev eth0 proto kernel scope link src 198.18.1.11 ', '198.18.128.0/18 via 198.18.0.2 dev eth0 ', '198.18.0.0/24 dev eth10 proto kernel scope link src 198.18.0.1'].join('\n');
  assert.deepEqual(routesVia(shown, 'eth0'), ['default via 198.18.1.2 dev eth0', '198.18.128.0/18 via 198.18.0.2 dev eth0']);
  assert.deepEqual(routesVia(shown, 'eth1'), []);
});

test('the outage an event caused: the first answer gap that begins at it; none when answers went on', () => {
  const gaps = { overMs: 50, spans: [[200, 260], [3010, 3436], [9000, null]] as [number, number | null][] };
  assert.deepEqual(interruptionAt(gaps, 3000, 9000, 9500), { ms: 426, overMs: 50, lastAnswerMs: 10, firstAnswerMs: 436 });
  assert.deepEqual(interruptionAt(gaps, 5000, 9000, 9500), { ms: 0, overMs: 50 }, 'a gap long before is not this event\'s');
  assert.deepEqual(interruptionAt(gaps, 8500, 9500, 9500), { ms: 500, overMs: 50, lastAnswerMs: 500, firstAnswerMs: null }, 'no answer until the end');
  assert.deepEqual(interruptionAt(gaps, 7000, 9500, 9500), { ms: 0, overMs: 50 }, 'a gap starting over a second later is not this event\'s');
  const rec = (end: number | null, outcome: ConnectionRecord['outcome']): ConnectionRecord => ({ id: 0, src: null, start: 0, end, backend: 'be0', backends: 1, messages: 1, outcome, reason: null });
  assert.deepEqual(lastFailure([rec(3100, 'lost'), rec(5200, 'connect-failed'), rec(null, 'lasted'), rec(8000, 'lost')], 3000, 7000), { lastFailureMs: 2200 });
  assert.deepEqual(lastFailure([rec(null, 'lasted')], 3000, 7000), {});
});

test('an active node carries every connection: its failure\'s ideal loss is all of them', () => {
  const rec = (backend: string): ConnectionRecord => ({ id: 0, src: null, start: 0, end: null, backend, backends: 1, messages: 1, outcome: 'lasted', reason: null });
  const records = [rec('be0'), rec('be1'), rec('be2'), rec('be3')];
  const [active] = accountEvents(records, [{ atMs: 10, action: 'fail-lb-node', target: ['lb0'] }], 100);
  assert.equal(active!.idealLoss, 1);
  const [ecmpNode] = accountEvents(records, [{ atMs: 10, action: 'fail-lb-node', target: ['be3'] }], 100);
  assert.equal(ecmpNode!.idealLoss, 0.25);
});

test('the tester\'s answer gaps are parsed from the recorded output, and malformed ones are junk', () => {
  const stdout = run.points[0]!.repetitions[0]!.raw.stdout;
  const { metrics } = parseTrafficFull(stdout);
  assert.deepEqual(metrics.answerGaps, { overMs: 50, spans: [[3010, 3436]] });
  const line = stdout.split('\n').find((l) => l.startsWith('LBBENCH_TRAFFIC '))!;
  const o = JSON.parse(line.slice('LBBENCH_TRAFFIC '.length));
  for (const gaps of [[[5, 2]], [[1, null], [2, 3]], 'x', [[1]]]) {
    assert.throws(() => parseTrafficFull(`LBBENCH_TRAFFIC ${JSON.stringify({ ...o, gaps })}\n`), ParseError, JSON.stringify(gaps));
  }
  const { gaps: _g, gapMs: _m, ...older } = o;
  assert.equal(parseTrafficFull(`LBBENCH_TRAFFIC ${JSON.stringify(older)}\n`).metrics.answerGaps, undefined, 'an older tester without gaps still parses');
});

test('the loader: which LBs can fail which node, and where vrrp can run', async () => {
  const load = 'load: {generator: traffic, connections: 10, rate: 100, duration: 10s}';
  assert.deepEqual(await scenarioProblems(yaml('name: t', 'loadBalancers: [{kind: vrrp}, {kind: ecmp}, {kind: nftables}]', load, 'events: [{at: 3s, action: fail-lb-node, how: kill}]')), [
    's.yaml:4:46: events[0].how: fail-lb-node how: kill kills keepalived on vrrp\'s active node; ecmp, nftables have no LB daemon of their own to kill (for ecmp use how: link-down, or kill-backends)',
  ]);
  assert.deepEqual(await scenarioProblems(yaml('name: t', 'loadBalancers: [{kind: vrrp}, {kind: nftables}]', load, 'events: [{at: 3s, action: fail-lb-node}]')), [
    's.yaml:4:27: events[0].action: fail-lb-node: only vrrp (its active node) and ecmp (an LB node) have LB nodes to fail, not nftables; measure it in a scenario of its own',
  ]);
  assert.deepEqual(await scenarioProblems(yaml('name: t', 'topology: {kind: qemu, placement: per-role}', 'loadBalancers: [{kind: vrrp}]')), [
    's.yaml:3:17: loadBalancers[0]: vrrp needs a standby LB node beside lb0, which lbbench builds on netns and qemu one-guest topologies, not qemu per-role; measure it on kind: netns',
  ]);
});

test('the recorded run: outage, failures and loss per LB, and the chart', () => {
  assert.deepEqual(resultProblems(run), []);
  const data = failoverData(run);
  const get = (series: string, measure: string) => data.find((d) => d.series === series && d.measure === measure)!;
  assert.equal(get('vrrp', 'no answers at all (ms)').value, 426);
  assert.equal(get('ecmp-static', 'no answers at all (ms)').value, 0);
  assert.equal(get('vrrp', 'connections lost (%)').value, 100);
  assert.equal(get('vrrp', 'connections lost (%)').ideal, 100);
  assert.equal(get('vrrp', 'connections lost (%)').event, 'lb0 link-down');
  assert.equal(get('ecmp-bgp', 'connections lost (%)').event, 'be3 link-down');
  assert.ok(get('ecmp-static', 'connections lost (%)').ideal! < 50);
  assert.ok(failoverSpec(run));
  assert.ok(charts(run).some((c) => c.id === 'failover'));
  // An event that records how it failed the node is labelled by that, not by the scenario text.
  const killed = structuredClone(run);
  for (const p of killed.points) for (const r of p.repetitions) for (const e of r.events ?? []) if (e.action === 'fail-lb-node') e.how = 'kill';
  assert.deepEqual(resultProblems(killed), []);
  assert.equal(failoverData(killed).find((d) => d.series === 'vrrp')!.event, 'lb0 kill');
});
