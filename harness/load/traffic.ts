// The built-in traffic tester (ctraffic-style): long-lived connections sending small messages at a
// fixed rate for the whole measurement. What it answers: how many connections does the LB keep
// alive while backends come and go, and how many does it break (the per-connection outcomes are
// what the runner's event accounting works from).
import { posix } from 'node:path';
import { ParseError } from '../errors.ts';
import type { Host } from '../host/types.ts';
import { sourcePoolFor } from '../topology/address-plan.ts';
import { connect, installTester, jainFairness, SATURATED_CPU_SHARE } from './connect.ts';
import type { RequestGeneratorMetrics, LoadDriver, LoadRunSpec } from './types.ts';

const TOOL = 'traffic';
const MARKER = 'LBBENCH_TRAFFIC ';
export const TRAFFIC_SCRIPT = 'traffic-tester.mjs';


/** One connection's life, in ms since the tester started. */
export interface ConnectionRecord {
  id: number;
  src: string | null;
  start: number;
  /** null: still open when the measurement ended. */
  end: number | null;
  /** The backend that answered last (L7 proxies may answer from several: `backends` counts them). */
  backend: string | null;
  backends: number;
  messages: number;
  outcome: 'lasted' | 'lost' | 'connect-failed';
  /** Why it was lost or failed: reset, closed, timeout, refused, connect-timeout, bad-reply, … */
  reason: string | null;
}

export interface TrafficSample {
  /** Second since the start (the sample covers [t, t+1)). */
  t: number;
  /** Connections open at the end of the second. */
  active: number;
  new: number;
  lost: number;
  failedConnects: number;
  /** Answered messages. */
  messages: number;
  /** Replies that were not a 200 naming a backend (an L7 proxy's 502, say): the connection lives on. */
  failedMessages: number;
  bytes: number;
}

export interface TrafficMetrics extends RequestGeneratorMetrics {
  connections: { total: number; lost: number; failedConnects: number; lasted: number; target: number };
  /** Lost connections by reason. */
  lostBy: Record<string, number>;
  /** Connections per backend (by the backend each one was on when it ended or the run ended). */
  connectionsPerBackend: Record<string, number>;
  /** Jain's index over connectionsPerBackend. */
  fairness: number;
  /** Messages answered per backend, as the tester saw them. */
  testerPerBackend: Record<string, number>;
  samples: TrafficSample[];
  /** Spans [from, to] (ms; to null: until the end) in which no connection got an answer for longer than overMs. */
  answerGaps?: { overMs: number; spans: [number, number | null][] };
  failedMessages: number;
  tester: { cpuSeconds: number; cpuShare: number; saturated: boolean; sourceAddresses: number; startEpochMs: number; rate: number; intervalMs: number; timeoutMs: number };
}

/** What the runner needs beyond the stored metrics: every connection's life, to account events. */
export interface TrafficParse {
  metrics: TrafficMetrics;
  records: ConnectionRecord[];
}

const OUTCOMES = new Set(['lasted', 'lost', 'connect-failed']);

function fail(msg: string, excerpt: string): never {
  throw new ParseError(msg, TOOL, excerpt.slice(0, 300));
}

/** Pure. The tester's JSON line, checked for internal consistency: junk or a cut line is a ParseError. */
export function parseTrafficFull(stdout: string): TrafficParse {
  const line = stdout.split('\n').find((l) => l.startsWith(MARKER));
  if (!line) fail('no LBBENCH_TRAFFIC line in the output (did the tester run to the end?)', stdout.slice(-300));
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line.slice(MARKER.length)) as Record<string, unknown>;
  } catch {
    fail('the LBBENCH_TRAFFIC line is not complete JSON', line);
  }
  const num = (k: string) => {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(`field ${k} is not a non-negative number`, line);
    return v;
  };
  if (o.v !== 1) fail(`unknown tester output version ${String(o.v)}`, line);
  const seconds = num('seconds');
  const target = num('connections');
  const [rate, intervalMs, timeoutMs, sources, cpuSeconds, startEpochMs] = ['rate', 'intervalMs', 'timeoutMs', 'sources', 'cpuSeconds', 'startEpochMs'].map(num) as number[];
  if (!(seconds > 0)) fail('measured for 0 s', line);
  const lat = o.latencyUs as { count: number; mean: number | null; stdev: number | null; cdf: [number, number | null][] } | undefined;
  const samples = o.samples as TrafficSample[];
  const records = o.records as ConnectionRecord[];
  const perBackend = o.perBackend as Record<string, number>;
  if (!lat || !Array.isArray(lat.cdf) || !Array.isArray(samples) || !Array.isArray(records) || typeof perBackend !== 'object' || !perBackend) {
    fail('latencyUs, samples, records or perBackend missing', line);
  }
  for (const r of records) {
    if (!OUTCOMES.has(r.outcome) || !Number.isFinite(r.start) || (r.end !== null && !(r.end >= r.start)) || (r.outcome === 'lasted') !== (r.end === null)) {
      fail(`connection record ${JSON.stringify(r)} is inconsistent`, line);
    }
  }
  // Older testers did not report gaps; a present but malformed list is junk like any other.
  let answerGaps: TrafficMetrics['answerGaps'];
  if (o.gaps !== undefined) {
    const spans = o.gaps as [number, number | null][];
    const ok = Array.isArray(spans) && typeof o.gapMs === 'number' && spans.every((g, i) => Array.isArray(g) && g.length === 2 && Number.isFinite(g[0]) && (g[1] === null ? i === spans.length - 1 : Number.isFinite(g[1]) && g[1] >= g[0]));
    if (!ok) fail('gaps are not a list of [from, to] spans', line);
    answerGaps = { overMs: o.gapMs as number, spans };
  }
  const sum = (k: keyof TrafficSample) => samples.reduce((a, s) => a + s[k], 0);
  const established = records.filter((r) => r.outcome !== 'connect-failed');
  const lost = records.filter((r) => r.outcome === 'lost');
  const failedConnects = records.length - established.length;
  const messages = sum('messages');
  // The samples and the records are counted separately in the tester: if they disagree the line
  // was not produced by a run that ended normally.
  if (sum('new') !== established.length || sum('lost') !== lost.length || sum('failedConnects') !== failedConnects) {
    fail(`samples (${sum('new')} new, ${sum('lost')} lost, ${sum('failedConnects')} failed) disagree with the ${records.length} connection records`, line);
  }
  if (messages !== Object.values(perBackend).reduce((a, b) => a + b, 0) || messages !== lat.count || messages !== records.reduce((a, r) => a + r.messages, 0)) {
    fail(`message counts disagree (samples ${messages}, per backend, latencies ${lat.count})`, line);
  }
  const q = (p: number) => {
    const v = lat.cdf.find(([pp]) => pp === p)?.[1];
    return typeof v === 'number' ? v : NaN;
  };
  const lostBy: Record<string, number> = {};
  for (const r of lost) lostBy[r.reason ?? 'unknown'] = (lostBy[r.reason ?? 'unknown'] ?? 0) + 1;
  const connectionsPerBackend: Record<string, number> = {};
  for (const r of established) if (r.backend) connectionsPerBackend[r.backend] = (connectionsPerBackend[r.backend] ?? 0) + 1;
  const failedMessages = sum('failedMessages');
  const cpuShare = cpuSeconds / seconds;
  const metrics: TrafficMetrics = {
    requestsPerSec: messages / seconds,
    transferBytesPerSec: sum('bytes') / seconds,
    requests: messages,
    durationS: seconds,
    latencyUs: { mean: lat.mean ?? NaN, stdev: lat.stdev ?? NaN, max: q(100), p50: q(50), p75: q(75), p90: q(90), p99: q(99), 'p99.9': q(99.9) },
    latencyCdf: lat.count ? lat.cdf.map(([p, v]) => [p, v ?? NaN] as [number, number]) : [],
    errors: {
      connect: failedConnects,
      read: lost.filter((r) => r.reason !== 'timeout').length,
      write: 0,
      timeout: lost.filter((r) => r.reason === 'timeout').length,
      status: failedMessages,
    },
    connections: { total: established.length, lost: lost.length, failedConnects, lasted: established.length - lost.length, target },
    lostBy,
    connectionsPerBackend,
    fairness: jainFairness(Object.values(connectionsPerBackend)),
    testerPerBackend: { ...perBackend },
    samples,
    ...(answerGaps ? { answerGaps } : {}),
    failedMessages,
    tester: { cpuSeconds, cpuShare, saturated: cpuShare > SATURATED_CPU_SHARE, sourceAddresses: sources, startEpochMs, rate, intervalMs, timeoutMs },
  };
  return { metrics, records };
}

export const traffic: LoadDriver<TrafficMetrics> = {
  name: 'traffic',
  ipv6: true,
  tools: connect.tools,
  preflight: (host: Host) => connect.preflight(host),
  buildArgv(spec: LoadRunSpec) {
    const { load, target } = spec;
    const argv = [
      'node',
      posix.join(spec.workDir, TRAFFIC_SCRIPT),
      '--target',
      `${target.ip}:${target.port}`,
      '--duration',
      String(spec.durationS),
      '--connections',
      String(load.connections),
      '--rate',
      String(load.rate),
      '--timeout',
      String(load.timeout),
      '--path',
      target.path,
      ...(load.sourceAddresses > 0 ? ['--sources', `${sourcePoolFor(target.ip)}:${load.sourceAddresses}`] : []),
      ...(spec.startAtEpochMs ? ['--start-at', String(Math.round(spec.startAtEpochMs))] : []),
    ];
    return spec.cpus ? ['taskset', '-c', spec.cpus, ...argv] : argv;
  },
  async prepare(host: Host, spec: LoadRunSpec) {
    await installTester(host, spec.workDir, TRAFFIC_SCRIPT);
  },
  parse(stdout: string) {
    return parseTrafficFull(stdout).metrics;
  },
  timeline(stdout: string) {
    const { metrics, records } = parseTrafficFull(stdout);
    return { startEpochMs: metrics.tester.startEpochMs, endMs: metrics.durationS * 1000, records, ...(metrics.answerGaps ? { answerGaps: metrics.answerGaps } : {}) };
  },
};
