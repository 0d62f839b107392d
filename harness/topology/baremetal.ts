// Existing machines with roles, reached over SSH: the lab a user already has. Nothing is wired
// here (the links are real); the harness only adds what a run needs — the VIP on the LB host,
// host routes through it, forwarding, the backends' nginx — and takes all of it away afterwards.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Host } from '../host/types.ts';
import { connectSsh, type SshHost, type SshTarget } from '../host/ssh.ts';
import type { Teardown } from '../teardown.ts';
import { ipv6Fields, type BaremetalTopologySpec } from '../scenario/schema.ts';
import type { z } from 'zod';
import { ProvisionError } from '../errors.ts';
import { setSysctls } from '../host/sysctl.ts';
import { BACKEND_PORT, BACKEND_STATUS_PORT, startBackendNginx, type BackendServer } from './backends.ts';
import { NAME_PREFIX, PLAN, PLAN6 } from './address-plan.ts';
import { WORK_ROOT } from './leftovers.ts';
import { addressView, remoteBackendRequests, type RunTopology, type ViewAddresses } from './netns.ts';
import { familyOf, hostPort, hostPrefix, ipCmd } from '../lb/family.ts';
import type { BackendNode, LbNode, Node } from './types.ts';

type Spec = z.output<typeof BaremetalTopologySpec>;
type Endpoint = Spec['client']['ssh'];

const expandHome = (p: string): string => (p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : resolve(p));

export function sshTarget(spec: Spec, e: Endpoint, role: string): SshTarget {
  return {
    host: e.host,
    port: e.port,
    user: e.user ?? spec.ssh.user,
    privateKeyPath: expandHome(spec.ssh.privateKey),
    ...(e.hostKey ? { hostKey: e.hostKey } : { knownHostsPath: expandHome(spec.ssh.knownHosts) }),
    name: `${role}(${e.host}${e.port === 22 ? '' : `:${e.port}`})`,
  };
}

export interface BaremetalOptions {
  runId: string;
  /** Use the first n backend hosts. */
  backends: number;
  serverCpus?: string;
  /** Dual stack: the hosts' IPv6 addresses from the topology file as well (family 6 points). */
  ipv6?: boolean;
  log?: (msg: string) => void;
  /** Connections opened already (by openSite); their closing is the opener's. */
  conn?: Connected;
}

type Connected = { client: SshHost; lb: SshHost; backends: SshHost[] };

/** Every host is connected (and its key verified) before anything is changed on any of them. */
export async function connectAll(spec: Spec, teardown: Teardown, n = spec.backendHosts.length): Promise<Connected> {
  const targets = [
    sshTarget(spec, spec.client.ssh, 'client'),
    sshTarget(spec, spec.lb.ssh, 'lb'),
    ...spec.backendHosts.slice(0, n).map((b, i) => sshTarget(spec, b.ssh, `be${i}`)),
  ];
  const settled = await Promise.allSettled(targets.map((t) => connectSsh(t)));
  const hosts = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  teardown.add(`close ${hosts.length} SSH connections`, () => Promise.all(hosts.map((h) => h.close())).then(() => undefined));
  const failed = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as Error] : []));
  if (failed.length) {
    if (failed.length === 1) throw failed[0];
    throw new ProvisionError(`${failed.length} hosts unreachable:\n${failed.map((e) => `  ${e.message}`).join('\n')}`, (failed[0] as { hint?: string }).hint);
  }
  const [client, lb, ...backends] = hosts as [SshHost, SshHost, ...SshHost[]];
  return { client, lb, backends };
}

export async function buildBaremetalTopology(spec: Spec, opts: BaremetalOptions, teardown: Teardown): Promise<RunTopology> {
  const log = opts.log ?? (() => {});
  if (opts.backends > spec.backendHosts.length) {
    throw new ProvisionError(`the topology lists ${spec.backendHosts.length} backend hosts, the scenario needs ${opts.backends}`, 'add hosts to backendHosts or lower sweep.backends');
  }
  const opened = opts.conn ?? (await connectAll(spec, teardown, opts.backends));
  const conn = { ...opened, backends: opened.backends.slice(0, opts.backends) };
  const workDir = join(WORK_ROOT, opts.runId);
  const all: [Host, string][] = [[conn.client, 'client'], [conn.lb, 'lb'], ...conn.backends.map((h, i): [Host, string] => [h, `be${i}`])];
  await Promise.all(all.map(([h]) => h.exec(['mkdir', '-p', workDir])));
  teardown.add(`remove ${workDir} on every host`, () => Promise.all(all.map(([h]) => h.exec(['rm', '-rf', workDir], { check: false }))).then(() => undefined));

  const { vip } = spec;
  const lbHost = conn.lb;
  const v6 = opts.ipv6 ? ipv6Addresses(spec, conn.backends.length) : undefined;
  await setSysctls(lbHost, 'lb', { 'net.ipv4.ip_forward': '1', ...(v6 ? { 'net.ipv6.conf.all.forwarding': '1' } : {}) }, teardown);
  // IPv6 has no AnyIP for bind(): the connection testers' pool addresses need nonlocal binds.
  if (v6) await setSysctls(conn.client, 'client', { 'net.ipv6.ip_nonlocal_bind': '1' }, teardown);
  await addVip(lbHost, vip, teardown);
  if (v6) await addVip(lbHost, v6.vip, teardown);
  if (spec.routes) {
    const route = async (h: Host, role: string, dst: string, via: string) => {
      const ip = ipCmd(via);
      await h.exec([...ip, 'route', 'replace', dst, 'via', via]);
      teardown.add(`remove route ${dst} on ${role}`, () => h.exec([...ip, 'route', 'del', dst, 'via', via], { check: false }));
    };
    const families = [
      { pool: PLAN.sourcePool, client: spec.client.ip, lbClient: spec.lb.clientIp, lbBackend: spec.lb.backendIp, vip },
      ...(v6 ? [{ pool: PLAN6.sourcePool, client: v6.client, lbClient: v6.lbClient, lbBackend: v6.lbBackend, vip: v6.vip }] : []),
    ];
    for (const f of families) {
      await route(conn.client, 'client', hostPrefix(f.vip), f.lbClient);
      // The connection testers' source-pool addresses are the client's (a local route on its lo)
      // and their replies must come back through the LB, from the LB and from the backends alike.
      await localRoute(conn.client, f.pool, teardown);
      await route(lbHost, 'lb', f.pool, f.client);
      await Promise.all(conn.backends.map((h, i) => route(h, `be${i}`, hostPrefix(f.client), f.lbBackend)));
      await Promise.all(conn.backends.map((h, i) => route(h, `be${i}`, f.pool, f.lbBackend)));
    }
  }

  const servers: BackendServer[] = [];
  const backends: BackendNode[] = conn.backends.map((host, i) => ({ name: `be${i}`, host, ip: spec.backendHosts[i]!.ip, port: BACKEND_PORT, statusPort: BACKEND_STATUS_PORT }));
  for (const be of backends) {
    const s = await startBackendNginx(be.host, be.name, join(workDir, be.name), { workers: spec.backendWorkers, cpus: opts.serverCpus, ipv6: v6 !== undefined });
    teardown.add(`stop nginx on ${be.name}`, () => s.proc.stop());
    servers.push(s);
  }
  // The data plane must work before any LB is measured on it.
  await Promise.all(
    backends.flatMap((b, i) => [b.ip, ...(v6 ? [v6.backends[i]!] : [])].map(async (ip) => {
      const r = await conn.lb.exec(['curl', '-sS', '-g', '-o', '/dev/null', '--max-time', '3', `http://${hostPort(ip, b.port)}/`], { check: false });
      if (r.code !== 0) throw new ProvisionError(`the LB host cannot reach ${b.name}'s nginx at ${hostPort(ip, b.port)}: ${(r.stdout + r.stderr).trim().split('\n').pop()}`, `check ${spec.lb.backendInterface} and the backend network (and that curl is installed on the LB host)`);
    })),
  );
  log(`bare-metal topology: client ${spec.client.ip}, lb ${spec.lb.clientIp}/${spec.lb.backendIp}, ${backends.length} backends up`);

  const client: Node = { name: 'client0', host: conn.client, ip: spec.client.ip };
  const lb: LbNode = {
    name: 'lb0',
    host: lbHost,
    ip: spec.lb.backendIp,
    clientIf: spec.lb.clientInterface,
    clientIp: spec.lb.clientIp,
    backendIf: spec.lb.backendInterface,
    backendIp: spec.lb.backendIp,
  };
  const built: RunTopology = {
    runId: opts.runId,
    prefix: `${NAME_PREFIX}${opts.runId.slice(-4)}-`,
    client,
    lb,
    backends,
    vip,
    // The device under test: preflight, idle checks and the fingerprint look here.
    root: lbHost,
    workDir,
    namespaces: [],
    async backendCounters() {
      const counts = await Promise.all(servers.map((s, i) => remoteBackendRequests(backends[i]!.host, [s.statusSocket]).then((c) => c[0]!)));
      return Object.fromEntries(servers.map((s, i) => [s.name, counts[i]!]));
    },
  };
  if (v6) built.v6 = addressView(built, v6);
  return built;
}

/** The topology file's IPv6 addresses (the loader refused family 6 without them). */
function ipv6Addresses(spec: Spec, n: number): ViewAddresses {
  const missing = ipv6Fields(spec).filter((f) => f.value === undefined);
  if (missing.length) throw new ProvisionError(`family 6 needs ${missing.map((f) => f.name).join(', ')} in the topology`, 'give every host its IPv6 address (topologies/baremetal-example.yaml)');
  return {
    client: spec.client.ip6!,
    lbClient: spec.lb.clientIp6!,
    lbBackend: spec.lb.backendIp6!,
    backends: spec.backendHosts.slice(0, n).map((b) => b.ip6!),
    vip: spec.vip6,
  };
}

/** The VIP on the LB host's lo for the run, unless the host has it already (then it stays). */
async function addVip(h: Host, vip: string, teardown: Teardown): Promise<void> {
  const fam = familyOf(vip) === 6 ? '-6' : '-4';
  if ((await h.exec(['ip', fam, '-o', 'addr', 'show', 'dev', 'lo'])).stdout.includes(` ${hostPrefix(vip)} `)) return;
  // nodad: an IPv6 VIP on lo must be usable at once, not tentative for a second.
  await h.exec(['ip', 'addr', 'add', hostPrefix(vip), 'dev', 'lo', ...(fam === '-6' ? ['nodad'] : [])]);
  teardown.add(`remove VIP ${vip} from the LB host`, () => h.exec(['ip', 'addr', 'del', hostPrefix(vip), 'dev', 'lo'], { check: false }));
}

/** A local route for an address pool on the client's lo (AnyIP), unless it is there already. */
async function localRoute(h: Host, pool: string, teardown: Teardown): Promise<void> {
  const ip = ipCmd(pool);
  if ((await h.exec([...ip, 'route', 'show', 'table', 'local', 'type', 'local', pool])).stdout.trim()) return;
  await h.exec([...ip, 'route', 'add', 'local', pool, 'dev', 'lo']);
  teardown.add(`remove local route ${pool} on client`, () => h.exec([...ip, 'route', 'del', 'local', pool, 'dev', 'lo'], { check: false }));
}
