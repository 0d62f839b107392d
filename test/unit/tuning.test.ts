// Tuning profiles: the plan (a sweep axis), load-time refusals with file:line:col, `ethtool -k`
// as a veth prints it (recorded here), and apply/restore on a host that keeps state like a kernel
// would (sysctls, queue files, features): everything set is put back, in reverse order. The real
// datapath is exercised by test/e2e/tuning.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecResult, Host } from '../../harness/host/types.ts';
import { applyTuning, parseEthtoolFeatures } from '../../harness/run/tuning.ts';
import { loadScenario } from '../../harness/scenario/load.ts';
import { describePlan, plan } from '../../harness/scenario/plan.ts';
import { Teardown } from '../../harness/teardown.ts';
import type { LbNode } from '../../harness/topology/types.ts';

const VETH = readFileSync(new URL('../fixtures/ethtool/veth-features.txt', import.meta.url), 'utf8');

async function scenario(body: string): Promise<{ load: () => ReturnType<typeof loadScenario>; done: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'lbb-tuning-'));
  await writeFile(join(dir, 's.yaml'), body);
  return { load: () => loadScenario(join(dir, 's.yaml')), done: () => rm(dir, { recursive: true, force: true }) };
}

test('ethtool -k of a veth: features, on/off, fixed', () => {
  const f = parseEthtoolFeatures(VETH);
  assert.deepEqual(f['generic-receive-offload'], { on: false, fixed: false });
  assert.deepEqual(f['large-receive-offload'], { on: false, fixed: true });
  assert.deepEqual(f['tcp-segmentation-offload'], { on: true, fixed: false });
  assert.equal(f['tx-tcp-segmentation']?.on, true, 'indented sub-features too');
  assert.deepEqual(parseEthtoolFeatures('garbage'), {});
});

test('tuning profiles are a sweep axis: every point once per profile, named in the id', async () => {
  const s = await scenario(
    ['name: t', 'loadBalancers: [{kind: router}, {kind: xdp}]', 'sweep: {backends: [1, 2]}', 'tuning:', '  - name: default', '  - name: rps', '    rps: {cpus: "3", flowEntries: 4096}', '  - name: no-gro', '    offloads: {gro: "off"}', '    conntrack: false'].join('\n'),
  );
  try {
    const points = plan(await s.load());
    assert.equal(points.length, 2 * 2 * 3);
    assert.deepEqual(points.slice(0, 3).map((p) => p.id), ['router/backends=1,tuning=default', 'router/backends=1,tuning=rps', 'router/backends=1,tuning=no-gro']);
    assert.deepEqual(points[1]!.params, { backends: 1, connections: 32, threads: 1, tuning: 'rps' });
    assert.deepEqual(points[1]!.tuning, { name: 'rps', rps: { cpus: '3', flowEntries: 4096 } });
    assert.match(describePlan(points), /backends 1,2 × tuning default,rps,no-gro/);
  } finally {
    await s.done();
  }
  const none = await scenario('name: t\nloadBalancers: [{kind: router}]\n');
  try {
    const [p] = plan(await none.load());
    assert.equal(p!.id, 'router/backends=1', 'no profiles: ids and params as before');
    assert.equal('tuning' in p!.params, false);
  } finally {
    await none.done();
  }
});

test('tuning: refused where it would break an LB or is malformed, with file:line:col', async () => {
  const problems = async (body: string) => {
    const s = await scenario(body);
    try {
      await s.load();
      return [];
    } catch (e) {
      return (e as { problems?: string[] }).problems ?? [String(e)];
    } finally {
      await s.done();
    }
  };
  const p = await problems(['name: t', 'loadBalancers: [{kind: iptables-dnat}, {kind: xdp}]', 'tuning:', '  - name: notrack', '    conntrack: false'].join('\n'));
  assert.equal(p.length, 1);
  assert.match(p[0]!, /s\.yaml:5:16: tuning\[0\]\.conntrack: iptables-dnat needs conntrack on the LB node \(NAT or connection marks\); drop conntrack: false from profile "notrack"/);
  const dup = await problems(['name: t', 'loadBalancers: [{kind: router}]', 'tuning: [{name: a}, {name: a}]'].join('\n'));
  assert.match(dup.join('\n'), /s\.yaml:3:\d+: tuning: two tuning profiles share a name/);
  const key = await problems(['name: t', 'loadBalancers: [{kind: router}]', 'tuning: [{name: a, sysctls: {kernel.panic: 1}}]'].join('\n'));
  assert.match(key.join('\n'), /s\.yaml:3:\d+: tuning\[0\]\.sysctls\.kernel\.panic: kernel\.panic: expected a network sysctl such as "net\.core\.netdev_max_backlog"/);
  const off = await problems(['name: t', 'loadBalancers: [{kind: router}]', 'tuning: [{name: a, offloads: {grow: "off"}}]'].join('\n'));
  assert.match(off.join('\n'), /tuning\[0\]\.offloads\.grow: grow: not an offload lbbench sets; write one of gro, gso, tso/);
  const mask = await problems(['name: t', 'loadBalancers: [{kind: router}]', 'tuning: [{name: a, rps: {cpus: "0-1"}}]'].join('\n'));
  assert.match(mask.join('\n'), /a hex CPU mask as sysfs takes it, e\.g\. "3" for CPUs 0 and 1/);
});

/** A host that keeps sysctls, sysfs queue files, features and raw-table rules the way the kernel would. */
function kernelLikeHost(missing: string[] = []) {
  const sysctl = new Map([['net.core.netdev_budget', '300'], ['net.core.rps_sock_flow_entries', '0']]);
  const files = new Map([['/sys/class/net/eth0/queues/rx-0/rps_cpus', '0'], ['/sys/class/net/eth0/queues/rx-0/rps_flow_cnt', '0'], ['/sys/class/net/eth1/queues/rx-0/rps_cpus', '0'], ['/sys/class/net/eth1/queues/rx-0/rps_flow_cnt', '0']]);
  let gro = false;
  const raw: string[] = [];
  const ok = (stdout = ''): ExecResult => ({ stdout, stderr: '', code: 0 });
  const exec = async (argv: string[]): Promise<ExecResult> => {
    const [cmd, ...a] = argv;
    if (cmd === 'sysctl' && missing.includes(a[a.length - 1]!.split('=')[0]!)) return { stdout: '', stderr: `sysctl: cannot stat ${a[a.length - 1]}`, code: 255 };
    if (cmd === 'sysctl' && a[0] === '-n') return ok(`${sysctl.get(a[1]!)}\n`);
    if (cmd === 'sysctl') {
      const [k, v] = a[a.length - 1]!.split('=');
      sysctl.set(k!, v!);
      return ok();
    }
    if (cmd === 'cat') return ok(`${files.get(a[0]!)}\n`);
    if (cmd === 'sh') {
      const script = a[1]!;
      const list = /^for f in (\S+);/.exec(script);
      if (list) {
        const re = new RegExp(`^${list[1]!.replace(/\*/g, '[^/]+')}$`);
        return ok([...files.keys()].filter((f) => re.test(f)).join('\n'));
      }
      const w = /^echo '([^']*)' > '([^']*)'$/.exec(script);
      if (w) {
        files.set(w[2]!, w[1]!);
        return ok();
      }
    }
    if (cmd === 'ethtool' && a[0] === '-k') return ok(VETH.replace(/generic-receive-offload: \w+/, `generic-receive-offload: ${gro ? 'on' : 'off'}`));
    if (cmd === 'ethtool' && a[0] === '-K') {
      gro = a[3] === 'on';
      return ok();
    }
    if (cmd === 'iptables') {
      const rule = a.slice(a.indexOf(a.find((x) => x === '-I' || x === '-D')!) + 1).join(' ');
      if (a.includes('-I')) raw.push(rule);
      else raw.splice(raw.indexOf(rule), 1);
      return ok();
    }
    throw new Error(`unexpected ${argv.join(' ')}`);
  };
  const host = { name: 'fake-lb', exec, spawn: () => assert.fail('no spawn'), writeFile: async () => {}, readFile: async () => '' } as unknown as Host;
  return { host, state: () => ({ sysctl: Object.fromEntries(sysctl), files: Object.fromEntries(files), gro, raw: [...raw] }) };
}

test('applyTuning: sets, records before/after, and the ledger puts everything back', async () => {
  const k = kernelLikeHost();
  const before = k.state();
  const lb = { name: 'lb0', host: k.host, ns: 'x', ip: '198.18.0.2', clientIf: 'eth0', clientIp: '198.18.0.2', backendIf: 'eth1', backendIp: '198.18.1.1' } as LbNode;
  const ledger = new Teardown();
  const rec = await applyTuning({ name: 'all', sysctls: { 'net.core.netdev_budget': 600 }, offloads: { gro: 'on' }, rps: { cpus: '3', flowEntries: 4096 }, conntrack: false }, lb, ledger);
  const during = k.state();
  assert.equal(during.sysctl['net.core.netdev_budget'], '600');
  assert.equal(during.sysctl['net.core.rps_sock_flow_entries'], '4096');
  assert.equal(during.files['/sys/class/net/eth1/queues/rx-0/rps_cpus'], '3');
  assert.equal(during.files['/sys/class/net/eth0/queues/rx-0/rps_flow_cnt'], '4096');
  assert.equal(during.gro, true);
  assert.equal(during.raw.length, 2);
  assert.deepEqual(rec.changes[0], { what: 'net.core.netdev_budget', before: '300', after: '600' });
  assert.ok(rec.changes.some((c) => c.what === 'eth0 gro' && c.before === 'off' && c.after === 'on'));
  assert.ok(rec.changes.some((c) => c.what === 'eth1/queues/rx-0/rps_cpus' && c.before === '0' && c.after === '3'));
  await ledger.unwind();
  assert.deepEqual(k.state(), before);
});

test('applyTuning: a feature the driver fixes is an error that says what to drop', async () => {
  const k = kernelLikeHost();
  const lb = { name: 'lb0', host: k.host, clientIf: 'eth0', backendIf: 'eth1' } as LbNode;
  const ledger = new Teardown();
  await assert.rejects(applyTuning({ name: 'lro', offloads: { lro: 'on' } }, lb, ledger), /tuning "lro": eth0 large-receive-offload is fixed off; the driver doesn't let it change/);
  await ledger.unwind();
});

test('applyTuning: host-wide sysctls of a namespace node go to the host that holds it', async () => {
  const node = kernelLikeHost(['net.core.netdev_budget']);
  const root = kernelLikeHost();
  const lb = { name: 'lb0', host: node.host, ns: 'lbb-x-lb0', clientIf: 'eth0', backendIf: 'eth1' } as LbNode;
  const ledger = new Teardown();
  const rec = await applyTuning({ name: 'b', sysctls: { 'net.core.netdev_budget': 600 } }, lb, ledger, undefined, root.host);
  assert.deepEqual(rec.changes, [{ what: 'net.core.netdev_budget (host-wide)', before: '300', after: '600' }]);
  assert.equal(root.state().sysctl['net.core.netdev_budget'], '600');
  await ledger.unwind();
  assert.equal(root.state().sysctl['net.core.netdev_budget'], '300');
  // A machine of its own has no host above it: a key it lacks is an error that names it.
  await assert.rejects(applyTuning({ name: 'b', sysctls: { 'net.core.netdev_budget': 600 } }, { ...lb, ns: undefined }, new Teardown(), undefined, root.host), /sysctl net\.core\.netdev_budget does not exist on fake-lb/);
});
