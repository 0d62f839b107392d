import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, jainFairness, parseConnect } from '../../harness/load/connect.ts';
import { LoadSpec } from '../../harness/scenario/schema.ts';
import { ParseError } from '../../harness/errors.ts';

// Recorded from the tester through an nftables hash LB to 3 backends in namespaces, 1 s, 8 in flight.
const fixture = (n: string) => readFileSync(new URL(`../fixtures/connect/${n}.txt`, import.meta.url), 'utf8');

test('jainFairness: 1 when even, 1/n when one backend takes all, 0 for nothing', () => {
  assert.equal(jainFairness([5, 5, 5, 5]), 1);
  assert.equal(jainFairness([12, 0, 0]), 1 / 3);
  assert.ok(Math.abs(jainFairness([3, 1]) - 0.8) < 1e-12);
  assert.equal(jainFairness([0, 0]), 0);
});

test('parseConnect on recorded output: counts add up, per-backend spread, latencies, tester CPU', () => {
  for (const name of ['nftables-hash-3be-200src', 'nftables-hash-3be-1src']) {
    const m = parseConnect(fixture(name));
    assert.deepEqual(Object.keys(m.testerPerBackend).sort(), ['be0', 'be1', 'be2']);
    assert.equal(m.requests, Object.values(m.testerPerBackend).reduce((a, b) => a + b, 0));
    assert.equal(m.connections.total, m.requests + m.connections.failedConnects + m.connections.failedReads);
    assert.ok(m.fairness > 0.99, `${name}: ${m.fairness}`);
    assert.ok(m.latencyUs.p50 > 0 && m.latencyUs.p50 <= m.latencyUs.p99 && m.latencyUs.p99 <= m.latencyUs.max);
    assert.equal(m.latencyCdf.at(-1)![0], 100);
    assert.ok(m.tester.cpuSeconds > 0 && typeof m.tester.saturated === 'boolean');
  }
  assert.equal(parseConnect(fixture('nftables-hash-3be-200src')).tester.sourceAddresses, 200);
});

test('parseConnect: missing, cut or inconsistent output is an error, never zeros', () => {
  const text = fixture('nftables-hash-3be-1src');
  assert.throws(() => parseConnect(''), ParseError);
  assert.throws(() => parseConnect(text.slice(0, text.length / 2)), ParseError);
  const o = JSON.parse(text.slice('LBBENCH_CONNECT '.length));
  assert.throws(() => parseConnect(`LBBENCH_CONNECT ${JSON.stringify({ ...o, total: o.total + 1 })}\n`), /do not add up/);
  assert.throws(() => parseConnect(`LBBENCH_CONNECT ${JSON.stringify({ ...o, v: 2 })}\n`), ParseError);
  assert.throws(() => parseConnect(`LBBENCH_CONNECT ${JSON.stringify({ ...o, failedReads: -1 })}\n`), ParseError);
});

test('connect argv: target, duration, concurrency, source pool only when asked, pinned when asked', () => {
  const spec = (load: object, cpus?: string) => ({
    load: LoadSpec.parse({ generator: 'connect', connections: 4, ...load }),
    target: { ip: '198.18.100.1', port: 80, path: '/' },
    durationS: 2,
    workDir: '/w',
    ...(cpus ? { cpus } : {}),
  });
  assert.deepEqual(connect.buildArgv(spec({})), ['node', '/w/connect-tester.mjs', '--target', '198.18.100.1:80', '--duration', '2', '--concurrency', '4', '--timeout', '2', '--path', '/']);
  assert.deepEqual(connect.buildArgv(spec({ sourceAddresses: 50 }, '1')).slice(0, 3), ['taskset', '-c', '1']);
  assert.deepEqual(connect.buildArgv(spec({ sourceAddresses: 50 })).slice(-2), ['--sources', '198.18.128.0/18:50']);
});
