// IPv4 and IPv6 on one dual-stack netns topology: every IPv6-capable LB (the DNATs, the proxies,
// ECMP's multipath route, static and from bird over BGP, our NFQUEUE maglev) serves its point over the
// family's own addresses end to end — the backends see requests from IPv6 clients (or the LB's
// IPv6 address), never IPv4 — and the report compares the two.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { familyData } from '../../harness/report/experiment-specs.ts';
import { missingCapability, runScenarioOk } from './helpers.ts';

const skip = missingCapability(['ip', 'nginx', 'wrk', 'haproxy', 'iptables', 'ip6tables', 'nft', 'node', 'gcc', 'bird']);

test('family [4, 6]: router, DNATs, proxies and the connect tester over both families, IPv6 carried as IPv6', { skip, timeout: 300_000 }, async () => {
  const r = await runScenarioOk([
    'name: dual-stack-e2e',
    'topology: {kind: netns}',
    'loadBalancers: [{kind: router}, {kind: iptables-dnat}, {kind: nftables, algorithm: hash}, {kind: nginx, mode: l4}, {kind: haproxy, mode: http}, {kind: ecmp}, {kind: ecmp, name: ecmp-bgp, mode: bgp}, {kind: nfqueue}, {kind: xdp}]',
    'sweep: {backends: [2], family: [4, 6]}',
    'load: {generator: connect, connections: 4, duration: 2s, warmup: 0.5s, timeout: 1s, sourceAddresses: 20}',
    'repetitions: 1',
  ]);
  const points = r.result!.points;
  assert.equal(points.length, 18);
  for (const p of points) {
    assert.equal(p.error, undefined, `${p.id}: ${p.error}`);
    const rep = p.repetitions[0]!;
    const m = rep.metrics as unknown as { requests: number; errors: { connect: number }; testerPerBackend: Record<string, number> };
    assert.ok(m.requests > 100 && m.errors.connect === 0, `${p.id}: ${m.requests} answered, ${m.errors.connect} failed connects`);
    // The tester was pointed at this family's VIP (the router: the first backend's address).
    const target = rep.raw.argv[rep.raw.argv.indexOf('--target') + 1]!;
    assert.equal(target.includes('2001:2:'), p.params.family === 6, `${p.id}: target ${target}`);
    // From 20 addresses of the family's source pool, so the hashing LBs see many clients.
    assert.equal(rep.raw.argv[rep.raw.argv.indexOf('--sources') + 1], p.params.family === 6 ? '2001:2:0:80::/64:20' : '198.18.128.0/18:20');
    assert.equal((rep.metrics as unknown as { tester: { sourceAddresses: number } }).tester.sourceAddresses, 20);
    if (p.lb.kind !== 'router') assert.deepEqual(Object.keys(m.testerPerBackend).sort(), ['be0', 'be1'], `${p.id}: both backends answered`);
    // Every packet of the IPv6 point crossed the LB node as IPv6: its interfaces carried it, and
    // the DNATs' rules are in the ip6 tables.
    if (p.params.family === 6 && p.lbDescribe && p.lb.kind !== 'router') {
      assert.match(p.lbDescribe.config, /2001:2:0:100::1/, `${p.id}: the LB was set up on the IPv6 VIP`);
      assert.doesNotMatch(p.lbDescribe.config, /198\.18\.100\.1/, `${p.id}: and not on the IPv4 one`);
    }
  }
  const data = familyData(r.result!);
  assert.deepEqual([...new Set(data.map((d) => d.value))], ['4', '6']);
  assert.ok(data.filter((d) => d.value === '6').every((d) => d.ofBase! > 0));
  const [runDir] = await readdir(join(r.work, 'reports'));
  const html = await readFile(join(r.work, 'reports', runDir!, 'index.html'), 'utf8');
  assert.match(html, /IPv4 and IPv6/);
});

test('iperf3 over IPv6: a TCP stream through an ip6 DNAT to the backend, redirected there by ip6tables', { skip: missingCapability(['ip', 'nft', 'ip6tables', 'iperf3']), timeout: 120_000 }, async () => {
  const r = await runScenarioOk([
    'name: dual-stack-iperf3',
    'topology: {kind: netns}',
    'loadBalancers: [{kind: nftables}]',
    'sweep: {backends: [1], family: [6]}',
    'load: {generator: iperf3, duration: 2s, warmup: 0.5s, connections: 1}',
    'repetitions: 1',
  ]);
  const rep = r.result!.points[0]!.repetitions[0]!;
  assert.ok((rep.metrics as { stream: { bitsPerSec: number } }).stream.bitsPerSec > 1e8, JSON.stringify(rep.metrics));
  assert.equal(rep.raw.argv[rep.raw.argv.lastIndexOf('-c') + 1], '2001:2:0:100::1', 'the client connected to the IPv6 VIP');
});

test('trafgen over IPv6: 74-byte SYNs with a hop limit, through an ip6 DNAT and ECMP, counted at ip6tables sinks', { skip: missingCapability(['ip', 'nft', 'ip6tables', 'trafgen']), timeout: 120_000 }, async () => {
  const r = await runScenarioOk([
    'name: dual-stack-trafgen',
    'topology: {kind: netns}',
    'loadBalancers: [{kind: nftables, algorithm: hash}, {kind: ecmp}]',
    'sweep: {backends: [2], family: [6]}',
    'load: {generator: trafgen, duration: 2s, warmup: 0.5s}',
    'repetitions: 1',
  ]);
  for (const p of r.result!.points) {
    assert.equal(p.error, undefined, `${p.id}: ${p.error}`);
    const m = p.repetitions[0]!.metrics as unknown as { packets: { frameBytes: number; lossFraction: number; received: number }; perBackend: Record<string, number> };
    assert.equal(m.packets.frameBytes, 74, `${p.id}: Ethernet + IPv6 + TCP`);
    // A hop limit of 0 would be dropped at the LB node: everything arriving shows it is set.
    assert.ok(m.packets.received > 1000 && m.packets.lossFraction < 0.05, `${p.id}: ${JSON.stringify(m.packets)}`);
    assert.ok(Object.values(m.perBackend).every((n) => n > 0), `${p.id}: random source ports spread over both backends: ${JSON.stringify(m.perBackend)}`);
  }
});
