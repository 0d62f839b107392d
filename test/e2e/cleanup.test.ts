// Interruption and crash: a run stopped by SIGINT tears down everything and keeps its results;
// a run killed outright leaves things behind that `lbbench down` removes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../harness/cli.ts';
import { readResult } from '../../harness/results/reader.ts';
import { missingCapability, namespacesWithPrefix, processesMentioning, sh } from './helpers.ts';

const skip = missingCapability(['ip', 'nginx', 'wrk', 'haproxy', 'iptables', 'nft']);
const ROOT = join(import.meta.dirname, '..', '..');

/** Start `lbbench run` as a real process and resolve once its output matches `ready`. */
function startRun(args: string[], ready: RegExp) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'harness/main.ts', 'run', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<number | null>((r) => child.on('exit', (code, sig) => r(code ?? (sig ? -1 : null))));
  const reached = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`never reached ${ready}:\n${output}`)), 120_000);
    const onData = (d: Buffer) => {
      output += d.toString();
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    exited.then(() => reject(new Error(`exited before ${ready}:\n${output}`)));
  });
  return { child, exited, reached, output: () => output };
}

test('Ctrl-C mid-run: exit 130, nothing left behind, results so far kept', { skip, timeout: 300_000 }, async () => {
  const work = await mkdtemp(join(tmpdir(), 'lbb-int-'));
  const run = startRun(
    ['scenarios/quickstart.yaml', '--duration', '3s', '--warmup', '0.2s', '--repetitions', '2', '--out', join(work, 'results'), '--reports', join(work, 'reports')],
    // Interrupt while the second LB's load is running: one point done, LB rules and processes live.
    /\[2\/21\][^\n]*\n[^\n]*rep 1\/2/,
  );
  await run.reached;
  const [runId] = await readdir(join(work, 'results'));
  const prefix = `lbb-${runId!.slice(-4)}-`;
  const before = namespacesWithPrefix(prefix);
  assert.ok(before.length > 0, 'the run had built its namespaces');

  // `down` while the run is alive: its namespaces are somebody's measurement, not leftovers.
  const downOut: string[] = [];
  assert.equal(await main(['down'], { out: (s) => downOut.push(s), err: (s) => downOut.push(s) }), 0);
  assert.match(downOut.join('\n'), new RegExp(`keeping ${prefix}\\* .*in use by pid ${run.child.pid}`));
  assert.deepEqual(namespacesWithPrefix(prefix), before, 'down kept the live run');

  run.child.kill('SIGINT');
  const code = await run.exited;
  assert.equal(code, 130, run.output());
  assert.match(run.output(), /SIGINT: stopping, tearing down/);

  assert.deepEqual(namespacesWithPrefix(prefix), [], 'namespaces removed');
  assert.deepEqual(processesMentioning(`/lbbench/${runId}`), [], 'no nginx/haproxy/wrk of this run still running');
  assert.doesNotMatch(sh('iptables -t nat -S'), /LBB_VIP/, 'root namespace untouched');

  const result = await readResult(join(work, 'results', runId!));
  assert.equal(result.status, 'interrupted');
  assert.ok(result.points[0]!.repetitions.length === 2, 'the finished point is kept whole');
  assert.ok(result.points.length >= 2);
  assert.match(result.error ?? '', /interrupted by SIGINT/);
});

test('crash (SIGKILL) leaves namespaces and processes; `lbbench down` removes them', { skip, timeout: 300_000 }, async () => {
  const work = await mkdtemp(join(tmpdir(), 'lbb-crash-'));
  const run = startRun(
    ['scenarios/quickstart.yaml', '--lb', 'nginx', '--duration', '5s', '--warmup', '0.2s', '--repetitions', '1', '--out', join(work, 'results')],
    /\[1\/\d+\] nginx-l4/,
  );
  await run.reached;
  await new Promise((r) => setTimeout(r, 1500)); // nginx LB up, wrk running
  const [runId] = await readdir(join(work, 'results'));
  const prefix = `lbb-${runId!.slice(-4)}-`;
  run.child.kill('SIGKILL');
  await run.exited;
  assert.ok(namespacesWithPrefix(prefix).length > 0, 'a crash leaves namespaces behind');
  assert.ok(processesMentioning(`/lbbench/${runId}`).length > 0, 'and the nginx processes in them');

  const out: string[] = [];
  const code = await main(['down'], { out: (s) => out.push(s), err: (s) => out.push(s) });
  assert.equal(code, 0, out.join('\n'));
  assert.match(out.join('\n'), /removed [1-9]\d* namespaces and 1 work dirs/);
  assert.deepEqual(namespacesWithPrefix(prefix), [], 'the crashed run is gone');
  // Processes are killed by PID; zombies (no reaper in some containers) don't count as running.
  const alive = processesMentioning(`/lbbench/${runId}`).filter((pid) => !sh(`ps -o stat= -p ${pid} || true`).startsWith('Z'));
  assert.deepEqual(alive, [], 'no process of the crashed run still running');
  const result = await readResult(join(work, 'results', runId!));
  assert.equal(result.status, 'running', 'a crashed run is recognisable: it never finished');
});
