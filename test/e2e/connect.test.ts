// The built-in connection tester through the CLI on real namespaces: its own per-backend counts
// agree with the backends' counters, fairness is recorded, and many source addresses are used.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../harness/cli.ts';
import { readResult } from '../../harness/results/reader.ts';
import { resultProblems } from '../../harness/results/schema.ts';
import { missingCapability } from './helpers.ts';

const skip = missingCapability(['ip', 'nginx', 'iptables', 'nft', 'node']);

test('generator connect: per-backend counts match the backends, fairness and connection outcomes recorded', { skip, timeout: 300_000 }, async () => {
  const work = await mkdtemp(join(tmpdir(), 'lbb-e2e-'));
  await writeFile(
    join(work, 's.yaml'),
    [
      'name: connect-e2e',
      'topology: {kind: netns}',
      // nginx l4 too: a tester that half-closes loses every answer through it.
      'loadBalancers: [{kind: nftables, algorithm: hash}, {kind: nginx, mode: l4}, {kind: router}]',
      'sweep: {backends: [3]}',
      'load: {generator: connect, duration: 1s, warmup: 0.3s, connections: 8, sourceAddresses: 300}',
      'repetitions: 1',
      '',
    ].join('\n'),
  );
  const out: string[] = [];
  const code = await main(['run', join(work, 's.yaml'), '--out', join(work, 'results'), '--reports', join(work, 'reports')], { out: (s) => out.push(s), err: (s) => out.push(s) });
  assert.equal(code, 0, out.join('\n'));
  assert.match(out.join('\n'), /fairness \(Jain\) 1\.000|fairness \(Jain\) 0\.9\d\d/, 'the summary shows fairness');
  const [runId] = await readdir(join(work, 'results'));
  const raw = JSON.parse(await readFile(join(work, 'results', runId!, 'result.json'), 'utf8'));
  assert.deepEqual(resultProblems(raw), [], 'connect results match the result contract');
  const result = await readResult(join(work, 'results', runId!));
  for (const p of result.points) {
    assert.equal(p.error, undefined, `${p.id}: ${p.error}`);
    const m = p.repetitions[0]!.metrics as typeof p.repetitions[0]['metrics'] & {
      fairness: number;
      testerPerBackend: Record<string, number>;
      connections: { total: number; failedConnects: number; failedReads: number };
      tester: { sourceAddresses: number };
    };
    assert.equal(m.tester.sourceAddresses, 300);
    assert.ok(m.connections.total > 100, JSON.stringify(m.connections));
    assert.equal(m.connections.failedConnects + m.connections.failedReads, 0, `${p.id}: ${JSON.stringify(m.connections)}`);
    for (const [be, n] of Object.entries(m.testerPerBackend)) {
      // The backends count the same requests the tester saw answered (its own reads of stub_status aside).
      assert.ok(Math.abs(n - m.perBackend[be]!) <= 2, `${p.id} ${be}: tester ${n}, backend ${m.perBackend[be]}`);
    }
    if (p.lb.kind === 'router') assert.ok(m.fairness < 0.34, `router sends all to be0: fairness ${m.fairness}`);
    else assert.ok(m.fairness > 0.9, `${p.id} spreads over 300 sources: fairness ${m.fairness}`);
  }
});
