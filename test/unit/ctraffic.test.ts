// ctraffic's pure halves, fed fixtures constructed from its source (test/fixtures/ctraffic/README.md
// says which file and version). Broken variants are cut from or edited in those texts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ConfigError, ParseError } from '../../harness/errors.ts';
import { connectionTimeline, ctraffic, ctrafficArgv, CTRAFFIC_SOURCE_POOL6, parseCtraffic, parseCtrafficSummary } from '../../harness/load/ctraffic.ts';
import { LoadSpec } from '../../harness/scenario/schema.ts';
import { PLAN, PLAN6 } from '../../harness/topology/address-plan.ts';
import { throwsParse } from './parse-assert.ts';

const dir = new URL('../fixtures/ctraffic/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, dir), 'utf8');
const allOk = read('all-ok.stdout');
const allLost = read('all-lost.stdout');
type Doc = Record<string, unknown> & { ConnStats: Record<string, unknown>[]; Samples: Record<string, unknown>[] };
const docOf = (text: string) => JSON.parse(text) as Doc;
const line = (o: unknown) => `${JSON.stringify(o)}\n`;


// ---------------------------------------------------------------------------------------------
// argv

test('ctrafficArgv writes the fixtures\' command lines', () => {
  const base = { address: '10.0.0.0:5003' };
  const cases: [string, Parameters<typeof ctrafficArgv>[0]][] = [
    ['all-ok', { ...base, nconn: 4, rate: 40, timeoutS: 6, monitor: true }],
    ['all-lost', { ...base, nconn: 6, rate: 60, timeoutS: 8, srcCidr: '50.0.0.0/16', monitor: true }],
    ['refused', { ...base, nconn: 2, rate: 10, timeoutS: 4 }],
    ['summary', { ...base, nconn: 100, rate: 100, timeoutS: 10, stats: 'summary' }],
    ['too-many-reconnects', { ...base, nconn: 1, rate: 10, timeoutS: 10, retries: 3 }],
  ];
  for (const [name, args] of cases) assert.equal(ctrafficArgv(args).join(' '), read(`${name}.cmd`).trim(), name);
});

test('ctrafficArgv: bool flags as -flag=false, fractional rate and timeout, own binary', () => {
  assert.deepEqual(
    ctrafficArgv({ address: '[1000::]:5003', nconn: 100, rate: 12.5, timeoutS: 2.5, psize: 64, reconnect: false, ctraffic: '/opt/ctraffic' }),
    ['/opt/ctraffic', '-address', '[1000::]:5003', '-nconn', '100', '-rate', '12.5', '-timeout', '2500ms', '-stats', 'all', '-psize', '64', '-reconnect=false'],
  );
  assert.ok(!ctrafficArgv({ address: '10.0.0.0:5003', nconn: 1, rate: 1, timeoutS: 3, reconnect: true }).some((a) => a.startsWith('-reconnect')));
});

test('ctrafficArgv: what ctraffic would reject, ignore or silently change is a ConfigError', () => {
  const base = { address: '10.0.0.0:5003', nconn: 4, rate: 40, timeoutS: 6 };
  for (const bad of [
    { ...base, address: '1000::1:5003' },
    { ...base, nconn: 0 },
    { ...base, rate: 0 },
    { ...base, rate: Number.POSITIVE_INFINITY },
    { ...base, timeoutS: 2 },
    { ...base, psize: 63 },
    { ...base, retries: 0 },
    { ...base, srcCidr: 'fd00::' },
  ]) {
    assert.throws(() => ctrafficArgv(bad), ConfigError, JSON.stringify(bad));
  }
});

// ---------------------------------------------------------------------------------------------
// IPv6, as the Nordix source has it (github.com/Nordix/ctraffic cmd/ctraffic/main.go, the 2025
// version — stored-file id 37024257342, see ../fixtures/ctraffic/README.md):
// - echoConn.Connect(): net.Dialer{LocalAddr, Timeout}.DialContext(ctx, "tcp", address), Go's
//   host:port, so an IPv6 VIP is "[…]:port" (the README: `-address [1000::1]:5003`).
// - clientMain(): rndip.New(*c.srccidr) from github.com/Nordix/mconnect/pkg/rndip/v2; client():
//   net.ResolveTCPAddr("tcp", withPort(c.adrgen.GetIPStringIdx(id))), withPort() expecting IPv6 in
//   brackets. rndip/v2's own source is not in the corpus, so the prefix is the one the author uses
//   with IPv6 (Nordix/xcluster ovl/load-balancer/README.md: `-srccidr 2000::/112`): the first /112
//   of the IPv6 pool.
// - serverMain(): net.Listen("tcp", *c.addr) with "[::]:5003" (the README's image) is dual-stack.

const v6 = { ip: '2001:2:0:100::1', port: 80, path: '/' };
const v4 = { ip: '198.18.100.1', port: 80, path: '/' };
const run = (target: typeof v4, sourceAddresses = 50) =>
  ctraffic.buildArgv({ load: LoadSpec.parse({ generator: 'ctraffic', connections: 40, rate: 100, sourceAddresses }), target, durationS: 10, workDir: '/w' });

test('ctraffic over IPv6: the VIP in brackets, sources from a /112 of the IPv6 pool; IPv4 as before', () => {
  assert.equal(ctraffic.ipv6, true);
  assert.deepEqual(run(v6), ['ctraffic', '-address', '[2001:2:0:100::1]:80', '-nconn', '40', '-rate', '100', '-timeout', '10s', '-stats', 'all', '-psize', '1024', '-srccidr', '2001:2:0:80::/112']);
  assert.ok(!run(v6, 0).includes('-srccidr'));
  assert.deepEqual(run(v4).slice(1, 3), ['-address', '198.18.100.1:80']);
  assert.equal(run(v4).at(-1), PLAN.sourcePool);
});

test('ctraffic\'s IPv6 source /112 lies inside the IPv6 pool the topology routes to the client', () => {
  const [base, len] = CTRAFFIC_SOURCE_POOL6.split('/');
  const [poolBase, poolLen] = PLAN6.sourcePool.split('/');
  assert.equal(base, poolBase);
  assert.equal(Number(len), 112);
  assert.ok(Number(len) >= Number(poolLen));
});

test('ctrafficArgv: a source CIDR of the other family than the address is a ConfigError', () => {
  const base = { nconn: 4, rate: 40, timeoutS: 6 };
  assert.throws(() => ctrafficArgv({ ...base, address: '[2001:2:0:100::1]:80', srcCidr: '50.0.0.0/16' }), ConfigError);
  assert.throws(() => ctrafficArgv({ ...base, address: '10.0.0.0:5003', srcCidr: '2000::/112' }), ConfigError);
  assert.equal(ctrafficArgv({ ...base, address: '[1000::]:5003', srcCidr: '2000::/112' }).at(-1), '2000::/112');
});

test('ctraffic servers: [::]:5003 for an IPv6 VIP, 0.0.0.0:5003 for IPv4', async () => {
  const spawned = async (ip: string) => {
    const calls: string[] = [];
    const host = {
      name: 'be0',
      exec: async (argv: string[]) => {
        calls.push(argv.join(' '));
        return { stdout: argv[0] === 'ss' ? 'LISTEN 0 4096 *:5003 *:*\n' : '', stderr: '', code: 0 };
      },
      spawn: (argv: string[]) => {
        calls.push(`spawn ${argv.join(' ')}`);
        return { running: () => true, stop: async () => ({ stdout: '', stderr: '', code: 0 }) };
      },
    };
    await ctraffic.attach!({ topo: {} as never, backends: [{ name: 'be0', host }] as never, endpoint: { ip, port: 80 }, load: {} as never, teardown: { add: () => {} } as never, workDir: '/w' });
    return calls;
  };
  const c6 = await spawned(v6.ip);
  assert.ok(c6.some((c) => c.startsWith('spawn ') && c.endsWith(' ctraffic -server -address [::]:5003')), c6.join('\n'));
  assert.ok(c6.some((c) => c.startsWith('ip6tables -t nat -I PREROUTING -p tcp --dport 80 ')), c6.join('\n'));
  const c4 = await spawned(v4.ip);
  assert.ok(c4.some((c) => c.startsWith('spawn ') && c.endsWith(' ctraffic -server -address 0.0.0.0:5003')), c4.join('\n'));
});

// ---------------------------------------------------------------------------------------------
// parse

test('parseCtraffic: a clean run, summary, samples, timeline and hosts', () => {
  const r = parseCtraffic(allOk);
  assert.equal(r.started, '2024-05-14T09:21:40.118734209Z');
  assert.equal(r.durationNs, 5_932_456_101);
  assert.deepEqual([r.rateKBps, r.packetSize, r.retransmits], [40, 1024, 0]);
  assert.deepEqual(r.connections, { requested: 4, lost: 0, failedConnects: 0, total: 4, lasting: 4, neverConnected: 0 });
  assert.deepEqual(r.packets, { sent: 237, received: 237, dropped: 0, lostInFlight: 0 });
  assert.deepEqual(r.perConnection[0], {
    startedNs: 61235,
    connectNs: 398122,
    endedNs: 6_000_000_000,
    error: null,
    sent: 59,
    received: 59,
    dropped: 0,
    retransmits: 0,
    local: '192.168.2.221:41822',
    remote: '10.0.0.0:5003',
    host: 'vm-002',
  });
  assert.deepEqual(r.samples[2], { timeNs: 3_000_655_012, sent: 120, received: 119, dropped: 0 });
  assert.equal(r.samples.length, 5);
  assert.deepEqual(r.timeline.map((i) => [i.tS, i.active, i.new, i.failed, i.connecting]), [
    [0.5, 4, 4, 0, 0],
    [1.5, 4, 0, 0, 0],
    [2.5, 4, 0, 0, 0],
    [3.5, 4, 0, 0, 0],
    [4.5, 4, 0, 0, 0],
  ]);
  assert.deepEqual(r.hosts, { 'vm-001': { lasting: 2, lost: 0 }, 'vm-002': { lasting: 1, lost: 0 }, 'vm-003': { lasting: 1, lost: 0 } });
});

test('parseCtraffic: lost connections, their replacements and when it happened', () => {
  const r = parseCtraffic(allLost);
  assert.deepEqual(r.connections, { requested: 6, lost: 2, failedConnects: 1, total: 8, lasting: 6, neverConnected: 0 });
  assert.deepEqual(r.packets, { sent: 462, received: 460, dropped: 2, lostInFlight: 2 });
  assert.equal(r.retransmits, 2);
  assert.deepEqual(
    r.perConnection.filter((c) => c.error).map((c) => [c.host, c.endedNs, c.error]),
    [
      ['vm-002', 3_212_554_870, 'read tcp 50.0.140.2:37705->10.0.0.0:5003: read: connection reset by peer'],
      ['vm-002', 4_313_009_127, 'read tcp 50.0.201.4:40153->10.0.0.0:5003: i/o timeout'],
    ],
  );
  // What `ctraffic -analyze connections` prints for this run.
  assert.deepEqual(r.timeline.map((i) => [i.tS, i.active, i.new, i.failed, i.connecting]), [
    [0.5, 6, 6, 0, 0],
    [1.5, 6, 0, 0, 0],
    [2.5, 6, 0, 0, 0],
    [3.5, 6, 1, 1, 0],
    [4.5, 6, 1, 1, 0],
    [5.5, 6, 0, 0, 0],
    [6.5, 6, 0, 0, 0],
  ]);
  assert.deepEqual(r.hosts, { 'vm-001': { lasting: 3, lost: 0 }, 'vm-002': { lasting: 0, lost: 2 }, 'vm-003': { lasting: 3, lost: 0 } });
});

test('parseCtraffic: nothing listening is a measurement (exit 0): all entries never connected', () => {
  assert.equal(read('refused.rc').trim(), '0');
  const r = parseCtraffic(read('refused.stdout'));
  assert.deepEqual(r.connections, { requested: 2, lost: 0, failedConnects: 10, total: 2, lasting: 0, neverConnected: 2 });
  assert.deepEqual(r.perConnection.map((c) => [c.connectNs, c.error, c.local, c.host]), [[null, null, '', null], [null, null, '', null]]);
  assert.deepEqual(r.timeline.map((i) => [i.tS, i.active, i.new, i.connecting]), [[0.5, 0, 2, 2], [1.5, 0, 0, 2]]);
});

test('-stats summary has its own parser; the two are not interchangeable', () => {
  const s = parseCtrafficSummary(read('summary.stdout'));
  assert.deepEqual(s, {
    started: '2024-05-14T09:27:30.004417713Z',
    durationNs: 9_991_602_213,
    durationS: 9.991602213,
    rateKBps: 100,
    packetSize: 1024,
    connections: { requested: 100, lost: 0, failedConnects: 0 },
    packets: { sent: 991, received: 991, dropped: 0, lostInFlight: 0 },
    retransmits: 0,
  });
  assert.match(throwsParse(() => parseCtraffic(read('summary.stdout')), /no ConnStats/).hint ?? '', /-stats all/);
  throwsParse(() => parseCtrafficSummary(allOk), /-stats all output/);
});

test('statistics printed on "Too many re-connects" are a cut-short run, not a measurement', () => {
  assert.equal(read('too-many-reconnects.rc').trim(), '1');
  assert.match(read('too-many-reconnects.stderr'), /Too many re-connects: 3$/m);
  const e = throwsParse(() => parseCtraffic(read('too-many-reconnects.stdout')), /ConnStats\[3\] never ended/);
  assert.match(e.hint ?? '', /-retries/);
  // A connection still running at that moment: Go's zero time minus the start.
  const d = docOf(allOk);
  d.ConnStats[1]!.Ended = -9223372036854775808;
  throwsParse(() => parseCtraffic(line(d)), /ConnStats\[1\] never ended/);
});

test('flag errors, monitor lines and error text on stdout are ParseErrors', () => {
  for (const name of ['flag-error', 'bad-timeout']) {
    assert.equal(read(`${name}.rc`).trim(), '2');
    throwsParse(() => parseCtraffic(read(`${name}.stdout`)), /no output on stdout/);
    throwsParse(() => parseCtraffic(read(`${name}.stderr`)), /expected one JSON line/);
  }
  assert.match(read('flag-error.stderr'), /^flag provided but not defined: -monitor_interval$/m);
  // stdout and stderr captured together.
  const merged = read('all-ok.stderr') + allOk;
  assert.match(throwsParse(() => parseCtraffic(merged)).hint ?? '', /stderr/);
  throwsParse(() => parseCtraffic('dial tcp 10.0.0.0:5003: connect: connection refused\n'), /expected one JSON line/);
  throwsParse(() => parseCtraffic(allOk + allOk), /expected one JSON line/);
});

test('truncated ctraffic output is a ParseError, never zero packets', () => {
  throwsParse(() => parseCtraffic(read('truncated.stdout')), /truncated or garbled/);
  for (const text of [allOk, allLost]) {
    const json = text.trimEnd();
    for (let cut = 0; cut < text.length - 1; cut += 11) {
      const head = text.slice(0, cut);
      if (head.includes(json)) continue;
      assert.throws(() => parseCtraffic(head), ParseError, `cut at ${cut}`);
      assert.throws(() => parseCtrafficSummary(head), ParseError, `summary, cut at ${cut}`);
    }
  }
});

test('ctraffic JSON with wrong types is a ParseError', () => {
  throwsParse(() => parseCtraffic(read('wrong-types.stdout')), /Sent is "237"/);
  const d = docOf(read('wrong-types.stdout'));
  d.Sent = 237;
  throwsParse(() => parseCtraffic(line(d)), /ConnStats\[0\]\.Connect is null/);
  const edits: [(d: Doc) => void, RegExp][] = [
    [(d) => (d.Started = 1715678500), /Started/],
    [(d) => (d.Duration = 0), /Duration/],
    [(d) => (d.Rate = '40'), /Rate/],
    [(d) => (d.PacketSize = 32), /PacketSize is 32/],
    [(d) => (d.Dropped = -1), /Dropped/],
    [(d) => (d.Retransmits = 2 ** 32), /Retransmits/],
    [(d) => (d.ConnStats[0]!.Err = null), /Err is null/],
    [(d) => (d.ConnStats[0]!.Host = 7), /Host is 7/],
    [(d) => (d.ConnStats[2]!.Sent = 59.5), /ConnStats\[2\]\.Sent/],
    [(d) => (d.ConnStats[0] = [] as unknown as Record<string, unknown>), /ConnStats\[0\] is not an object/],
    [(d) => (d.Samples = {} as unknown as Record<string, unknown>[]), /Samples is not a list/],
    [(d) => (d.Samples[0]!.Time = '1s'), /Samples\[0\]\.Time/],
  ];
  for (const [edit, pattern] of edits) {
    const doc = docOf(allOk);
    edit(doc);
    throwsParse(() => parseCtraffic(line(doc)), pattern);
  }
});

test('ctraffic JSON whose parts disagree is a ParseError', () => {
  const edits: [(d: Doc) => void, RegExp][] = [
    [(d) => (d.Sent = 463), /per-connection sent add up to 462, the summary says 463/],
    [(d) => (d.Retransmits = 3), /retransmits add up to 2/],
    [(d) => (d.FailedConnections = 1), /2 entries have an error, FailedConnections is 1/],
    [(d) => (d.Received = 463), /Received 463 > Sent 462/],
    [(d) => ((d.ConnStats[0]!.Received = 80), (d.Received = 461)), /ConnStats\[0\]: Received 80 > Sent 79/],
    [(d) => (d.ConnStats[6]!.Connect = 3_000_000_000), /ConnStats\[6\].*out of order/],
    [(d) => (d.ConnStats[1]!.Started = 3_300_000_000), /ConnStats\[1\].*out of order/],
    [(d) => ((d.ConnStats[7]!.Connect = 0), (d.ConnStats[7]!.Sent = 0), (d.ConnStats[7]!.Received = 0), (d.Sent = 427), (d.Received = 425)), /ConnStats\[7\] never connected but/],
    [(d) => (d.ConnStats[0]!.Local = ''), /ConnStats\[0\] connected without local/],
    [(d) => (d.Connections = 5), /8 entries for 5 connections and 2 re-connects/],
    [(d) => (d.Samples[3]!.Sent = 170), /Samples\[3\] goes backwards/],
    [(d) => (d.Samples[6]!.Time = 6_000_000_000), /Samples\[6\] goes backwards/],
    [(d) => (d.Samples[6]!.Sent = 463), /Samples\[6\] exceeds the final totals/],
  ];
  for (const [edit, pattern] of edits) {
    const doc = docOf(allLost);
    edit(doc);
    throwsParse(() => parseCtraffic(line(doc)), pattern);
  }
});

test('Samples absent (run over before the first second) are an empty list, not an error', () => {
  const d = docOf(read('refused.stdout'));
  delete (d as Partial<Doc>).Samples;
  assert.deepEqual(parseCtraffic(line(d)).samples, []);
});

test('connectionTimeline: an entry starting on a second boundary is new once', () => {
  const c = { connectNs: 1_100_000_000, endedNs: 5_000_000_000, error: null, sent: 0, received: 0, dropped: 0, retransmits: 0, local: 'a', remote: 'b', host: null };
  const rows = connectionTimeline([{ ...c, startedNs: 1_000_000_000 }], 3_500_000_000);
  assert.deepEqual(rows.map((r) => [r.tS, r.active, r.new, r.connecting]), [[0.5, 0, 1, 1], [1.5, 1, 0, 0], [2.5, 1, 0, 0]]);
});
