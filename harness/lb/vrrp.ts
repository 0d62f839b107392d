// VRRP active/backup with keepalived: lb0 (priority 150) and lb1 (100) share the VIP on the client
// segment; whichever is master holds it on eth0 and answers ARP for it, and a new master announces
// itself with a gratuitous ARP. Both forward with nftables DNAT and masquerade, so that replies come
// back through the node that forwarded (the two share no conntrack state: a failover breaks the
// connections through the old master, which is part of what is measured).
//
// The client reaches the VIP on-link for the run (a /32 route on eth0): through the usual gateway
// route it would ARP for lb0's own address, and moving the VIP would change nothing.
import { posix } from 'node:path';
import type { Spawned } from '../host/types.ts';
import type { LbSpec } from '../scenario/schema.ts';
import type { LbNode } from '../topology/types.ts';
import { ProvisionError } from '../errors.ts';
import { waitFor } from '../util/time.ts';
import { requireTools, toolVersion } from './preflight.ts';
import { nftScript } from './nftables.ts';
import { hostPrefix, nftFamily } from './family.ts';
import { releaseVipFromLbNode } from './vip.ts';
import { tail } from './proc.ts';
import { takeLinkDown } from '../host/link-down.ts';
import type { Deployed, LbDriver } from './types.ts';

type Spec = Extract<LbSpec, { kind: 'vrrp' }>;
const SNAT_TABLE = 'lbbench_snat';
const VRID = 51;
/** Generous against TCG guests and a busy host: keepalived starts as backup and waits ~3.6 adverts. */
const MASTER_TIMEOUT_MS = 10_000;

/** Pure: one node's keepalived.conf. VRRPv3 for sub-second adverts; one gratuitous ARP is enough on a bridge. */
export function keepalivedConf(o: { node: string; priority: number; advertInt: number; vip: string; dev: string }): string {
  return [
    'global_defs {',
    `    router_id lbbench-${o.node}`,
    '    vrrp_version 3',
    '    vrrp_garp_master_repeat 1',
    '    vrrp_garp_master_delay 1',
    '    vrrp_garp_master_refresh 0',
    '}',
    'vrrp_instance lbbench {',
    `    state ${o.priority > 100 ? 'MASTER' : 'BACKUP'}`,
    `    interface ${o.dev}`,
    `    virtual_router_id ${VRID}`,
    `    priority ${o.priority}`,
    `    advert_int ${o.advertInt}`,
    `    virtual_ipaddress {`,
    `        ${hostPrefix(o.vip)} dev ${o.dev}`,
    '    }',
    '}',
    '',
  ].join('\n');
}

/** Pure: the masquerade towards the backends, so their replies go back to the node that forwarded. */
export function snatScript(backendIf: string, fam: 'ip' | 'ip6' = 'ip'): string {
  return [
    `table ${fam} ${SNAT_TABLE} {}`,
    `flush table ${fam} ${SNAT_TABLE}`,
    `table ${fam} ${SNAT_TABLE} {`,
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    oifname "${backendIf}" masquerade`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** keepalived in the foreground with files of its own: `ip netns exec` shares /run, and a second instance with the default pid file exits 0 saying "already running". */
function keepalivedArgv(dir: string): string[] {
  const f = (x: string) => posix.join(dir, x);
  return ['keepalived', '-n', '-l', '-D', '-G', '-P', '-f', f('keepalived.conf'), '-p', f('keepalived.pid'), '-r', f('vrrp.pid'), '-c', f('checkers.pid'), '-b', f('bfd.pid')];
}

async function holdsVip(node: LbNode, vip: string): Promise<boolean> {
  const r = await node.host.exec(['ip', '-o', 'addr', 'show', 'dev', node.clientIf], { check: false, timeoutMs: 5000 });
  return r.stdout.includes(` ${hostPrefix(vip)} `);
}

export const vrrp: LbDriver<Spec> = {
  kind: 'vrrp',
  summary: 'keepalived VRRP active/backup of two LB nodes, each nftables DNAT + masquerade',
  tools: [
    { cmd: 'keepalived', pkg: 'keepalived' },
    { cmd: 'nft', pkg: 'nftables' },
    { cmd: 'conntrack', pkg: 'conntrack' },
  ],
  needsStandbyLb: true,
  ipv6: true,
  async preflight(host) {
    await requireTools(host, this.tools, 'vrrp');
  },
  async apply(ctx) {
    const { topo, spec } = ctx;
    const standby = topo.standby;
    if (!standby) throw new ProvisionError('vrrp needs a second LB node, which this topology has not got', 'run it through `lbbench run`, which builds the standby node for a vrrp LB');
    const { vip } = topo;
    // Everything of this deployment in one ledger, so that its teardown (a restart-lb, the point's end) takes all of it.
    const { ledger: teardown, release } = ctx.teardown.child(`vrrp on ${topo.lb.name} and ${standby.name}`);
    const nodes = [
      { node: topo.lb, priority: 150 },
      { node: standby, priority: 100 },
    ];
    // Only the master may hold the VIP: a copy on lb0's lo would answer ARP whoever is master.
    await releaseVipFromLbNode(topo.lb, vip, teardown);
    let current = ctx.backends;
    const fam = nftFamily(vip);
    const forward = (node: LbNode) => node.host.exec(['nft', '-f', '-'], { input: nftScript(vip, ctx.port, current, 'round-robin') + snatScript(node.backendIf, fam) });
    for (const { node } of nodes) {
      teardown.add(`vrrp: nft tables off ${node.name}`, async () => {
        await node.host.exec(['nft', 'delete', 'table', fam, 'lbbench'], { check: false });
        await node.host.exec(['nft', 'delete', 'table', fam, SNAT_TABLE], { check: false });
        await node.host.exec(['conntrack', '-F'], { check: false });
      });
      await forward(node);
    }
    const client = topo.client.host;
    teardown.add(`vrrp: client reaches ${vip} through its gateway again`, () => client.exec(['ip', 'route', 'del', hostPrefix(vip), 'dev', 'eth0'], { check: false }));
    await client.exec(['ip', 'route', 'replace', hostPrefix(vip), 'dev', 'eth0']);

    const procs = new Map<string, Spawned>();
    const dirOf = (node: LbNode) => posix.join(ctx.workDir, node.name);
    const start = async (node: LbNode, priority: number) => {
      const dir = dirOf(node);
      await node.host.exec(['mkdir', '-p', dir]);
      await node.host.writeFile(posix.join(dir, 'keepalived.conf'), keepalivedConf({ node: node.name, priority, advertInt: spec.advertInt, vip, dev: node.clientIf }));
      const proc = node.host.spawn(keepalivedArgv(dir));
      procs.set(node.name, proc);
      teardown.add(`vrrp: stop keepalived on ${node.name}`, async () => {
        const out = await proc.stop(3000);
        if (out.code && !out.signal) ctx.log(`vrrp: keepalived on ${node.name} exited ${out.code}: ${tail(out.stderr + out.stdout, 3)}`);
      });
      return proc;
    };
    for (const { node, priority } of nodes) await start(node, priority);
    const master = async (node: LbNode, others: LbNode[]) => {
      const ok = await waitFor(async () => (await holdsVip(node, vip)) && !(await Promise.all(others.map((o) => holdsVip(o, vip)))).some(Boolean), { timeoutMs: MASTER_TIMEOUT_MS, intervalMs: 50 });
      if (!ok) {
        const logs = (await Promise.all([...procs].map(async ([n, p]) => `${n}: ${p.running() ? 'running' : 'exited'}`))).join(', ');
        throw new ProvisionError(`vrrp: ${node.name} did not become the only holder of ${vip} within ${MASTER_TIMEOUT_MS} ms (${logs})`);
      }
    };
    await master(topo.lb, [standby]);
    ctx.log(`vrrp: ${topo.lb.name} master for ${vip}, ${standby.name} backup (advert ${spec.advertInt} s)`);

    const deployed: Deployed = {
      endpoint: { ip: vip, port: ctx.port },
      async setBackends(list) {
        current = list;
        for (const { node } of nodes) await forward(node);
      },
      async failLbNode(how) {
        const active = topo.lb;
        if (how === 'link-down') {
          const up = await takeLinkDown(active.host, active.clientIf);
          return {
            target: [active.name],
            async restore() {
              await up();
              await master(active, [standby]);
            },
          };
        }
        // A crash, not a shutdown: the VRRP child first, then the parent, so that neither sends
        // the priority-0 advert that hands over at once.
        const dir = dirOf(active);
        const child = (await active.host.readFile(posix.join(dir, 'vrrp.pid')).catch(() => '')).trim();
        const parent = procs.get(active.name)!;
        await active.host.exec(['kill', '-KILL', ...(/^\d+$/.test(child) ? [child] : []), String(parent.pid)], { check: false });
        await parent.exited;
        return {
          target: [active.name],
          async restore() {
            // keepalived removes VIPs a crashed instance left on start, then preempts as master.
            await start(active, 150);
            await master(active, [standby]);
          },
        };
      },
      async describe() {
        const [version, ...rest] = await Promise.all([
          toolVersion(topo.lb.host, ['keepalived', '--version']),
          ...nodes.map(({ node }) => node.host.exec(['nft', 'list', 'ruleset'], { check: false })),
          ...nodes.map(({ node }) => node.host.readFile(posix.join(dirOf(node), 'keepalived.conf'))),
          ...nodes.map(({ node }) => node.host.exec(['ip', '-o', 'addr', 'show', 'dev', node.clientIf], { check: false })),
        ]);
        const [rules0, rules1, conf0, conf1, addr0, addr1] = rest as [{ stdout: string }, { stdout: string }, string, string, { stdout: string }, { stdout: string }];
        const config = [
          `# vrrp: ${topo.lb.name} (priority 150) and ${standby.name} (100) share ${vip} on ${topo.lb.clientIf}; advert ${spec.advertInt} s; client routes ${vip} on-link`,
          `## ${topo.lb.name}: keepalived.conf`,
          conf0.trimEnd(),
          `## ${standby.name}: keepalived.conf`,
          conf1.trimEnd(),
          `## ${topo.lb.name}: nft list ruleset`,
          rules0.stdout.trimEnd(),
          `## ${standby.name}: nft list ruleset`,
          rules1.stdout.trimEnd(),
          `## ${topo.lb.name}: ${addr0.stdout.trim()}`,
          `## ${standby.name}: ${addr1.stdout.trim()}`,
          '',
        ].join('\n');
        return { version, config };
      },
      teardown: release,
    };
    return deployed;
  },
};
