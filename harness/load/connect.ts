// The built-in connection tester (mconnect-style): one HTTP request per connection, the backend
// that answered counted by the tester itself. Its numbers answer "how are connections spread, and
// how many fail" — the question throughput hides. The tester script is copied to the client's
// work dir and run with the client's node.
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { ParseError, PreflightError } from '../errors.ts';
import type { Host } from '../host/types.ts';
import { sourcePoolFor } from '../topology/address-plan.ts';
import { quantile } from '../stats/descriptive.ts';
import type { RequestGeneratorMetrics, LoadDriver, LoadRunSpec } from './types.ts';

const TOOL = 'connect';
const MARKER = 'LBBENCH_CONNECT ';
export const CONNECT_SCRIPT = 'connect-tester.mjs';
/** Above this share of one CPU the tester, not the LB, may be what limited the rate. */
export const SATURATED_CPU_SHARE = 0.9;

const scripts = new Map<string, string>();
const scriptText = (name: string) => scripts.get(name) ?? scripts.set(name, readFileSync(new URL(`./${name}`, import.meta.url), 'utf8')).get(name)!;

/** Copies a built-in tester and the module it imports to the generator host's work dir. */
export async function installTester(host: Host, workDir: string, name: string): Promise<void> {
  for (const f of [name, 'tester-common.mjs']) await host.writeFile(posix.join(workDir, f), scriptText(f));
}

interface TesterOutput {
  v: number;
  seconds: number;
  total: number;
  failedConnects: number;
  failedReads: number;
  timeouts: number;
  bytes: number;
  perBackend: Record<string, number>;
  sources: number;
  cpuSeconds: number;
  latenciesUs: number[];
}

/** Jain's fairness index over the counts: 1 when even, 1/n when one backend gets everything. */
export function jainFairness(counts: number[]): number {
  const sum = counts.reduce((a, b) => a + b, 0);
  const squares = counts.reduce((a, b) => a + b * b, 0);
  return squares === 0 ? 0 : (sum * sum) / (counts.length * squares);
}

const CDF_POINTS = [0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9, 100];

/** Connect metrics: the wrk-shaped core plus what only a per-connection tester can tell. */
export interface ConnectMetrics extends RequestGeneratorMetrics {
  /** lost: connected but no answer (the same as failedReads: one request per connection). */
  connections: { total: number; lost: number; failedConnects: number; failedReads: number; timeouts: number };
  /** Jain's index over the tester's own per-backend counts. */
  fairness: number;
  testerPerBackend: Record<string, number>;
  tester: { cpuSeconds: number; cpuShare: number; saturated: boolean; sourceAddresses: number };
}

/** Pure. The tester's JSON line, checked field by field: junk or a cut line is a ParseError. */
export function parseConnect(stdout: string): ConnectMetrics {
  const line = stdout.split('\n').find((l) => l.startsWith(MARKER));
  if (!line) throw new ParseError('no LBBENCH_CONNECT line in the output (did the tester run to the end?)', TOOL, stdout.slice(-300));
  let o: TesterOutput;
  try {
    o = JSON.parse(line.slice(MARKER.length)) as TesterOutput;
  } catch {
    throw new ParseError('the LBBENCH_CONNECT line is not complete JSON', TOOL, line.slice(0, 300));
  }
  const counts = ['total', 'failedConnects', 'failedReads', 'timeouts', 'bytes', 'sources'] as const;
  const bad = counts.filter((k) => !Number.isSafeInteger(o[k]) || o[k] < 0);
  if (o.v !== 1 || bad.length || !(o.seconds > 0) || !(o.cpuSeconds >= 0) || !Array.isArray(o.latenciesUs) || typeof o.perBackend !== 'object' || !o.perBackend) {
    throw new ParseError(`unexpected tester output (version ${o.v}${bad.length ? `; bad ${bad.join(', ')}` : ''})`, TOOL, line.slice(0, 300));
  }
  const ok = Object.values(o.perBackend).reduce((a, b) => a + b, 0);
  if (ok !== o.latenciesUs.length || ok + o.failedConnects + o.failedReads !== o.total) {
    throw new ParseError(`counts do not add up: ${ok} answered + ${o.failedConnects} failed connects + ${o.failedReads} failed reads ≠ ${o.total}`, TOOL, line.slice(0, 300));
  }
  const lat = o.latenciesUs;
  const q = (p: number) => (lat.length ? quantile(lat, p / 100) : NaN);
  const mean = lat.length ? lat.reduce((a, b) => a + b, 0) / lat.length : NaN;
  const stdev = lat.length ? Math.sqrt(lat.reduce((a, b) => a + (b - mean) ** 2, 0) / lat.length) : NaN;
  const cpuShare = o.cpuSeconds / o.seconds;
  return {
    requestsPerSec: ok / o.seconds,
    transferBytesPerSec: o.bytes / o.seconds,
    requests: ok,
    durationS: o.seconds,
    latencyUs: { mean, stdev, max: q(100), p50: q(50), p75: q(75), p90: q(90), p99: q(99), 'p99.9': q(99.9) },
    latencyCdf: lat.length ? CDF_POINTS.map((p) => [p, q(p)] as [number, number]) : [],
    errors: { connect: o.failedConnects, read: o.failedReads - Math.min(o.failedReads, o.timeouts), write: 0, timeout: o.timeouts, status: 0 },
    connections: { total: o.total, lost: o.failedReads, failedConnects: o.failedConnects, failedReads: o.failedReads, timeouts: o.timeouts },
    fairness: jainFairness(Object.values(o.perBackend)),
    testerPerBackend: { ...o.perBackend },
    tester: { cpuSeconds: o.cpuSeconds, cpuShare, saturated: cpuShare > SATURATED_CPU_SHARE, sourceAddresses: o.sources },
  };
}

export const connect: LoadDriver<ConnectMetrics> = {
  name: 'connect',
  ipv6: true,
  tools: [{ cmd: 'node', pkg: 'nodejs' }],
  async preflight(host: Host) {
    const r = await host.exec(['node', '--version'], { check: false, timeoutMs: 10_000 });
    const major = Number(/^v(\d+)\./.exec(r.stdout.trim())?.[1]);
    if (r.code !== 0 || !(major >= 18)) {
      throw new PreflightError(
        `the connect tester needs node ≥ 18 on ${host.name} (${r.code === 0 ? r.stdout.trim() : 'not found'})`,
        'install Node.js on the client host, or use generator: wrk',
      );
    }
  },
  buildArgv(spec: LoadRunSpec) {
    const { load, target } = spec;
    const argv = [
      'node',
      posix.join(spec.workDir, CONNECT_SCRIPT),
      '--target',
      `${target.ip}:${target.port}`,
      '--duration',
      String(spec.durationS),
      '--concurrency',
      String(load.connections),
      '--timeout',
      String(load.timeout),
      '--path',
      target.path,
      ...(load.sourceAddresses > 0 ? ['--sources', `${sourcePoolFor(target.ip)}:${load.sourceAddresses}`] : []),
    ];
    return spec.cpus ? ['taskset', '-c', spec.cpus, ...argv] : argv;
  },
  async prepare(host: Host, spec: LoadRunSpec) {
    await installTester(host, spec.workDir, CONNECT_SCRIPT);
  },
  parse(stdout: string) {
    return parseConnect(stdout);
  },
};
