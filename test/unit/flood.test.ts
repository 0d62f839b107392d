// Service under a flood: the trafgen config and the probe's success are pure; the loader names
// what cannot flood; the chart's data comes from a run recorded on namespaces (iptables-dnat and
// xdp, flood 0 and 30 000 SYN/s, the connect tester as the probe).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cidrRange, floodConfig, probeSuccess } from '../../harness/load/flood.ts';
import { trafgenArgv } from '../../harness/load/trafgen.ts';
import { parseScenarioText } from '../../harness/scenario/load.ts';
import { scenarioProblems, yaml } from './helpers/scenario-problems.ts';
import { plan } from '../../harness/scenario/plan.ts';
import { floodData, floodReached, floodSpec } from '../../harness/report/experiment-specs.ts';
import { charts } from '../../harness/report/specs.ts';
import { resultProblems } from '../../harness/results/schema.ts';
import type { RunResult } from '../../harness/results/types.ts';

const run = JSON.parse(readFileSync(new URL('../fixtures/results/flood-run.json', import.meta.url), 'utf8')) as RunResult;

test('trafgen config: random sources over the whole pool, random ports, 60-byte frames', () => {
  assert.deepEqual(cidrRange('198.18.128.0/18'), [0xc6128000, 0xc612bfff]);
  assert.deepEqual(cidrRange('10.1.2.3/24'), [0x0a010200, 0x0a0102ff]);
  assert.throws(() => cidrRange('2001:2::/48'), /not an IPv4 CIDR/);
  const macs = { dstMac: '02:00:00:00:00:01', srcMac: '02:00:00:00:00:02', dstIp: '198.18.100.1', dstPort: 80 };
  assert.equal(
    floodConfig({ ...macs, packet: 'syn' }),
    ['{', '  eth(da=02:00:00:00:00:01, sa=02:00:00:00:00:02),', '  ipv4(saddr=drnd(3323101184, 3323117567), daddr=198.18.100.1, ttl=64),', '  tcp(sp=drnd(1024, 65535), dp=80, syn),', '  fill(0x00, 6)', '}', ''].join('\n'),
  );
  // 14 + 20 + 8 + 18: the same 60 bytes as a SYN.
  assert.match(floodConfig({ ...macs, packet: 'udp' }), /udp\(sp=drnd\(1024, 65535\), dp=80\),\n {2}fill\(0x00, 18\)/);
  assert.deepEqual(trafgenArgv('/w/f.cfg', 5, { pps: 30000, cpus: '1' }), ['taskset', '-c', '1', 'timeout', '-s', 'INT', '5', 'trafgen', '--dev', 'eth0', '--conf', '/w/f.cfg', '-P', '1', '-b', '30000pps', '-q']);
});

test('probe success: answered requests over attempts; a non-2xx is not a success', () => {
  const errors = { connect: 0, read: 0, write: 0, timeout: 0, status: 0 };
  assert.equal(probeSuccess({ requests: 100, errors }), 1);
  assert.equal(probeSuccess({ requests: 90, errors: { ...errors, connect: 5, timeout: 5 } }), 0.9);
  assert.equal(probeSuccess({ requests: 100, errors: { ...errors, status: 25 } }), 0.75);
  assert.equal(probeSuccess({ requests: 0, errors }), 0);
});

test('a swept flood rate names the points; a fixed one does not', async () => {
  const swept = await parseScenarioText(yaml('name: t', 'loadBalancers: [{kind: router}]', 'sweep: {floodPps: [0, 20000]}', 'load: {generator: connect}'), 's.yaml');
  assert.deepEqual(plan(swept).map((p) => [p.id, p.params.floodPps]), [['router/backends=1,floodPps=0', 0], ['router/backends=1,floodPps=20000', 20000]]);
  const fixed = await parseScenarioText(yaml('name: t', 'loadBalancers: [{kind: router}]', 'load: {generator: connect, flood: {pps: 5000}}'), 's.yaml');
  assert.deepEqual(plan(fixed).map((p) => [p.id, p.params.floodPps]), [['router/backends=1', 5000]]);
});

test('a flood needs a probe and a topology whose links lbbench built', async () => {
  assert.deepEqual(await scenarioProblems(yaml('name: t', 'loadBalancers: [{kind: router}]', 'sweep: {floodPps: [0, 1000]}', 'load: {generator: iperf3}')), [
    's.yaml:3:19: sweep.floodPps: a flood is measured by the probe beside it, and iperf3 makes no requests to probe with; set load.generator: connect (one request per connection, like a curl loop), wrk or traffic',
  ]);
  assert.deepEqual(await scenarioProblems(yaml('name: t', 'topology: {kind: qemu, placement: per-role}', 'loadBalancers: [{kind: router}]', 'load: {flood: {pps: 1000}}')), [
    "s.yaml:4:15: load.flood: the flood is trafgen writing frames on the client's eth0 towards the LB node's MAC, which lbbench knows only on netns and qemu one-guest topologies (not qemu per-role); remove the flood or use kind: netns",
  ]);
  assert.deepEqual(await scenarioProblems(yaml('name: t', 'loadBalancers: [{kind: router}]', 'load: {generator: trafgen, flood: {pps: 0}}')), [], 'a flood of 0 is no flood');
});

test('the recorded run: probe success, p99 and CPU per LB and flood rate', () => {
  assert.deepEqual(resultProblems(run), []);
  const data = floodData(run);
  assert.equal(data.length, 12);
  for (const d of data.filter((x) => x.measure === 'probe success (%)')) assert.ok(d.value > 90 && d.value <= 100, JSON.stringify(d));
  for (const d of data.filter((x) => x.measure === 'probe p99 (ms)')) assert.ok(d.value > 0, JSON.stringify(d));
  for (const d of data.filter((x) => x.measure === 'CPU busy (cores)')) assert.ok(d.value > 0 && d.value <= 2, JSON.stringify(d));
  const [lo, hi] = floodReached(run)!;
  assert.ok(lo > 0.3 && hi < 1.5, `${lo}–${hi}`);
  assert.ok(floodSpec(run));
  assert.match(charts(run).find((c) => c.id === 'flood')!.caption, /60-byte TCP SYNs/);
  const noFlood = { ...run, points: run.points.filter((p) => p.params.floodPps === 0) };
  assert.equal(floodSpec(noFlood), null, 'one flood rate is no sweep to plot');
});
