// The result contract other tools rely on (compare-reports, publish, users' scripts).
// Names may grow; the ones documented in the README stay. Bump FORMAT_VERSION on any breaking
// change and teach reader.ts to upgrade the older shape.
import type { Bottleneck } from '../sampler/bottleneck.ts';
import type { Sample } from '../sampler/series.ts';

export const FORMAT_VERSION = 1;

export interface LatencyUs {
  mean: number;
  stdev: number;
  max: number;
  p50: number;
  p75: number;
  p90: number;
  p99: number;
  'p99.9': number;
  [p: string]: number;
}

export interface WrkErrors {
  connect: number;
  read: number;
  write: number;
  timeout: number;
  /** Non-2xx/3xx responses. */
  status: number;
}

/**
 * What one repetition measured. Request generators (wrk, connect, traffic) fill the request
 * fields; packet generators (trafgen) `packets`; stream generators (iperf3) `stream`. Which is
 * there is stable per generator (`raw.tool`).
 */
export type Metrics = RequestMetrics | PacketMetrics | StreamMetrics | ConnectionMetrics;

export interface RequestMetrics {
  requestsPerSec: number;
  transferBytesPerSec: number;
  requests: number;
  durationS: number;
  latencyUs: LatencyUs;
  /** [percentile (0–100), latency µs] pairs, ascending: the latency CDF. */
  latencyCdf: [number, number][];
  errors: WrkErrors;
  /** Requests served per backend, from the backends' own counters (nginx stub_status). */
  perBackend: Record<string, number>;
}

/** Small packets sent at the VIP and counted where they arrived (trafgen). */
export interface PacketMetrics {
  durationS: number;
  packets: {
    sent: number;
    /** Counted at the backends (a DROP rule's counter in each backend's raw table). */
    received: number;
    sentPerSec: number;
    receivedPerSec: number;
    /** 1 − received/sent: what the LB (or the path) dropped. */
    lossFraction: number;
    /** Size on the wire of each packet (without Ethernet FCS). */
    frameBytes: number;
    /** received × frame bits / duration. */
    receivedBitsPerSec: number;
  };
  /** Packets that arrived per backend. */
  perBackend: Record<string, number>;
}

/** Bulk TCP or UDP streams (iperf3), one per backend. */
export interface StreamMetrics {
  durationS: number;
  stream: {
    protocol: 'tcp' | 'udp';
    /** What arrived, summed over the backends' streams. */
    bitsPerSec: number;
    senderBitsPerSec: number;
    retransmits?: number;
    udp?: { packets: number; lostPackets: number; lossFraction: number; jitterMs: number; packetsPerSec: number };
    /** How iperf3's control and data connections were kept on one backend. */
    placement: string;
  };
  /** Bytes received per backend. */
  perBackend: Record<string, number>;
}

/** Connection testers that report no per-request latency (mconnect, ctraffic binaries). */
export interface ConnectionMetrics {
  durationS: number;
  /** Connections established per second (new ones, reconnects included). */
  connectionsPerSec: number;
  connections: { total: number; lost: number; failedConnects: number; failedReads?: number; lasted?: number };
  /** Connections per backend, by the hostname the backend's server reported. */
  connectionsPerBackend: Record<string, number>;
  /** Jain's index over the point's backends. */
  fairness: number;
  /** The same connections per backend (what the tester saw; nginx counters are not involved). */
  perBackend: Record<string, number>;
  tool: string;
}

export function isRequestMetrics(m: Metrics): m is RequestMetrics {
  return 'requestsPerSec' in m;
}

export interface Repetition {
  index: number;
  startedAt: string;
  /** How long the harness waited for the host to go idle before this repetition, and the idle share of all CPUs it then measured (0–1). */
  idle?: { waitedS: number; idleFraction: number };
  metrics: Metrics;
  raw: { tool: string; argv: string[]; stdout: string; stderr: string; file?: string };
  /** What the datapath's own counters (XDP maps, the NFQUEUE program, …) counted during this repetition. */
  datapath?: Record<string, number>;
  /** The scenario's events as they happened in this repetition, with their connection loss. */
  events?: EventResult[];
  /** What the samplers saw during the measurement, per node ("client", "lb", backend names), one entry per interval. */
  samples?: Record<string, Sample[]>;
  /** What limited this repetition, with the numbers behind the verdict. */
  bottleneck?: Bottleneck;
  /** The background flood during this repetition (load.flood): what trafgen sent; the metrics are then the probe's. */
  flood?: { packet: 'syn' | 'udp'; targetPps: number; sent: number; sentPerSec: number; seconds: number };
}

/**
 * One event of a repetition. Losses are fractions of the connections alive when the event began,
 * counting those lost before the next event (or the end of the measurement).
 */
export interface EventResult {
  /** Seconds since the generator started measuring, when applying began. */
  at: number;
  /** The scenario's `at`. */
  scheduledAt: number;
  action: string;
  /** Backend names acted on (empty for restart-lb). */
  target: string[];
  weights?: Record<string, number>;
  /** fail-lb-node: how the node was failed. */
  how?: 'link-down' | 'kill';
  /** How long applying the change took (ms). */
  tookMs: number;
  /** Backends (for ECMP: LB nodes) in the LB once the event was applied. */
  inLb?: number;
  /** The datapath's own update delay for this change, where it measures one (ECMP: change issued → the router's table shows the new set), ms. */
  updateMs?: number;
  alive: number;
  lost: number;
  observedLoss: number;
  /** The share of alive connections on the targets for removals and kills (what a consistent LB without state breaks), else 0. */
  idealLoss: number;
  /** Alive and lost connections by the backend they were on. */
  perBackend: Record<string, { alive: number; lost: number }>;
  /** Lost connections by reason (reset, closed, timeout, …). */
  lostBy: Record<string, number>;
  /**
   * What the clients saw (traffic tester): the span without a single answer that the event caused,
   * from the last answer before it to the first after (ms, relative to the event); ms 0: answers
   * never stopped for longer than overMs. firstAnswerMs null: none came before the next event or the end.
   */
  interruption?: { ms: number; overMs: number; lastAnswerMs?: number; firstAnswerMs?: number | null };
  /** ms after the event of the last connection lost or failed to open before the next event: how long failures went on. */
  lastFailureMs?: number;
  /** Set when applying failed; the measurement went on. */
  error?: string;
}

export interface PointResult {
  /** Stable id within the run, e.g. "nginx-l7/backends=4". */
  id: string;
  lb: { kind: string; name: string; [opt: string]: unknown };
  params: { backends: number; [p: string]: unknown };
  /** The LB's own version and a dump of its rules/config, taken after apply(). */
  lbDescribe?: { version: string; config: string };
  /** Durations the datapath measured itself over the point, in ms (ECMP: route update delays). */
  datapathTimings?: Record<string, number[]>;
  /**
   * CPU-seconds the LB node spent per million requests (packets, connections) — median over
   * repetitions. Measured only where the LB's cost is its own: its processes (user-space LBs), or
   * the whole node when it has CPUs of its own (not on the one-host netns topology).
   */
  cpuPerMillion?: number;
  /** The tuning profile applied to the LB node for this point: every setting with its value before and after. */
  tuning?: { name: string; changes: { what: string; before: string; after: string }[] };
  /** How the LB node reached the backends for this point, as built (netns and qemu one-guest topologies). */
  network?: { overlay: 'none' | 'vxlan'; mtu: number; underlayMtu: number; overheadBytes: number; encapsulation: string };
  repetitions: Repetition[];
  /** Set when the point failed; the run goes on with the next point. */
  error?: string;
  /** The LB cannot run on this host and the scenario said `unavailable: skip` (error says why). */
  skipped?: boolean;
}

export interface HostFingerprint {
  hostname: string;
  kernel: string;
  cpuModel: string;
  cpus: number;
  memoryBytes: number;
  node: string;
  tools: Record<string, string>;
  git: { rev: string; dirty: boolean } | null;
  sysctls: Record<string, string>;
  lbbenchVersion: string;
}

export type RunStatus = 'running' | 'complete' | 'interrupted' | 'failed';

export interface RunResult {
  formatVersion: number;
  runId: string;
  status: RunStatus;
  startedAt: string;
  finishedAt?: string;
  scenarioFile?: string;
  /** The fully resolved scenario (defaults filled in) this run executed. */
  scenario: Record<string, unknown>;
  host: HostFingerprint;
  /** CPU pinning and other run-wide settings actually applied. */
  environment?: Record<string, unknown>;
  points: PointResult[];
  error?: string;
}
