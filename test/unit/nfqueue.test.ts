// The nfqueue LB without root: the maglev table of the C program (through --dump-table, so the
// code that balances is the code under test) and the driver's pure rule/route/argv builders.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Host } from '../../harness/host/types.ts';
import type { BackendNode } from '../../harness/topology/types.ts';
import { LocalHost } from '../../harness/host/local.ts';
import { NfqueueSpec } from '../../harness/scenario/schema.ts';
import {
  activeCommand,
  buildNfqueue,
  controlSocketPath,
  mangleJumps,
  mangleRestoreInput,
  ourRoutes,
  parseQueueProc,
  policyRoutingBatch,
  policyRoutingUndoBatch,
  programArgv,
  queueRuleHits,
} from '../../harness/lb/nfqueue.ts';

const VIP = '198.18.100.1';

/** Why the C program cannot be built here, or undefined. */
function cannotBuild(): string | undefined {
  for (const cmd of ['cc', 'make', 'pkg-config']) {
    try {
      execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    } catch {
      return `needs ${cmd} to build lbbench-nfq (apt-get install -y gcc make pkg-config libnetfilter-queue-dev)`;
    }
  }
  if (!existsSync('/usr/include/libnetfilter_queue/libnetfilter_queue.h')) {
    return 'needs libnetfilter-queue-dev to build lbbench-nfq (apt-get install -y libnetfilter-queue-dev)';
  }
  return undefined;
}

const skip = cannotBuild();
let outDir = '';
let bin = '';

before(async () => {
  if (skip) return;
  // A private build: the test must not race a developer's `make` in the shared build directory.
  outDir = mkdtempSync(join(tmpdir(), 'lbbench-nfq-test-'));
  bin = await buildNfqueue(new LocalHost(), outDir);
});

after(() => {
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function run(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(bin, args, { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function table(size: number, backends: number, active?: number[]): number[] {
  const args = ['--dump-table', '--table-size', String(size), '--backends', String(backends)];
  if (active) args.push('--active', active.length ? active.join(',') : '-');
  const r = run(args);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { table_size: number; backends: number; active: number[]; table: number[] };
  assert.equal(out.table.length, size);
  assert.deepEqual(out.active, active ? [...new Set(active)].sort((a, b) => a - b) : range(backends));
  return out.table;
}

function shares(t: number[], backends: number): number[] {
  const s = new Array<number>(backends).fill(0);
  for (const b of t) if (b >= 0) s[b]!++;
  return s;
}

test('lbbench-nfq: self-test and version', { skip }, () => {
  assert.deepEqual(run(['--selftest']), { code: 0, stdout: 'selftest ok\n', stderr: '' });
  assert.match(run(['--version']).stdout, /^lbbench-nfq \d+\.\d+ \(libnetfilter_queue [^,]+, source [0-9a-f]{12}, gcc .+\)\n$/);
});

test('maglev: every entry is an active backend, shares differ by at most one', { skip }, () => {
  for (const [size, k] of [[13, 3], [997, 3], [997, 5], [997, 10], [65537, 40]] as const) {
    const t = table(size, k);
    assert.ok(t.every((b) => Number.isInteger(b) && b >= 0 && b < k), `${size}/${k}: entry outside 0..${k - 1}`);
    const s = shares(t, k);
    assert.ok(Math.max(...s) - Math.min(...s) <= 1, `${size}/${k}: shares ${s.join(',')}`);
  }
});

test('maglev: only the active set appears; none active gives an empty table', { skip }, () => {
  const t = table(997, 5, [0, 2, 4]);
  assert.deepEqual([...new Set(t)].sort(), [0, 2, 4]);
  const s = shares(t, 5);
  assert.ok(Math.max(s[0]!, s[2]!, s[4]!) - Math.min(s[0]!, s[2]!, s[4]!) <= 1, s.join(','));
  assert.deepEqual(new Set(table(13, 3, [])), new Set([-1]));
});

test('maglev: deterministic, and the active set is a set (order and duplicates do not matter)', { skip }, () => {
  assert.deepEqual(table(997, 4, [3, 1, 1, 0]).join(), table(997, 4, [0, 1, 3]).join());
  assert.deepEqual(table(997, 4), table(997, 4));
});

test('maglev: removing one of K backends moves few entries between the survivors', { skip }, () => {
  const size = 997;
  for (const k of [3, 5, 10]) {
    const full = table(size, k);
    for (const gone of range(k)) {
      const less = table(size, k, range(k).filter((i) => i !== gone));
      assert.ok(!less.includes(gone));
      // Entries of the removed backend must move; the paper's claim is that few others do.
      const survivorsMoved = full.filter((b, c) => b !== gone && less[c] !== b).length;
      const changed = full.filter((b, c) => less[c] !== b).length;
      assert.ok(survivorsMoved <= size / (2 * k), `K=${k} without ${gone}: ${survivorsMoved} survivor entries moved (bound ${size / (2 * k)})`);
      assert.ok(changed <= (1.5 * size) / k, `K=${k} without ${gone}: ${changed} entries changed (bound ${(1.5 * size) / k})`);
    }
  }
});

test('lbbench-nfq: rejects a non-prime table size, an index out of range, and missing arguments', { skip }, () => {
  const notPrime = run(['--dump-table', '--table-size', '1000', '--backends', '3']);
  assert.equal(notPrime.code, 1);
  assert.match(notPrime.stderr, /--table-size: expected a prime/);
  const outOfRange = run(['--dump-table', '--table-size', '13', '--backends', '3', '--active', '0,3']);
  assert.equal(outOfRange.code, 1);
  assert.match(outOfRange.stderr, /backend 3 out of range \(backends=3\)/);
  assert.equal(run(['--dump-table', '--table-size', '13']).code, 2);
  assert.match(run(['--control', '/nonexistent/ctl.sock', '--send', 'stats']).stderr, /connect \/nonexistent\/ctl.sock/);
});

// --- pure builders ------------------------------------------------------------------------------

const noHost = new Proxy({}, { get: () => () => assert.fail('pure builder used the host') }) as Host;
const be = (i: number): BackendNode => ({ name: `be${i}`, host: noHost, ip: `198.18.1.${11 + i}`, port: 80, statusPort: 8081 });

test('mangle chains: restore, skip marked, queue with bypass; save the mark after routing', () => {
  assert.equal(
    mangleRestoreInput(3),
    [
      '*mangle',
      ':LBB_NFQ - [0:0]',
      ':LBB_NFQ_SAVE - [0:0]',
      '-A LBB_NFQ -j CONNMARK --restore-mark',
      '-A LBB_NFQ -m mark ! --mark 0 -j RETURN',
      '-A LBB_NFQ -j NFQUEUE --queue-num 3 --queue-bypass',
      '-A LBB_NFQ_SAVE -m connmark --mark 0 -m mark ! --mark 0 -j CONNMARK --save-mark',
      'COMMIT',
      '',
    ].join('\n'),
  );
  assert.equal(
    mangleRestoreInput(0, 'stateless'),
    ['*mangle', ':LBB_NFQ - [0:0]', ':LBB_NFQ_SAVE - [0:0]', '-A LBB_NFQ -j NFQUEUE --queue-num 0 --queue-bypass', 'COMMIT', ''].join('\n'),
    'stateless: every packet is queued, no mark is kept',
  );
  assert.deepEqual(mangleJumps(VIP, 8080), [
    ['PREROUTING', '-d', `${VIP}/32`, '-p', 'tcp', '--dport', '8080', '-j', 'LBB_NFQ'],
    ['FORWARD', '-d', `${VIP}/32`, '-p', 'tcp', '--dport', '8080', '-j', 'LBB_NFQ_SAVE'],
  ]);
  // UDP as well: the same two jumps for udp.
  assert.deepEqual(mangleJumps(VIP, 80, ['tcp', 'udp']).map((j) => `${j[0]} ${j[4]}`), ['PREROUTING tcp', 'FORWARD tcp', 'PREROUTING udp', 'FORWARD udp']);
});

test('policy routing: fwmark i+1 → table 100+i → VIP via backend i; undo by preference and table', () => {
  assert.deepEqual(policyRoutingBatch(VIP, [be(0), be(1), be(2)], 'eth1'), [
    'rule add fwmark 1 table 100 pref 1000',
    `route replace ${VIP}/32 via 198.18.1.11 dev eth1 table 100`,
    'rule add fwmark 2 table 101 pref 1001',
    `route replace ${VIP}/32 via 198.18.1.12 dev eth1 table 101`,
    'rule add fwmark 3 table 102 pref 1002',
    `route replace ${VIP}/32 via 198.18.1.13 dev eth1 table 102`,
  ]);
  assert.deepEqual(policyRoutingUndoBatch(2), ['rule del pref 1000', 'route flush table 100', 'rule del pref 1001', 'route flush table 101']);
  const routes = [
    '198.18.100.1 via 198.18.1.11 dev eth1 table 100 ',
    '198.18.100.1 via 198.18.1.14 dev eth1 table 103 ',
    'local 198.18.1.2 dev eth1 table local proto kernel scope host src 198.18.1.2 ',
    '198.18.1.0/24 dev eth1 proto kernel scope link src 198.18.1.2 ',
  ].join('\n');
  assert.deepEqual(ourRoutes(routes, 3), ['198.18.100.1 via 198.18.1.11 dev eth1 table 100 ']);
});

test('control commands and program argv', () => {
  assert.equal(activeCommand([2, 0, 1]), 'active 0,1,2');
  assert.equal(activeCommand([]), 'active -');
  const spec = NfqueueSpec.parse({ kind: 'nfqueue', tableSize: 251, queue: 7 });
  const o = { backends: 3, active: [0, 2], control: '/w/ctl.sock', stats: '/w/stats.json' };
  assert.deepEqual(programArgv('/b/lbbench-nfq', spec, o), [
    '/b/lbbench-nfq', '--queue', '7', '--table-size', '251', '--backends', '3', '--active', '0,2',
    '--control', '/w/ctl.sock', '--stats', '/w/stats.json',
  ]);
  assert.deepEqual(programArgv('/b/lbbench-nfq', spec, { ...o, active: [], cpus: '1' }).slice(0, 3), ['taskset', '-c', '1']);
  assert.ok(programArgv('/b/lbbench-nfq', spec, { ...o, active: [] }).includes('-'));
});

test('control socket path stays within sun_path', () => {
  assert.equal(controlSocketPath('/tmp/lbbench/r/lb/p', '/tmp/lbbench/r', 0), '/tmp/lbbench/r/lb/p/ctl.sock');
  const long = controlSocketPath(`/tmp/lbbench/r/lb/${'x'.repeat(120)}`, '/tmp/lbbench/r', 5);
  assert.match(long, /^\/tmp\/lbbench\/r\/nfq5-[0-9a-f]{6}\.sock$/);
});

test('queue counters from /proc/net/netfilter/nfnetlink_queue and the NFQUEUE rule', () => {
  const proc = '    0  25984     2 2   128     5     7    10807  1\n    3  1111     0 2   128     0     0        0  1\n';
  assert.deepEqual(parseQueueProc(proc), [
    { queue: 0, portid: 25984, waiting: 2, queueDropped: 5, userDropped: 7, idSequence: 10807 },
    { queue: 3, portid: 1111, waiting: 0, queueDropped: 0, userDropped: 0, idSequence: 0 },
  ]);
  assert.deepEqual(parseQueueProc(''), []);
  const listing = [
    'Chain LBB_NFQ (1 references)',
    '    pkts      bytes target     prot opt in     out     source               destination         ',
    '   49647  3254576 CONNMARK   0    --  *      *       0.0.0.0/0            0.0.0.0/0            CONNMARK restore',
    '   39728  2659436 RETURN     0    --  *      *       0.0.0.0/0            0.0.0.0/0            mark match ! 0x0',
    '    9919   595140 NFQUEUE    0    --  *      *       0.0.0.0/0            0.0.0.0/0            NFQUEUE num 0 bypass',
  ].join('\n');
  assert.equal(queueRuleHits(listing), 9919);
  assert.equal(queueRuleHits('iptables: No chain/target/match by that name.'), undefined);
});
