// mconnect's pure halves, fed fixtures constructed from its source (test/fixtures/mconnect/README.md
// says which file and commit). Broken variants are cut from or edited in those texts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ConfigError, ParseError } from '../../harness/errors.ts';
import { mconnect, mconnectArgv, parseMconnect } from '../../harness/load/mconnect.ts';
import { namedServerAddress } from '../../harness/load/backend-servers.ts';
import { LoadSpec } from '../../harness/scenario/schema.ts';
import { PLAN, PLAN6 } from '../../harness/topology/address-plan.ts';
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
// IPv6, as the Nordix source has it (github.com/Nordix/mconnect):
// - cmd/mconnect/main.go (edbad32), connect(): d.DialContext(ctx, "tcp", *c.addr), Go's host:port,
//   so an IPv6 VIP is "[…]:port"; with -srccidr it binds fmt.Sprintf("%s:0", c.rndip.GetIPString()).
// - pkg/rndip/rndip.go, GetIP(): for an IPv6 network the 16 bytes are network&mask + random&^mask
//   (any prefix: its tests draw from 1000::/16 and 1000::/124); GetIPString() brackets IPv6, so
//   "[…]:0" resolves. The /64 IPv6 pool works unchanged.
// - server(): net.Listen("tcp", *c.addr) with "[::]:5001" (the README's form) is dual-stack.

const v6 = { ip: '2001:2:0:100::1', port: 80, path: '/' };
const v4 = { ip: '198.18.100.1', port: 80, path: '/' };
const run = (target: typeof v4, sourceAddresses = 50) =>
  mconnect.buildArgv({ load: LoadSpec.parse({ generator: 'mconnect', connections: 100, sourceAddresses }), target, durationS: 10, workDir: '/w' });

test('mconnect over IPv6: the VIP in brackets, sources from the IPv6 pool; IPv4 as before', () => {
  assert.equal(mconnect.ipv6, true);
  assert.deepEqual(run(v6), ['mconnect', '-address', '[2001:2:0:100::1]:80', '-nconn', '100', '-timeout', '10s', '-output', 'json', '-srccidr', '2001:2:0:80::/64']);
  assert.equal(PLAN6.sourcePool, '2001:2:0:80::/64');
  assert.ok(!run(v6, 0).includes('-srccidr'));
  assert.deepEqual(run(v4), ['mconnect', '-address', '198.18.100.1:80', '-nconn', '100', '-timeout', '10s', '-output', 'json', '-srccidr', PLAN.sourcePool]);
});

test('mconnectArgv: a source CIDR of the other family than the address is a ConfigError (every connect would fail)', () => {
  const base = { nconn: 10, timeoutS: 5 };
  assert.throws(() => mconnectArgv({ ...base, address: '[2001:2:0:100::1]:80', srcCidr: PLAN.sourcePool }), (e: unknown) => e instanceof ConfigError && /is IPv4 but the address \[2001:2:0:100::1\]:80 is IPv6/.test(e.message));
  assert.throws(() => mconnectArgv({ ...base, address: '198.18.100.1:80', srcCidr: PLAN6.sourcePool }), ConfigError);
  // A host name is the tool's to resolve: either pool passes.
  for (const srcCidr of [PLAN.sourcePool, PLAN6.sourcePool]) assert.doesNotThrow(() => mconnectArgv({ ...base, address: 'vip.example:80', srcCidr }));
});

/** attach() against fake backends: what runs on them. */
async function attachCalls(ip: string): Promise<string[]> {
  const calls: string[] = [];
  const be = (name: string) => ({
    name,
    host: {
      name,
      exec: async (argv: string[]) => {
        calls.push(`${name}: ${argv.join(' ')}`);
        return { stdout: argv[0] === 'ss' ? 'LISTEN 0 4096 *:5001 *:*\n' : '', stderr: '', code: 0 };
      },
      spawn: (argv: string[]) => {
        calls.push(`${name}: spawn ${argv.join(' ')}`);
        return { running: () => true, stop: async () => ({ stdout: '', stderr: '', code: 0 }) };
      },
    },
  });
  await mconnect.attach!({ topo: {} as never, backends: [be('be0')] as never, endpoint: { ip, port: 80 }, load: {} as never, teardown: { add: () => {} } as never, workDir: '/w' });
  return calls;
}

test('mconnect servers: [::]:5001 for an IPv6 VIP (dual-stack in Go), 0.0.0.0:5001 for IPv4, the redirect in that family\'s table', async () => {
  assert.equal(namedServerAddress('2001:2:0:100::1', 5001), '[::]:5001');
  assert.equal(namedServerAddress('198.18.100.1', 5001), '0.0.0.0:5001');
  const c6 = await attachCalls(v6.ip);
  assert.ok(c6.some((c) => c.startsWith('be0: spawn ') && c.endsWith(' mconnect -server -address [::]:5001')), c6.join('\n'));
  assert.ok(c6.includes('be0: ip6tables -t nat -I PREROUTING -p tcp --dport 80 -m comment --comment lbbench-mconnect -j REDIRECT --to-ports 5001'), c6.join('\n'));
  const c4 = await attachCalls(v4.ip);
  assert.ok(c4.some((c) => c.startsWith('be0: spawn ') && c.endsWith(' mconnect -server -address 0.0.0.0:5001')), c4.join('\n'));
  assert.ok(c4.some((c) => c.startsWith('be0: iptables -t nat -I PREROUTING')), c4.join('\n'));
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
