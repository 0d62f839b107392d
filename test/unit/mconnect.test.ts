// mconnect's pure halves, fed fixtures constructed from its source (test/fixtures/mconnect/README.md
// says which file and commit). Broken variants are cut from or edited in those texts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ConfigError, ParseError } from '../../harness/errors.ts';
import { mconnectArgv, parseMconnect } from '../../harness/load/mconnect.ts';
import { throwsParse } from './parse-assert.ts';

const dir = new URL('../fixtures/mconnect/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, dir), 'utf8');
const ok = read('ok.stdout');
const okDoc = () => JSON.parse(ok) as Record<string, unknown>;
const line = (o: unknown) => `${JSON.stringify(o)}\n`;


// ---------------------------------------------------------------------------------------------
// argv

test('mconnectArgv writes the fixtures\' command lines', () => {
  const cases: [string, Parameters<typeof mconnectArgv>[0]][] = [
    ['ok', { address: '10.0.0.0:5001', nconn: 1000, timeoutS: 10, srcCidr: '50.0.0.0/16' }],
    ['ipv6', { address: '[1000::]:5001', nconn: 100, timeoutS: 5, srcCidr: '2000::/112' }],
    ['read-errors', { address: '10.0.0.0:5001', nconn: 40, timeoutS: 5, srcCidr: '50.0.0.0/16' }],
    ['refused', { address: '10.0.0.0:5001', nconn: 100, timeoutS: 5 }],
  ];
  for (const [name, args] of cases) assert.equal(mconnectArgv(args).join(' '), read(`${name}.cmd`).trim(), name);
});

test('mconnectArgv: Go durations, own binary path', () => {
  const argv = mconnectArgv({ address: 'mconnect.default.svc.xcluster:5001', nconn: 1, timeoutS: 2.5, mconnect: '/opt/bin/mconnect' });
  assert.deepEqual(argv, ['/opt/bin/mconnect', '-address', 'mconnect.default.svc.xcluster:5001', '-nconn', '1', '-timeout', '2500ms', '-output', 'json']);
  assert.equal(mconnectArgv({ address: '10.0.0.0:5001', nconn: 1, timeoutS: 1e-3 })[6], '1ms');
});

test('mconnectArgv: what Go would reject or misread is a ConfigError', () => {
  const base = { address: '10.0.0.0:5001', nconn: 10, timeoutS: 5 };
  for (const bad of [
    { ...base, address: '1000::1:5001' },
    { ...base, address: '10.0.0.0' },
    { ...base, address: '10.0.0.0:70000' },
    { ...base, nconn: 0 },
    { ...base, nconn: 1.5 },
    { ...base, timeoutS: 0 },
    { ...base, timeoutS: Number.NaN },
    { ...base, srcCidr: '50.0.0.0' },
  ]) {
    assert.throws(() => mconnectArgv(bad), ConfigError, JSON.stringify(bad));
  }
});

// ---------------------------------------------------------------------------------------------
// parse

test('parseMconnect: a clean run, every field', () => {
  assert.deepEqual(parseMconnect(ok), {
    connects: 1000,
    failedConnects: 0,
    failedReads: 0,
    perHost: { 'vm-001': 251, 'vm-002': 248, 'vm-003': 252, 'vm-004': 249 },
    answered: 1000,
    startTime: '2024-05-14T09:12:03.418207351Z',
    timeoutNs: 10_000_000_000,
    durationNs: 436_118_574,
    durationS: 0.436118574,
    readErrors: [],
  });
  const v6 = parseMconnect(read('ipv6.stdout'));
  assert.equal(v6.answered, 100);
  assert.equal(v6.startTime, '2024-05-14T09:12:41.90312Z');
});

test('parseMconnect: "Read err" lines before the JSON are kept, counts still add up', () => {
  const r = parseMconnect(read('read-errors.stdout'));
  assert.equal(read('read-errors.rc').trim(), '1');
  assert.deepEqual(r.perHost, { 'vm-001': 10, 'vm-002': 11, 'vm-004': 9 });
  assert.equal(r.failedReads, 10);
  assert.equal(r.readErrors.length, 10);
  assert.equal(r.readErrors[0], 'read tcp 50.0.12.7:40411->10.0.0.0:5001: i/o timeout');
  assert.equal(r.answered + r.failedConnects + r.failedReads, r.connects);
});

test('parseMconnect: everything refused is a measurement (exit 1), not a parse error', () => {
  assert.equal(read('refused.rc').trim(), '1');
  const r = parseMconnect(read('refused.stdout'));
  assert.deepEqual([r.connects, r.failedConnects, r.answered, r.perHost], [100, 100, 0, {}]);
});

test('parseMconnect: flag errors, the txt report and error text are ParseErrors', () => {
  for (const name of ['flag-error', 'bad-timeout']) {
    assert.equal(read(`${name}.rc`).trim(), '2');
    throwsParse(() => parseMconnect(read(`${name}.stdout`)), /no output on stdout/);
    throwsParse(() => parseMconnect(read(`${name}.stderr`)), /unexpected line/);
  }
  assert.match(read('bad-timeout.stderr'), /^invalid value "10" for flag -timeout: parse error$/m);
  assert.match(throwsParse(() => parseMconnect(read('txt.stdout'))).hint ?? '', /-output json/);
  throwsParse(() => parseMconnect('dial tcp 10.0.0.0:5001: connect: connection refused\n'), /unexpected line/);
  throwsParse(() => parseMconnect(`${ok}Failed connects; 0\n`), /unexpected line/);
  throwsParse(() => parseMconnect(`${ok}${ok}`), /unexpected line/);
});

test('truncated mconnect output is a ParseError, never zero connects', () => {
  throwsParse(() => parseMconnect(read('truncated.stdout')), /truncated or garbled/);
  for (const text of [ok, read('read-errors.stdout')]) {
    const json = text.trimEnd().split('\n').at(-1)!;
    for (let cut = 0; cut < text.length - 1; cut += 7) {
      const head = text.slice(0, cut);
      if (head.includes(json)) continue;
      assert.throws(() => parseMconnect(head), ParseError, `cut at ${cut}`);
    }
  }
});

test('mconnect JSON with wrong types or counts that do not add up is a ParseError', () => {
  throwsParse(() => parseMconnect(read('wrong-types.stdout')), /connects is "1000"/);
  const o = okDoc();
  const edits: [Record<string, unknown>, RegExp][] = [
    [{ connects: 1001 }, /do not add up/],
    [{ failed_reads: 1 }, /do not add up/],
    [{ hosts: { ...(o.hosts as object), 'vm-005': 0 } }, /hosts\["vm-005"\]/],
    [{ hosts: { 'vm-001': 1000.5 } }, /hosts/],
    [{ hosts: [] }, /hosts is not an object/],
    [{ failed_connects: -1 }, /failed_connects/],
    [{ duration: '436ms' }, /duration/],
    [{ timeout: 0 }, /timeout is 0/],
    [{ start_time: '14 May 2024' }, /start_time/],
    [{ start_time: undefined }, /start_time/],
  ];
  for (const [edit, pattern] of edits) throwsParse(() => parseMconnect(line({ ...o, ...edit })), pattern);
  throwsParse(() => parseMconnect('[1000]\n'), /unexpected line/);
  // Read err lines from another run: more than failed_reads.
  const readErr = 'Read err: read tcp 50.0.1.1:40000->10.0.0.0:5001: i/o timeout\n';
  throwsParse(() => parseMconnect(readErr + read('read-errors.stdout')), /11 "Read err" lines/);
});
