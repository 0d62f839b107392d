// The overlay axis on real namespaces: one run sweeps overlay [none, vxlan]; each overlay gets a
// topology of its own, the VXLAN one really encapsulates (the LB node's underlay link carries
// every packet of vxlan0 with the outer headers on top), and the result records MTU and
// encapsulation per point.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { overlayData } from '../../harness/report/experiment-specs.ts';
import { mean } from '../../harness/stats/descriptive.ts';
import { missingCapability, runScenarioOk } from './helpers.ts';

const skip = missingCapability(['ip', 'bridge', 'nginx', 'wrk', 'nft']);

test('sweep overlay [none, vxlan]: two topologies, VXLAN encapsulation on the wire, MTU recorded, one chart', { skip, timeout: 300_000 }, async () => {
  const r = await runScenarioOk([
    'name: overlay-e2e',
    'topology: {kind: netns}',
    'loadBalancers: [{kind: nftables}, {kind: nginx, mode: l7}]',
    'sweep: {backends: [2], overlay: [none, vxlan]}',
    'load: {generator: wrk, duration: 2s, warmup: 0.5s, connections: 8}',
    'repetitions: 1',
  ]);
  // Built once per overlay, the first gone before the second.
  assert.equal(r.out.match(/^topology lbb-\w+-\*: /gm)?.length, 2, r.out);
  assert.ok(r.out.indexOf('teardown: topology (overlay none)') < r.out.indexOf('VXLAN VNI'), r.out);

  const points = r.result!.points;
  assert.deepEqual(points.map((p) => p.id), ['nftables/backends=2,overlay=none', 'nginx-l7/backends=2,overlay=none', 'nftables/backends=2,overlay=vxlan', 'nginx-l7/backends=2,overlay=vxlan']);
  for (const p of points) {
    assert.equal(p.error, undefined, `${p.id}: ${p.error}`);
    const net = p.network!;
    const lb = p.repetitions[0]!.samples!.lb!;
    if (p.params.overlay === 'none') {
      assert.deepEqual([net.overlay, net.mtu, net.overheadBytes], ['none', 1500, 0]);
      assert.ok(lb.every((s) => !('vxlan0' in s.ifaces)), `${p.id}: no overlay device`);
      continue;
    }
    assert.deepEqual([net.overlay, net.mtu, net.underlayMtu, net.overheadBytes], ['vxlan', 1450, 1500, 50]);
    assert.match(net.encapsulation, /VXLAN VNI 4242 over UDP port 4789/);
    // Every packet sent into vxlan0 leaves eth1 once, longer by the outer headers (the kernel
    // counts vxlan0's bytes without the inner Ethernet header: 50 + 14).
    const busy = lb.filter((s) => (s.ifaces.vxlan0?.txPps ?? 0) > 1000);
    assert.ok(busy.length >= 1, `${p.id}: traffic went through vxlan0`);
    const pps = mean(busy.map((s) => s.ifaces.vxlan0!.txPps));
    const ratio = mean(busy.map((s) => s.ifaces.eth1!.txPps)) / pps;
    assert.ok(ratio > 0.98 && ratio < 1.02, `${p.id}: eth1/vxlan0 packets ${ratio}`);
    const extraBytes = mean(busy.map((s) => (s.ifaces.eth1!.txBitsPerSec - s.ifaces.vxlan0!.txBitsPerSec) / 8 / s.ifaces.vxlan0!.txPps));
    assert.ok(extraBytes > 45 && extraBytes < 70, `${p.id}: ${extraBytes} bytes of encapsulation per packet`);
  }
  const data = overlayData(r.result!);
  assert.deepEqual(data.map((d) => [d.lb, d.overlay, d.mtu]), [['nftables', 'none', 1500], ['nginx-l7', 'none', 1500], ['nftables', 'vxlan', 1450], ['nginx-l7', 'vxlan', 1450]]);
  assert.ok(data.filter((d) => d.overlay === 'vxlan').every((d) => d.ofNone! > 0));
  const [runDir] = await readdir(join(r.work, 'reports'));
  const html = await readFile(join(r.work, 'reports', runDir!, 'index.html'), 'utf8');
  assert.match(html, /Throughput by backend network/);
  assert.match(html, /MTU 1450 over links of 1500/);
});
