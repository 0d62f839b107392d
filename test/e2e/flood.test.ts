// Service under a flood on real namespaces: trafgen floods the VIP with SYNs from random sources
// while the connect tester probes; conntrack DNAT tracks every spoofed flow, XDP (stateless, in
// front of the stack) tracks none, and the result records what the flood sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { floodData } from '../../harness/report/experiment-specs.ts';
import { median } from '../../harness/stats/descriptive.ts';
import type { PointResult } from '../../harness/results/types.ts';
import { missingCapability, runScenarioOk } from './helpers.ts';

const skip = missingCapability(['ip', 'nginx', 'iptables', 'trafgen', 'node', 'bpftool', 'clang']);

const conntrack = (p: PointResult) => median(p.repetitions[0]!.samples!.lb!.map((s) => s.conntrack?.entries ?? 0));

test('a SYN flood from random sources beside the probe: recorded, tracked by conntrack DNAT, not by XDP, charted', { skip, timeout: 300_000 }, async () => {
  const r = await runScenarioOk([
    'name: flood-e2e',
    'topology: {kind: netns}',
    'loadBalancers: [{kind: iptables-dnat}, {kind: xdp}]',
    'sweep: {backends: [2], floodPps: [0, 30000]}',
    'load: {generator: connect, connections: 2, duration: 3s, warmup: 0.5s, timeout: 1s, flood: {packet: syn}}',
    'repetitions: 1',
  ]);
  const point = (id: string) => r.result!.points.find((p) => p.id === id)!;
  for (const p of r.result!.points) assert.equal(p.error, undefined, `${p.id}: ${p.error}`);
  for (const lb of ['iptables-dnat', 'xdp']) {
    const quiet = point(`${lb}/backends=2,floodPps=0`);
    const flooded = point(`${lb}/backends=2,floodPps=30000`);
    assert.equal(quiet.repetitions[0]!.flood, undefined);
    const f = flooded.repetitions[0]!.flood!;
    assert.equal(f.packet, 'syn');
    // Rate-limited by trafgen (its gap is approximate); unlimited it would send several times this.
    assert.ok(f.sentPerSec > 0.3 * 30000 && f.sentPerSec < 1.5 * 30000, `${lb}: sent ${f.sentPerSec} pps`);
    assert.ok(f.seconds >= 3, `${lb}: the flood covered the 3 s probe (${f.seconds} s)`);
    assert.ok((flooded.repetitions[0]!.metrics as { requests: number }).requests > 0, `${lb}: the probe got answers`);
  }
  // Every spoofed SYN is a new flow to conntrack DNAT; XDP redirects before the stack ever sees it.
  const dnat = conntrack(point('iptables-dnat/backends=2,floodPps=30000'));
  // (The probe's own short connections leave entries too; a second of the flood is 30 000 more.)
  const quiet = conntrack(point('iptables-dnat/backends=2,floodPps=0'));
  assert.ok(dnat - quiet > 30_000, `iptables-dnat conntrack entries: ${dnat} under the flood, ${quiet} without`);
  const xdp = conntrack(point('xdp/backends=2,floodPps=30000'));
  assert.ok(xdp < dnat / 20, `xdp conntrack entries under flood: ${xdp} (dnat ${dnat})`);

  const data = floodData(r.result!);
  assert.deepEqual([...new Set(data.map((d) => d.measure))], ['probe success (%)', 'probe p99 (ms)', 'CPU busy (cores)']);
  assert.deepEqual([...new Set(data.map((d) => `${d.series}@${d.floodPps}`))], ['iptables-dnat@0', 'iptables-dnat@30000', 'xdp@0', 'xdp@30000']);
  const [runDir] = await readdir(join(r.work, 'reports'));
  const html = await readFile(join(r.work, 'reports', runDir!, 'index.html'), 'utf8');
  assert.match(html, /Service under a flood/);
  assert.match(html, /trafgen reached \d+–\d+% of the set rates/);
});

test('a SYN flood over IPv6: sources stepping through the IPv6 pool reach conntrack DNAT as new flows beside the probe', { skip, timeout: 200_000 }, async () => {
  const r = await runScenarioOk([
    'name: flood6-e2e',
    'topology: {kind: netns}',
    'loadBalancers: [{kind: nftables}]',
    'sweep: {backends: [2], floodPps: [0, 30000], family: [6]}',
    'load: {generator: connect, connections: 2, duration: 3s, warmup: 0.5s, timeout: 1s, flood: {packet: syn}}',
    'repetitions: 1',
  ]);
  const point = (pps: number) => r.result!.points.find((p) => p.params.floodPps === pps)!;
  for (const p of r.result!.points) assert.equal(p.error, undefined, `${p.id}: ${p.error}`);
  const f = point(30000).repetitions[0]!.flood!;
  assert.ok(f.sentPerSec > 0.3 * 30000, JSON.stringify(f));
  assert.ok((point(30000).repetitions[0]!.metrics as { requests: number }).requests > 0, 'the IPv6 probe got answers');
  const dnat = conntrack(point(30000));
  const quiet = conntrack(point(0));
  assert.ok(dnat - quiet > 10_000, `IPv6 conntrack entries: ${dnat} under the flood, ${quiet} without`);
});
