import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTrafficFull, traffic, type ConnectionRecord } from '../../harness/load/traffic.ts';
import { accountEvents, resolveTarget } from '../../harness/run/events.ts';
import { ParseError } from '../../harness/errors.ts';
import { LoadSpec, EventSpec } from '../../harness/scenario/schema.ts';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'traffic');
const xdp = readFileSync(join(FIX, 'xdp-10be-remove2-add2.stdout'), 'utf8');
const dnat = readFileSync(join(FIX, 'iptables-dnat-10be-remove2-add2.stdout'), 'utf8');

test('traffic tester output recorded through XDP while 2 of 10 backends went and came back', () => {
  const { metrics: m, records } = parseTrafficFull(xdp);
  assert.equal(m.requests, 5988);
  assert.equal(m.durationS, 12.003842612);
  assert.deepEqual(m.connections, { total: 133, lost: 33, failedConnects: 0, lasted: 100, target: 100 });
  assert.deepEqual(m.lostBy, { reset: 33 });
  assert.equal(Object.values(m.connectionsPerBackend).reduce((a, b) => a + b, 0), 133);
  assert.equal(m.connectionsPerBackend.be6, 17);
  assert.equal(m.samples.length, 12);
  assert.deepEqual(m.samples[2], { t: 2, active: 96, new: 13, lost: 13, failedConnects: 0, messages: 495, failedMessages: 0, bytes: 82665 });
  assert.equal(m.errors.read, 33);
  assert.equal(m.tester.sourceAddresses, 100);
  assert.equal(records.length, 133);
  assert.equal(records.filter((r) => r.outcome === 'lasted' && r.end === null).length, 100);
  assert.ok(m.latencyUs.p50 > 0 && m.latencyUs.p50 <= m.latencyUs.p99);
});

test('conntrack DNAT kept every connection: nothing lost, one connection each', () => {
  const { metrics: m } = parseTrafficFull(dnat);
  assert.deepEqual(m.connections, { total: 100, lost: 0, failedConnects: 0, lasted: 100, target: 100 });
  assert.equal(m.fairness, 1);
});

test('event accounting on the recorded XDP run: removal breaks about the removed share, adding back breaks some (maglev moves slots)', () => {
  const { metrics, records } = parseTrafficFull(xdp);
  const start = metrics.tester.startEpochMs;
  assert.ok(start > 0);
  const [removed, added] = accountEvents(
    records,
    [
      { atMs: 2860, action: 'remove-backends', target: ['be8', 'be9'] },
      { atMs: 6860, action: 'add-backends', target: ['be8', 'be9'] },
    ],
    metrics.durationS * 1000,
  );
  assert.deepEqual([removed!.alive, removed!.lost, removed!.idealLoss, removed!.observedLoss], [100, 26, 0.24, 0.26]);
  assert.deepEqual(removed!.lostBy, { reset: 26 });
  // Every connection on be8/be9 was lost; the two extra ones were maglev's slot changes elsewhere.
  assert.equal(removed!.perBackend.be8!.lost, removed!.perBackend.be8!.alive);
  assert.equal(removed!.perBackend.be9!.lost, removed!.perBackend.be9!.alive);
  assert.deepEqual([added!.alive, added!.lost, added!.idealLoss], [100, 7, 0]);
});

const rec = (id: number, start: number, end: number | null, backend: string | null, outcome: ConnectionRecord['outcome'] = end === null ? 'lasted' : 'lost'): ConnectionRecord => ({
  id,
  src: null,
  start,
  end,
  backend,
  backends: backend ? 1 : 0,
  messages: 1,
  outcome,
  reason: outcome === 'lost' ? 'reset' : outcome === 'connect-failed' ? 'refused' : null,
});

test('accountEvents: who counts as alive, and which window a loss belongs to', () => {
  const records = [
    rec(0, 0, null, 'be0'),
    rec(1, 0, 1500, 'be1'), // lost after event 1, before event 2
    rec(2, 0, 900, 'be1'), // lost before any event: not counted
    rec(3, 1200, 3500, 'be0'), // started after event 1: only alive at event 2
    rec(4, 1100, 1100, null, 'connect-failed'),
    rec(5, 0, 2500, 'be1'), // lost after event 2
  ];
  const out = accountEvents(
    records,
    [
      { atMs: 1000, action: 'remove-backends', target: ['be1'] },
      { atMs: 2000, action: 'restart-lb', target: [] },
    ],
    4000,
  );
  assert.deepEqual(
    out.map((e) => [e.alive, e.lost, e.idealLoss]),
    [
      [3, 1, 2 / 3],
      [3, 2, 0],
    ],
  );
  assert.deepEqual(out[0]!.perBackend, { be0: { alive: 1, lost: 0 }, be1: { alive: 2, lost: 1 } });
  assert.deepEqual(accountEvents([], [{ atMs: 1, action: 'kill-backends', target: ['be0'] }], 10)[0], {
    alive: 0,
    lost: 0,
    observedLoss: 0,
    idealLoss: 0,
    perBackend: {},
    lostBy: {},
  });
});

test('resolveTarget: count takes the last in use when removing, the first out when adding', () => {
  const ctl = { available: ['be0', 'be1', 'be2', 'be3', 'be4'], inLb: () => ['be0', 'be1', 'be2'], killed: () => ['be2'] };
  const ev = (o: Record<string, unknown>) => EventSpec.parse({ at: 1, ...o });
  assert.deepEqual(resolveTarget(ev({ action: 'remove-backends', count: 2 }), ctl), ['be1', 'be2']);
  assert.deepEqual(resolveTarget(ev({ action: 'add-backends', count: 1 }), ctl), ['be3']);
  assert.deepEqual(resolveTarget(ev({ action: 'kill-backends', count: 1 }), ctl), ['be1']);
  assert.deepEqual(resolveTarget(ev({ action: 'start-backends', count: 5 }), ctl), ['be2']);
  assert.deepEqual(resolveTarget(ev({ action: 'remove-backends', backends: ['be0'] }), ctl), ['be0']);
  assert.deepEqual(resolveTarget(ev({ action: 'set-weights', weights: { be0: 3 } }), ctl), ['be0']);
  assert.deepEqual(resolveTarget(ev({ action: 'restart-lb' }), ctl), []);
});

test('truncated or garbled tester output is a ParseError, never a zero sample', () => {
  const line = xdp.trim();
  for (let cut = 0; cut < line.length - 1; cut += 97) {
    assert.throws(() => parseTrafficFull(line.slice(0, cut)), ParseError, `cut at ${cut}`);
  }
  const o = JSON.parse(line.slice('LBBENCH_TRAFFIC '.length));
  const bad = (mut: (x: typeof o) => void) => {
    const c = structuredClone(o);
    mut(c);
    return `LBBENCH_TRAFFIC ${JSON.stringify(c)}\n`;
  };
  assert.throws(() => parseTrafficFull(bad((x) => (x.samples[3].lost += 1))), /disagree/);
  assert.throws(() => parseTrafficFull(bad((x) => (x.samples[3].messages += 1))), /message counts disagree/);
  assert.throws(() => parseTrafficFull(bad((x) => (x.records[0].outcome = 'maybe'))), /inconsistent/);
  assert.throws(() => parseTrafficFull(bad((x) => (x.seconds = 'soon'))), /seconds/);
  assert.throws(() => parseTrafficFull(bad((x) => (x.v = 2))), /version/);
  assert.throws(() => parseTrafficFull('node: bad option: --start-at\n'), /no LBBENCH_TRAFFIC line/);
});

test('argv: rate, connections, source pool and the agreed start', () => {
  const load = LoadSpec.parse({ generator: 'traffic', connections: 100, rate: 500, sourceAddresses: 100 });
  const argv = traffic.buildArgv({ load, target: { ip: '198.18.100.1', port: 80, path: '/' }, durationS: 12, workDir: '/w', cpus: '1', startAtEpochMs: 1700000000000 });
  assert.deepEqual(argv, [
    'taskset', '-c', '1', 'node', '/w/traffic-tester.mjs', '--target', '198.18.100.1:80', '--duration', '12', '--connections', '100', '--rate', '500',
    '--timeout', '2', '--path', '/', '--sources', '198.18.128.0/18:100', '--start-at', '1700000000000',
  ]);
});
