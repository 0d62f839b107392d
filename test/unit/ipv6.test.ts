// IPv6: each tool's spelling of a v6 address (brackets, /128, ip6tables, nft ip6), the configs the
// v6-capable drivers write with it, the family axis, and what the loader refuses for family 6.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { familyData, familySpec } from '../../harness/report/experiment-specs.ts';
import { charts } from '../../harness/report/specs.ts';
import type { Host } from '../../harness/host/types.ts';
import type { BackendNode } from '../../harness/topology/types.ts';
import { familyOf, hostPort, hostPrefix, iptablesCmd, nftFamily } from '../../harness/lb/family.ts';
import { nftScript } from '../../harness/lb/nftables.ts';
import { trafgenSynConfig } from '../../harness/load/trafgen.ts';
import { floodConfig } from '../../harness/load/flood.ts';
import { routerBirdConf, routerId, speakerBirdConf } from '../../harness/lb/ecmp.ts';
import { dnatRules } from '../../harness/lb/iptables-dnat.ts';
import { nginxLbConf } from '../../harness/lb/nginx.ts';
import { haproxyConf } from '../../harness/lb/haproxy.ts';
import { backendNginxConf } from '../../harness/topology/backends.ts';
import { PLAN6 } from '../../harness/topology/address-plan.ts';
import { HaproxySpec, NginxSpec } from '../../harness/scenario/schema.ts';
import { parseScenarioText } from '../../harness/scenario/load.ts';
import { plan } from '../../harness/scenario/plan.ts';
import { lbDrivers } from '../../harness/lb/index.ts';
import { heldAddresses } from '../../harness/setup.ts';
import { scenarioProblems, yaml } from './helpers/scenario-problems.ts';

const noHost = new Proxy({}, { get: () => () => assert.fail('pure builder used the host') }) as Host;
const be6 = (i: number): BackendNode => ({ name: `be${i}`, host: noHost, ip: PLAN6.backendIp(i), port: 80, statusPort: 8081 });
const VIP6 = PLAN6.vip(0);

test('the IPv6 plan lies in the benchmarking prefix 2001:2::/48', () => {
  for (const a of [PLAN6.clientIp(0), PLAN6.lbClientIp(0), PLAN6.lbClientIp(1), PLAN6.lbBackendIp(0), PLAN6.backendIp(0), PLAN6.backendIp(188), VIP6]) {
    assert.match(a, /^2001:2:(0:[0-9a-f]{1,4}:)?:[0-9a-f]{1,4}$|^2001:2::[0-9a-f]{1,4}$/, a);
  }
  assert.equal(PLAN6.backendIp(188), '2001:2:0:1::199');
});

test('each tool\'s spelling: brackets before a port, /128, ip6tables, nft ip6', () => {
  assert.deepEqual([familyOf('198.18.1.11'), familyOf(VIP6)], [4, 6]);
  assert.deepEqual([hostPort('198.18.1.11', 80), hostPort(VIP6, 80)], ['198.18.1.11:80', '[2001:2:0:100::1]:80']);
  assert.deepEqual([hostPrefix('198.18.100.1'), hostPrefix(VIP6)], ['198.18.100.1/32', '2001:2:0:100::1/128']);
  assert.deepEqual([iptablesCmd('198.18.100.1'), iptablesCmd(VIP6)], ['iptables', 'ip6tables']);
  assert.deepEqual([nftFamily('198.18.100.1'), nftFamily(VIP6)], ['ip', 'ip6']);
});

test('drivers\' configs over IPv6: an ip6 table, bracketed DNAT targets, bracketed listeners and servers', () => {
  const nft = nftScript(VIP6, 80, [be6(0), be6(1)], 'hash');
  assert.match(nft, /^table ip6 lbbench \{\}$/m);
  assert.match(nft, /ip6 daddr 2001:2:0:100::1 tcp dport 80 dnat ip6 addr \. port to jhash ip6 saddr \. tcp sport \. ip6 daddr \. tcp dport mod 2 map \{ 0 : 2001:2:0:1::11 \. 80, 1 : 2001:2:0:1::12 \. 80 \}/);
  assert.ok(!/\bip (saddr|daddr|addr)\b/.test(nft), 'no IPv4 match left');
  // Unbracketed, iptables would take "…::11:80" for an address without a port.
  assert.match(dnatRules([be6(0), be6(1)], 'round-robin').join('\n'), /--to-destination \[2001:2:0:1::11\]:80/);
  const nginx = nginxLbConf(NginxSpec.parse({ kind: 'nginx', mode: 'l4' }), VIP6, 80, [be6(0)], '/w');
  assert.match(nginx, /listen \[2001:2:0:100::1\]:80 backlog=4096;/);
  assert.match(nginx, /server \[2001:2:0:1::11\]:80;/);
  const haproxy = haproxyConf(HaproxySpec.parse({ kind: 'haproxy' }), VIP6, 80, [be6(0)], '/w');
  assert.match(haproxy, /bind \[2001:2:0:100::1\]:80/);
  assert.match(haproxy, /server be0 \[2001:2:0:1::11\]:80/);
  assert.match(backendNginxConf('be0', '/w', 1, true), /listen \[::\]:80 backlog=4096;/);
  const syn6 = trafgenSynConfig({ dstMac: '02:00:00:00:00:01', srcMac: '02:00:00:00:00:02', srcIp: PLAN6.clientIp(0), dstIp: VIP6, dstPort: 80 });
  assert.match(syn6, /ipv6\(saddr=2001:2::2, daddr=2001:2:0:100::1, hl=64\)/, 'a hop limit, or the LB node drops every packet');
  assert.ok(!syn6.includes('fill('), '74 bytes already: no fill');
  const flood6 = floodConfig({ dstMac: '02:00:00:00:00:01', srcMac: '02:00:00:00:00:02', dstIp: VIP6, dstPort: 80, packet: 'syn' });
  assert.match(flood6, /ipv6\(saddr=2001:2:0:80::1, saddr=dinc\(1, 16383\), daddr=2001:2:0:100::1, hl=64\)/, 'sources through the IPv6 pool');
  assert.match(floodConfig({ dstMac: 'a', srcMac: 'b', dstIp: VIP6, dstPort: 80, packet: 'udp' }), /udp\(sp=drnd\(1024, 65535\), dp=80\),\n {2}fill\(0x00, 12\)/);
  assert.ok(!backendNginxConf('be0', '/w', 1).includes('[::]'), 'IPv4-only topologies keep IPv4-only backends');
});

test('bird over IPv6: ipv6 channels, the VIP as a /128, router ids in IPv4 notation', () => {
  assert.deepEqual([routerId('198.18.1.2'), routerId(PLAN6.lbBackendIp(0)), routerId(PLAN6.backendIp(188))], ['198.18.1.2', '0.0.0.2', '0.0.1.153']);
  const router = routerBirdConf({ vip: VIP6, routerIp: PLAN6.lbBackendIp(0), members: [{ name: 'be0', ip: PLAN6.backendIp(0), slot: 0 }], logFile: '/w/bird.log' });
  assert.match(router, /router id 0\.0\.0\.2;/);
  assert.match(router, /protocol kernel kernel6 \{\n {2}ipv6 \{\n {4}import none;\n {4}export where net = 2001:2:0:100::1\/128;/);
  assert.match(router, /neighbor 2001:2:0:1::11 as/);
  assert.ok(!router.includes('ipv4'), router);
  const speaker = speakerBirdConf({ vip: VIP6, ip: PLAN6.backendIp(0), slot: 0, routerIp: PLAN6.lbBackendIp(0), announce: true, logFile: '/w/b.log' });
  assert.match(speaker, /router id 0\.0\.0\.17;/);
  assert.match(speaker, /protocol static vip \{\n {2}ipv6;\n {2}route 2001:2:0:100::1\/128 via "lo";/);
  assert.ok(!speaker.includes('ipv4'), speaker);
});

test('sweep.family is an axis of every point, named in its id', async () => {
  const s = await parseScenarioText(yaml('name: t', 'loadBalancers: [{kind: nftables}]', 'sweep: {backends: [2], family: [4, 6]}'), 's.yaml');
  assert.deepEqual(plan(s).map((p) => [p.id, p.params.family]), [['nftables/backends=2,family=4', 4], ['nftables/backends=2,family=6', 6]]);
});

test('family 6: every LB driver declares IPv6; generators without it are named with why', async () => {
  for (const d of Object.values(lbDrivers)) assert.ok(d.ipv6 === true || typeof d.ipv6 === 'function', `${d.kind} says whether it balances IPv6`);
  assert.deepEqual(await scenarioProblems(yaml('name: t', 'loadBalancers: [{kind: nftables}, {kind: xdp}, {kind: ecmp, mode: bgp}, {kind: ecmp}, {kind: vrrp}, {kind: ipvs, mode: tun}]', 'sweep: {family: [4, 6]}', 'load: {generator: moongen, moongen: {txDev: 0, rxDev: 1}}')), [
    's.yaml:4:19: load.generator: MoonGen drives DPDK-bound physical NICs, which a netns topology does not have; use generator: trafgen here, and moongen on a baremetal topology whose client has two DPDK ports',
    "s.yaml:4:19: load.generator: moongen does not load an IPv6 VIP (MoonGen's l3-load-latency example builds IPv4 packets); use wrk, connect, traffic, iperf3, trafgen, mconnect or ctraffic with family 6",
  ]);
  assert.deepEqual(await scenarioProblems(yaml('name: t', 'loadBalancers: [{kind: router}]', 'sweep: {family: [6]}', 'load: {generator: connect, sourceAddresses: 50, flood: {pps: 1000}}')), [], 'the source pool and the flood have IPv6 forms');
  assert.deepEqual(await scenarioProblems(yaml('name: t', 'loadBalancers: [{kind: router}]', 'sweep: {family: [4]}', 'load: {generator: iperf3}')), [], 'family 4 alone asks nothing of IPv6');
});

test('the recorded dual-stack run: each LB over both families, IPv6 as a share of IPv4, charted', () => {
  const run = JSON.parse(readFileSync(new URL('../fixtures/results/dual-stack-run.json', import.meta.url), 'utf8'));
  const data = familyData(run);
  assert.deepEqual([...new Set(data.map((d) => d.lb))], ['router', 'iptables-dnat', 'nftables', 'nginx-l4', 'haproxy-http']);
  for (const d of data.filter((x) => x.value === '6')) {
    const v4 = data.find((x) => x.lb === d.lb && x.value === '4')!;
    assert.equal(d.ofBase, d.rate / v4.rate);
  }
  assert.ok(familySpec(run));
  assert.match(charts(run).find((c) => c.id === 'family')!.caption, /2001:2::\/48/);
});

test('the testers\' source pools: the first addresses of the IPv4 or the IPv6 pool, in a form node binds', async () => {
  // @ts-expect-error: a plain .mjs module without types, as the client runs it
  const { poolAddresses } = await import('../../harness/load/tester-common.mjs');
  assert.deepEqual(poolAddresses('198.18.128.0/18:3'), ['198.18.128.1', '198.18.128.2', '198.18.128.3']);
  assert.deepEqual(poolAddresses('2001:2:0:80::/64:3'), ['2001:2:0:80:0:0:0:1', '2001:2:0:80:0:0:0:2', '2001:2:0:80:0:0:0:3']);
  const many = poolAddresses('2001:2:0:80::/64:70000') as string[];
  assert.equal(many[65535], '2001:2:0:80:0:0:1:0', 'carries into the next group');
  assert.equal(new Set(many).size, 70000);
  assert.deepEqual(poolAddresses('2001:2:0:80::/126:10'), ['2001:2:0:80:0:0:0:1', '2001:2:0:80:0:0:0:2'], 'at most the pool\'s hosts');
  assert.throws(() => poolAddresses('2001:2::/48:3'), /bad --sources/);
  assert.throws(() => poolAddresses('junk'), /bad --sources/);
});

test('bare metal over IPv6: the hosts\' IPv6 addresses come from the topology, all or none, and family 6 asks for them', async () => {
  const lab = (extra: { c?: string; lb?: string; b?: string }) => [
    'topology:',
    '  kind: baremetal',
    `  client: {ssh: {host: 10.0.0.10}, ip: 198.18.0.2, interface: eth1${extra.c ?? ''}}`,
    `  lb: {ssh: {host: 10.0.0.11}, clientInterface: eth1, clientIp: 198.18.0.1, backendInterface: eth2, backendIp: 198.18.1.2${extra.lb ?? ''}}`,
    `  backendHosts: [{ssh: {host: 10.0.0.21}, ip: 198.18.1.11, interface: eth1${extra.b ?? ''}}]`,
  ];
  const scenario = (family: string, extra: Parameters<typeof lab>[0]) => yaml('name: t', 'loadBalancers: [{kind: nftables}]', `sweep: {family: ${family}}`, ...lab(extra));
  assert.deepEqual(await scenarioProblems(scenario('[4, 6]', {})), [
    "s.yaml:3:17: sweep.family: family 6 on bare metal needs your hosts' IPv6 addresses in the topology: write client.ip6, lb.clientIp6, lb.backendIp6, backendHosts[0].ip6 (as in topologies/baremetal-example.yaml), or measure family 4 only",
  ]);
  assert.deepEqual(await scenarioProblems(scenario('[4]', {})), [], 'an IPv4 lab measures family 4');
  const half = await scenarioProblems(scenario('[4]', { c: ', ip6: "2001:2::2"', lb: ', clientIp6: "2001:2::1"' }));
  assert.equal(half.length, 2, half.join('\n'));
  assert.match(half[0]!, /^s\.yaml:7:7: topology\.lb\.backendIp6: client\.ip6, lb\.clientIp6 are set, so write lb\.backendIp6 too \(an IPv6 address such as 2001:2:0:1::2\)/);
  assert.match(half[1]!, /^s\.yaml:8:18: topology\.backendHosts\[0\]\.ip6: .* write backendHosts\[0\]\.ip6 too \(an IPv6 address such as 2001:2:0:1::11\)/);
  const full = { c: ', ip6: "2001:2::2"', lb: ', clientIp6: "2001:2::1", backendIp6: "2001:2:0:1::2"', b: ', ip6: "2001:2:0:1::11"' };
  assert.deepEqual(await scenarioProblems(scenario('[4, 6]', full)), []);
  assert.match((await scenarioProblems(scenario('[4, 6]', { ...full, c: ', ip6: "198.18.0.2"' })))[0]!, /topology\.client\.ip6: expected an IPv6 address such as 2001:2::2, got "198\.18\.0\.2"/);
});

test('doctor reads the addresses an interface holds from `ip -o addr show` (both families, not the tentative link-local alone)', () => {
  // Recorded from a veth in a namespace: 198.18.0.1/24 and 2001:2::1/64 nodad, link up.
  const shown = [
    '3: eth0    inet 198.18.0.1/24 scope global eth0\\       valid_lft forever preferred_lft forever',
    '3: eth0    inet6 2001:2::1/64 scope global nodad \\       valid_lft forever preferred_lft forever',
    '3: eth0    inet6 fe80::78cf:54ff:fe1c:6a28/64 scope link tentative \\       valid_lft forever preferred_lft forever',
  ].join('\n');
  assert.deepEqual(heldAddresses(shown), ['198.18.0.1', '2001:2::1', 'fe80::78cf:54ff:fe1c:6a28']);
  assert.deepEqual(heldAddresses(''), []);
  assert.deepEqual(heldAddresses('3: eth0    inet 198.18.0.1'), [], 'a cut line names no address');
});
