// `lbbench up`: the topology and one LB, left running for hands-on experiments (xcluster's
// manual mode). Uses the same builder and drivers as `run`, so what you poke at is what runs.
import { join } from 'node:path';
import type { Scenario } from '../scenario/schema.ts';
import { plan } from '../scenario/plan.ts';
import { Teardown } from '../teardown.ts';
import { ConfigError } from '../errors.ts';
import { LocalHost } from '../host/local.ts';
import { buildNetnsTopology, type NetnsTopology } from '../topology/netns.ts';
import { getLbDriver } from '../lb/index.ts';
import { getLoadDriver } from '../load/index.ts';
import { cpuPlan, LB_PORT, preflightAll, selectPoints } from './runner.ts';
import type { Deployed } from '../lb/types.ts';

export interface UpResult {
  topo: NetnsTopology;
  deployed: Deployed;
  lbName: string;
  teardown: Teardown;
}

export async function bringUp(
  scenario: Scenario,
  opts: { lb?: string; backends?: number; log?: (s: string) => void },
): Promise<UpResult> {
  if (scenario.topology.kind !== 'netns') {
    // A guest is killed with the CLI (pdeathsig) and SSH hosts are better driven by `run`.
    throw new ConfigError(
      `lbbench up builds netns topologies only; this scenario's topology is ${scenario.topology.kind}`,
      [],
      'use lbbench run for qemu and bare-metal topologies, or point up at a netns scenario',
    );
  }
  const root = new LocalHost();
  const log = opts.log ?? (() => {});
  const points = selectPoints(plan(scenario), opts.lb ? [opts.lb] : undefined);
  const point = points[0]!;
  await preflightAll(root, [point], getLoadDriver(scenario.load.generator));
  const backends = opts.backends ?? Math.max(...points.map((p) => p.params.backends));
  const teardown = new Teardown();
  const cpus = cpuPlan(scenario.cpus);
  try {
    const topo = await buildNetnsTopology(
      { backends, backendWorkers: scenario.topology.backendWorkers, linkRate: scenario.topology.linkRate, serverCpus: cpus.servers, root, log },
      teardown,
    );
    const deployed = await getLbDriver(point.lb.kind).apply({
      topo,
      spec: point.lb as never,
      backends: topo.backends,
      port: LB_PORT,
      teardown,
      workDir: join(topo.workDir, 'lb', point.lb.name!),
      log,
      cpus: cpus.servers,
    });
    teardown.add(`teardown ${point.lb.name}`, () => deployed.teardown());
    return { topo, deployed, lbName: point.lb.name!, teardown };
  } catch (e) {
    await teardown.unwind();
    throw e;
  }
}

/** What a person needs to start experimenting, as copy-pasteable commands. */
export function upInstructions(u: UpResult): string {
  const { topo, deployed } = u;
  const ep = `${deployed.endpoint.ip}:${deployed.endpoint.port}`;
  const c = topo.client.ns;
  return [
    `load balancer: ${u.lbName}   endpoint: ${ep}   VIP: ${topo.vip}`,
    `namespaces:`,
    `  client  ${topo.client.ns}  (${topo.client.ip})`,
    `  lb      ${topo.lb.ns}  (${topo.lb.clientIp} / ${topo.lb.backendIp})`,
    ...topo.backends.map((b) => `  ${b.name.padEnd(7)} ${b.ns}  (${b.ip})`),
    `try:`,
    `  ip netns exec ${c} wrk -t1 -c16 -d5s http://${ep}/`,
    `  ip netns exec ${topo.lb.ns} bash        # a shell on the LB node`,
    `  ip netns exec ${topo.lb.ns} iptables -t nat -S; ip netns exec ${topo.lb.ns} nft list ruleset`,
    `work dir (configs, logs): ${topo.workDir}`,
  ].join('\n');
}
