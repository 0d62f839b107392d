// scenarios/l4-matrix.yaml, short, through the CLI: every kernel L4 datapath serves on all
// backends, and the result keeps each datapath's configuration and its own counters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../harness/cli.ts';
import { readResult } from '../../harness/results/reader.ts';
import { resultProblems } from '../../harness/results/schema.ts';
import { missingCapability, namespacesWithPrefix } from './helpers.ts';

const skip = missingCapability(['ip', 'nginx', 'wrk', 'iptables', 'nft', 'bird', 'bpftool']);

test('l4-matrix, 1 s points: every datapath spreads, records its config and counters', { skip, timeout: 600_000 }, async () => {
  const work = await mkdtemp(join(tmpdir(), 'lbb-e2e-'));
  const out: string[] = [];
  const io = { out: (s: string) => out.push(s), err: (s: string) => out.push(s) };
  const code = await main(
    ['run', 'scenarios/l4-matrix.yaml', '--duration', '1s', '--warmup', '0.3s', '--repetitions', '1', '--out', join(work, 'results'), '--reports', join(work, 'reports')],
    io,
  );
  assert.equal(code, 0, out.join('\n'));
  const [runId] = await readdir(join(work, 'results'));
  const raw = JSON.parse(await readFile(join(work, 'results', runId!, 'result.json'), 'utf8'));
  assert.deepEqual(resultProblems(raw), [], 'result.json matches the result contract');
  const result = await readResult(join(work, 'results', runId!));
  assert.equal(result.status, 'complete');
  assert.deepEqual(namespacesWithPrefix(`lbb-${runId!.slice(-4)}-`), [], 'namespaces torn down');
  assert.deepEqual(
    [...new Set(result.points.map((p) => p.lb.name))],
    ['router', 'iptables-dnat', 'nftables', 'ecmp-static', 'ecmp-bgp', 'nfqueue', 'xdp'],
  );

  for (const p of result.points) {
    assert.equal(p.error, undefined, `${p.id} failed: ${p.error}`);
    const rep = p.repetitions[0]!;
    if (p.lb.kind !== 'router') {
      for (const [be, n] of Object.entries(rep.metrics.perBackend)) assert.ok(n > 0, `${p.id}: ${be} served nothing: ${JSON.stringify(rep.metrics.perBackend)}`);
    }
    const config = p.lbDescribe?.config ?? '';
    const dp = rep.datapath;
    const backends = Object.keys(rep.metrics.perBackend);
    switch (p.lb.kind) {
      case 'ecmp':
        assert.match(config, /fib_multipath_hash_policy = 1/, `${p.id} records the L4 hash policy`);
        assert.match(config, new RegExp(`mode=${p.lb.mode as string}`));
        break;
      case 'nfqueue': {
        assert.match(config, /maglev table size 997, .*stateless/);
        assert.ok(dp, `${p.id} stores the program's counters`);
        assert.equal(dp['rule.hits'], dp['program.packets'], `${p.id}: every queued packet got our verdict: ${JSON.stringify(dp)}`);
        assert.equal(dp['bypassed'], 0);
        // Stateless: every client→VIP packet went through the program.
        for (const be of backends) {
          const ratio = dp[`packets.${be}`]! / rep.metrics.perBackend[be]!;
          assert.ok(ratio > 0.8 && ratio < 3, `${p.id}: ${be} got ${dp[`packets.${be}`]} packets for ${rep.metrics.perBackend[be]} requests`);
        }
        break;
      }
      case 'xdp': {
        assert.match(config, /# attach: (native|generic) on lb0/, `${p.id} records the attach mode used`);
        assert.ok(dp, `${p.id} stores the map counters`);
        for (const be of backends) {
          // One request per packet or so with keep-alive; the map counts every client→VIP packet.
          const ratio = dp[`packets.${be}`]! / rep.metrics.perBackend[be]!;
          assert.ok(ratio > 0.8 && ratio < 3, `${p.id}: ${be} got ${dp[`packets.${be}`]} packets for ${rep.metrics.perBackend[be]} requests`);
        }
        assert.equal(dp['drop.no_backend']! + dp['drop.bad_backend']! + dp['drop.redirect']!, 0, `${p.id}: no drops: ${JSON.stringify(dp)}`);
        break;
      }
    }
  }
});
