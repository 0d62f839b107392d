// The ECMP driver's pure parts: the route/nexthop batches it hands to `ip -b`, the bird configs of
// the router and the speakers, and the parsers it reads the router with. The real datapath is
// checked on a netns topology (test/e2e/lb-drivers.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Host } from '../../harness/host/types.ts';
import type { BackendNode } from '../../harness/topology/types.ts';
import { EcmpSpec } from '../../harness/scenario/schema.ts';
import { PreflightError } from '../../harness/errors.ts';
import {
  EMPTY_STATE,
  GROUP_ID,
  ROUTER_ASN,
  ecmp,
  establishedProtocols,
  isVipEvent,
  memberId,
  monitorEvents,
  routeGateways,
  routerBirdConf,
  speakerAsn,
  speakerBirdConf,
  staticRouteLines,
  toMembers,
  type Member,
} from '../../harness/lb/ecmp.ts';

const VIP = '198.18.100.1';
const DEV = 'eth1';
const ROUTER = '198.18.1.2';
const LOG = '/tmp/lbbench/x/lb/bird-lb0/bird.log';

const noHost = new Proxy({}, { get: () => () => assert.fail('pure builder used the host') }) as Host;
const be = (i: number): BackendNode => ({ name: `be${i}`, host: noHost, ip: `198.18.1.${11 + i}`, port: 80, statusPort: 8081 });
const topo = { backends: [0, 1, 2, 3].map(be) };
const members = (n: number): Member[] => toMembers(topo, topo.backends.slice(0, n));
const spec = (o: Record<string, unknown>) => EcmpSpec.parse({ kind: 'ecmp', ...o });
const classic = spec({});
const resilient = spec({ nexthops: 'resilient', buckets: 64 });

test('defaults: static, classic, 128 buckets', () => {
  assert.deepEqual({ mode: classic.mode, nexthops: classic.nexthops, buckets: classic.buckets }, { mode: 'static', nexthops: 'classic', buckets: 128 });
});

test('members keep their topology slot, whatever order or subset they come in', () => {
  assert.deepEqual(toMembers(topo, [be(2), be(0)]), [
    { name: 'be0', ip: '198.18.1.11', slot: 0 },
    { name: 'be2', ip: '198.18.1.13', slot: 2 },
  ]);
  assert.equal(memberId(2), 1002);
  assert.equal(speakerAsn(2), ROUTER_ASN + 3);
  assert.throws(() => toMembers(topo, [{ ...be(9), name: 'stranger' }]), /not part of this topology/);
});

test('classic: one multipath route with one nexthop per backend (n = 1..3)', () => {
  const expect = [
    'route replace 198.18.100.1/32 nexthop via 198.18.1.11 dev eth1',
    'route replace 198.18.100.1/32 nexthop via 198.18.1.11 dev eth1 nexthop via 198.18.1.12 dev eth1',
    'route replace 198.18.100.1/32 nexthop via 198.18.1.11 dev eth1 nexthop via 198.18.1.12 dev eth1 nexthop via 198.18.1.13 dev eth1',
  ];
  for (const n of [1, 2, 3]) {
    const { lines, next } = staticRouteLines(classic, VIP, DEV, members(n), EMPTY_STATE);
    assert.deepEqual(lines, [expect[n - 1]]);
    assert.deepEqual(next, { routed: true, group: false, nexthops: [] });
  }
});

test('classic: no backends removes the route, and only if there is one', () => {
  const routed = staticRouteLines(classic, VIP, DEV, members(2), EMPTY_STATE).next;
  assert.deepEqual(staticRouteLines(classic, VIP, DEV, [], routed), { lines: ['route del 198.18.100.1/32'], next: EMPTY_STATE });
  assert.deepEqual(staticRouteLines(classic, VIP, DEV, [], EMPTY_STATE).lines, []);
});

test('resilient: member nexthops, the group, then the route (n = 1..3)', () => {
  for (const n of [1, 2, 3]) {
    const ids = Array.from({ length: n }, (_, i) => 1000 + i);
    const { lines, next } = staticRouteLines(resilient, VIP, DEV, members(n), EMPTY_STATE);
    assert.deepEqual(lines, [
      ...ids.map((id, i) => `nexthop replace id ${id} via 198.18.1.${11 + i} dev eth1`),
      `nexthop replace id ${GROUP_ID} group ${ids.join('/')} type resilient buckets 64 idle_timer 0`,
      'route replace 198.18.100.1/32 nhid 999',
    ]);
    assert.deepEqual(next, { routed: true, group: true, nexthops: ids });
  }
});

test('resilient: a change replaces only the group; members are never rewritten, departed ones deleted', () => {
  const three = staticRouteLines(resilient, VIP, DEV, members(3), EMPTY_STATE).next;
  const toOne = staticRouteLines(resilient, VIP, DEV, toMembers(topo, [be(1)]), three);
  assert.deepEqual(toOne.lines, [
    'nexthop replace id 999 group 1001 type resilient buckets 64 idle_timer 0',
    'nexthop del id 1000',
    'nexthop del id 1002',
  ]);
  assert.deepEqual(toOne.next, { routed: true, group: true, nexthops: [1001] });
  const back = staticRouteLines(resilient, VIP, DEV, toMembers(topo, [be(1), be(3)]), toOne.next);
  assert.deepEqual(back.lines, [
    'nexthop replace id 1003 via 198.18.1.14 dev eth1',
    'nexthop replace id 999 group 1001/1003 type resilient buckets 64 idle_timer 0',
  ]);
});

test('resilient: no backends removes route, group and members', () => {
  const two = staticRouteLines(resilient, VIP, DEV, members(2), EMPTY_STATE).next;
  assert.deepEqual(staticRouteLines(resilient, VIP, DEV, [], two), {
    lines: ['route del 198.18.100.1/32', 'nexthop del id 999', 'nexthop del id 1000', 'nexthop del id 1001'],
    next: EMPTY_STATE,
  });
});

const lines = (text: string) => text.split('\n').map((l) => l.trim());

test('router bird.conf: kernel export of the VIP with merge paths, one passive eBGP neighbor per backend', () => {
  for (const n of [1, 2, 3]) {
    const conf = routerBirdConf({ vip: VIP, routerIp: ROUTER, members: members(n), logFile: LOG });
    assert.deepEqual(lines(conf), [
      "# generated by lbbench: ECMP router; merges the backends' VIP announcements into one multipath route",
      `log "${LOG}" all;`,
      'router id 198.18.1.2;',
      'protocol device {}',
      'protocol kernel kernel4 {',
      'ipv4 {',
      'import none;',
      'export where net = 198.18.100.1/32;',
      '};',
      'merge paths on;',
      '}',
      'template bgp lbnode {',
      'local 198.18.1.2 as 4200000000;',
      'passive on;',
      'hold time 3;',
      'keepalive time 1;',
      'connect retry time 1;',
      'connect delay time 1;',
      'error wait time 1, 2;',
      'ipv4 {',
      'import where net = 198.18.100.1/32;',
      'export none;',
      '};',
      '}',
      ...Array.from({ length: n }, (_, i) => [`protocol bgp bgp_be${i} from lbnode {`, `neighbor 198.18.1.${11 + i} as ${4200000001 + i};`, '}']).flat(),
      '',
    ]);
  }
});

test('speaker bird.conf: VIP/32 on lo, announced with origin IGP to the router only', () => {
  const conf = speakerBirdConf({ vip: VIP, ip: '198.18.1.13', slot: 2, routerIp: ROUTER, announce: true, logFile: LOG });
  assert.deepEqual(lines(conf), [
    '# generated by lbbench: ECMP speaker; announces the VIP to the router',
    `log "${LOG}" all;`,
    'router id 198.18.1.13;',
    'protocol device {}',
    'protocol static vip {',
    'ipv4;',
    'route 198.18.100.1/32 via "lo";',
    '}',
    'protocol bgp bgp_router {',
    'local 198.18.1.13 as 4200000003;',
    'neighbor 198.18.1.2 as 4200000000;',
    'hold time 3;',
    'keepalive time 1;',
    'connect retry time 1;',
    'connect delay time 1;',
    'error wait time 1, 2;',
    'ipv4 {',
    'import none;',
    'export filter { if net = 198.18.100.1/32 then { bgp_origin = ORIGIN_IGP; accept; } reject; };',
    '};',
    '}',
    '',
  ]);
  // A joining backend starts with its announcement off; the session comes up first.
  const quiet = lines(speakerBirdConf({ vip: VIP, ip: '198.18.1.13', slot: 2, routerIp: ROUTER, announce: false, logFile: LOG }));
  assert.deepEqual(quiet.slice(4, 7), ['protocol static vip {', 'disabled;', 'ipv4;']);
});

test('routeGateways: none, a single path, multipath and nhid routes', () => {
  assert.deepEqual(routeGateways(''), []);
  assert.deepEqual(routeGateways('[]'), []);
  assert.deepEqual(routeGateways('[{"dst":"198.18.100.1","gateway":"198.18.1.12","dev":"eth1","protocol":"bird","metric":32,"flags":[]}]'), ['198.18.1.12']);
  assert.deepEqual(
    routeGateways(
      '[{"dst":"198.18.100.1","nhid":999,"flags":[],"nexthops":[{"gateway":"198.18.1.13","dev":"eth1","weight":1,"flags":[]},{"gateway":"198.18.1.11","dev":"eth1","weight":1,"flags":[]}]}]',
    ),
    ['198.18.1.11', '198.18.1.13'],
  );
});

test('birdc show protocols: only Established BGP sessions count', () => {
  const out = [
    'BIRD 2.0.12 ready.',
    'Name       Proto      Table      State  Since         Info',
    'device1    Device     ---        up     09:37:41.082  ',
    'kernel4    Kernel     master4    up     09:37:41.082  ',
    'bgp_be0    BGP        ---        up     09:37:41.983  Established   ',
    'bgp_be1    BGP        ---        start  09:37:41.930  Active        Socket: Connection refused',
  ].join('\n');
  assert.deepEqual([...establishedProtocols(out)], ['bgp_be0']);
});

test('ip -ts monitor: timestamps in local time, VIP route and group events recognised', () => {
  const out = [
    '[2026-11-23T09:39:37.000658] id 1000 via 198.18.1.11 dev eth1 scope link ',
    '[2026-11-23T09:39:37.000955] id 999 group 1000/1001 type resilient buckets 8 idle_timer 0 unbalanced_timer 0 unbalanced_time 0 ',
    '[2026-11-23T09:39:37.250978] 198.18.100.1 nhid 999 ',
    '\tnexthop via 198.18.1.11 dev eth1 weight 1 ',
    '[2026-11-23T09:39:38.001341] Deleted 198.18.100.1 via 198.18.1.11 dev eth1 proto bird metric 32 ',
    '[2026-11-23T09:39:38.001342] 198.18.100.10 via 198.18.1.11 dev eth1 ',
  ].join('\n');
  const ev = monitorEvents(out);
  assert.equal(ev.length, 5);
  assert.equal(ev[0]!.ms, new Date(2026, 10, 23, 9, 39, 37).getTime() + 0.658);
  assert.ok(Math.abs(ev[2]!.ms - ev[0]!.ms - 250.32) < 1e-3);
  assert.deepEqual(
    ev.map((e) => isVipEvent(e.text, VIP)),
    [false, true, true, true, false],
  );
});

test('preflight: bgp with resilient nexthops is refused before anything is checked on the host', async () => {
  await assert.rejects(
    ecmp.preflight(noHost, spec({ mode: 'bgp', nexthops: 'resilient' })),
    (e: unknown) => e instanceof PreflightError && /not supported/.test(e.message) && /nexthops: classic/.test(e.hint ?? ''),
  );
});
