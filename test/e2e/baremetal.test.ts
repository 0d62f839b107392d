// A scenario on a "bare-metal" topology: four namespaces that each run a real sshd and are driven
// only over SSH, with the data plane wired like a small lab (client — LB — switch — 2 backends).
// The whole SSH path runs: connect with pinned keys, preflight on the LB host, nginx on the
// backends, wrk on the client, counters, teardown — and the hosts end as they started.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalHost } from '../../harness/host/local.ts';
import { Teardown } from '../../harness/teardown.ts';
import { main } from '../../harness/cli.ts';
import { readResult } from '../../harness/results/reader.ts';
import { resultProblems } from '../../harness/results/schema.ts';
import { missingCapability } from './helpers.ts';
import { SSHD, startSshdLab } from './sshd-lab.ts';

const skip = missingCapability(['ip', 'nginx', 'wrk', 'iptables', 'curl', SSHD, 'ssh-keygen', 'unshare']);
const local = new LocalHost();
const td = new Teardown();
after(async () => assert.deepEqual(await td.unwind(), []));

const id = randomBytes(2).toString('hex');
/** The lab the first test built; the second test points a wrong key at it. */
let labDir = '';
const ns = (r: string) => `lbb-${id}-${r}`;

/** Links and addresses only: routes, forwarding and the VIP are what the harness must add. */
async function wireLab(): Promise<void> {
  const names = ['client0', 'lb0', 'sw', 'be0', 'be1'].map(ns);
  await local.exec(['ip', '-b', '-'], { input: names.map((n) => `netns add ${n}`).join('\n') + '\n' });
  td.add('delete lab namespaces', () => local.exec(['ip', '-force', '-b', '-'], { input: names.map((n) => `netns del ${n}`).join('\n') + '\n', check: false }));
  const lines = [
    `link add eth0 netns ${ns('client0')} type veth peer name eth0 netns ${ns('lb0')}`,
    `link add eth1 netns ${ns('lb0')} type veth peer name lb0 netns ${ns('sw')}`,
    `link add eth0 netns ${ns('be0')} type veth peer name be0 netns ${ns('sw')}`,
    `link add eth0 netns ${ns('be1')} type veth peer name be1 netns ${ns('sw')}`,
  ];
  await local.exec(['ip', '-b', '-'], { input: lines.join('\n') + '\n' });
  const per: Record<string, string[]> = {
    // A dual-stack lab: the IPv6 addresses are the lab's (nodad, as a configured host has them).
    client0: ['link set lo up', 'link set eth0 up', 'addr add 198.18.0.2/24 dev eth0', 'addr add 2001:2::2/64 dev eth0 nodad'],
    lb0: ['link set lo up', 'link set eth0 up', 'link set eth1 up', 'addr add 198.18.0.1/24 dev eth0', 'addr add 198.18.1.2/24 dev eth1', 'addr add 2001:2::1/64 dev eth0 nodad', 'addr add 2001:2:0:1::2/64 dev eth1 nodad'],
    sw: ['link add br0 type bridge', 'link set br0 up', ...['lb0', 'be0', 'be1'].flatMap((p) => [`link set ${p} master br0`, `link set ${p} up`])],
    be0: ['link set lo up', 'link set eth0 up', 'addr add 198.18.1.11/24 dev eth0', 'addr add 2001:2:0:1::11/64 dev eth0 nodad'],
    be1: ['link set lo up', 'link set eth0 up', 'addr add 198.18.1.12/24 dev eth0', 'addr add 2001:2:0:1::12/64 dev eth0 nodad'],
  };
  for (const [n, l] of Object.entries(per)) await local.exec(['ip', '-n', ns(n), '-b', '-'], { input: l.join('\n') + '\n' });
  for (const n of ['client0', 'lb0', 'be0', 'be1']) {
    await local.exec(['ip', 'netns', 'exec', ns(n), 'sysctl', '-q', '-w', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0', 'net.ipv4.tcp_tw_reuse=1']);
  }
}

/** What the harness may change on the hosts, read so it can be compared after the run. */
async function hostState(): Promise<Record<string, string>> {
  const inNs = async (n: string, argv: string[]) => (await local.exec(['ip', 'netns', 'exec', ns(n), ...argv])).stdout;
  // Link-local routes come and go with the kernel's own DAD timing after the lab is wired: not ours.
  const routes = async (n: string) =>
    ((await inNs(n, ['ip', 'route', 'show', 'table', 'all'])) + (await inNs(n, ['ip', '-6', 'route', 'show', 'table', 'all'])))
      .split('\n')
      .filter((l) => !/fe80:|ff00::\/8/.test(l))
      .join('\n');
  return {
    lbAddrs: (await inNs('lb0', ['ip', '-o', 'addr', 'show'])).split('\n').filter((l) => !l.includes('fe80:')).join('\n'),
    lbForward: await inNs('lb0', ['sysctl', '-n', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding']),
    lbRoutes: await routes('lb0'),
    lbNat: (await inNs('lb0', ['iptables', '-t', 'nat', '-S'])) + (await inNs('lb0', ['ip6tables', '-t', 'nat', '-S'])),
    clientRoutes: await routes('client0'),
    clientNonlocal: await inNs('client0', ['sysctl', '-n', 'net.ipv6.ip_nonlocal_bind']),
    be0Routes: await routes('be0'),
    be1Routes: await routes('be1'),
  };
}

/** Runs a two-backend scenario of both families on the lab (scenario-<name>.yaml); its run directory. */
async function runOnLab(name: string, lbs: string, load: string): Promise<string> {
  const file = join(labDir, `scenario-${name}.yaml`);
  await writeFile(file, ['name: baremetal-' + name, 'topology: lab.yaml', lbs, 'sweep: {backends: [2], family: [4, 6]}', load, 'repetitions: 1', 'cpus: off', ''].join('\n'));
  const out: string[] = [];
  const io = { out: (s: string) => out.push(s), err: (s: string) => out.push(s) };
  const code = await main(['run', file, '--out', join(labDir, `results-${name}`), '--reports', join(labDir, `reports-${name}`)], io);
  assert.equal(code, 0, out.join('\n'));
  const [runId] = await readdir(join(labDir, `results-${name}`));
  return join(labDir, `results-${name}`, runId!);
}

test('a scenario over SSH on a bare-metal topology: measured, recorded, and every host restored', { skip, timeout: 300_000 }, async () => {
  await wireLab();
  const lab = await startSshdLab(['client0', 'lb0', 'be0', 'be1'].map(ns), `lbb${id}`, td);
  labDir = lab.dir;
  const [client, lb, be0, be1] = lab.hosts as [typeof lab.hosts[0], typeof lab.hosts[0], typeof lab.hosts[0], typeof lab.hosts[0]];
  const ssh = (h: typeof client) => `{host: ${h.mgmtIp}, hostKey: "${h.hostKey}"}`;
  await writeFile(
    join(lab.dir, 'lab.yaml'),
    [
      'kind: baremetal',
      `ssh: {user: root, privateKey: ${lab.clientKey}}`,
      `client: {ssh: ${ssh(client)}, ip: 198.18.0.2, ip6: "2001:2::2", interface: eth0}`,
      `lb: {ssh: ${ssh(lb)}, clientInterface: eth0, clientIp: 198.18.0.1, clientIp6: "2001:2::1", backendInterface: eth1, backendIp: 198.18.1.2, backendIp6: "2001:2:0:1::2"}`,
      'backendHosts:',
      `  - {ssh: ${ssh(be0)}, ip: 198.18.1.11, ip6: "2001:2:0:1::11", interface: eth0}`,
      `  - {ssh: ${ssh(be1)}, ip: 198.18.1.12, ip6: "2001:2:0:1::12", interface: eth0}`,
      '',
    ].join('\n'),
  );
  const before = await hostState();
  const runDir = await runOnLab('e2e', 'loadBalancers: [{kind: iptables-dnat}, {kind: nginx, mode: l4}]', 'load: {duration: 1s, warmup: 0.3s, connections: 8}');
  const raw = JSON.parse(await readFile(join(runDir, 'result.json'), 'utf8'));
  assert.deepEqual(resultProblems(raw), []);
  assert.equal(raw.environment.topology, 'baremetal');
  const result = await readResult(runDir);
  assert.equal(result.status, 'complete');
  assert.deepEqual(result.points.map((p) => p.params.family).sort(), [4, 4, 6, 6]);
  for (const p of result.points) {
    assert.equal(p.error, undefined, `${p.id}: ${p.error}`);
    const served = p.repetitions[0]!.metrics.perBackend;
    assert.ok(served.be0! > 20 && served.be1! > 20, `${p.id} spread over both hosts: ${JSON.stringify(served)}`);
  }
  assert.deepEqual(await hostState(), before, 'VIP, routes, forwarding and rules are as they were');

  const doc: string[] = [];
  await main(['doctor', '--topology', join(lab.dir, 'lab.yaml')], { out: (s) => doc.push(s), err: (s) => doc.push(s) });
  const report = doc.join('\n');
  for (const role of ['client', 'lb', 'be0', 'be1']) assert.match(report, new RegExp(`ok   ${role} ${role}\\(198\\.18\\.251\\.\\d+\\): ssh, root`), report);
  assert.match(report, /ok   lb lb\(198\.18\.251\.\d+\): datapath iptables-dnat: usable/, report);
  assert.match(report, /ok   lb lb\(198\.18\.251\.\d+\): 198\.18\.0\.1, 2001:2::1 on eth0: configured/, report);
  assert.match(report, /ok   be1 be1\(198\.18\.251\.\d+\): 198\.18\.1\.12, 2001:2:0:1::12 on eth0: configured/, report);
  // An address the file names but the host does not hold is found before any run.
  await writeFile(join(lab.dir, 'lab-typo.yaml'), (await readFile(join(lab.dir, 'lab.yaml'), 'utf8')).replace('2001:2:0:1::12', '2001:2:0:1::99'));
  const typo: string[] = [];
  const typoCode = await main(['doctor', '--topology', join(lab.dir, 'lab-typo.yaml')], { out: (s) => typo.push(s), err: (s) => typo.push(s) });
  assert.notEqual(typoCode, 0);
  assert.match(typo.join('\n'), /FAIL be1 be1\(198\.18\.251\.\d+\): 198\.18\.1\.12, 2001:2:0:1::99 on eth0: 2001:2:0:1::99 not configured\n {5}fix: ip addr add 2001:2:0:1::99\/<prefix> dev eth0/, typo.join('\n'));
  for (const n of ['client0', 'lb0', 'be0', 'be1']) {
    const procs = (await local.exec(['ip', 'netns', 'pids', ns(n)])).stdout.trim().split('\n').filter(Boolean);
    assert.equal(procs.length, 2, `${n}: only unshare+sshd left (${procs.join(' ')})`);
  }
});

test('connection testers over SSH use the source pool in both families: replies route back through the LB host', { skip, timeout: 240_000 }, async () => {
  assert.ok(labDir, 'the lab from the first test');
  const before = await hostState();
  const result = await readResult(await runOnLab('pool', 'loadBalancers: [{kind: iptables-dnat}]', 'load: {generator: connect, duration: 1s, warmup: 0.3s, connections: 4, sourceAddresses: 16}'));
  assert.deepEqual(result.points.map((p) => p.params.family).sort(), [4, 6]);
  for (const p of result.points) {
    assert.equal(p.error, undefined, `${p.id}: ${p.error}`);
    const m = p.repetitions[0]!.metrics;
    assert.ok(m.perBackend.be0! > 10 && m.perBackend.be1! > 10, `${p.id} spread over both hosts: ${JSON.stringify(m.perBackend)}`);
    assert.ok('connections' in m, `${p.id}: connection metrics`);
    assert.equal(m.connections.failedConnects, 0, `${p.id}: every connect from a pool address answered`);
  }
  assert.deepEqual(await hostState(), before, 'local routes, pool routes and nonlocal binds are removed again');
});

test('an unknown host key stops the run before anything is changed, with the key to pin', { skip, timeout: 120_000 }, async () => {
  assert.ok(labDir, 'the lab from the first test');
  const dir = labDir;
  const yaml = (await readFile(join(dir, 'lab.yaml'), 'utf8')).replace(/hostKey: "[^"]+"/, 'hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMBq8GZ9d2VcQv3K3jVj2b7nR0nTt2rSsdkIbdJ4T8cO"');
  await writeFile(join(dir, 'lab-wrong.yaml'), yaml);
  await writeFile(join(dir, 'scenario-wrong.yaml'), (await readFile(join(dir, 'scenario-e2e.yaml'), 'utf8')).replace('lab.yaml', 'lab-wrong.yaml'));
  const before = await hostState();
  const out: string[] = [];
  const code = await main(['run', join(dir, 'scenario-wrong.yaml'), '--out', join(dir, 'results-wrong')], { out: (s) => out.push(s), err: (s) => out.push(s) });
  const text = out.join('\n');
  assert.notEqual(code, 0);
  assert.match(text, /host key/i, text);
  assert.match(text, /SHA256:/, 'the fingerprint of the key the host really has');
  assert.doesNotMatch(text, /\n\s+at /, 'no stack trace');
  assert.deepEqual(await hostState(), before);
});
