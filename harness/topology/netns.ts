import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalHost } from '../host/local.ts';
import { nsHost } from '../host/netns.ts';
import type { Host } from '../host/types.ts';
import type { Teardown } from '../teardown.ts';
import { ConfigError, ProvisionError } from '../errors.ts';
import { PLAN, PLAN6, NAME_PREFIX } from './address-plan.ts';
import { parseStubStatus } from './stub-status.ts';
import { formatRate, shapeLinks } from './shaping.ts';
import { WORK_ROOT, writeOwner } from './leftovers.ts';
import type { BackendNode, LbNode, Node, Topology } from './types.ts';
import type { Overlay } from '../scenario/schema.ts';
import {
  BACKEND_PORT,
  BACKEND_STATUS_PORT,
  backendRequests,
  startBackendNginx,
  type BackendServer,
} from './backends.ts';

export interface NetnsTopologyOptions {
  backends: number;
  backendWorkers: number;
  /** Bits per second every veth link is shaped to (both ends' egress); unset: unshaped. */
  linkRate?: number;
  /** CPUs for backend servers (taskset list). */
  serverCpus?: string;
  /** How the LB node reaches the backends: on their segment (none), or through a VXLAN overlay over it. */
  overlay?: Overlay;
  /**
   * A second LB node (lb1) beside lb0, both on one client segment (a bridge) and on the backend
   * segment: what active/backup designs (VRRP) fail over between.
   */
  standbyLb?: boolean;
  /** Give every node an IPv6 address of PLAN6 as well (dual stack), and the backends a v6 listener. */
  ipv6?: boolean;
  runId?: string;
  root?: Host;
  log?: (msg: string) => void;
}

/** A topology a run can measure on: the drivers' view plus the backends' counters. */
export interface RunTopology extends Topology {
  /** Namespaces this topology created (none for bare metal). */
  namespaces: string[];
  /** Absolute request counters per backend (each read counts itself); callers take deltas. */
  backendCounters(): Promise<Record<string, number>>;
  /** SIGKILL these backends' server processes (events); absent where lbbench did not start them. */
  killBackends?(names: string[]): Promise<void>;
  /** Start killed backend servers again. */
  startBackends?(names: string[]): Promise<void>;
  /** Bits per second lbbench shaped every link to (topology.linkRate); absent: unshaped. */
  linkRate?: number;
  /** The LB-to-backends network as built, read back from the kernel (absent where not ours: bare metal). */
  network?: BackendNetwork;
  /** The same topology seen over IPv6 (every address its PLAN6 one), where it was built dual-stack. */
  v6?: RunTopology;
}


export interface BackendNetwork {
  overlay: Overlay;
  /** MTU of the LB node's interface towards the backends (the overlay device's, under vxlan). */
  mtu: number;
  /** MTU of the links underneath (veth). */
  underlayMtu: number;
  /** Bytes each packet to a backend carries on the wire beyond what the LB sent: outer headers. */
  overheadBytes: number;
  encapsulation: string;
}

/** VXLAN's IANA port and a VNI of our own; outer Ethernet + IPv4 + UDP + VXLAN headers. */
const VXLAN = { id: 4242, port: 4789, overheadBytes: 14 + 20 + 8 + 8 };
export type NetnsTopology = RunTopology;

/** Locally administered, and 198.18.1.250 in its last four bytes. */
const RETURN_LEG_MAC = '02:00:c6:12:01:fa';

export function newRunId(now = new Date()): string {
  const ts = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `${ts}-${randomBytes(2).toString('hex')}`;
}

/** Per-role sysctls, set explicitly: new namespaces start with forwarding off and inherit conf/* from the host. */
const SYSCTLS = {
  common: [
    'net.ipv4.conf.all.rp_filter=0',
    'net.ipv4.conf.default.rp_filter=0',
    'net.ipv6.conf.all.accept_dad=0',
    'net.ipv6.conf.default.accept_dad=0',
    // A link taken down (fail-lb-node) must come back with its IPv6 addresses, as IPv4 ones do.
    'net.ipv6.conf.all.keep_addr_on_down=1',
    'net.ipv4.tcp_tw_reuse=1',
    'net.core.somaxconn=4096',
  ],
  // ip_nonlocal_bind: IPv6 has no AnyIP for bind(); the local route alone gives EADDRNOTAVAIL.
  client: ['net.ipv4.ip_local_port_range=1024 65000', 'net.ipv6.ip_nonlocal_bind=1'],
  lb: ['net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1', 'net.ipv4.ip_local_port_range=1024 65000'],
  // Bridged frames must not walk iptables in the switch namespace.
  sw: ['net.bridge.bridge-nf-call-iptables=0', 'net.bridge.bridge-nf-call-ip6tables=0'],
  backend: [] as string[],
};

async function setSysctls(host: Host, ns: string, settings: string[]): Promise<void> {
  // -e: keys absent on this kernel (bridge-nf without br_netfilter) are not an error.
  await host.exec(['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-e', '-w', ...settings]);
}

/**
 * client0 ──veth── lb0 ──veth── sw (bridge) ──veth── be0..beN
 *
 * Built with one `ip -b` for the namespaces and links and one `ip -n NS -b` per namespace for
 * addresses and routes: process start-up, not the kernel, is what costs time here.
 */
export async function buildNetnsTopology(
  opts: NetnsTopologyOptions,
  teardown: Teardown,
): Promise<NetnsTopology> {
  if (opts.backends > PLAN.maxBackends) {
    throw new ConfigError(
      `a netns topology holds at most ${PLAN.maxBackends} backends (asked for ${opts.backends})`,
      [],
      `lower sweep.backends to ${PLAN.maxBackends} or fewer`,
    );
  }
  const log = opts.log ?? (() => {});
  const root = opts.root ?? new LocalHost();
  const runId = opts.runId ?? newRunId();
  const id4 = runId.slice(-4);
  const prefix = `${NAME_PREFIX}${id4}-`;
  const ns = {
    client: `${prefix}client0`,
    lb: `${prefix}lb0`,
    sw: `${prefix}sw`,
    be: Array.from({ length: opts.backends }, (_, i) => `${prefix}be${i}`),
    ...(opts.standbyLb ? { lb1: `${prefix}lb1` } : {}),
  };
  if (opts.standbyLb && opts.overlay === 'vxlan') throw new ConfigError('a standby LB node and the vxlan overlay do not go together yet', [], 'measure VRRP with topology.overlay: none');
  const all = [ns.client, ns.lb, ...(ns.lb1 ? [ns.lb1] : []), ns.sw, ...ns.be];
  const workDir = join(WORK_ROOT, runId);
  // On this machine the owner file lets `lbbench down` tell live runs from leftovers; a guest's
  // leftovers go with the guest.
  const local = root instanceof LocalHost && root.name === 'local';
  if (local) {
    await mkdir(workDir, { recursive: true });
    teardown.add(`remove ${workDir}`, () => rm(workDir, { recursive: true, force: true }));
    await writeOwner(workDir, runId, prefix);
  } else {
    await root.exec(['mkdir', '-p', workDir]);
    teardown.add(`remove ${workDir} on ${root.name}`, () => root.exec(['rm', '-rf', workDir], { check: false }));
  }

  const existing = new Set((await root.exec(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]));
  const clash = all.find((n) => existing.has(n));
  if (clash) throw new ProvisionError(`namespace ${clash} already exists`, 'run `lbbench down` to remove leftovers');

  // Registered before creation: a failure half-way still removes whatever got made.
  teardown.add(`delete ${all.length} namespaces ${prefix}*`, () => deleteNamespaces(root, all));

  // Each veth is created under names unique on the root host and renamed inside its namespace:
  // older kernels (Debian 12's 6.1, in a guest) check the new name against the creating
  // namespace, where the guest's own eth0 already exists.
  const links = netnsLinks(ns);
  const tmp = (i: number, end: 'a' | 'b') => `lbbt${id4}${i}${end}`.slice(0, 15);
  if (opts.ipv6) {
    // A device copies accept_dad from its namespace's default when it is created, and the kernel
    // skips DAD only if both its own and `all` are off: set before the links exist, or every
    // address stays tentative for a second or two and the first connections stall.
    await runBatch(root, null, all.map((n) => `netns add ${n}`));
    const script = 'for n; do ip netns exec "$n" sysctl -q -w net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0 || exit 1; done';
    await root.exec(['sh', '-c', script, 'sh', ...all], { timeoutMs: 60_000 });
  }
  await runBatch(root, null, [
    ...(opts.ipv6 ? [] : all.map((n) => `netns add ${n}`)),
    ...links.map(([a, , b], i) => `link add ${tmp(i, 'a')} netns ${a} type veth peer name ${tmp(i, 'b')} netns ${b}`),
  ]);
  const renames = linkEnds(links, (dev, i, end) => `link set ${tmp(i, end)} name ${dev}`);
  await Promise.all([...renames].map(([n, lines]) => runBatch(root, n, lines)));

  const vip = PLAN.vip(0);
  const vxlan = opts.overlay === 'vxlan';
  // `nodad` as well: belt and braces where accept_dad could not be set first (a guest's older kernel).
  const v6 = (addr: string, dev: string, len = 64) => (opts.ipv6 ? [`addr add ${addr}/${len} dev ${dev} nodad`] : []);
  const lbLines = (i: number, withVip: boolean) => [
    'link set lo up',
    'link set eth0 up',
    'link set eth1 up',
    `addr add ${PLAN.lbClientIp(i)}/24 dev eth0`,
    ...(vxlan ? [`addr add ${PLAN.underlayLbIp(i)}/24 dev eth1`, vxlanDev(PLAN.underlayLbIp(i), 'eth1'), 'link set vxlan0 up'] : []),
    `addr add ${PLAN.lbBackendIp(i)}/24 dev ${lbBeDev}`,
    ...(withVip ? [`addr add ${vip}/32 dev lo`] : []),
    `route add ${PLAN.sourcePool} via ${PLAN.clientIp(0)}`,
    ...v6(PLAN6.lbClientIp(i), 'eth0'),
    ...v6(PLAN6.lbBackendIp(i), lbBeDev),
    ...(withVip ? v6(PLAN6.vip(0), 'lo', 128) : []),
    ...(opts.ipv6 ? [`route add ${PLAN6.sourcePool} via ${PLAN6.clientIp(0)}`] : []),
  ];
  // Under the overlay the backends' plan addresses move to vxlan0 and the veths carry the
  // underlay: same addresses for drivers and results, one more hop of encapsulation.
  const beDev = vxlan ? 'vxlan0' : 'eth0';
  const lbBeDev = vxlan ? 'vxlan0' : 'eth1';
  const vxlanDev = (local: string, lower: string) =>
    `link add vxlan0 type vxlan id ${VXLAN.id} local ${local} dstport ${VXLAN.port} dev ${lower}`;
  const perNs: [string, string[]][] = [
    [
      ns.client,
      [
        'link set lo up',
        'link set eth0 up',
        `addr add ${PLAN.clientIp(0)}/24 dev eth0`,
        `route add default via ${PLAN.clientGw}`,
        // Source pool for connection testers: any address in it is local (AnyIP).
        `route add local ${PLAN.sourcePool} dev lo`,
        ...v6(PLAN6.clientIp(0), 'eth0'),
        ...(opts.ipv6 ? [`route add default via ${PLAN6.lbClientIp(0)}`, `route add local ${PLAN6.sourcePool} dev lo`] : []),
      ],
    ],
    [ns.lb, lbLines(0, true)],
    // The standby holds no VIP of its own: whatever fails over between the two places it.
    ...(ns.lb1 ? [[ns.lb1, lbLines(1, false)] as [string, string[]]] : []),
    [
      ns.sw,
      [
        'link set lo up',
        'link add br0 type bridge',
        'link set br0 up',
        ...['lb0', ...(ns.lb1 ? ['lb1'] : [])].flatMap((p) => [`link set ${p} master br0`, `link set ${p} up`]),
        ...ns.be.flatMap((_, i) => [`link set be${i} master br0`, `link set be${i} up`]),
        ...(ns.lb1 ? ['link add brc type bridge', 'link set brc up', ...CLIENT_PORTS.flatMap((p) => [`link set ${p} master brc`, `link set ${p} up`])] : []),
      ],
    ],
    ...ns.be.map((b, i): [string, string[]] => [
      b,
      [
        'link set lo up',
        'link set eth0 up',
        ...(vxlan ? [`addr add ${PLAN.underlayBackendIp(i)}/24 dev eth0`, vxlanDev(PLAN.underlayBackendIp(i), 'eth0'), 'link set vxlan0 up'] : []),
        `addr add ${PLAN.backendIp(i)}/24 dev ${beDev}`,
        `route add default via ${PLAN.lbBackendIp(0)}`,
        ...v6(PLAN6.backendIp(i), beDev),
        ...(opts.ipv6 ? [`route add default via ${PLAN6.lbBackendIp(0)}`] : []),
      ],
    ]),
  ];
  await Promise.all(perNs.map(([n, lines]) => runBatch(root, n, lines)));
  if (vxlan) {
    // Head-end replication instead of multicast: the LB node floods broadcasts (ARP) to every
    // backend's VTEP, each backend to the LB node's only; MACs are learnt from what arrives.
    await Promise.all([
      bridgeFdb(root, ns.lb, ns.be.map((_, i) => PLAN.underlayBackendIp(i))),
      ...ns.be.map((b) => bridgeFdb(root, b, [PLAN.underlayLbIp(0)])),
    ]);
  }
  if (opts.linkRate) {
    await shapeLinks(root, linkEnds(links), opts.linkRate);
    log(`links shaped to ${formatRate(opts.linkRate)}`);
  }
  await Promise.all([
    setSysctls(root, ns.client, [...SYSCTLS.common, ...SYSCTLS.client]),
    setSysctls(root, ns.lb, [...SYSCTLS.common, ...SYSCTLS.lb]),
    ...(ns.lb1 ? [setSysctls(root, ns.lb1, [...SYSCTLS.common, ...SYSCTLS.lb])] : []),
    setSysctls(root, ns.sw, [...SYSCTLS.common, ...SYSCTLS.sw]),
    ...ns.be.map((b) => setSysctls(root, b, [...SYSCTLS.common, ...SYSCTLS.backend])),
  ]);
  log(`topology ${prefix}*: ${all.length} namespaces`);

  const servers: BackendServer[] = [];
  const backends: BackendNode[] = ns.be.map((b, i) => ({
    name: `be${i}`,
    ns: b,
    host: nsHost(root, b),
    ip: PLAN.backendIp(i),
    port: BACKEND_PORT,
    statusPort: BACKEND_STATUS_PORT,
  }));
  // Start backends a few at a time: each nginx start is a fork+exec burst on a 2-core box.
  for (let i = 0; i < backends.length; i += 8) {
    const started = await Promise.all(
      backends.slice(i, i + 8).map(async (be) => {
        const s = await startBackendNginx(be.host, be.name, join(workDir, be.name), {
          workers: opts.backendWorkers,
          cpus: opts.serverCpus,
          ipv6: opts.ipv6,
        });
        // By name, not this handle: a killed and restarted backend has a new process.
        teardown.add(`stop nginx on ${be.name}`, () => servers.find((x) => x.name === be.name)!.proc.stop());
        return s;
      }),
    );
    servers.push(...started);
  }
  log(`${servers.length} backend nginx servers up`);

  const client: Node = { name: 'client0', ns: ns.client, host: nsHost(root, ns.client), ip: PLAN.clientIp(0) };
  const lb: LbNode = {
    name: 'lb0',
    ns: ns.lb,
    host: nsHost(root, ns.lb),
    ip: PLAN.lbBackendIp(0),
    clientIf: 'eth0',
    clientIp: PLAN.clientGw,
    backendIf: lbBeDev,
    backendIp: PLAN.lbBackendIp(0),
  };
  const standby: LbNode | undefined = ns.lb1
    ? { name: 'lb1', ns: ns.lb1, host: nsHost(root, ns.lb1), ip: PLAN.lbBackendIp(1), clientIf: 'eth0', clientIp: PLAN.lbClientIp(1), backendIf: lbBeDev, backendIp: PLAN.lbBackendIp(1) }
    : undefined;
  const network = await readBackendNetwork(lb.host, vxlan ? 'vxlan' : 'none');
  log(`LB node to backends: ${network.encapsulation}, MTU ${network.mtu}`);

  let returnLeg = false;
  const built: RunTopology = {
    runId,
    prefix,
    client,
    lb,
    ...(standby ? { standby } : {}),
    backends,
    vip,
    root,
    workDir,
    namespaces: all,
    linkRate: opts.linkRate,
    network,
    async directReturn(list, td) {
      if (vxlan) throw new ProvisionError('direct return (DSR) is not wired through the VXLAN overlay', 'measure DSR modes with topology.overlay: none');
      // A leg of the client on the backend bridge (made once per LB, with its teardown); only the
      // given backends route replies over it.
      if (!returnLeg) {
        const [a, b] = [`lbbr${id4}a`, `lbbr${id4}b`];
        await runBatch(root, null, [`link add ${a} netns ${ns.client} type veth peer name ${b} netns ${ns.sw}`]);
        returnLeg = true;
        td.add(`remove the client's return leg`, async () => {
          returnLeg = false;
          await root.exec(['ip', '-n', ns.client, 'link', 'del', a], { check: false });
          await root.exec(['ip', '-n', ns.client, 'link', 'del', 'ret0'], { check: false });
        });
        // A fixed MAC: the leg comes and goes with each LB, and backends' neighbour entries for it
        // would otherwise point at the last one's MAC for seconds.
        await runBatch(root, ns.client, [
          `link set ${a} name ret0`,
          `link set ret0 address ${RETURN_LEG_MAC}`,
          `addr add ${PLAN.clientReturnIp}/24 dev ret0`,
          ...v6(PLAN6.clientReturnIp, 'ret0'),
          'link set ret0 up',
        ]);
        await runBatch(root, ns.sw, [`link set ${b} name cl0`, 'link set cl0 master br0', 'link set cl0 up']);
        // A link like the others: DSR replies must not bypass the rate the forward path has.
        if (opts.linkRate) await shapeLinks(root, linkEnds([[ns.client, 'ret0', ns.sw, 'cl0']]), opts.linkRate);
      }
      // Both families on a dual-stack topology: the routes name their gateways, which says which.
      const routes = [
        ...[PLAN.clientNet, PLAN.sourcePool].map((net) => `${net} via ${PLAN.clientReturnIp}`),
        ...(opts.ipv6 ? [PLAN6.clientNet, PLAN6.sourcePool].map((net) => `${net} via ${PLAN6.clientReturnIp}`) : []),
      ];
      await Promise.all(
        list.map(async (be) => {
          td.add(`${be.name}: replies via the LB node again`, () =>
            root.exec(['ip', '-n', be.ns!, '-force', '-b', '-'], { input: routes.map((r) => `route del ${r}`).join('\n') + '\n', check: false }),
          );
          await runBatch(root, be.ns!, routes.map((r) => `route replace ${r}`));
        }),
      );
    },
    async killBackends(names) {
      await Promise.all(
        names.map(async (name) => {
          const s = servers.find((x) => x.name === name);
          if (!s) throw new ProvisionError(`no backend ${name} to kill`);
          if (!s.proc.running()) return;
          // The master and its workers, by PID: killing only the master leaves workers serving.
          const pid = s.proc.pid;
          const kids = (await root.exec(['pgrep', '-P', String(pid)], { check: false })).stdout.split('\n').filter(Boolean);
          await root.exec(['kill', '-KILL', String(pid), ...kids], { check: false });
          await s.proc.exited;
        }),
      );
    },
    async startBackends(names) {
      await Promise.all(
        names.map(async (name) => {
          const i = servers.findIndex((x) => x.name === name);
          if (i < 0) throw new ProvisionError(`no backend ${name} to start`);
          if (servers[i]!.proc.running()) return;
          const be = backends.find((b) => b.name === name)!;
          const dir = join(workDir, name);
          // A SIGKILLed nginx leaves its unix socket behind, and would fail to bind it again.
          await root.exec(['rm', '-f', join(dir, 'status.sock'), join(dir, 'nginx.pid')]);
          servers[i] = await startBackendNginx(be.host, name, dir, { workers: opts.backendWorkers, cpus: opts.serverCpus, ipv6: opts.ipv6 });
        }),
      );
    },
    async backendCounters() {
      const counts = local
        ? await Promise.all(servers.map((s) => backendRequests(s.statusSocket)))
        : await remoteBackendRequests(root, servers.map((s) => s.statusSocket));
      return Object.fromEntries(servers.map((s, i) => [s.name, counts[i]!]));
    },
  };
  if (opts.ipv6) built.v6 = ipv6View(built, standby !== undefined);
  return built;
}

/**
 * The topology with every address its PLAN6 one: drivers and generators given this view work over
 * IPv6 without knowing it; what is not an address (hosts, counters, kills) is the same.
 */
function ipv6View(t: RunTopology, standby: boolean): RunTopology {
  return addressView(t, {
    client: PLAN6.clientIp(0),
    lbClient: PLAN6.lbClientIp(0),
    lbBackend: PLAN6.lbBackendIp(0),
    ...(standby ? { standby: { client: PLAN6.lbClientIp(1), backend: PLAN6.lbBackendIp(1) } } : {}),
    backends: t.backends.map((_, i) => PLAN6.backendIp(i)),
    vip: PLAN6.vip(0),
  });
}

export interface ViewAddresses {
  client: string;
  lbClient: string;
  lbBackend: string;
  standby?: { client: string; backend: string };
  /** Per backend, in order. */
  backends: string[];
  vip: string;
}

/** The same topology with other addresses (the other family's): nodes, counters and hosts unchanged. */
export function addressView(t: RunTopology, a: ViewAddresses): RunTopology {
  return {
    ...t,
    client: { ...t.client, ip: a.client },
    lb: { ...t.lb, ip: a.lbBackend, clientIp: a.lbClient, backendIp: a.lbBackend },
    ...(a.standby && t.standby ? { standby: { ...t.standby, ip: a.standby.backend, clientIp: a.standby.client, backendIp: a.standby.backend } } : {}),
    backends: t.backends.map((b, i) => ({ ...b, ip: a.backends[i]! })),
    vip: a.vip,
    v6: undefined,
  };
}

/** All counters in one command: over SSH to a TCG guest every command costs seconds. */
export async function remoteBackendRequests(root: Host, sockets: string[]): Promise<number[]> {
  const script = 'for s; do curl -sS --max-time 3 --unix-socket "$s" http://lbbench/ || exit 1; printf "%s\\n" "--lbbench--"; done';
  const out = (await root.exec(['sh', '-c', script, 'sh', ...sockets])).stdout;
  const pages = out.split('--lbbench--\n').slice(0, sockets.length);
  if (pages.length !== sockets.length) throw new ProvisionError(`read ${pages.length} of ${sockets.length} backend counters on ${root.name}`);
  return pages.map((p) => parseStubStatus(p).requests);
}

async function bridgeFdb(root: Host, ns: string, remotes: string[]): Promise<void> {
  const lines = remotes.map((r) => `fdb append 00:00:00:00:00:00 dev vxlan0 dst ${r}`);
  try {
    await root.exec(['bridge', '-n', ns, '-b', '-'], { input: lines.join('\n') + '\n', timeoutMs: 30_000 });
  } catch (e) {
    throw new ProvisionError(`VXLAN flood list in ${ns} failed: ${(e as Error).message}`, undefined, { cause: e });
  }
}

/** The LB node's side of the backend network as the kernel has it: MTUs and, for VXLAN, its VNI and port. */
async function readBackendNetwork(host: Host, overlay: Overlay): Promise<BackendNetwork> {
  const links = JSON.parse((await host.exec(['ip', '-j', '-d', 'link', 'show'])).stdout) as { ifname: string; mtu: number; linkinfo?: { info_kind?: string; info_data?: { id?: number; port?: number } } }[];
  const dev = (name: string) => {
    const l = links.find((x) => x.ifname === name);
    if (!l) throw new ProvisionError(`the LB node has no ${name}`);
    return l;
  };
  const under = dev('eth1');
  if (overlay === 'none') return { overlay, mtu: under.mtu, underlayMtu: under.mtu, overheadBytes: 0, encapsulation: 'none (routed onto the backend segment)' };
  const vx = dev('vxlan0');
  const d = vx.linkinfo?.info_data ?? {};
  return {
    overlay,
    mtu: vx.mtu,
    underlayMtu: under.mtu,
    overheadBytes: VXLAN.overheadBytes,
    encapsulation: `VXLAN VNI ${d.id ?? '?'} over UDP port ${d.port ?? '?'} (${VXLAN.overheadBytes} bytes of outer Ethernet/IPv4/UDP/VXLAN headers per packet)`,
  };
}

/** A veth link: [namespace, device] at one end, [namespace, device] at the other. */
export type Link = [string, string, string, string];

/** The switch's ports on the client bridge when there is a standby LB node. */
const CLIENT_PORTS = ['c0', 'l0c', 'l1c'];

/**
 * Pure: the topology's veth links; the switch's ends are named after what they lead to. With a
 * standby LB node the client and both LB nodes meet on a bridge instead of a point-to-point link.
 */
export function netnsLinks(ns: { client: string; lb: string; sw: string; be: string[]; lb1?: string }): Link[] {
  const clientSide: Link[] = ns.lb1
    ? [
        [ns.client, 'eth0', ns.sw, 'c0'],
        [ns.lb, 'eth0', ns.sw, 'l0c'],
        [ns.lb1, 'eth0', ns.sw, 'l1c'],
      ]
    : [[ns.client, 'eth0', ns.lb, 'eth0']];
  return [
    ...clientSide,
    [ns.lb, 'eth1', ns.sw, 'lb0'],
    ...(ns.lb1 ? [[ns.lb1, 'eth1', ns.sw, 'lb1'] as Link] : []),
    ...ns.be.map((b, i): Link => [b, 'eth0', ns.sw, `be${i}`]),
  ];
}

/** Pure: both ends of every link grouped by namespace, each end as `f` makes it (default: the device). */
export function linkEnds<T = string>(links: Link[], f: (dev: string, i: number, end: 'a' | 'b') => T = (dev) => dev as T): Map<string, T[]> {
  const ends = new Map<string, T[]>();
  links.forEach(([a, an, b, bn], i) => {
    ends.set(a, [...(ends.get(a) ?? []), f(an, i, 'a')]);
    ends.set(b, [...(ends.get(b) ?? []), f(bn, i, 'b')]);
  });
  return ends;
}

async function runBatch(root: Host, ns: string | null, lines: string[]): Promise<void> {
  const argv = ns ? ['ip', '-n', ns, '-b', '-'] : ['ip', '-b', '-'];
  try {
    await root.exec(argv, { input: lines.join('\n') + '\n', timeoutMs: 30_000 });
  } catch (e) {
    throw new ProvisionError(`building ${ns ?? 'namespaces'} failed: ${(e as Error).message}`, undefined, {
      cause: e,
    });
  }
}

/** Stop whatever still runs inside (by PID), then delete. Used by teardown and by `lbbench down`. */
export async function deleteNamespaces(root: Host, names: string[]): Promise<void> {
  const present = new Set(await listNamespaces(root));
  const targets = names.filter((n) => present.has(n));
  if (!targets.length) return;
  const pids = (
    await Promise.all(targets.map((n) => root.exec(['ip', 'netns', 'pids', n], { check: false })))
  ).flatMap((r) => r.stdout.split('\n').filter((l) => /^\d+$/.test(l.trim())));
  if (pids.length) {
    await root.exec(['kill', '-TERM', ...pids], { check: false });
    await new Promise((r) => setTimeout(r, 300));
    await root.exec(['kill', '-KILL', ...pids], { check: false });
  }
  await root.exec(['ip', '-force', '-b', '-'], { input: targets.map((n) => `netns del ${n}`).join('\n') + '\n', check: false });
  const left = (await listNamespaces(root)).filter((n) => targets.includes(n));
  if (left.length) throw new ProvisionError(`could not delete namespaces: ${left.join(', ')}`);
}

export async function listNamespaces(root: Host): Promise<string[]> {
  const out = (await root.exec(['ip', 'netns', 'list'])).stdout;
  return out
    .split('\n')
    .map((l) => l.split(' ')[0]!.trim())
    .filter(Boolean);
}
