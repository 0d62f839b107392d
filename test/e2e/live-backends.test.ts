// A backend removed while traffic runs stops receiving new connections, on every LB that can
// change its backends live; the datapaths' own counters agree with the backends' counters.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Teardown } from '../../harness/teardown.ts';
import { buildNetnsTopology, type NetnsTopology } from '../../harness/topology/netns.ts';
import { lbDrivers } from '../../harness/lb/index.ts';
import { LbSpec } from '../../harness/scenario/schema.ts';
import { perBackendDelta } from '../../harness/run/runner.ts';
import { sleep } from '../../harness/util/time.ts';
import { missingCapability } from './helpers.ts';

const skip = missingCapability(['ip', 'nginx', 'wrk', 'haproxy', 'iptables', 'nft', 'bird', 'bpftool']);
const td = new Teardown();
let topo: NetnsTopology;

const SPECS = [
  { kind: 'iptables-dnat', algorithm: 'random' },
  { kind: 'nftables', algorithm: 'hash' },
  { kind: 'haproxy', mode: 'tcp' },
  { kind: 'ecmp', mode: 'static', nexthops: 'classic' },
  { kind: 'ecmp', mode: 'static', nexthops: 'resilient' },
  { kind: 'ecmp', mode: 'bgp', nexthops: 'classic' },
  { kind: 'nfqueue' },
  { kind: 'xdp', attach: 'auto' },
];

before(async () => {
  if (skip) return;
  topo = await buildNetnsTopology({ backends: 3, backendWorkers: 1 }, td);
});

after(async () => {
  assert.deepEqual(await td.unwind(), []);
});

for (const raw of SPECS) {
  const spec = LbSpec.parse(raw);
  const label = Object.values(raw).join(' ');
  test(`${label}: a backend removed under load gets no new connection`, { skip }, async () => {
    const ledger = new Teardown();
    try {
      const deployed = await (lbDrivers[spec.kind] as (typeof lbDrivers)['nginx']).apply({
        topo,
        spec: spec as never,
        backends: topo.backends,
        port: 80,
        teardown: ledger,
        workDir: `${topo.workDir}/live-${label.replace(/ /g, '-')}`,
        log: () => {},
      });
      const names = topo.backends.map((b) => b.name);
      const dp0 = await deployed.counters?.();
      const c0 = await topo.backendCounters();
      // Short connections, so every request is a new connection the LB must place.
      const wrk = topo.client.host.spawn(
        ['wrk', '-t1', '-c8', '-d4s', '-H', 'Connection: close', `http://${deployed.endpoint.ip}:${deployed.endpoint.port}/`],
        { timeoutMs: 20_000 },
      );
      await sleep(1500);
      const c1 = await topo.backendCounters();
      await deployed.setBackends(topo.backends.slice(0, 2));
      // Connections placed before the change may still be answering.
      await sleep(300);
      const c2 = await topo.backendCounters();
      const dp2 = await deployed.counters?.();
      const out = await wrk.exited;
      assert.match(out.stdout, /Requests\/sec/, `wrk finished: ${out.stderr}`);
      const c3 = await topo.backendCounters();
      const dp3 = await deployed.counters?.();

      const beforeChange = perBackendDelta(c0, c1, names);
      const afterChange = perBackendDelta(c2, c3, names);
      for (const n of names) assert.ok(beforeChange[n]! > 20, `${n} served under load before the change: ${JSON.stringify(beforeChange)}`);
      assert.equal(afterChange.be2, 0, `be2 got no request after its removal: ${JSON.stringify(afterChange)}`);
      assert.ok(afterChange.be0! > 20 && afterChange.be1! > 20, `be0 and be1 kept serving: ${JSON.stringify(afterChange)}`);

      if (dp0 && dp2 && dp3) {
        // The datapath saw the same thing: packets to be2 stopped, the others went on.
        const key = (n: string) => `packets.${n}`;
        assert.ok(dp2[key('be2')]! > dp0[key('be2')]!, `datapath counted packets to be2 before: ${JSON.stringify(dp2)}`);
        assert.equal(dp3[key('be2')], dp2[key('be2')], `datapath sent nothing to be2 after: ${JSON.stringify(dp3)}`);
        assert.ok(dp3[key('be0')]! > dp2[key('be0')]!, `datapath kept sending to be0: ${JSON.stringify(dp3)}`);
      }
      if (spec.kind === 'ecmp') {
        const t = deployed.timings?.().routeUpdateMs ?? [];
        assert.equal(t.length, 1, `one route update timed: ${JSON.stringify(t)}`);
        assert.ok(t[0]! >= 0 && t[0]! < 30_000, `update delay ${t[0]} ms`);
      }
      await deployed.teardown();
    } finally {
      assert.deepEqual(await ledger.unwind(), []);
    }
  });
}
