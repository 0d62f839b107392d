// Where a run happens, chosen by the topology's kind: this machine's namespaces, the same
// namespaces inside a qemu guest, or existing hosts over SSH. Opening a site gives the host whose
// kernel the LBs will use (preflight, idle checks and the fingerprint look there) before anything
// of the topology is built; everything it opens is registered in the teardown ledger at once.
import { LocalHost } from '../host/local.ts';
import type { Host } from '../host/types.ts';
import type { Teardown } from '../teardown.ts';
import type { Overlay, Scenario } from '../scenario/schema.ts';
import { buildNetnsTopology, type RunTopology } from './netns.ts';
import { buildBaremetalTopology, connectAll } from './baremetal.ts';
import { openQemuSite } from './qemu-site.ts';
import { linkFacts } from './shaping.ts';

export interface BuildOptions {
  backends: number;
  serverCpus?: string;
  /** The backend network for this build (a swept overlay), over the topology's own. */
  overlay?: Overlay;
  /** Build a standby LB node beside lb0 (active/backup LBs: vrrp). */
  standbyLb?: boolean;
  /** Dual stack: IPv6 addresses beside the IPv4 ones (a scenario that measures family 6). */
  ipv6?: boolean;
  runId: string;
  log?: (msg: string) => void;
}

export interface Site {
  root: Host;
  /** Where the load generator runs, when not on root (bare metal: the client host). */
  generatorHost?: Host;
  /** CPUs on the root host, for `cpus: auto`. */
  cpus: number;
  /** Recorded in the result's environment: what the run really ran on. */
  facts: Record<string, unknown>;
  build(opts: BuildOptions, teardown: Teardown): Promise<RunTopology>;
}

export async function countCpus(host: Host): Promise<number> {
  const n = Number((await host.exec(['nproc'])).stdout.trim());
  return Number.isInteger(n) && n > 0 ? n : 1;
}

export async function openSite(
  topology: Scenario['topology'],
  teardown: Teardown,
  opts: { log?: (msg: string) => void; signal?: AbortSignal; root?: Host } = {},
): Promise<Site> {
  switch (topology.kind) {
    case 'netns': {
      const root = opts.root ?? new LocalHost();
      return {
        root,
        cpus: await countCpus(root),
        facts: { topology: 'netns', ...linkFacts(topology) },
        build: (o, td) => buildNetnsTopology({ ...o, backendWorkers: topology.backendWorkers, linkRate: topology.linkRate, overlay: o.overlay ?? topology.overlay, root }, td),
      };
    }
    case 'baremetal': {
      const conn = await connectAll(topology, teardown);
      return {
        root: conn.lb,
        generatorHost: conn.client,
        cpus: await countCpus(conn.lb),
        facts: { topology: 'baremetal', hosts: { client: conn.client.name, lb: conn.lb.name, backends: conn.backends.map((b) => b.name) } },
        build: (o, td) => buildBaremetalTopology(topology, { ...o, conn }, td),
      };
    }
    case 'qemu':
      return openQemuSite(topology, teardown, opts);
  }
}
