import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../harness/errors.ts';
import { ResultWriter, sanitizeId, type PointMeta, type RunInit } from '../../harness/results/writer.ts';
import { readResult, upgradeResult } from '../../harness/results/reader.ts';
import { CSV_COLUMNS, toCsv } from '../../harness/results/csv.ts';
import { hostFingerprint, parseCpuinfo, parseMemTotal } from '../../harness/results/fingerprint.ts';
import { FORMAT_VERSION, type Repetition, type RunResult } from '../../harness/results/types.ts';
import type { ExecOptions, ExecResult, Host } from '../../harness/host/types.ts';
import { LocalHost } from '../../harness/host/local.ts';
import type { RequestMetrics } from '../../harness/results/types.ts';

const FIXTURE = new URL('../fixtures/results/synthetic-run.json', import.meta.url).pathname;

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'lbb-results-'));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

function init(): RunInit {
  return {
    runId: '20250101-000000-abcd',
    startedAt: '2025-01-01T00:00:00.000Z',
    scenarioFile: 'scenarios/x.yaml',
    scenario: { name: 'x' },
    host: {
      hostname: 'h',
      kernel: '6.1.0',
      cpuModel: 'cpu',
      cpus: 2,
      memoryBytes: 1024,
      node: 'v20',
      tools: { wrk: 'wrk 4.1.0' },
      git: null,
      sysctls: {},
      lbbenchVersion: '0.1.0',
    },
  };
}

const PARAMS = { backends: 2, connections: 32 };
const META: PointMeta = { id: 'nginx-l7/backends=2', lb: { kind: 'nginx', name: 'nginx-l7', mode: 'l7' }, params: PARAMS };

function rep(index: number, rps = 1000 + index): Repetition {
  return {
    index,
    startedAt: `2025-01-01T00:00:0${index}.000Z`,
    metrics: {
      requestsPerSec: rps,
      transferBytesPerSec: rps * 200,
      requests: rps * 5,
      durationS: 5,
      latencyUs: { mean: 900, stdev: 100, max: 5000, p50: 800, p75: 950, p90: 1200, p99: 2500, 'p99.9': 4000 },
      latencyCdf: [[50, 800], [99, 2500], [100, 5000]],
      errors: { connect: 0, read: 1, write: 0, timeout: 0, status: 2 },
      perBackend: { be1: Math.round(rps * 2.5), be0: Math.round(rps * 2.5) },
    },
    raw: { tool: 'wrk', argv: ['wrk', '-c32', 'http://198.18.100.1/'], stdout: `Requests/sec: ${rps}\n`, stderr: 'warn: x\n' },
  };
}

test('create writes result.json with status running and a raw/ dir', async (t) => {
  const dir = join(await tempDir(t), 'run1');
  const w = await ResultWriter.create(dir, init());
  await access(join(dir, 'raw'));
  const r = await readResult(dir);
  assert.equal(r.status, 'running');
  assert.equal(r.formatVersion, FORMAT_VERSION);
  assert.deepEqual(r.points, []);
  assert.equal(r.runId, init().runId);
  assert.equal(w.file, join(dir, 'result.json'));
});

test('create refuses to overwrite an earlier run', async (t) => {
  const dir = await tempDir(t);
  await ResultWriter.create(dir, init());
  await assert.rejects(ResultWriter.create(dir, init()), ConfigError);
});

test('every repetition is on disk as soon as addRepetition resolves (crash loses nothing earlier)', async (t) => {
  const dir = await tempDir(t);
  const w = await ResultWriter.create(dir, init());
  for (let i = 0; i < 3; i++) {
    const stored = await w.addRepetition(META, rep(i));
    assert.equal(stored.raw.file, `raw/nginx-l7_backends_2-rep${i}.txt`);
    // A fresh reader sees the file as a crash would leave it.
    const r = await readResult(join(dir, 'result.json'));
    assert.equal(r.status, 'running');
    assert.equal(r.points.length, 1);
    assert.deepEqual(r.points[0]!.repetitions.map((x) => x.index), [...Array(i + 1).keys()]);
    const last = r.points[0]!.repetitions[i]!;
    assert.equal(last.raw.stdout, `Requests/sec: ${1000 + i}\n`, 'raw output kept in result.json too');
    const rawText = await readFile(join(dir, last.raw.file!), 'utf8');
    assert.match(rawText, /# argv: wrk -c32 http:\/\/198\.18\.100\.1\//);
    assert.match(rawText, new RegExp(`--- stdout ---\\nRequests/sec: ${1000 + i}\\n`));
    assert.match(rawText, /--- stderr ---\nwarn: x/);
  }
  const leftovers = (await readdir(dir)).filter((f) => f.includes('.tmp'));
  assert.deepEqual(leftovers, [], 'temp files are renamed away');
});

test('writer → reader round trip with describe, error, environment and finish', async (t) => {
  const dir = await tempDir(t);
  const w = await ResultWriter.create(dir, init(), { now: () => new Date('2025-01-01T01:00:00.000Z') });
  await w.setEnvironment({ cpus: { generator: '1', servers: '0' } });
  await w.startPoint(META);
  await w.setPointDescribe(META, { version: 'nginx/1.22.1', config: 'upstream b { server 1; }' });
  await w.addRepetition(META, rep(0));
  await w.addRepetition(META, rep(1));
  const failed: PointMeta = { id: 'haproxy/backends=2', lb: { kind: 'haproxy', name: 'haproxy' }, params: { backends: 2 } };
  await w.startPoint(failed);
  await w.setPointError(failed, new ConfigError('haproxy did not start', [], 'lower maxconn'));
  await w.finish('complete');

  const r = await readResult(dir);
  assert.deepEqual(r, w.snapshot());
  assert.equal(r.status, 'complete');
  assert.equal(r.finishedAt, '2025-01-01T01:00:00.000Z');
  assert.deepEqual(r.environment, { cpus: { generator: '1', servers: '0' } });
  assert.equal(r.points[0]!.lbDescribe?.version, 'nginx/1.22.1');
  assert.equal(r.points[0]!.repetitions.length, 2);
  assert.equal(r.points[1]!.repetitions.length, 0);
  assert.equal(r.points[1]!.error, 'haproxy did not start\nhint: lower maxconn');

  const csv = await readFile(join(dir, 'samples.csv'), 'utf8');
  assert.equal(csv, toCsv(r));
  const records = csv.split('\n').filter((l) => l.startsWith(`${r.runId},`));
  assert.equal(records.length, 2 + 1, 'two reps, one row for the failed point');

  await assert.rejects(w.finish('failed'), /already finished/);
  await assert.rejects(w.addRepetition(META, rep(2)), /already finished/);
});

test('an interrupted run keeps its points and its error', async (t) => {
  const dir = await tempDir(t);
  const w = await ResultWriter.create(dir, init());
  await w.addRepetition(META, rep(0));
  await w.finish('interrupted', new Error('interrupted by SIGINT'));
  const r = await readResult(dir);
  assert.equal(r.status, 'interrupted');
  assert.equal(r.error, 'interrupted by SIGINT');
  assert.equal(r.points[0]!.repetitions.length, 1);
});

test('overlapping calls leave a complete, consistent file', async (t) => {
  const dir = await tempDir(t);
  const w = await ResultWriter.create(dir, init());
  await Promise.all([0, 1, 2, 3].map((i) => w.addRepetition(META, rep(i))));
  const r = await readResult(dir);
  assert.deepEqual(r.points[0]!.repetitions.map((x) => x.index), [0, 1, 2, 3]);
});

test('a repetition index recorded twice is a bug, not an overwrite', async (t) => {
  const w = await ResultWriter.create(await tempDir(t), init());
  await w.addRepetition(META, rep(0));
  await assert.rejects(w.addRepetition(META, rep(0)), /recorded twice/);
});

test('point ids that sanitize alike get distinct raw files', async (t) => {
  const w = await ResultWriter.create(await tempDir(t), init());
  const a = await w.addRepetition({ ...META, id: 'a/b' }, rep(0));
  const b = await w.addRepetition({ ...META, id: 'a=b' }, rep(0));
  assert.notEqual(a.raw.file, b.raw.file);
  assert.equal(sanitizeId('nginx-l7/backends=4'), 'nginx-l7_backends_4');
  assert.equal(sanitizeId('../../etc'), 'etc');
});

test('the writer keeps its own copy of what it was given', async (t) => {
  const w = await ResultWriter.create(await tempDir(t), init());
  const r = rep(0);
  await w.addRepetition(META, r);
  (r.metrics as RequestMetrics).requestsPerSec = -1;
  assert.equal((w.snapshot().points[0]!.repetitions[0]!.metrics as RequestMetrics).requestsPerSec, 1000);
});

// ---------------------------------------------------------------- reader

async function writeJson(dir: string, obj: unknown): Promise<string> {
  const f = join(dir, 'result.json');
  await writeFile(f, typeof obj === 'string' ? obj : JSON.stringify(obj));
  return f;
}

test('reader refuses a newer format version and says to upgrade', async (t) => {
  const dir = await tempDir(t);
  const fixture = JSON.parse(await readFile(FIXTURE, 'utf8'));
  const f = await writeJson(dir, { ...fixture, formatVersion: FORMAT_VERSION + 1 });
  await assert.rejects(readResult(f), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, new RegExp(`version ${FORMAT_VERSION + 1} is newer`));
    assert.ok(e.message.includes(f), 'names the file');
    assert.match(e.hint ?? '', /upgrade lbbench/);
    return true;
  });
});

test('reader names the file for invalid JSON, a missing file and a missing formatVersion', async (t) => {
  const dir = await tempDir(t);
  const f = await writeJson(dir, '{"formatVersion": 1, "points": [');
  await assert.rejects(readResult(dir), (e: unknown) => e instanceof ConfigError && e.message.startsWith(`${f}: not valid JSON`));
  await assert.rejects(readResult(join(dir, 'nope')), (e: unknown) => e instanceof ConfigError && e.message.includes('nope'));
  const empty = join(dir, 'empty');
  await mkdir(empty);
  await assert.rejects(readResult(empty), (e: unknown) => e instanceof ConfigError && e.message.includes(join(empty, 'result.json')));
  await writeJson(dir, { points: [] });
  await assert.rejects(readResult(dir), /missing or invalid formatVersion/);
});

test('reader lists every shape problem at once', async (t) => {
  const dir = await tempDir(t);
  await writeJson(dir, { formatVersion: 1, runId: 'x', status: 'complete', host: {}, points: [{ id: 'a', lb: {}, params: {}, repetitions: 'no' }] });
  await assert.rejects(readResult(dir), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    // Missing host fields and scenario are problems too; these three are the ones in points[].
    assert.equal(e.problems.length, 16);
    assert.ok(e.problems.some((p) => p.endsWith('points[0].lb.name: Invalid input: expected string, received undefined')));
    assert.ok(e.problems.some((p) => p.endsWith('points[0].params.backends: Invalid input: expected number, received undefined')));
    assert.ok(e.problems.some((p) => p.endsWith('points[0].repetitions: Invalid input: expected array, received string')));
    return true;
  });
  await writeJson(dir, { formatVersion: 1, runId: 'x', status: 'complete', host: {} });
  await assert.rejects(readResult(dir), (e: unknown) => e instanceof ConfigError && e.problems.some((p) => p.endsWith('points: Invalid input: expected array, received undefined')));
});

test('upgrade hook chains steps up to the current version and refuses gaps', () => {
  const steps = {
    1: (r: Record<string, unknown>) => ({ ...r, formatVersion: 2, renamed: r.old }),
    2: (r: Record<string, unknown>) => ({ ...r, formatVersion: 3, added: true }),
  };
  assert.deepEqual(upgradeResult({ formatVersion: 1, old: 'v' }, 'f', steps, 3), { formatVersion: 3, old: 'v', renamed: 'v', added: true });
  assert.throws(() => upgradeResult({ formatVersion: 1 }, 'f.json', {}, 2), (e: unknown) => e instanceof ConfigError && e.message.startsWith('f.json:'));
  assert.deepEqual(upgradeResult({ formatVersion: FORMAT_VERSION }, 'f'), { formatVersion: FORMAT_VERSION }, 'current version passes through');
});

test('the synthetic fixture reads cleanly', async () => {
  const r = await readResult(FIXTURE);
  assert.equal(r.points.length, 9);
});

// ---------------------------------------------------------------- csv

test('CSV header is stable (append-only contract)', async () => {
  const r = await readResult(FIXTURE);
  const header = toCsv(r).split('\n')[0];
  assert.equal(
    header,
    'run_id,point_id,lb,lb_kind,backends,params,repetition,started_at,requests_per_sec,transfer_bytes_per_sec,' +
      'requests,duration_s,latency_p50_us,latency_p75_us,latency_p90_us,latency_p99_us,latency_p99_9_us,' +
      'latency_max_us,latency_mean_us,latency_stdev_us,errors_connect,errors_read,errors_write,errors_timeout,' +
      'errors_status,per_backend,point_error,' +
      // Appended for packet, stream and connection generators.
      'packets_sent,packets_received,packets_received_per_sec,packet_loss_fraction,bits_per_sec,stream_retransmits,' +
      'connections_total,connections_lost,connections_failed,fairness',
  );
  assert.equal(header, CSV_COLUMNS.join(','));
});

test('CSV has one row per repetition with the right values', async () => {
  const r = await readResult(FIXTURE);
  const lines = toCsv(r).trim().split('\n');
  assert.equal(lines.length, 1 + 27);
  const p = r.points[4]!; // nginx-l7/backends=2
  const rep1 = p.repetitions[1]!;
  const row = lines[1 + 4 * 3 + 1]!.split(',');
  const col = (name: (typeof CSV_COLUMNS)[number]) => row[CSV_COLUMNS.indexOf(name)];
  assert.equal(row.length, CSV_COLUMNS.length);
  assert.equal(col('run_id'), r.runId);
  assert.equal(col('point_id'), 'nginx-l7/backends=2');
  assert.equal(col('lb'), 'nginx-l7');
  assert.equal(col('lb_kind'), 'nginx');
  assert.equal(col('backends'), '2');
  assert.equal(col('params'), 'connections=32;threads=1');
  assert.equal(col('repetition'), '1');
  assert.equal(col('requests_per_sec'), String((rep1.metrics as RequestMetrics).requestsPerSec));
  assert.equal(col('latency_p99_9_us'), String((rep1.metrics as RequestMetrics).latencyUs['p99.9']));
  assert.equal(col('latency_p99_us'), String((rep1.metrics as RequestMetrics).latencyUs.p99));
  assert.equal(col('errors_read'), '0');
  assert.equal(col('per_backend'), `be0=${rep1.metrics.perBackend.be0};be1=${rep1.metrics.perBackend.be1}`);
  assert.equal(col('point_error'), '');
});

test('CSV sorts backends naturally, quotes errors, and keeps failed points', () => {
  const r: RunResult = { formatVersion: 1, status: 'failed', points: [], ...init() };
  const p = rep(0);
  p.metrics.perBackend = { be10: 1, be2: 2, be1: 3 };
  r.points.push({ ...META, repetitions: [p] }, { ...META, id: 'x', error: 'boom, "bad"\nline2', repetitions: [] });
  const csv = toCsv(r);
  assert.match(csv, /be1=3;be2=2;be10=1/);
  assert.ok(csv.includes('"boom, ""bad""\nline2"'), 'RFC 4180 quoting');
});

// ---------------------------------------------------------------- fingerprint

class FakeHost implements Host {
  readonly name = 'fake';
  calls: string[][] = [];
  constructor(
    private files: Record<string, string>,
    private cmds: Record<string, ExecResult | 'enoent'>,
  ) {}
  async exec(argv: string[], opts?: ExecOptions): Promise<ExecResult> {
    this.calls.push(argv);
    assert.equal(opts?.check, false, 'fingerprint never lets a probe throw');
    const r = this.cmds[argv.join(' ')];
    if (r === 'enoent' || r === undefined) return { stdout: '', stderr: '', code: -1 };
    return r;
  }
  spawn(): never {
    throw new Error('unused');
  }
  async writeFile(): Promise<void> {}
  async readFile(path: string): Promise<string> {
    const v = this.files[path];
    if (v === undefined) throw Object.assign(new Error(`ENOENT ${path}`), { code: 'ENOENT' });
    return v;
  }
}

const CPUINFO = `processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n`;

test('hostFingerprint reads /proc, tool versions, git and sysctls through the Host', async () => {
  const host = new FakeHost(
    {
      '/proc/sys/kernel/hostname': 'bench-01\n',
      '/proc/cpuinfo': CPUINFO,
      '/proc/meminfo': 'MemTotal:        4028580 kB\nMemFree: 1 kB\n',
      '/proc/sys/net/core/somaxconn': '4096\n',
      '/proc/sys/net/ipv4/ip_local_port_range': '32768\t60999\n',
      '/proc/sys/net/ipv4/tcp_tw_reuse': '2\n',
    },
    {
      'uname -r': { stdout: '6.18.0\n', stderr: '', code: 0 },
      'wrk -v': { stdout: '\nwrk 4.1.0 [epoll] Copyright (C) 2012 Will Glozer\nUsage: wrk\n', stderr: '', code: 1 },
      'nginx -v': { stdout: '', stderr: 'nginx version: nginx/1.22.1\n', code: 0 },
      'haproxy -v': 'enoent',
      'nft --version': { stdout: '', stderr: 'sh: 1: exec: nft: not found\n', code: 127 },
      'git -C /repo rev-parse HEAD': { stdout: 'abc123\n', stderr: '', code: 0 },
      'git -C /repo status --porcelain': { stdout: ' M harness/x.ts\n', stderr: '', code: 0 },
    },
  );
  const fp = await hostFingerprint(host, {
    tools: { wrk: ['wrk', '-v'], nginx: ['nginx', '-v'], haproxy: ['haproxy', '-v'], nft: ['nft', '--version'] },
    repoRoot: '/repo',
    lbbenchVersion: '9.9.9',
  });
  assert.deepEqual(fp, {
    hostname: 'bench-01',
    kernel: '6.18.0',
    cpuModel: 'AMD EPYC 7B13 64-Core Processor',
    cpus: 2,
    memoryBytes: 4028580 * 1024,
    node: process.version,
    tools: {
      wrk: 'wrk 4.1.0 [epoll] Copyright (C) 2012 Will Glozer',
      nginx: 'nginx version: nginx/1.22.1',
      haproxy: 'unavailable (exit -1)',
      // Over SSH a missing tool is the remote shell's exit 127, not a version line.
      nft: 'not installed',
    },
    git: { rev: 'abc123', dirty: true },
    sysctls: {
      'net.core.somaxconn': '4096',
      'net.ipv4.ip_local_port_range': '32768 60999',
      'net.ipv4.tcp_tw_reuse': '2',
    },
    lbbenchVersion: '9.9.9',
  });
});

test('hostFingerprint records git as null outside a checkout and survives unreadable /proc', async () => {
  const host = new FakeHost({}, { 'git -C /x rev-parse HEAD': { stdout: '', stderr: 'fatal: not a git repository', code: 128 } });
  const fp = await hostFingerprint(host, { tools: {}, repoRoot: '/x' });
  assert.equal(fp.git, null);
  assert.equal(fp.kernel, 'unknown');
  assert.equal(fp.cpuModel, 'unknown');
  assert.deepEqual(fp.sysctls, {});
  assert.match(fp.lbbenchVersion, /^\d+\.\d+\.\d+/, 'read from package.json');
});

test('cpuinfo and meminfo parsers', () => {
  assert.deepEqual(parseCpuinfo(CPUINFO), { model: 'AMD EPYC 7B13 64-Core Processor', cpus: 2 });
  assert.deepEqual(parseCpuinfo('processor : 0\nHardware : BCM2835\n'), { model: 'BCM2835', cpus: 1 });
  assert.equal(parseMemTotal('MemTotal: 10 kB\n'), 10240);
  assert.equal(parseMemTotal(''), 0);
});

test('hostFingerprint on this machine (LocalHost)', async () => {
  const fp = await hostFingerprint(new LocalHost(), { tools: { node: ['node', '--version'] } });
  assert.ok(fp.kernel.length > 0 && fp.kernel !== 'unknown');
  assert.ok(fp.cpus > 0);
  assert.ok(fp.memoryBytes > 0);
  assert.equal(fp.tools.node, process.version);
  assert.ok('net.core.somaxconn' in fp.sysctls);
});

test('the published JSON schemas (schemas/*.schema.json) are the ones the code generates', async () => {
  const { resultJsonSchema } = await import('../../harness/results/schema.ts');
  const { scenarioJsonSchema } = await import('../../harness/scenario/jsonschema.ts');
  const { readFileSync } = await import('node:fs');
  const read = (f: string) => JSON.parse(readFileSync(new URL(`../../schemas/${f}`, import.meta.url), 'utf8'));
  assert.deepEqual(read('result.schema.json'), resultJsonSchema(), 'regenerate: lbbench schema --result > schemas/result.schema.json');
  assert.deepEqual(read('scenario.schema.json'), scenarioJsonSchema(), 'regenerate: lbbench schema > schemas/scenario.schema.json');
  assert.equal(resultJsonSchema().title, 'lbbench result (result.json)');
});
