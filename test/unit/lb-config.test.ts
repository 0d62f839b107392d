// The pure config builders of the LB drivers: what each driver hands to its tool, checked line by
// line. The netns e2e test checks that the tools accept it and balance with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Host } from '../../harness/host/types.ts';
import type { BackendNode } from '../../harness/topology/types.ts';
import { HaproxySpec, NginxSpec } from '../../harness/scenario/schema.ts';
import { nginxLbConf, STREAM_MODULE } from '../../harness/lb/nginx.ts';
import { haproxyConf } from '../../harness/lb/haproxy.ts';
import { dnatRules, restoreInput } from '../../harness/lb/iptables-dnat.ts';
import { nftScript } from '../../harness/lb/nftables.ts';

const VIP = '198.18.100.1';
const DIR = '/tmp/lbbench/20250101-000000-abcd/lb-nginx';

// The builders never touch the host; a Host that throws proves it.
const noHost = new Proxy({}, { get: () => () => assert.fail('pure builder used the host') }) as Host;
const be = (i: number, port = 80): BackendNode => ({
  name: `be${i}`,
  host: noHost,
  ip: `198.18.1.${11 + i}`,
  port,
  statusPort: 8081,
});
const backends = (n: number) => Array.from({ length: n }, (_, i) => be(i));

const lines = (text: string) => text.split('\n').map((l) => l.trim());
/** The lines inside `header {` … the matching `}` (one level, as the builders write them). */
function block(text: string, header: string): string[] {
  const all = lines(text);
  const start = all.indexOf(`${header} {`);
  assert.ok(start >= 0, `no "${header} {" in:\n${text}`);
  const end = all.indexOf('}', start);
  return all.slice(start + 1, end);
}
/** Absolute paths in a config, the module path excepted. */
const paths = (text: string) => [...text.matchAll(/(?<=\s)\/[^\s;]+/g)].map((m) => m[0]).filter((p) => p !== STREAM_MODULE);

// --- nginx -------------------------------------------------------------------------------------

const nginxSpec = (o: Record<string, unknown>) => NginxSpec.parse({ kind: 'nginx', ...o });

test('nginx l4: stream module, one upstream line per backend, listen on the VIP', () => {
  for (const n of [1, 2, 3]) {
    const conf = nginxLbConf(nginxSpec({ mode: 'l4' }), VIP, 80, backends(n), DIR);
    const l = lines(conf);
    assert.equal(l.find((x) => x.startsWith('load_module')), `load_module ${STREAM_MODULE};`);
    assert.ok(l.indexOf(`load_module ${STREAM_MODULE};`) < l.indexOf('stream {'), 'load_module must precede stream');
    assert.ok(!l.includes('http {'));
    assert.deepEqual(
      block(conf, 'upstream lbbench_backends'),
      backends(n).map((b) => `server ${b.ip}:80;`),
    );
    const server = block(conf, 'server');
    assert.ok(server.includes(`listen ${VIP}:80 backlog=4096;`), server.join('\n'));
    assert.ok(server.includes('proxy_pass lbbench_backends;'));
  }
});

test('nginx: backend ports and the client port are taken from their arguments', () => {
  const conf = nginxLbConf(nginxSpec({ mode: 'l4' }), VIP, 8080, [be(0, 8000), be(1, 9000)], DIR);
  assert.deepEqual(block(conf, 'upstream lbbench_backends'), ['server 198.18.1.11:8000;', 'server 198.18.1.12:9000;']);
  assert.ok(lines(conf).includes(`listen ${VIP}:8080 backlog=4096;`));
});

test('nginx l7: http proxy with HTTP/1.1 upstream, keepalive on by default', () => {
  const conf = nginxLbConf(nginxSpec({ mode: 'l7' }), VIP, 80, backends(3), DIR);
  const l = lines(conf);
  assert.ok(!l.some((x) => x.startsWith('load_module')), 'l7 must not need the stream module');
  assert.ok(l.includes('http {') && !l.includes('stream {'));
  assert.deepEqual(block(conf, 'upstream lbbench_backends'), [
    'server 198.18.1.11:80;',
    'server 198.18.1.12:80;',
    'server 198.18.1.13:80;',
    'keepalive 64;',
    'keepalive_requests 1000000;',
  ]);
  assert.deepEqual(block(conf, 'location /'), [
    'proxy_pass http://lbbench_backends;',
    'proxy_http_version 1.1;',
    'proxy_set_header Connection "";',
  ]);
  assert.ok(l.includes(`listen ${VIP}:80 backlog=4096;`));
  assert.ok(l.includes('access_log off;'));
});

test('nginx l7 without upstream keepalive: no keepalive pool, same protocol', () => {
  const conf = nginxLbConf(nginxSpec({ mode: 'l7', upstreamKeepalive: false }), VIP, 80, backends(2), DIR);
  assert.deepEqual(block(conf, 'upstream lbbench_backends'), ['server 198.18.1.11:80;', 'server 198.18.1.12:80;']);
  assert.ok(block(conf, 'location /').includes('proxy_http_version 1.1;'));
});

test('nginx: workers, foreground, root, and reuseport only with several workers', () => {
  for (const mode of ['l4', 'l7'] as const) {
    const one = lines(nginxLbConf(nginxSpec({ mode }), VIP, 80, backends(1), DIR));
    assert.ok(one.includes('worker_processes 1;'));
    assert.ok(one.includes('daemon off;'));
    assert.ok(one.includes('master_process on;'));
    assert.ok(one.includes('user root;'));
    assert.ok(!one.some((x) => x.includes('reuseport')));
    const four = lines(nginxLbConf(nginxSpec({ mode, workers: 4 }), VIP, 80, backends(1), DIR));
    assert.ok(four.includes('worker_processes 4;'));
    assert.ok(four.includes(`listen ${VIP}:80 reuseport backlog=4096;`));
  }
});

test('nginx: pid, error log and temp paths all inside the work dir', () => {
  for (const mode of ['l4', 'l7'] as const) {
    const conf = nginxLbConf(nginxSpec({ mode }), VIP, 80, backends(2), DIR);
    assert.ok(lines(conf).includes(`pid ${DIR}/nginx.pid;`));
    assert.ok(lines(conf).includes(`error_log ${DIR}/error.log notice;`));
    const p = paths(conf);
    assert.ok(p.length >= (mode === 'l7' ? 7 : 2), p.join(' '));
    for (const path of p) assert.ok(path.startsWith(`${DIR}/`), `${path} is outside ${DIR}`);
    assert.doesNotMatch(conf, /\/(var|run)\//);
  }
});

test('nginx: an empty backend set is a valid config that keeps the LB up', () => {
  for (const mode of ['l4', 'l7'] as const) {
    const conf = nginxLbConf(nginxSpec({ mode }), VIP, 80, [], DIR);
    const upstream = block(conf, 'upstream lbbench_backends').filter((x) => x.startsWith('server'));
    assert.deepEqual(upstream, ['server 127.0.0.1:1 down;']);
  }
});

// --- haproxy -----------------------------------------------------------------------------------

const haproxySpec = (o: Record<string, unknown>) => HaproxySpec.parse({ kind: 'haproxy', ...o });
/** A section: its header line up to the next blank line. */
function section(text: string, header: string): string[] {
  const all = lines(text);
  const start = all.indexOf(header);
  assert.ok(start >= 0, `no "${header}" in:\n${text}`);
  const end = all.indexOf('', start);
  return all.slice(start + 1, end);
}
const HDIR = '/tmp/lbbench/20250101-000000-abcd/lb-haproxy';

test('haproxy: one server line per backend, named after it, with the balance algorithm', () => {
  for (const balance of ['roundrobin', 'leastconn', 'source'] as const) {
    for (const n of [1, 2, 3]) {
      const conf = haproxyConf(haproxySpec({ mode: 'tcp', balance }), VIP, 80, backends(n), HDIR);
      assert.deepEqual(section(conf, 'backend lbbench_backends'), [
        `balance ${balance}`,
        ...backends(n).map((b) => `server ${b.name} ${b.ip}:80`),
      ]);
    }
  }
});

test('haproxy tcp: mode tcp, frontend on the VIP, no http options', () => {
  const conf = haproxyConf(haproxySpec({ mode: 'tcp' }), VIP, 8080, backends(2), HDIR);
  assert.deepEqual(section(conf, 'defaults'), [
    'mode tcp',
    'timeout connect 2s',
    'timeout client 30s',
    'timeout server 30s',
  ]);
  assert.deepEqual(section(conf, 'frontend lbbench'), [`bind ${VIP}:8080`, 'default_backend lbbench_backends']);
  assert.doesNotMatch(conf, /http-reuse|http-keep-alive/);
});

test('haproxy http: keep-alive to clients, server connections reused', () => {
  const conf = haproxyConf(haproxySpec({ mode: 'http' }), VIP, 80, backends(2), HDIR);
  assert.deepEqual(section(conf, 'defaults'), [
    'mode http',
    'timeout connect 2s',
    'timeout client 30s',
    'timeout server 30s',
    'option http-keep-alive',
  ]);
  assert.deepEqual(section(conf, 'backend lbbench_backends'), [
    'balance roundrobin',
    'http-reuse always',
    'server be0 198.18.1.11:80',
    'server be1 198.18.1.12:80',
  ]);
});

test('haproxy global: threads, maxconn within the fd limit, admin socket in the work dir, foreground, no logging', () => {
  const conf = haproxyConf(haproxySpec({ threads: 3 }), VIP, 80, backends(1), HDIR);
  const global = section(conf, 'global');
  assert.ok(global.includes('nbthread 3'));
  assert.ok(global.includes(`stats socket ${HDIR}/haproxy.sock mode 600 level admin`));
  const maxconn = Number(global.find((l) => l.startsWith('maxconn '))?.split(' ')[1]);
  // Two fds per proxied connection must fit the hard limit of 20000.
  assert.ok(maxconn > 0 && 2 * maxconn < 20000, `maxconn ${maxconn}`);
  assert.ok(!lines(conf).includes('daemon'));
  assert.ok(!lines(conf).some((l) => /^log\b/.test(l)));
  for (const p of paths(conf)) assert.ok(p.startsWith(`${HDIR}/`), `${p} is outside ${HDIR}`);
});

test('haproxy: an empty backend set keeps a valid backend section', () => {
  const conf = haproxyConf(haproxySpec({}), VIP, 80, [], HDIR);
  assert.deepEqual(section(conf, 'backend lbbench_backends'), ['balance roundrobin', 'http-reuse always']);
});

// --- iptables-dnat -----------------------------------------------------------------------------

const TO = (i: number) => `-j DNAT --to-destination 198.18.1.${11 + i}:80`;

test('iptables dnatRules round-robin: nth with a shrinking period, the last rule catches the rest', () => {
  assert.deepEqual(dnatRules(backends(1), 'round-robin'), [`-A LBB_VIP -p tcp ${TO(0)}`]);
  assert.deepEqual(dnatRules(backends(2), 'round-robin'), [
    `-A LBB_VIP -p tcp -m statistic --mode nth --every 2 --packet 0 ${TO(0)}`,
    `-A LBB_VIP -p tcp ${TO(1)}`,
  ]);
  assert.deepEqual(dnatRules(backends(3), 'round-robin'), [
    `-A LBB_VIP -p tcp -m statistic --mode nth --every 3 --packet 0 ${TO(0)}`,
    `-A LBB_VIP -p tcp -m statistic --mode nth --every 2 --packet 0 ${TO(1)}`,
    `-A LBB_VIP -p tcp ${TO(2)}`,
  ]);
});

test('iptables dnatRules random: probabilities 1/n, 1/(n-1), … give each backend 1/n', () => {
  assert.deepEqual(dnatRules(backends(1), 'random'), [`-A LBB_VIP -p tcp ${TO(0)}`]);
  assert.deepEqual(dnatRules(backends(2), 'random'), [
    `-A LBB_VIP -p tcp -m statistic --mode random --probability 0.50000000 ${TO(0)}`,
    `-A LBB_VIP -p tcp ${TO(1)}`,
  ]);
  assert.deepEqual(dnatRules(backends(3), 'random'), [
    `-A LBB_VIP -p tcp -m statistic --mode random --probability 0.33333333 ${TO(0)}`,
    `-A LBB_VIP -p tcp -m statistic --mode random --probability 0.50000000 ${TO(1)}`,
    `-A LBB_VIP -p tcp ${TO(2)}`,
  ]);
});

test('iptables restoreInput replaces the chain in one nat-table transaction', () => {
  assert.equal(
    restoreInput(backends(2), 'round-robin'),
    [
      '*nat',
      ':LBB_VIP - [0:0]',
      `-A LBB_VIP -p tcp -m statistic --mode nth --every 2 --packet 0 ${TO(0)}`,
      `-A LBB_VIP -p tcp ${TO(1)}`,
      'COMMIT',
      '',
    ].join('\n'),
  );
});

// --- nftables ----------------------------------------------------------------------------------

test('nftScript: one dnat rule mapping numgen/jhash mod n onto the backends', () => {
  const selector = {
    'round-robin': 'numgen inc',
    random: 'numgen random',
    hash: 'jhash ip saddr . tcp sport . ip daddr . tcp dport',
  } as const;
  const maps = {
    1: '0 : 198.18.1.11 . 80',
    2: '0 : 198.18.1.11 . 80, 1 : 198.18.1.12 . 80',
    3: '0 : 198.18.1.11 . 80, 1 : 198.18.1.12 . 80, 2 : 198.18.1.13 . 80',
  } as const;
  for (const algorithm of ['round-robin', 'random', 'hash'] as const) {
    for (const n of [1, 2, 3] as const) {
      const rule = lines(nftScript(VIP, 80, backends(n), algorithm)).filter((l) => l.includes('dnat'));
      assert.deepEqual(rule, [
        `ip daddr ${VIP} tcp dport 80 dnat ip addr . port to ${selector[algorithm]} mod ${n} map { ${maps[n]} }`,
      ]);
    }
  }
});

test('nftScript: a weight is that many slots of the range; weight 0 takes none, all 0 no rule', () => {
  const rule = (w: Record<string, number>) => lines(nftScript(VIP, 80, backends(3), 'random', w)).filter((l) => l.includes('dnat'));
  assert.deepEqual(rule({ be0: 3, be2: 0 }), [`ip daddr ${VIP} tcp dport 80 dnat ip addr . port to numgen random mod 4 map { 0-2 : 198.18.1.11 . 80, 3 : 198.18.1.12 . 80 }`]);
  assert.deepEqual(rule({ be0: 1, be1: 1, be2: 1 }), rule({}));
  assert.deepEqual(rule({ be0: 0, be1: 0, be2: 0 }), []);
});

test('nftScript: create, flush and define the table in one transaction', () => {
  assert.equal(
    nftScript(VIP, 8080, backends(2), 'round-robin'),
    [
      'table ip lbbench {}',
      'flush table ip lbbench',
      'table ip lbbench {',
      '  chain prerouting {',
      '    type nat hook prerouting priority dstnat; policy accept;',
      `    ip daddr ${VIP} tcp dport 8080 dnat ip addr . port to numgen inc mod 2 map { 0 : 198.18.1.11 . 80, 1 : 198.18.1.12 . 80 }`,
      '  }',
      '}',
      '',
    ].join('\n'),
  );
});

test('UDP too: a rule sequence per protocol (iptables), a rule per protocol reading its own ports (nftables), a udp listen (nginx stream)', () => {
  const two = backends(2);
  assert.deepEqual(dnatRules(two, 'round-robin', ['tcp', 'udp']), [
    '-A LBB_VIP -p tcp -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 198.18.1.11:80',
    '-A LBB_VIP -p tcp -j DNAT --to-destination 198.18.1.12:80',
    '-A LBB_VIP -p udp -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 198.18.1.11:80',
    '-A LBB_VIP -p udp -j DNAT --to-destination 198.18.1.12:80',
  ]);
  assert.deepEqual(dnatRules(two, 'round-robin'), dnatRules(two, 'round-robin', ['tcp']));
  const rules = lines(nftScript(VIP, 80, two, 'hash', {}, ['tcp', 'udp'])).filter((l) => l.includes('dnat'));
  assert.deepEqual(rules, [
    `ip daddr ${VIP} tcp dport 80 dnat ip addr . port to jhash ip saddr . tcp sport . ip daddr . tcp dport mod 2 map { 0 : 198.18.1.11 . 80, 1 : 198.18.1.12 . 80 }`,
    `ip daddr ${VIP} udp dport 80 dnat ip addr . port to jhash ip saddr . udp sport . ip daddr . udp dport mod 2 map { 0 : 198.18.1.11 . 80, 1 : 198.18.1.12 . 80 }`,
  ]);
  const l4 = nginxLbConf(nginxSpec({ mode: 'l4' }), VIP, 80, two, DIR, ['tcp', 'udp']);
  assert.match(l4, new RegExp(`listen ${VIP}:80 backlog=4096;\\n\\s+listen ${VIP}:80 udp;`));
  assert.doesNotMatch(nginxLbConf(nginxSpec({ mode: 'l4' }), VIP, 80, two, DIR), / udp;/);
});
