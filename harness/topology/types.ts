import type { Host } from '../host/types.ts';
import type { Teardown } from '../teardown.ts';

/** A machine in the topology (a namespace here; a VM or SSH host later). */
export interface Node {
  /** Role-qualified short name: "client0", "lb0", "be3". */
  readonly name: string;
  readonly host: Host;
  /** Namespace name when the node is a netns (used for nsenter/bpftool-style tools). */
  readonly ns?: string;
  /** Primary data-plane IPv4 address. */
  readonly ip: string;
}

export interface BackendNode extends Node {
  /** Port the backend's server listens on (HTTP). */
  readonly port: number;
  /** Port of the backend's counter endpoint (nginx stub_status). */
  readonly statusPort: number;
}

export interface LbNode extends Node {
  /** Interface facing the clients and its address. */
  readonly clientIf: string;
  readonly clientIp: string;
  /** Interface facing the backends and its address. */
  readonly backendIf: string;
  readonly backendIp: string;
}

/**
 * What a built topology gives drivers. Addresses follow the plan in DESIGN.md: client links
 * 198.18.0.0/24, backend segment 198.18.1.0/24, VIPs 198.18.100.0/24.
 */
export interface Topology {
  readonly runId: string;
  /** Name prefix of everything this topology created: "lbb-<runid4>-". */
  readonly prefix: string;
  readonly client: Node;
  readonly lb: LbNode;
  /** A second LB node on the same client and backend segments (topology standbyLb), for active/backup LBs. */
  readonly standby?: LbNode;
  /** All backends built; a point with params.backends = n uses the first n. */
  readonly backends: BackendNode[];
  /** Virtual IP the load balancers serve on (held by the LB node). */
  readonly vip: string;
  /** Host that owns the topology (creates namespaces, reads shared files). */
  readonly root: Host;
  /** Directory for this run's generated configs, pid files and logs. */
  readonly workDir: string;
  /**
   * Give these backends a path back to the client that does not pass the LB node (for DSR-style
   * LBs whose replies should bypass the director), undone by the teardown. Absent where the
   * network is not ours to change (bare metal: your routing decides).
   */
  directReturn?(backends: BackendNode[], teardown: Teardown): Promise<void>;
}
