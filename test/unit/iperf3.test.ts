// iperf3's pure halves, fed -J output recorded from real iperf3 3.12 runs on loopback
// (test/fixtures/iperf3, re-recorded by record.sh there). Broken variants are cut or edited from
// that real output, never invented.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ConfigError, ParseError } from '../../harness/errors.ts';
import { IPERF3_CONNECT_TIMEOUT_MS, IPERF3_PLACEMENT, iperf3, iperf3Argv, parseIperf3, type Iperf3Options } from '../../harness/load/iperf3.ts';
import { throwsParse } from './parse-assert.ts';

const dir = new URL('../fixtures/iperf3/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, dir), 'utf8');


/** A real fixture with one edit applied to its parsed JSON. */
function edited(name: string, edit: (doc: any) => void): string {
  const doc = JSON.parse(read(name));
  edit(doc);
  return JSON.stringify(doc);
}

// ---------------------------------------------------------------------------------------------
// real runs

test('TCP, one stream', () => {
  assert.deepEqual(parseIperf3(read('tcp-1stream.json')), {
    protocol: 'tcp',
    streams: 1,
    reverse: false,
    seconds: 2.000103,
    sentBytes: 9294315520,
    receivedBytes: 9294315520,
    bitsPerSecond: 37175347549.6012,
    senderBitsPerSecond: 37176314083.99086,
    retransmits: 0,
    cpu: { hostTotal: 98.4588557544068, remoteTotal: 75.00157490078125 },
    intervals: [
      { start: 0, end: 1.000206, bitsPerSecond: 38244174422.82977 },
      { start: 1.000206, end: 2.000051, bitsPerSecond: 36108067422.183784 },
    ],
  });
});

test('TCP, two streams: the sums, not the first stream', () => {
  assert.deepEqual(parseIperf3(read('tcp-2streams.json')), {
    protocol: 'tcp',
    streams: 2,
    reverse: false,
    seconds: 2.000855,
    sentBytes: 7334789120,
    receivedBytes: 7334789120,
    bitsPerSecond: 29326619350.227776,
    senderBitsPerSecond: 29327572089.024837,
    retransmits: 0,
    cpu: { hostTotal: 99.05347924633803, remoteTotal: 70.24973599024025 },
    intervals: [
      { start: 0, end: 1.000173, bitsPerSecond: 31892165446.699165 },
      { start: 1.000173, end: 2.00079, bitsPerSecond: 26764116849.705963 },
    ],
  });
});

test('TCP reverse: sum_received is still what arrived (at the client now)', () => {
  const r = parseIperf3(read('tcp-reverse.json'));
  assert.deepEqual(r, {
    protocol: 'tcp',
    streams: 1,
    reverse: true,
    seconds: 2.000023,
    sentBytes: 6929776640,
    receivedBytes: 6928859136,
    bitsPerSecond: 27715117820.145065,
    senderBitsPerSecond: 27704533975.12908,
    retransmits: 0,
    cpu: { hostTotal: 70.7105790197164, remoteTotal: 96.3176645259754 },
    intervals: [
      { start: 0, end: 1.000032, bitsPerSecond: 26695891229.275066 },
      { start: 1.000032, end: 2.000023, bitsPerSecond: 28734387594.147774 },
    ],
  });
  // Still in flight when the sender stopped counting.
  assert.ok(r.receivedBytes < r.sentBytes);
});

test('UDP, 64-byte datagrams: loss and rate from the receiver', () => {
  const r = parseIperf3(read('udp-64b.json'));
  assert.deepEqual(r, {
    protocol: 'udp',
    streams: 1,
    reverse: false,
    seconds: 2.000198,
    sentBytes: 19508608,
    receivedBytes: 19387392,
    bitsPerSecond: 77541891.35275607,
    senderBitsPerSecond: 78033846.7461494,
    udp: {
      packets: 304822,
      lostPackets: 1894,
      lostFraction: 1894 / 304822,
      jitterMs: 0.005052656922216132,
      packetsPerSecond: (304822 - 1894) / 2.000198,
      sentPackets: 304822,
    },
    cpu: { hostTotal: 99.59647126038625, remoteTotal: 67.23235868323498 },
    intervals: [
      { start: 0, end: 1.000005, bitsPerSecond: 79194739.4885575, packets: 154678 },
      { start: 1.000005, end: 2.000015, bitsPerSecond: 76872958.2264582, packets: 150144 },
    ],
  });
  assert.equal(r.retransmits, undefined);
  // iperf3's lost_percent is the same ratio.
  assert.ok(Math.abs(r.udp!.lostFraction * 100 - 0.621346228290609) < 1e-12);
  // What arrived is exactly packets − lost datagrams of 64 bytes.
  assert.equal((r.udp!.packets - r.udp!.lostPackets) * 64, r.receivedBytes);
});

test('UDP reverse: the tail after the last received datagram is neither arrived nor lost', () => {
  const r = parseIperf3(read('udp-64b-reverse.json'));
  assert.deepEqual(r.udp, {
    packets: 258158,
    lostPackets: 706,
    lostFraction: 706 / 258158,
    jitterMs: 0.007103088110347676,
    packetsPerSecond: (258158 - 706) / 2.000025,
    sentPackets: 258168,
  });
  assert.equal(r.reverse, true);
  assert.equal(r.bitsPerSecond, 65906888.163897954);
  assert.equal(r.senderBitsPerSecond, 65961525.52539366);
  assert.equal((r.udp!.packets - r.udp!.lostPackets) * 64, r.receivedBytes);
  assert.deepEqual(r.intervals.map((i) => i.packets), [131343, 126815]);
});

// ---------------------------------------------------------------------------------------------
// failures, all real

test('nothing listening: the error text and a reachability hint, although iperf3 exited 0', () => {
  assert.equal(read('err-refused.rc').trim(), '0');
  const e = throwsParse(() => parseIperf3(read('err-refused.json')), /unable to connect to server: Connection refused/);
  assert.match(e.hint ?? '', /not reachable/);
  assert.equal(e.excerpt, 'unable to connect to server: Connection refused');
});

test('client interrupted mid-run: its error wins over the partial sums next to it', () => {
  assert.equal(read('interrupted.rc').trim(), '1');
  const text = read('interrupted.json');
  const doc = JSON.parse(text);
  // The trap: sender-side numbers look like a measurement.
  assert.ok(doc.end.sum_sent.bytes > 0);
  assert.equal(doc.end.sum_received.bytes, 0);
  const e = throwsParse(() => parseIperf3(text), /interrupt - the client has terminated/);
  assert.match(e.hint ?? '', /partial/);
  // Without the error field the zeros still do not pass.
  throwsParse(
    () => parseIperf3(edited('interrupted.json', (d) => delete d.error)),
    /nothing arrived: 0 bytes received/,
  );
});

test('client killed: -J prints nothing before the end', () => {
  assert.equal(read('killed.rc').trim(), '137');
  throwsParse(() => parseIperf3(read('killed.json')), /no output/);
  throwsParse(() => parseIperf3('\n'), /no output/);
});

test('truncated JSON, the recorded cut and every other one', () => {
  throwsParse(() => parseIperf3(read('tcp-truncated.json')), /truncated or invalid JSON/);
  for (const name of ['tcp-1stream.json', 'udp-64b.json']) {
    const whole = read(name).trimEnd();
    for (let cut = 0; cut < whole.length; cut++) {
      assert.throws(() => parseIperf3(whole.slice(0, cut)), ParseError, `${name} cut at ${cut}`);
    }
    parseIperf3(whole);
  }
});

test('not iperf3 -J output', () => {
  throwsParse(() => parseIperf3('iperf3: error - unable to connect to server: Connection refused\n'), /invalid JSON/);
  for (const junk of ['[]', 'null', '42', '"x"']) throwsParse(() => parseIperf3(junk), /not a JSON object/);
});

test('missing or impossible fields are named', () => {
  const cases: [string, (d: any) => void, RegExp][] = [
    ['tcp-1stream.json', (d) => delete d.end.sum_received, /end\.sum_received missing/],
    ['tcp-1stream.json', (d) => delete d.end.sum_sent, /end\.sum_sent missing/],
    ['tcp-1stream.json', (d) => (d.end = {}), /end\.sum_sent missing/],
    ['tcp-1stream.json', (d) => delete d.start.test_start, /start\.test_start missing/],
    ['tcp-1stream.json', (d) => (d.start.test_start.protocol = 'SCTP'), /protocol is "SCTP"/],
    ['tcp-1stream.json', (d) => (d.end.sum_received.bytes = '9294315520'), /sum_received\.bytes is "9294315520"/],
    ['tcp-1stream.json', (d) => (d.end.sum_received.bits_per_second = null), /bits_per_second is null/],
    ['tcp-1stream.json', (d) => (d.end.sum_sent.retransmits = -1), /retransmits is -1/],
    ['tcp-1stream.json', (d) => delete d.end.cpu_utilization_percent, /cpu_utilization_percent missing/],
    ['tcp-2streams.json', (d) => d.end.streams.pop(), /end\.streams has 1 entries for 2 streams/],
    ['tcp-1stream.json', (d) => delete d.intervals, /intervals missing/],
    ['tcp-1stream.json', (d) => delete d.intervals[1].sum.bits_per_second, /intervals\[1\]\.sum\.bits_per_second/],
    ['udp-64b.json', (d) => delete d.end.sum_received.lost_packets, /sum_received\.lost_packets is undefined/],
    ['udp-64b.json', (d) => (d.end.sum_received.lost_packets = 304823), /lost_packets 304823 of 304822/],
    ['udp-64b.json', (d) => delete d.intervals[0].sum.packets, /intervals\[0\]\.sum\.packets/],
    ['udp-64b.json', (d) => (d.end.sum_received.bytes = 0), /nothing arrived/],
  ];
  for (const [name, edit, pattern] of cases) throwsParse(() => parseIperf3(edited(name, edit)), pattern);
});

test('TCP without retransmit counts (non-Linux sender): absent, not 0', () => {
  const r = parseIperf3(edited('tcp-reverse.json', (d) => delete d.end.sum_sent.retransmits));
  assert.equal(r.retransmits, undefined);
  assert.ok(!('retransmits' in r));
});

test('--omit warm-up intervals are left out like they are from the sums', () => {
  const r = parseIperf3(edited('tcp-1stream.json', (d) => (d.intervals[0].sum.omitted = true)));
  assert.deepEqual(r.intervals, [{ start: 1.000206, end: 2.000051, bitsPerSecond: 36108067422.183784 }]);
});

// ---------------------------------------------------------------------------------------------
// argv

const base: Iperf3Options = { server: '198.18.100.1', port: 5201, timeS: 10, protocol: 'tcp' };

test('argv: TCP defaults', () => {
  assert.deepEqual(iperf3Argv(base), [
    'iperf3', '-c', '198.18.100.1', '-p', '5201', '-J', '-t', '10', '--connect-timeout', '3000',
  ]);
  assert.equal(IPERF3_CONNECT_TIMEOUT_MS, 3000);
});

test('argv: every option', () => {
  assert.deepEqual(
    iperf3Argv({ ...base, protocol: 'udp', streams: 4, bitrate: '200M', length: 64, reverse: true, cport: 40000, bind: '198.18.128.1' }),
    [
      'iperf3', '-c', '198.18.100.1', '-p', '5201', '-J', '-t', '10', '--connect-timeout', '3000',
      '-u', '-P', '4', '-b', '200M', '-l', '64', '-R', '--cport', '40000', '-B', '198.18.128.1',
    ],
  );
  assert.deepEqual(iperf3Argv({ ...base, bitrate: '0', length: 1_048_576 }).slice(-4), ['-b', '0', '-l', '1048576']);
  assert.deepEqual(iperf3Argv({ ...base, bitrate: '1G/10' }).slice(-2), ['-b', '1G/10']);
});

test('argv: the fixtures were recorded with these, connect timeout aside', () => {
  const runs: [string, Partial<Iperf3Options>][] = [
    ['tcp-1stream', {}],
    ['tcp-2streams', { streams: 2 }],
    ['tcp-reverse', { reverse: true }],
    ['udp-64b', { protocol: 'udp', bitrate: '200M', length: 64 }],
    ['udp-64b-reverse', { protocol: 'udp', bitrate: '200M', length: 64, reverse: true }],
  ];
  for (const [name, over] of runs) {
    const cmd = read(`${name}.cmd`).trim();
    const port = Number(/-p (\d+)/.exec(cmd)![1]);
    const argv = iperf3Argv({ server: '127.0.0.1', port, timeS: 2, protocol: 'tcp', ...over });
    const i = argv.indexOf('--connect-timeout');
    argv.splice(i, 2);
    assert.equal(argv.join(' '), cmd, name);
  }
});

test('argv: whole seconds, rounded up; never 0 (iperf3 would run forever)', () => {
  const t = (timeS: number) => iperf3Argv({ ...base, timeS })[iperf3Argv({ ...base, timeS }).indexOf('-t') + 1];
  assert.equal(t(1.5), '2');
  assert.equal(t(0.2), '1');
  assert.equal(t(0.1 + 0.2 + 2.7), '3');
  for (const timeS of [0, -1, NaN, Infinity]) assert.throws(() => iperf3Argv({ ...base, timeS }), ConfigError);
});

test('argv: what iperf3 3.12 would reject with usage text instead of JSON, or silently misread', () => {
  const bad: Partial<Iperf3Options>[] = [
    { protocol: 'udp' }, // no bitrate: 1 Mbit/s
    { streams: 0 },
    { streams: 129 },
    { streams: 1.5 },
    { bitrate: '200X' },
    { bitrate: '' },
    { bitrate: '-1' },
    { protocol: 'udp', bitrate: '0', length: 15 },
    { protocol: 'udp', bitrate: '0', length: 65_508 },
    { length: 1_048_577 },
    { length: 0 },
    { port: 0 },
    { port: 65536 },
    { cport: 70000 },
    { server: '' },
    { server: '-s' },
    { bind: '' },
    { bind: '--foo' },
  ];
  for (const over of bad) assert.throws(() => iperf3Argv({ ...base, ...over }), ConfigError, JSON.stringify(over));
});

test('generator: parse keeps the stream numbers and what arrived; one backend only', () => {
  const out = readFileSync(new URL('../fixtures/iperf3/tcp-2streams.json', import.meta.url), 'utf8');
  const r = parseIperf3(out);
  const g = iperf3.parse(out, '');
  assert.deepEqual(g.stream, { protocol: 'tcp', bitsPerSec: r.bitsPerSecond, senderBitsPerSec: r.senderBitsPerSecond, retransmits: r.retransmits, placement: IPERF3_PLACEMENT });
  assert.equal(g.iperf3.receivedBytes, r.receivedBytes);
  assert.equal(g.durationS, r.seconds);
  assert.match(iperf3.unsupported!({ kind: 'netns' } as never, [1, 4]) ?? '', /4 backends splits them; measure iperf3 with sweep.backends: \[1\]/);
  assert.equal(iperf3.unsupported!({ kind: 'netns' } as never, [1]), undefined);
  assert.deepEqual(iperf3.buildArgv({ load: { connections: 2 } as never, target: { ip: '198.18.100.1', port: 80, path: '/' }, durationS: 2, workDir: '/w' }), [
    'iperf3', '-c', '198.18.100.1', '-p', '80', '-J', '-t', '2', '--connect-timeout', String(IPERF3_CONNECT_TIMEOUT_MS), '-P', '2',
  ]);
});

test('generator over UDP: small datagrams, unlimited bitrate, TCP+UDP balanced; the datagram numbers are kept', () => {
  const load = { connections: 1, protocol: 'udp', packetSize: 64, bitrate: '0' } as never;
  assert.deepEqual(iperf3.protocols!(load), ['tcp', 'udp']);
  assert.deepEqual(iperf3.protocols!({ protocol: 'tcp' } as never), ['tcp']);
  const argv = iperf3.buildArgv({ load, target: { ip: '198.18.100.1', port: 80, path: '/' }, durationS: 2, workDir: '/w' });
  assert.deepEqual(argv.slice(argv.indexOf('-u')), ['-u', '-P', '1', '-b', '0', '-l', '64']);
  const out = readFileSync(new URL('../fixtures/iperf3/udp-64b.json', import.meta.url), 'utf8');
  const r = parseIperf3(out);
  const g = iperf3.parse(out, '');
  assert.deepEqual(g.stream.udp, { packets: r.udp!.packets, lostPackets: r.udp!.lostPackets, lossFraction: r.udp!.lostFraction, jitterMs: r.udp!.jitterMs, packetsPerSec: r.udp!.packetsPerSecond });
  assert.equal(g.stream.protocol, 'udp');
  assert.equal(g.stream.retransmits, undefined);
});
