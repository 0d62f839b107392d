// The bottleneck verdict on a real run: the generator (wrk, one thread, pinned by cpus: auto to
// the last CPU) shares its CPU with a busy loop this test starts there, so it gets about half a
// CPU and waits for the rest — the point must come out generator-bound, with the evidence, and
// the result must carry every node's samples.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { missingCapability, runScenarioCli } from './helpers.ts';

const skip = missingCapability(['ip', 'nginx', 'wrk', 'taskset']) ?? (availableParallelism() < 2 ? 'needs 2 CPUs (the generator gets one of its own)' : undefined);

test('a starved generator is flagged generator-bound', { skip, timeout: 120_000 }, async () => {
  const last = availableParallelism() - 1;
  // Our own busy loop on the generator's CPU, ended by its PID.
  const hog = spawn('taskset', ['-c', String(last), 'sh', '-c', 'while :; do :; done'], { stdio: 'ignore' });
  let work: string | undefined;
  try {
    const run = await runScenarioCli(['name: starved', 'loadBalancers: [{kind: router}]', 'load: {duration: 3s, warmup: 0.5s, threads: 1, connections: 8}', 'repetitions: 1', 'cpus: auto']);
    work = run.work;
    assert.equal(run.code, 0, run.out);
    const rep = run.result!.points[0]!.repetitions[0]!;
    assert.equal(rep.bottleneck?.verdict, 'generator', JSON.stringify(rep.bottleneck));
    assert.match(rep.bottleneck!.evidence[0]!, /^generator: [\d.]+ of 1 cores \(\+[\d.]+ waiting for a CPU\)$/);
    assert.deepEqual(Object.keys(rep.samples!).sort(), ['be0', 'client', 'lb']);
    assert.ok(rep.samples!.client!.some((s) => Object.keys(s.procs).some((k) => k.startsWith('wrk:'))), 'wrk seen on the client');
    assert.match(run.out, /generator-bound in 1 of 1 repetitions/);
  } finally {
    hog.kill('SIGKILL');
    if (work) await rm(work, { recursive: true, force: true });
  }
});
