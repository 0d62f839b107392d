// topology.linkRate on real namespaces: both ends of every veth carry the tbf, and a shaped link
// really limits what goes through it (measured against the same path unshaped, in this test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { buildNetnsTopology } from '../../harness/topology/netns.ts';
import { Teardown } from '../../harness/teardown.ts';
import { missingCapability, namespacesWithPrefix, runScenarioCli, sh } from './helpers.ts';

test('linkRate: a tbf at both ends of every link, DSR return leg included; gone with the namespaces', { skip: missingCapability(['ip', 'tc', 'nginx']), timeout: 60_000 }, async () => {
  const teardown = new Teardown();
  let prefix = '';
  try {
    const topo = await buildNetnsTopology({ backends: 2, backendWorkers: 1, linkRate: 20e6 }, teardown);
    prefix = topo.prefix;
    await topo.directReturn!([topo.backends[0]!], teardown);
    const roots = (ns: string) =>
      sh(`tc -n ${ns} qdisc show`)
        .split('\n')
        // lo and the bridge are not links; every veth end must show its tbf.
        .filter((l) => / root /.test(l) && !/dev (lo|br0) /.test(l))
        .map((l) => `${/dev (\S+)/.exec(l)![1]}: ${/^qdisc (\S+)/.exec(l)![1]} ${/rate (\S+)/.exec(l)?.[1] ?? ''}`.trim())
        .sort();
    assert.deepEqual(roots(topo.client.ns!), ['eth0: tbf 20Mbit', 'ret0: tbf 20Mbit']);
    assert.deepEqual(roots(topo.lb.ns!), ['eth0: tbf 20Mbit', 'eth1: tbf 20Mbit']);
    assert.deepEqual(roots(`${prefix}sw`), ['be0: tbf 20Mbit', 'be1: tbf 20Mbit', 'cl0: tbf 20Mbit', 'lb0: tbf 20Mbit']);
    for (const be of topo.backends) assert.deepEqual(roots(be.ns!), ['eth0: tbf 20Mbit']);
  } finally {
    await teardown.unwind();
  }
  assert.deepEqual(namespacesWithPrefix(prefix), []);
});

test('linkRate: iperf3 through a shaped link gets about the link rate, a small share of the unshaped path', { skip: missingCapability(['ip', 'tc', 'nginx', 'iperf3']), timeout: 90_000 }, async (t) => {
  const scenario = (topology: string) => [
    'name: link-rate-e2e',
    `topology: ${topology}`,
    'loadBalancers: [{kind: router}]',
    'load: {generator: iperf3, duration: 2s, warmup: 0.5s, connections: 1}',
    'repetitions: 1',
  ];
  const plain = await runScenarioCli(scenario('{kind: netns}'));
  const shaped = await runScenarioCli(scenario('{kind: netns, linkRate: 100mbit}'));
  try {
    assert.equal(plain.code, 0, plain.out);
    assert.equal(shaped.code, 0, shaped.out);
    const gbit = (r: typeof plain) => {
      const m = r.result!.points[0]!.repetitions[0]!.metrics;
      assert.ok('stream' in m);
      return m.stream.bitsPerSec;
    };
    const [p, s] = [gbit(plain), gbit(shaped)];
    t.diagnostic(`unshaped ${(p / 1e9).toFixed(2)} Gbit/s, shaped to 100mbit ${(s / 1e6).toFixed(1)} Mbit/s`);
    // Goodput under the shaper: TCP/IP headers take ~4% of a 1500-byte frame, and a 2 s stream is
    // at the rate within its first round trips; a unit slip (mbps = 8 × mbit) would land at 8.
    assert.ok(s / 100e6 > 0.8 && s / 100e6 < 1.02, `shaped/linkRate ${s / 100e6}`);
    // Veth runs at what the CPUs can copy: gigabits here. Bounded loosely, so a slow host still passes.
    assert.ok(s / p < 0.5, `shaped/unshaped ${s / p}`);
    assert.equal(shaped.result!.scenario.topology && (shaped.result!.scenario.topology as { linkRate?: number }).linkRate, 100e6);
    assert.equal((shaped.result!.environment as { linkRate?: string }).linkRate, '100mbit');
    assert.equal((plain.result!.environment as { linkRate?: string }).linkRate, undefined);
  } finally {
    await Promise.all([plain, shaped].map((r) => rm(r.work, { recursive: true, force: true })));
  }
});
