// One guest per role: client, LB and two backends as separate qemu guests linked by datagram
// sockets (the LB bridges its backend links). IPVS nat and dr run across real guest boundaries,
// over IPv4 and IPv6.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../harness/cli.ts';
import { readResult } from '../../harness/results/reader.ts';
import { missingCapability, sh } from './helpers.ts';

const skip = missingCapability(['qemu-system-x86_64', 'debootstrap', 'mkfs.ext4']);
const qemus = () => sh('ps -eo args=').split('\n').filter((l) => l.startsWith('qemu-system-x86_64')).length;

test('placement per-role: four guests, IPVS nat and dr across them over both families, all stopped after', { skip, timeout: 600_000 }, async () => {
  const before = qemus();
  const work = await mkdtemp(join(tmpdir(), 'lbb-e2e-'));
  await writeFile(
    join(work, 's.yaml'),
    [
      'name: per-role',
      'topology: {kind: qemu, placement: per-role, guest: {memoryMb: 512, cpus: 1}}',
      'loadBalancers: [{kind: ipvs, mode: nat}, {kind: ipvs, mode: dr}]',
      'sweep: {backends: [2], family: [4, 6]}',
      'load: {duration: 1s, warmup: 0.3s, connections: 8}',
      'repetitions: 1',
      'cpus: off',
      '',
    ].join('\n'),
  );
  const out: string[] = [];
  const code = await main(['run', join(work, 's.yaml'), '--out', join(work, 'results'), '--reports', join(work, 'reports')], { out: (s) => out.push(s), err: (s) => out.push(s) });
  assert.equal(code, 0, out.join('\n'));
  const [runId] = await readdir(join(work, 'results'));
  const raw = JSON.parse(await readFile(join(work, 'results', runId!, 'result.json'), 'utf8'));
  assert.equal(raw.environment.placement, 'per-role');
  assert.deepEqual(Object.keys(raw.environment.guest.bootMs).sort(), ['be0', 'be1', 'client', 'lb']);
  const result = await readResult(join(work, 'results', runId!));
  assert.deepEqual(result.points.map((p) => p.params.family).sort(), [4, 4, 6, 6]);
  for (const p of result.points) {
    assert.equal(p.error, undefined, `${p.id}: ${p.error}`);
    const served = p.repetitions[0]!.metrics.perBackend;
    assert.ok(served.be0! > 0 && served.be1! > 0, `${p.id}: ${JSON.stringify(served)}`);
  }
  assert.equal(qemus(), before, 'every guest stopped');
});
