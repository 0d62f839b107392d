// Samplers around one measurement: on the client, the LB node and the point's backends (at most
// MAX_BACKENDS of them: a shell loop each, and the first few speak for the rest), then the
// bottleneck verdict and the LB node's CPU cost from what they saw.
import type { Topology, BackendNode, Node } from '../topology/types.ts';
import { attribute, processCores, type Bottleneck } from './bottleneck.ts';
import { installSampler, startSampler, type RunningSampler } from './index.ts';
import type { Sample } from './series.ts';
import { mean } from '../stats/descriptive.ts';

export const MAX_BACKENDS = 8;

export interface PointSampling {
  stop(): Promise<Record<string, Sample[]>>;
}

/** A node that is a network namespace shares the CPUs with everything else on its host. */
const isNamespace = (n: Node) => n.ns !== undefined;

/**
 * Installs the sampler on the point's nodes once (a write per file system: namespaces of one host
 * share its own) and returns what starts them around each measurement.
 */
export async function pointSamplers(topo: Topology, backends: BackendNode[], intervalS: number): Promise<(maxS: number) => PointSampling> {
  const nodes: [string, Node][] = [['client', topo.client], ['lb', topo.lb], ...backends.slice(0, MAX_BACKENDS).map((b): [string, Node] => [b.name, b])];
  const fsOf = (n: Node) => (isNamespace(n) ? 'local-fs' : n.host.name);
  const scripts = new Map<string, string>();
  for (const [, n] of nodes) if (!scripts.has(fsOf(n))) scripts.set(fsOf(n), await installSampler(n.host, topo.workDir));
  return (maxS) => samplePoint(nodes.map(([role, n]) => [role, startSampler(n.host, scripts.get(fsOf(n))!, { intervalS, maxS, discover: isNamespace(n) })]));
}

function samplePoint(running: [string, RunningSampler][]): PointSampling {
  return {
    async stop() {
      const out: Record<string, Sample[]> = {};
      // All stopped even when one fails to parse; the first failure is then reported.
      const done = await Promise.allSettled(running.map(async ([role, s]) => [role, (await s.stop()).samples] as const));
      for (const d of done) {
        if (d.status === 'rejected') throw d.reason;
        out[d.value[0]] = d.value[1];
      }
      return out;
    },
  };
}

/**
 * Processes a user-space LB runs its traffic through; undefined for kernel datapaths, whose cost
 * is softirq time that (on one host) can't be told apart from everyone else's.
 */
export function lbWorkers(lb: { kind: string; workers?: unknown; threads?: unknown }): number | undefined {
  if (lb.kind === 'nginx') return typeof lb.workers === 'number' ? lb.workers : 1;
  if (lb.kind === 'haproxy') return typeof lb.threads === 'number' ? lb.threads : 1;
  if (lb.kind === 'nfqueue') return 1;
  return undefined;
}

export interface PointFacts {
  lb: { kind: string; workers?: unknown; threads?: unknown };
  generatorThreads: number;
  generatorSaturated?: boolean;
  backendWorkers: number;
  linkBitsPerSec?: number;
  backends: string[];
}

export function bottleneckOf(samples: Record<string, Sample[]>, f: PointFacts): Bottleneck {
  return attribute({
    samples,
    generatorThreads: f.generatorThreads,
    generatorSaturated: f.generatorSaturated,
    lbWorkers: lbWorkers(f.lb),
    backendWorkers: f.backendWorkers,
    linkBitsPerSec: f.linkBitsPerSec,
    backends: f.backends.filter((b) => b in samples),
  });
}

/**
 * CPU-seconds the LB node spent per million units (requests, packets, connections) at `rate`
 * units/s. The node's own CPUs when it has them; else its processes; else (a kernel datapath on a
 * shared host) not measurable.
 */
export function cpuPerMillion(lbSamples: Sample[] | undefined, rate: number, lbOwnsCpus: boolean, userSpace: boolean): number | undefined {
  if (!lbSamples?.length || !(rate > 0)) return undefined;
  const cores = lbOwnsCpus ? mean(lbSamples.map((s) => s.cpu.busy)) : userSpace ? processCores(lbSamples) : undefined;
  return cores === undefined ? undefined : (cores / rate) * 1e6;
}
