import type { Host } from '../host/types.ts';
import type { Teardown } from '../teardown.ts';
import type { BackendNode, Topology } from '../topology/types.ts';
import type { LbSpec } from '../scenario/schema.ts';

export interface LbContext<S extends LbSpec = LbSpec> {
  topo: Topology;
  /** The scenario's entry for this LB, defaults filled in. */
  spec: S;
  /** The backends this point uses (a prefix of topo.backends). */
  backends: BackendNode[];
  /** Port clients connect to on the VIP. */
  port: number;
  /** Everything apply() creates is registered here at once, so a crash mid-apply still unwinds. */
  teardown: Teardown;
  /** Per-deployment scratch directory for config files. */
  workDir: string;
  log: (msg: string) => void;
  /** CPUs for user-space LB processes (taskset list), when the run pins CPUs. */
  cpus?: string;
  /** Transport protocols to balance on the port (default tcp only); UDP only for drivers whose udp() says so. */
  protocols?: Protocol[];
}

export type Protocol = 'tcp' | 'udp';

export interface Deployed {
  /** Where the load generator connects. */
  endpoint: { ip: string; port: number };
  /** Change the backend set while running (scale events). Must not drop the LB itself. */
  setBackends(backends: BackendNode[]): Promise<void>;
  /** Change backend weights while running (LBs with weighted schedulers). Names not given keep theirs. */
  setWeights?(weights: Record<string, number>): Promise<void>;
  /** The LB's version and a dump of its rules/config, stored with every point. */
  describe(): Promise<{ version: string; config: string }>;
  /**
   * The datapath's own cumulative counters (per-backend packets, drops, bypassed packets, …) as
   * flat `name → count`. The runner stores each repetition's difference in `repetition.datapath`.
   */
  counters?(): Promise<Record<string, number>>;
  /** Durations the datapath measured itself, by name in ms (ECMP: route update delays). Stored with the point. */
  timings?(): Record<string, number[]>;
  /**
   * Fail an LB node unannounced (event fail-lb-node): its client link down, or its LB daemon
   * SIGKILLed. Returns which node it was and how to bring it back when the repetition ends.
   */
  failLbNode?(how: 'link-down' | 'kill'): Promise<{ target: string[]; restore(): Promise<void> }>;
  /** Remove everything apply() created. Idempotent. */
  teardown(): Promise<void>;
}

export interface LbDriver<S extends LbSpec = LbSpec> {
  readonly kind: S['kind'];
  /** One line for `lbbench schema`/docs. */
  readonly summary: string;
  /** Commands this driver needs on the LB node, with the Debian package that provides each. */
  readonly tools: { cmd: string; pkg: string }[];
  /**
   * Probe tools and kernel features; throw PreflightError with the fix. Runs before anything is
   * provisioned, on a host equivalent to the LB node (for netns topologies: the root host).
   */
  preflight(host: Host, spec: S): Promise<void>;
  /**
   * IPv6: true where the driver balances an IPv6 VIP; otherwise why not (the loader and the runner
   * refuse it for family 6 with this reason; absent: not done yet).
   */
  readonly ipv6?: true | string | ((spec: S) => true | string);
  /** Active/backup LBs: the topology must build a standby LB node beside lb0. */
  readonly needsStandbyLb?: boolean;
  /** Whether this LB (with these options) balances UDP on the port as well; absent: TCP only. */
  udp?(spec: S): boolean;
  apply(ctx: LbContext<S>): Promise<Deployed>;
}
