// iperf3 (3.12, as packaged by Debian 12) for bulk TCP throughput and small-packet UDP through an
// LB. Only -J output is read: the text format changes between releases, the JSON field names have
// not. Field semantics below were checked against real runs (test/fixtures/iperf3, record.sh).
import { ConfigError, ParseError, PreflightError } from '../errors.ts';
import type { Host } from '../host/types.ts';
import type { StreamMetrics } from '../results/types.ts';
import { startBackendServers } from './backend-servers.ts';
import type { AttachContext, LoadDriver, LoadRunSpec } from './types.ts';

const TOOL = 'iperf3';

/**
 * iperf3 only bounds the control connection with this; without it a blackholed VIP leaves the
 * client in the kernel's SYN retries for about two minutes before it says anything.
 */
export const IPERF3_CONNECT_TIMEOUT_MS = 3000;

// Limits iperf3 3.12 enforces itself, but only after printing its usage text instead of JSON.
const MAX_STREAMS = 128;
const MAX_TCP_LENGTH = 1_048_576;
const MIN_UDP_LENGTH = 16;
const MAX_UDP_LENGTH = 65_507;

export interface Iperf3Options {
  server: string;
  port: number;
  /** Rounded up to whole seconds: iperf3 parses -t with atoi, so 1.5 would silently run 1 s. */
  timeS: number;
  protocol: 'tcp' | 'udp';
  /** -P, 1–128. */
  streams?: number;
  /** iperf3 -b value, per stream: "0" (unlimited), "200M", "1G/10" (bursts); required for UDP. */
  bitrate?: string;
  /** -l: TCP write size, or the UDP payload per datagram. */
  length?: number;
  /** -R: the server sends, the client receives. */
  reverse?: boolean;
  /**
   * --cport: fixed client source port, so the LB's hash input is reproducible. With -P, 3.12 gives
   * stream i the port cport + i.
   */
  cport?: number;
  /** -B: local address (and so the source address the LB sees). */
  bind?: string;
}

function bad(message: string): never {
  throw new ConfigError(`iperf3: ${message}`);
}

function intIn(v: number, lo: number, hi: number, what: string): string {
  if (!Number.isInteger(v) || v < lo || v > hi) bad(`${what} must be an integer in ${lo}–${hi}, got ${v}`);
  return String(v);
}

/**
 * Pure: the client argv. No --forceflush: in 3.12 -J output is built in memory and printed once at
 * the end (streamed JSON is --json-stream, 3.17+), so flushing per interval changes nothing.
 */
export function iperf3Argv(o: Iperf3Options): string[] {
  if (!o.server || o.server.startsWith('-')) bad(`bad server ${JSON.stringify(o.server)}`);
  // -t 0 means "run forever" to iperf3.
  if (!Number.isFinite(o.timeS) || o.timeS <= 0) bad(`duration must be a positive number of seconds, got ${o.timeS}`);
  // Round to the millisecond first so float noise like 2.0000000000000004 does not become 3 s.
  const seconds = Math.ceil(Math.round(o.timeS * 1000) / 1000);
  const argv = [
    'iperf3',
    '-c', o.server,
    '-p', intIn(o.port, 1, 65535, 'port'),
    '-J',
    '-t', String(seconds),
    '--connect-timeout', String(IPERF3_CONNECT_TIMEOUT_MS),
  ];
  if (o.protocol === 'udp') {
    // Without -b iperf3 sends UDP at 1 Mbit/s, which would pass for a result.
    if (o.bitrate === undefined) bad('UDP needs an explicit bitrate ("0" for unlimited)');
    argv.push('-u');
  }
  if (o.streams !== undefined) argv.push('-P', intIn(o.streams, 1, MAX_STREAMS, 'streams'));
  if (o.bitrate !== undefined) {
    // iperf3 ignores what it cannot parse after the number ("200X" is 200 bit/s), so check here.
    if (!/^\d+(\.\d+)?[KMGT]?(\/\d+)?$/i.test(o.bitrate)) {
      bad(`bitrate must look like 0, 500K, 200M or 1G/10, got ${JSON.stringify(o.bitrate)}`);
    }
    argv.push('-b', o.bitrate);
  }
  if (o.length !== undefined) {
    const [lo, hi] = o.protocol === 'udp' ? [MIN_UDP_LENGTH, MAX_UDP_LENGTH] : [1, MAX_TCP_LENGTH];
    argv.push('-l', intIn(o.length, lo, hi, `${o.protocol} length`));
  }
  if (o.reverse) argv.push('-R');
  if (o.cport !== undefined) argv.push('--cport', intIn(o.cport, 1, 65535, 'cport'));
  if (o.bind !== undefined) {
    if (!o.bind || o.bind.startsWith('-')) bad(`bad bind address ${JSON.stringify(o.bind)}`);
    argv.push('-B', o.bind);
  }
  return argv;
}

export interface Iperf3Interval {
  start: number;
  end: number;
  /** As seen by the client: the sender's rate normally, the receiver's with -R. */
  bitsPerSecond: number;
  /** UDP only. */
  packets?: number;
}

export interface Iperf3Udp {
  /**
   * iperf3's loss denominator; packets − lostPackets arrived. Equals sentPackets in the forward
   * direction; with -R it stops at the highest sequence number the client received.
   */
  packets: number;
  /** Sequence gaps at the receiver. */
  lostPackets: number;
  /** lostPackets / packets, 0–1. */
  lostFraction: number;
  jitterMs: number;
  /** Datagrams that arrived, per second of the receiver's clock. */
  packetsPerSecond: number;
  /** Datagrams sent. Above `packets` (-R only) by the tail that counted as neither arrived nor lost. */
  sentPackets: number;
}

export interface Iperf3Result {
  protocol: 'tcp' | 'udp';
  streams: number;
  /** -R was in effect: the server sent, and cpu.remoteTotal is the sender's. */
  reverse: boolean;
  /** The receiver's measured duration, which bitsPerSecond is over. */
  seconds: number;
  sentBytes: number;
  receivedBytes: number;
  /** What arrived at the receiver. */
  bitsPerSecond: number;
  senderBitsPerSecond: number;
  /** TCP, when the sending host reports them (Linux does). */
  retransmits?: number;
  udp?: Iperf3Udp;
  /** Percent of one CPU (user + system) for the iperf3 process on each side. */
  cpu: { hostTotal: number; remoteTotal: number };
  intervals: Iperf3Interval[];
}

type Json = unknown;
type Obj = Record<string, Json>;

function isObj(v: Json): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function excerptOf(text: string, max = 300): string {
  const t = text.trim();
  return t.length <= max ? t : `…${t.slice(-max)}`;
}

function errorHint(error: string): string | undefined {
  if (/unable to connect/i.test(error)) {
    return 'the iperf3 server (or the LB in front of it) is not reachable: check that `iperf3 -s` runs on the backend(s) and that the LB forwards this port';
  }
  if (/interrupt/i.test(error)) {
    return 'iperf3 was stopped before the receiver reported back, so its sums are partial; rerun without interrupting';
  }
  return undefined;
}

/**
 * Pure: iperf3 -J output of a client run. The exit status cannot be trusted (3.12 exits 0 after
 * "unable to connect" with -J), so everything is decided here: an "error" field, missing sums or a
 * run in which nothing arrived is a ParseError. An interrupted client still prints full-looking
 * sums next to its "error" — the sender's counts are real, the receiver's are zeros.
 */
export function parseIperf3(stdout: string): Iperf3Result {
  if (!stdout.trim()) {
    throw new ParseError(
      'no output (with -J iperf3 prints only at the end: killed before the run finished?)',
      TOOL,
    );
  }
  let doc: Json;
  try {
    doc = JSON.parse(stdout);
  } catch (e) {
    throw new ParseError(`truncated or invalid JSON (${(e as Error).message})`, TOOL, excerptOf(stdout));
  }
  if (!isObj(doc)) throw new ParseError('output is not a JSON object', TOOL, excerptOf(stdout));
  if (doc.error !== undefined) {
    const error = typeof doc.error === 'string' ? doc.error : JSON.stringify(doc.error);
    throw new ParseError(`error: ${error}`, TOOL, error, errorHint(error));
  }

  const fail = (what: string, part: Json = doc): never => {
    throw new ParseError(what, TOOL, excerptOf(JSON.stringify(part) ?? ''));
  };
  const obj = (o: Obj, key: string, where: string): Obj => {
    const v = o[key];
    return isObj(v) ? v : fail(`${where}${key} missing`, o);
  };
  const num = (o: Obj, key: string, where: string, integer = false): number => {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (integer && !Number.isInteger(v))) {
      return fail(`${where}${key} is ${JSON.stringify(v)}, expected a ${integer ? 'count' : 'number'} ≥ 0`, o);
    }
    return v;
  };

  const testStart = obj(obj(doc, 'start', ''), 'test_start', 'start.');
  const proto = testStart.protocol;
  if (proto !== 'TCP' && proto !== 'UDP') fail(`start.test_start.protocol is ${JSON.stringify(proto)}, expected TCP or UDP`, testStart);
  const protocol = proto === 'TCP' ? 'tcp' : 'udp';
  const streams = num(testStart, 'num_streams', 'start.test_start.', true);
  if (streams < 1) fail('start.test_start.num_streams is 0', testStart);
  const reverse = num(testStart, 'reverse', 'start.test_start.', true) === 1;

  const end = obj(doc, 'end', '');
  // sum_sent is always the sending side and sum_received the receiving side, whichever of client
  // and server that is (-R swaps them, not the keys).
  const sent = obj(end, 'sum_sent', 'end.');
  const received = obj(end, 'sum_received', 'end.');
  if (!Array.isArray(end.streams) || end.streams.length !== streams) {
    fail(`end.streams has ${Array.isArray(end.streams) ? end.streams.length : 'no'} entries for ${streams} streams`, end);
  }
  const sentBytes = num(sent, 'bytes', 'end.sum_sent.', true);
  const senderBitsPerSecond = num(sent, 'bits_per_second', 'end.sum_sent.');
  const receivedBytes = num(received, 'bytes', 'end.sum_received.', true);
  const bitsPerSecond = num(received, 'bits_per_second', 'end.sum_received.');
  const seconds = num(received, 'seconds', 'end.sum_received.');
  if (receivedBytes === 0 || seconds === 0) {
    throw new ParseError(
      `nothing arrived: ${receivedBytes} bytes received in ${seconds} s (${sentBytes} bytes sent)`,
      TOOL,
      excerptOf(JSON.stringify(received)),
      'data connections failed or were dropped between client and server (LB, firewall, or all datagrams lost)',
    );
  }

  const cpuObj = obj(end, 'cpu_utilization_percent', 'end.');
  const cpu = {
    hostTotal: num(cpuObj, 'host_total', 'end.cpu_utilization_percent.'),
    remoteTotal: num(cpuObj, 'remote_total', 'end.cpu_utilization_percent.'),
  };

  const result: Iperf3Result = {
    protocol,
    streams,
    reverse,
    seconds,
    sentBytes,
    receivedBytes,
    bitsPerSecond,
    senderBitsPerSecond,
    cpu,
    intervals: [],
  };

  if (protocol === 'tcp') {
    if (sent.retransmits !== undefined) result.retransmits = num(sent, 'retransmits', 'end.sum_sent.', true);
  } else {
    // Loss and jitter exist only at the receiver; the sender's copies of these fields are zeros.
    const w = 'end.sum_received.';
    const packets = num(received, 'packets', w, true);
    const lostPackets = num(received, 'lost_packets', w, true);
    if (packets === 0 || lostPackets > packets) fail(`${w}lost_packets ${lostPackets} of ${packets} packets`, received);
    result.udp = {
      packets,
      lostPackets,
      lostFraction: lostPackets / packets,
      jitterMs: num(received, 'jitter_ms', w),
      packetsPerSecond: (packets - lostPackets) / seconds,
      sentPackets: num(sent, 'packets', 'end.sum_sent.', true),
    };
  }

  const intervals = Array.isArray(doc.intervals) ? doc.intervals : fail('intervals missing');
  for (const [i, iv] of intervals.entries()) {
    const where = `intervals[${i}].sum.`;
    const sum = isObj(iv) ? obj(iv, 'sum', `intervals[${i}].`) : fail(`intervals[${i}] is not an object`, iv);
    // --omit'ed warm-up intervals are not part of the end sums either.
    if (sum.omitted === true) continue;
    const interval: Iperf3Interval = {
      start: num(sum, 'start', where),
      end: num(sum, 'end', where),
      bitsPerSecond: num(sum, 'bits_per_second', where),
    };
    if (interval.end < interval.start) fail(`${where}end ${interval.end} before start ${interval.start}`, sum);
    if (protocol === 'udp') interval.packets = num(sum, 'packets', where, true);
    result.intervals.push(interval);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// The generator

export type StreamGeneratorMetrics = Omit<StreamMetrics, 'perBackend'> & { iperf3: { receivedBytes: number; intervals: Iperf3Interval[]; cpu: Iperf3Result['cpu'] } };
/** Where the iperf3 server listens on the backend; the LB's port is redirected to it there. */
export const IPERF3_SERVER_PORT = 5201;
/**
 * How a test stays on one server: iperf3 opens a control connection and then its data connections,
 * and an LB balancing over several backends would put them on different servers (the test then
 * fails). lbbench measures iperf3 through the LB to the single backend of a point.
 */
export const IPERF3_PLACEMENT = 'single-backend: all of a test\'s connections go through the LB to be0, where the LB\'s port is redirected to iperf3';

export const iperf3: LoadDriver<StreamGeneratorMetrics> = {
  name: 'iperf3',
  ipv6: true,
  tools: [{ cmd: 'iperf3', pkg: 'iperf3' }],
  async preflight(host: Host) {
    const r = await host.exec(['iperf3', '--version'], { check: false, timeoutMs: 10_000 });
    if (r.code !== 0) throw new PreflightError(`iperf3 is not installed on ${host.name}`, 'lbbench setup (Debian package iperf3)');
  },
  unsupported(_topology, backends) {
    const many = backends.filter((n) => n > 1);
    return many.length
      ? `iperf3 needs a test's control and data connections on one server, and an LB spreading them over ${many[0]} backends splits them; measure iperf3 with sweep.backends: [1] (the LB's whole datapath to one backend)`
      : undefined;
  },
  protocols: (load) => (load.protocol === 'udp' ? ['tcp', 'udp'] : ['tcp']),
  buildArgv(spec: LoadRunSpec) {
    const { load } = spec;
    const udp = load.protocol === 'udp';
    const argv = iperf3Argv({
      server: spec.target.ip,
      port: spec.target.port,
      timeS: spec.durationS,
      protocol: load.protocol,
      streams: load.connections,
      ...(load.packetSize ? { length: load.packetSize } : {}),
      ...(udp ? { bitrate: load.bitrate } : {}),
    });
    return spec.cpus ? ['taskset', '-c', spec.cpus, ...argv] : argv;
  },
  async prepare() {},
  parse(stdout: string) {
    const r = parseIperf3(stdout);
    return {
      durationS: r.seconds,
      stream: {
        protocol: r.protocol,
        bitsPerSec: r.bitsPerSecond,
        senderBitsPerSec: r.senderBitsPerSecond,
        ...(r.retransmits !== undefined ? { retransmits: r.retransmits } : {}),
        ...(r.udp ? { udp: { packets: r.udp.packets, lostPackets: r.udp.lostPackets, lossFraction: r.udp.lostFraction, jitterMs: r.udp.jitterMs, packetsPerSec: r.udp.packetsPerSecond } } : {}),
        placement: IPERF3_PLACEMENT,
      },
      iperf3: { receivedBytes: r.receivedBytes, intervals: r.intervals, cpu: r.cpu },
    };
  },
  async attach(ctx: AttachContext) {
    const be = ctx.backends[0]!;
    await startBackendServers(ctx, [be], { label: 'iperf3', port: IPERF3_SERVER_PORT, protocols: iperf3.protocols!(ctx.load), argv: () => ['iperf3', '-s', '-p', String(IPERF3_SERVER_PORT)] });
    return {
      extra: {},
      // What arrived is in iperf3's own report (the server's side of it).
      counters: async () => ({}),
      metrics(gen) {
        const g = gen as StreamGeneratorMetrics;
        return { durationS: g.durationS, stream: g.stream, perBackend: { [be.name]: g.iperf3.receivedBytes } };
      },
    };
  },
};
