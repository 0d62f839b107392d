// IPVS in a real Debian guest (this host's kernel has no ip_vs): the netns topology is built
// inside the guest over SSH, and every mode spreads, follows live backend and weight changes, and
// — for tun and dr — answers without the director's IPVS seeing a reply. Then the ipvs-vm
// scenario runs through the CLI. Minutes under TCG; the image comes from the cache after the
// first build.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Teardown } from '../../harness/teardown.ts';
import { openSite, type Site } from '../../harness/topology/site.ts';
import type { RunTopology } from '../../harness/topology/netns.ts';
import { lbDrivers } from '../../harness/lb/index.ts';
import { LbSpec, QemuTopologySpec } from '../../harness/scenario/schema.ts';
import { perBackendDelta } from '../../harness/run/runner.ts';
import { main } from '../../harness/cli.ts';
import { readResult } from '../../harness/results/reader.ts';
import { missingCapability, sh } from './helpers.ts';
import { hostPort } from '../../harness/lb/family.ts';

const skip = missingCapability(['qemu-system-x86_64', 'debootstrap', 'mkfs.ext4']);
const td = new Teardown();
let site: Site;
let topo: RunTopology;

before(async () => {
  if (skip) return;
  site = await openSite({ ...QemuTopologySpec.parse({ kind: 'qemu', guest: { memoryMb: 1024, cpus: 1 } }), backends: 2 }, td, { log: (s) => console.log(s) });
  // Dual stack: the IPv6 test below uses the same guest.
  topo = await site.build({ backends: 2, ipv6: true, runId: `20261123-000000-${Math.random().toString(16).slice(2, 6)}` }, td);
});

after(async () => {
  assert.deepEqual(await td.unwind(), []);
  assert.equal(sh('ps -eo args=').split('\n').filter((l) => l.startsWith('qemu-system-x86_64')).length, 0, 'no qemu left running');
});

async function drive(ip: string, port: number, seconds = 2): Promise<Record<string, number>> {
  const before = await topo.backendCounters();
  const r = await topo.client.host.exec(['wrk', '-t1', '-c4', `-d${seconds}s`, '-H', 'Connection: close', `http://${hostPort(ip, port)}/`], { timeoutMs: 60_000 });
  assert.match(r.stdout, /Requests\/sec/);
  return perBackendDelta(before, await topo.backendCounters(), ['be0', 'be1']);
}

for (const mode of ['nat', 'tun', 'dr'] as const) {
  test(`ipvs ${mode} in the guest: spreads, replies ${mode === 'nat' ? 'through' : 'bypass'} the director, live backends and weights`, { skip, timeout: 300_000 }, async () => {
    const spec = LbSpec.parse({ kind: 'ipvs', mode, scheduler: 'wrr' });
    const driver = lbDrivers.ipvs;
    await driver.preflight(topo.root, spec as never);
    const ledger = new Teardown();
    try {
      const d = await driver.apply({ topo, spec: spec as never, backends: topo.backends, port: 80, teardown: ledger, workDir: `${topo.workDir}/ipvs-${mode}`, log: () => {} });
      const c0 = await d.counters!();
      const even = await drive(d.endpoint.ip, d.endpoint.port);
      assert.ok(even.be0! > 20 && even.be1! > 20, `both backends serve: ${JSON.stringify(even)}`);
      const c1 = await d.counters!();
      const outPkts = c1.outPkts! - c0.outPkts!;
      const inPkts = c1.inPkts! - c0.inPkts!;
      assert.ok(inPkts > 100, `the director forwarded requests: ${JSON.stringify(c1)}`);
      if (mode === 'nat') assert.ok(outPkts > 100, `NAT replies pass the director: ${outPkts}`);
      else assert.equal(outPkts, 0, `${mode}: no reply went through the director's IPVS`);

      await d.setWeights!({ be0: 3, be1: 1 });
      const weighted = await drive(d.endpoint.ip, d.endpoint.port);
      const ratio = weighted.be0! / Math.max(1, weighted.be1!);
      assert.ok(ratio > 2 && ratio < 4.5, `wrr 3:1 gives about 3× to be0: ${JSON.stringify(weighted)}`);

      await d.setBackends([topo.backends[1]!]);
      const one = await drive(d.endpoint.ip, d.endpoint.port, 1);
      assert.ok(one.be1! > 20 && one.be0 === 0, `only be1 after removing be0: ${JSON.stringify(one)}`);
      await d.teardown();
    } finally {
      assert.deepEqual(await ledger.unwind(), []);
    }
    const lb = topo.lb.host;
    assert.doesNotMatch((await lb.exec(['ipvsadm', '-Ln'])).stdout, /TCP/, 'no virtual service left');
    for (const b of topo.backends) {
      assert.doesNotMatch((await b.host.exec(['ip', '-o', 'addr', 'show'])).stdout, /198\.18\.100\.1/, `VIP removed from ${b.name}`);
    }
  });
}

for (const mode of ['nat', 'tun', 'dr'] as const) {
  test(`ipvs ${mode} over IPv6 in the guest: an IPv6 virtual service, bracketed real servers, replies ${mode === 'nat' ? 'through' : 'bypassing'} IPVS`, { skip, timeout: 300_000 }, async () => {
    const v6 = topo.v6!;
    const spec = LbSpec.parse({ kind: 'ipvs', mode, scheduler: 'rr' });
    const ledger = new Teardown();
    try {
      const d = await lbDrivers.ipvs.apply({ topo: v6, spec: spec as never, backends: v6.backends, port: 80, teardown: ledger, workDir: `${topo.workDir}/ipvs-${mode}6`, log: () => {} });
      assert.equal(d.endpoint.ip, '2001:2:0:100::1');
      const c0 = await d.counters!();
      const even = await drive(d.endpoint.ip, d.endpoint.port);
      assert.ok(even.be0! > 20 && even.be1! > 20, `both backends serve over IPv6: ${JSON.stringify(even)}`);
      const c1 = await d.counters!();
      assert.ok(c1['inPkts.be0']! > c0['inPkts.be0']!, `IPVS counted per real server: ${JSON.stringify(c1)}`);
      if (mode === 'nat') assert.ok(c1.outPkts! - c0.outPkts! > 100, `NAT replies pass IPVS: ${JSON.stringify(c1)}`);
      else assert.equal(c1.outPkts! - c0.outPkts!, 0, `${mode}: no reply went through IPVS`);
      if (mode === 'tun') {
        // The requests really arrived IPv6-in-IPv6: decapsulated by the backends' ip6tnl0.
        const rx = (await topo.backends[0]!.host.exec(['cat', '/sys/class/net/ip6tnl0/statistics/rx_packets'])).stdout.trim();
        assert.ok(Number(rx) > 20, `be0's ip6tnl0 received the encapsulated requests: ${rx}`);
      }
      if (mode === 'nat') {
        // For the parser's fixture: what ipvsadm prints for an IPv6 service.
        console.log((await topo.lb.host.exec(['ipvsadm', '-Ln', '-t', '[2001:2:0:100::1]:80', '--stats', '--exact'])).stdout);
        console.log((await topo.lb.host.exec(['ipvsadm', '-Ln', '-t', '[2001:2:0:100::1]:80'])).stdout);
      }
      await d.setBackends([v6.backends[1]!]);
      const one = await drive(d.endpoint.ip, d.endpoint.port, 1);
      assert.ok(one.be1! > 20 && one.be0 === 0, `only be1 after removing be0: ${JSON.stringify(one)}`);
      await d.teardown();
    } finally {
      assert.deepEqual(await ledger.unwind(), []);
    }
    assert.doesNotMatch((await topo.lb.host.exec(['ipvsadm', '-Ln'])).stdout, /TCP/, 'no virtual service left');
    for (const b of topo.backends) assert.doesNotMatch((await b.host.exec(['ip', '-o', 'addr', 'show'])).stdout, /2001:2:0:100::1/, `VIP removed from ${b.name}`);
  });
}

test('scenarios/ipvs-vm.yaml through the CLI, short: every LB serves, the guest is recorded and gone', { skip, timeout: 600_000 }, async () => {
  const qemus = () => sh('ps -eo args=').split('\n').filter((l) => l.startsWith('qemu-system-x86_64')).length;
  const before = qemus();
  const work = await mkdtemp(join(tmpdir(), 'lbb-e2e-'));
  const out: string[] = [];
  const io = { out: (s: string) => out.push(s), err: (s: string) => out.push(s) };
  const code = await main(['run', 'scenarios/ipvs-vm.yaml', '--duration', '1s', '--warmup', '0.3s', '--repetitions', '1', '--out', join(work, 'results'), '--reports', join(work, 'reports')], io);
  assert.equal(code, 0, out.join('\n'));
  const [runId] = await readdir(join(work, 'results'));
  const raw = JSON.parse(await readFile(join(work, 'results', runId!, 'result.json'), 'utf8'));
  assert.equal(raw.environment.topology, 'qemu');
  assert.match(raw.environment.guest.accel, /^(kvm|tcg)$/);
  assert.match(raw.host.kernel, /^6\.1\./, 'the fingerprint is the guest kernel');
  const result = await readResult(join(work, 'results', runId!));
  assert.deepEqual(
    [...new Set(result.points.map((p) => p.lb.name))],
    ['router', 'iptables-dnat', 'ipvs-nat', 'ipvs-tun', 'ipvs-dr'],
  );
  for (const p of result.points) {
    assert.equal(p.error, undefined, `${p.id}: ${p.error}`);
    if (p.lb.kind === 'router') continue;
    for (const [be, n] of Object.entries(p.repetitions[0]!.metrics.perBackend)) assert.ok(n > 0, `${p.id}: ${be} served nothing`);
  }
  assert.equal(qemus(), before, 'the run stopped its guest');
});
