// Tuning profiles on a real run: each profile's settings are on the LB node while its points run
// (the result records before and during), and afterwards nothing is left changed — the host-wide
// sysctls (netdev_budget, rps_sock_flow_entries: not per namespace) have their old values back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { missingCapability, runScenarioCli } from './helpers.ts';

const sysctl = (k: string) => execFileSync('sysctl', ['-n', k], { encoding: 'utf8' }).trim();
const GLOBAL = ['net.core.netdev_budget', 'net.core.rps_sock_flow_entries'];

test('tuning: applied for its points, recorded, and restored', { skip: missingCapability(['ip', 'nginx', 'wrk', 'ethtool', 'iptables']), timeout: 180_000 }, async () => {
  const before = Object.fromEntries(GLOBAL.map((k) => [k, sysctl(k)]));
  const budget = String(Number(before['net.core.netdev_budget']) + 17);
  const run = await runScenarioCli([
    'name: tuning-e2e',
    'loadBalancers: [{kind: router}]',
    'load: {duration: 1s, warmup: 0.3s}',
    'repetitions: 1',
    'tuning:',
    '  - name: default',
    '  - name: everything',
    `    sysctls: {net.core.netdev_budget: ${budget}, net.ipv4.tcp_tw_reuse: 2}`,
    '    rps: {cpus: "1", flowEntries: 4096}',
    '    offloads: {gro: "on"}',
    '    conntrack: false',
  ]);
  try {
    assert.equal(run.code, 0, run.out);
    const [base, tuned] = run.result!.points;
    assert.deepEqual([base!.params.tuning, tuned!.params.tuning], ['default', 'everything']);
    assert.deepEqual(base!.tuning, { name: 'default', changes: [] });
    const changed = Object.fromEntries(tuned!.tuning!.changes.map((c) => [c.what, c]));
    assert.equal(changed['net.core.netdev_budget (host-wide)']!.after, budget);
    assert.equal(changed['net.core.netdev_budget (host-wide)']!.before, before['net.core.netdev_budget']);
    assert.equal(changed['net.ipv4.tcp_tw_reuse']!.after, '2');
    assert.equal(changed['net.core.rps_sock_flow_entries (host-wide)']!.after, '4096');
    assert.equal(changed['eth0/queues/rx-0/rps_cpus']!.after, '1');
    assert.equal(changed['eth1/queues/rx-0/rps_flow_cnt']!.after, '4096');
    assert.equal(changed['eth0 gro']!.after, 'on');
    assert.equal(changed['iptables raw PREROUTING']!.after, 'NOTRACK');
    // The datapath still forwarded with everything applied.
    assert.ok(tuned!.repetitions[0]!.metrics && 'requestsPerSec' in tuned!.repetitions[0]!.metrics && tuned!.repetitions[0]!.metrics.requestsPerSec > 0);
    assert.match(run.out, /tuning "everything": net\.core\.netdev_budget \(host-wide\) \d+→\d+/);
    for (const k of GLOBAL) assert.equal(sysctl(k), before[k], `${k} restored`);
  } finally {
    await rm(run.work, { recursive: true, force: true });
  }
});
