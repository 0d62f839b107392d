// The packet and stream generators through real LBs on namespaces, via the CLI: trafgen's SYNs are
// counted where they arrive (and spread as the LB spreads them), iperf3's streams reach the one
// backend through each LB, and both end with the topology gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resultProblems } from '../../harness/results/schema.ts';
import type { PacketMetrics, StreamMetrics } from '../../harness/results/types.ts';
import { missingCapability, namespacesWithPrefix, runScenarioCli, sh } from './helpers.ts';

test('generator trafgen: SYNs counted at the backends, spread by the LB, router to one backend', { skip: missingCapability(['ip', 'nginx', 'iptables', 'trafgen', 'bpftool', 'clang']), timeout: 300_000 }, async () => {
  const before = namespacesWithPrefix('lbb-');
  const r = await runScenarioCli([
    'name: trafgen-e2e',
    'topology: {kind: netns}',
    'loadBalancers: [{kind: router}, {kind: iptables-dnat}, {kind: xdp}]',
    'sweep: {backends: [2]}',
    'load: {generator: trafgen, duration: 1s, warmup: 0.5s}',
    'repetitions: 2',
  ]);
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(resultProblems(r.raw), []);
  assert.match(r.out, /pps arrived of [\d,]+ sent/);
  for (const p of r.result!.points) {
    assert.equal(p.error, undefined, `${p.id}: ${p.error}`);
    for (const rep of p.repetitions) {
      const m = rep.metrics as PacketMetrics;
      assert.ok(m.packets.sent > 10_000, `${p.id}: sent ${m.packets.sent}`);
      assert.ok(m.packets.received > 0.5 * m.packets.sent, `${p.id}: ${m.packets.received} of ${m.packets.sent} arrived`);
      assert.ok(m.packets.received <= m.packets.sent, `${p.id}: more arrived than was sent`);
      assert.equal(m.packets.frameBytes, 60);
      const [be0, be1] = [m.perBackend.be0 ?? 0, m.perBackend.be1 ?? 0];
      assert.equal(be0 + be1, m.packets.received);
      if (p.lb.kind === 'router') assert.equal(be1, 0, 'the router forwards to be0 only');
      else assert.ok(Math.min(be0, be1) > 0.3 * m.packets.received, `${p.id} spreads random source ports: ${be0}/${be1}`);
    }
  }
  assert.deepEqual(namespacesWithPrefix('lbb-'), before);
});

test('generator iperf3: TCP streams through each LB to its backend; more than one backend is refused up front', { skip: missingCapability(['ip', 'nginx', 'iptables', 'iperf3']), timeout: 300_000 }, async () => {
  const r = await runScenarioCli([
    'name: iperf3-e2e',
    'topology: {kind: netns}',
    'loadBalancers: [{kind: iptables-dnat}, {kind: nginx, mode: l4}]',
    'sweep: {backends: [1]}',
    'load: {generator: iperf3, duration: 1s, warmup: 0.5s, connections: 2}',
    'repetitions: 1',
  ]);
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(resultProblems(r.raw), []);
  for (const p of r.result!.points) {
    assert.equal(p.error, undefined, `${p.id}: ${p.error}`);
    const m = p.repetitions[0]!.metrics as StreamMetrics;
    assert.ok(m.stream.bitsPerSec > 1e8, `${p.id}: ${m.stream.bitsPerSec} bit/s`);
    assert.ok(m.stream.bitsPerSec <= m.stream.senderBitsPerSec * 1.01);
    assert.match(m.stream.placement, /^single-backend/);
    assert.ok((m.perBackend.be0 ?? 0) > 1e7, JSON.stringify(m.perBackend));
    assert.match(p.repetitions[0]!.raw.stdout, /"sum_received"/, 'iperf3 -J output kept');
  }

  const refused = await runScenarioCli(['name: iperf3-many', 'loadBalancers: [{kind: iptables-dnat}]', 'sweep: {backends: [1, 3]}', 'load: {generator: iperf3}']);
  assert.equal(refused.code, 2, refused.out);
  assert.match(refused.out, /s\.yaml:\d+:\d+: load\.generator: iperf3 needs a test's control and data connections on one server/);
  assert.equal(refused.raw, undefined, 'nothing was run');
});

test('unavailable: skip — an LB this host cannot run is recorded with the reason, the others are measured', { skip: missingCapability(['ip', 'nginx', 'wrk']), timeout: 120_000 }, async () => {
  // This kernel has no ip_vs (the reason IPVS runs in a VM here); on one that has it, IPVS is measured.
  const hasIpvs = (() => {
    try {
      sh('test -e /proc/net/ip_vs || modprobe -n ip_vs 2>/dev/null');
      return true;
    } catch {
      return false;
    }
  })();
  const r = await runScenarioCli(['name: skip-e2e', 'loadBalancers: [{kind: router}, {kind: ipvs}]', 'load: {duration: 1s, warmup: 0.3s}', 'repetitions: 1', 'unavailable: skip']);
  assert.equal(r.code, 0, r.out);
  const [router, ipvs] = r.result!.points;
  assert.equal(router!.error, undefined);
  assert.equal(router!.repetitions.length, 1);
  if (hasIpvs) assert.equal(ipvs!.error, undefined);
  else {
    assert.match(ipvs!.error ?? '', /^unavailable on this host: /);
    assert.equal(ipvs!.repetitions.length, 0);
    assert.match(r.out, /skipping ipvs-nat: /);
    assert.match(r.out, /SKIPPED: unavailable on this host/);
    assert.equal(ipvs!.skipped, true);
  }
});

test('generator iperf3 over UDP: 64-byte datagrams through each LB that balances UDP; loss and rate recorded', { skip: missingCapability(['ip', 'nginx', 'iptables', 'nft', 'iperf3', 'bpftool', 'clang']), timeout: 300_000 }, async () => {
  const r = await runScenarioCli([
    'name: iperf3-udp-e2e',
    'topology: {kind: netns}',
    'loadBalancers: [{kind: router}, {kind: iptables-dnat}, {kind: nftables}, {kind: xdp}, {kind: nginx, mode: l4}]',
    'sweep: {backends: [1]}',
    'load: {generator: iperf3, protocol: udp, packetSize: 64, duration: 1s, warmup: 0.5s, connections: 1}',
    'repetitions: 1',
  ]);
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(resultProblems(r.raw), []);
  assert.match(r.out, /UDP: lost [\d.]+%/);
  for (const p of r.result!.points) {
    assert.equal(p.error, undefined, `${p.id}: ${p.error}`);
    const m = p.repetitions[0]!.metrics as StreamMetrics;
    assert.equal(m.stream.protocol, 'udp');
    const u = m.stream.udp!;
    assert.ok(u.packets > 1000, `${p.id}: ${u.packets} datagrams`);
    assert.ok(u.packetsPerSec > 0 && u.lossFraction >= 0 && u.lossFraction < 1, `${p.id}: ${JSON.stringify(u)}`);
  }
});
