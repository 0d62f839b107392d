import type { Host } from '../host/types.ts';
import type { LoadSpec } from '../scenario/schema.ts';
import type { Metrics } from '../results/types.ts';
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
}

/** Metrics a generator measures itself; perBackend comes from the backends' counters. */
export type GeneratorMetrics = Omit<Metrics, 'perBackend'>;

export interface LoadOutput {
  argv: string[];
  stdout: string;
  stderr: string;
  code: number;
}

export interface LoadDriver {
  readonly name: LoadSpec['generator'];
  readonly tools: { cmd: string; pkg: string }[];
  preflight(host: Host): Promise<void>;
  /** Pure: the exact argv for this run. Helper files it names are written by prepare(). */
  buildArgv(spec: LoadRunSpec): string[];
  /** Write helper files (scripts) the argv refers to. */
  prepare(host: Host, spec: LoadRunSpec): Promise<void>;
  /** Pure: throws ParseError on anything it cannot read completely. Never returns zeros for junk. */
  parse(stdout: string, stderr: string): GeneratorMetrics;
  /**
   * Pure, for generators that follow every connection (what events are accounted from): each
   * connection's life in ms since `startEpochMs` (the generator host's clock), and where the
   * measurement ended on that timeline.
   */
  timeline?(stdout: string): { startEpochMs: number; endMs: number; records: ConnectionRecord[] };
}
