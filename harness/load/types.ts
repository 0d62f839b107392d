import type { Host } from '../host/types.ts';
import type { LoadSpec, TopologySpec } from '../scenario/schema.ts';
import type { Teardown } from '../teardown.ts';
import type { RunTopology } from '../topology/netns.ts';
import type { BackendNode } from '../topology/types.ts';
import type { Protocol } from '../lb/types.ts';
import type { Metrics, RequestMetrics } from '../results/types.ts';
import type { ConnectionRecord } from './traffic.ts';

export interface LoadTarget {
  ip: string;
  port: number;
  /** HTTP path requested. */
  path: string;
}

export interface LoadRunSpec {
  load: LoadSpec;
  target: LoadTarget;
  /** Seconds of measured load (warm-up is a separate, shorter run whose output is discarded). */
  durationS: number;
  /** Pin the generator to these CPUs (taskset list, e.g. "1"), when set. */
  cpus?: string;
  /** Directory where the driver may put helper files (e.g. wrk's Lua script). */
  workDir: string;
  /**
   * Start measuring at this moment of the generator host's clock (ms since the epoch), so events
   * scheduled on the harness's clock land where the scenario put them. Drivers with a timeline honour it.
   */
  startAtEpochMs?: number;
  /** Values the driver's attach() found (MAC addresses, server ports) for buildArgv and prepare. */
  extra?: Record<string, string | number>;
}

export interface AttachContext {
  topo: RunTopology;
  /** The point's backends. */
  backends: BackendNode[];
  endpoint: { ip: string; port: number };
  load: LoadSpec;
  /** Everything attach() sets up is undone here when the point ends. */
  teardown: Teardown;
  workDir: string;
}

/** A non-HTTP generator's receiving side for one point: what it sends is counted where it arrives. */
export interface Attached {
  extra: Record<string, string | number>;
  /** Cumulative arrivals per backend (replaces the backends' HTTP counters for this generator). */
  counters(): Promise<Record<string, number>>;
  /** The repetition's metrics from the generator's own numbers and what arrived per backend meanwhile. */
  metrics(gen: GeneratorMetrics, arrived: Record<string, number>): Metrics;
}

type OmitEach<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** Metrics a generator measures itself; perBackend comes from the backends' counters. */
export type GeneratorMetrics = OmitEach<Metrics, 'perBackend'>;
export type RequestGeneratorMetrics = Omit<RequestMetrics, 'perBackend'>;

export interface LoadOutput {
  argv: string[];
  stdout: string;
  stderr: string;
  code: number;
}

export interface LoadDriver<M extends GeneratorMetrics = GeneratorMetrics> {
  readonly name: LoadSpec['generator'];
  readonly tools: { cmd: string; pkg: string }[];
  /** Probe the generator host; the scenario's load settings are given for generators that have their own. */
  preflight(host: Host, load?: LoadSpec): Promise<void>;
  /** Seconds a run may take beyond duration + timeout (+15 s) before it is killed (tools with a slow start). */
  readonly extraBoundS?: number;
  /** Pure: the exact argv for this run. Helper files it names are written by prepare(). */
  buildArgv(spec: LoadRunSpec): string[];
  /** Write helper files (scripts) the argv refers to. */
  prepare(host: Host, spec: LoadRunSpec): Promise<void>;
  /** Pure: throws ParseError on anything it cannot read completely. Never returns zeros for junk. */
  parse(stdout: string, stderr: string): M;
  /**
   * Pure, for generators that follow every connection (what events are accounted from): each
   * connection's life in ms since `startEpochMs` (the generator host's clock), and where the
   * measurement ended on that timeline.
   */
  timeline?(stdout: string): { startEpochMs: number; endMs: number; records: ConnectionRecord[]; answerGaps?: { overMs: number; spans: [number, number | null][] } };
  /** Protocols the LB must balance on its port for this load (default tcp). */
  protocols?(load: LoadSpec): Protocol[];
  /** IPv6: true where it loads an IPv6 VIP; otherwise why not (absent: not done yet). */
  readonly ipv6?: true | string;
  /** Generators whose traffic is not HTTP set up its receiving side (sinks, servers) per point. */
  attach?(ctx: AttachContext): Promise<Attached>;
  /** Why this generator cannot run on a topology of this kind, or undefined when it can. */
  unsupported?(topology: TopologySpec, backends: number[]): string | undefined;
}
