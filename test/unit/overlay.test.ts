// The overlay axis: planned outermost (one topology per overlay), checked against LBs and
// topologies that cannot have it, and charted from a run recorded on namespaces (five LBs, two
// backends, overlay none and vxlan).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseScenarioText } from '../../harness/scenario/load.ts';
import { scenarioProblems, yaml } from './helpers/scenario-problems.ts';
import { plan } from '../../harness/scenario/plan.ts';
import { overlayData, overlaySpec } from '../../harness/report/experiment-specs.ts';
import { charts } from '../../harness/report/specs.ts';
import { resultProblems } from '../../harness/results/schema.ts';
import type { RunResult } from '../../harness/results/types.ts';

const run = JSON.parse(readFileSync(new URL('../fixtures/results/overlay-run.json', import.meta.url), 'utf8')) as RunResult;

test('overlay is the outermost axis and part of every point id when swept', async () => {
  const s = await parseScenarioText(yaml('name: t', 'loadBalancers: [{kind: router}, {kind: nftables}]', 'sweep: {backends: [1, 2], overlay: [vxlan, none]}'), 's.yaml');
  assert.deepEqual(plan(s).map((p) => p.id), [
    'router/backends=1,overlay=vxlan',
    'router/backends=2,overlay=vxlan',
    'nftables/backends=1,overlay=vxlan',
    'nftables/backends=2,overlay=vxlan',
    'router/backends=1,overlay=none',
    'router/backends=2,overlay=none',
    'nftables/backends=1,overlay=none',
    'nftables/backends=2,overlay=none',
  ]);
  const fixed = await parseScenarioText(yaml('name: t', 'topology: {kind: netns, overlay: vxlan}', 'loadBalancers: [{kind: router}]'), 's.yaml');
  assert.deepEqual(plan(fixed).map((p) => [p.id, p.params.overlay]), [['router/backends=1', undefined]], 'a fixed overlay is the topology\'s, not an axis');
});

test('LBs and topologies that cannot have an overlay are named, with what to do instead', async () => {
  assert.deepEqual(await scenarioProblems(yaml('name: t', 'loadBalancers: [{kind: xdp}, {kind: nginx}]', 'sweep: {overlay: [none, vxlan]}')), [
    's.yaml:2:17: loadBalancers[0]: xdp cannot run over the vxlan overlay: xdp redirects frames natively into the veth towards the backends; a VXLAN device takes no XDP redirects; measure it in a scenario without vxlan',
  ]);
  assert.deepEqual(await scenarioProblems(yaml('name: t', 'topology: {kind: qemu, placement: per-role, overlay: vxlan}', 'loadBalancers: [{kind: ipvs, mode: dr}]')), [
    's.yaml:2:54: topology.overlay: overlay is built on the veths of placement one-guest; per-role guests are linked by qemu sockets — remove overlay or use placement: one-guest, got "vxlan"',
  ]);
  assert.deepEqual(await scenarioProblems(yaml('name: t', 'topology: {kind: qemu, placement: per-role}', 'loadBalancers: [{kind: ipvs, mode: dr}]', 'sweep: {overlay: [vxlan]}')), [
    's.yaml:4:18: sweep.overlay: an overlay is built on the veths of a netns topology (or qemu one-guest); per-role guests are linked by qemu sockets — remove the overlay, or use kind: netns',
  ]);
  assert.deepEqual(await scenarioProblems(yaml('name: t', 'topology: {kind: qemu}', 'loadBalancers: [{kind: ipvs, mode: tun}]', 'sweep: {overlay: [none, vxlan]}')), [
    's.yaml:3:17: loadBalancers[0]: ipvs-tun cannot run over the vxlan overlay: ipvs tun sends replies straight back to the client, a path not wired through the overlay; measure it in a scenario without vxlan',
  ]);
  assert.deepEqual(await scenarioProblems(yaml('name: t', 'loadBalancers: [{kind: router}]', 'sweep: {overlay: [none, gre]}')), [
    "s.yaml:3:25: sweep.overlay[1]: invalid value \"gre\"; allowed values: none, vxlan",
  ]);
});

test('the recorded run: MTU and encapsulation per point, and each LB under vxlan as a share of its rate without', () => {
  assert.deepEqual(resultProblems(run), []);
  const data = overlayData(run);
  assert.deepEqual(data.map((d) => d.lb), ['router', 'nftables', 'ecmp-static', 'nfqueue', 'nginx-l7', 'router', 'nftables', 'ecmp-static', 'nfqueue', 'nginx-l7']);
  for (const d of data) {
    assert.equal(d.mtu, d.overlay === 'vxlan' ? 1450 : 1500);
    if (d.overlay === 'none') assert.equal(d.ofNone, undefined);
    else {
      const base = data.find((x) => x.lb === d.lb && x.overlay === 'none')!;
      assert.equal(d.ofNone, d.rate / base.rate);
    }
  }
  const spec = overlaySpec(run) as unknown as { data: { values: { label: string; colour: string }[] } };
  assert.deepEqual([...new Set(spec.data.values.map((v) => v.colour))], ['none (MTU 1500)', 'vxlan (MTU 1450)']);
  const chart = charts(run).find((c) => c.id === 'overlay')!;
  assert.match(chart.caption, /vxlan: VXLAN VNI 4242 over UDP port 4789 \(50 bytes of outer Ethernet\/IPv4\/UDP\/VXLAN headers per packet\), MTU 1450 over links of 1500\./);
});

test('without a swept overlay there is no overlay chart', () => {
  const one = { ...run, points: run.points.filter((p) => p.params.overlay === 'none') };
  assert.equal(overlaySpec(one), null);
});
