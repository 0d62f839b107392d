// Existing machines with roles, reached over SSH: the lab a user already has. Nothing is wired
// here (the links are real); the harness only adds what a run needs — the VIP on the LB host,
// host routes through it, forwarding, the backends' nginx — and takes all of it away afterwards.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Host } from '../host/types.ts';
import { connectSsh, type SshHost, type SshTarget } from '../host/ssh.ts';
import type { Teardown } from '../teardown.ts';
import type { BaremetalTopologySpec } from '../scenario/schema.ts';
import type { z } from 'zod';
import { ProvisionError } from '../errors.ts';
import { setSysctls } from '../host/sysctl.ts';
import { BACKEND_PORT, BACKEND_STATUS_PORT, startBackendNginx, type BackendServer } from './backends.ts';
import { NAME_PREFIX, PLAN } from './address-plan.ts';
import { WORK_ROOT } from './leftovers.ts';
import { remoteBackendRequests, type RunTopology } from './netns.ts';
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
  await setSysctls(lbHost, 'lb', { 'net.ipv4.ip_forward': '1' }, teardown);
  const hasVip = (await lbHost.exec(['ip', '-o', 'addr', 'show', 'dev', 'lo'])).stdout.includes(` ${vip}/32 `);
  if (!hasVip) {
    await lbHost.exec(['ip', 'addr', 'add', `${vip}/32`, 'dev', 'lo']);
    teardown.add(`remove VIP ${vip} from the LB host`, () => lbHost.exec(['ip', 'addr', 'del', `${vip}/32`, 'dev', 'lo'], { check: false }));
  }
  if (spec.routes) {
    const route = async (h: Host, role: string, dst: string, via: string) => {
      await h.exec(['ip', 'route', 'replace', dst, 'via', via]);
      teardown.add(`remove route ${dst} on ${role}`, () => h.exec(['ip', 'route', 'del', dst, 'via', via], { check: false }));
    };
    await route(conn.client, 'client', `${vip}/32`, spec.lb.clientIp);
    // Source-pool addresses (connection testers) must come back through the LB as well.
    await route(lbHost, 'lb', PLAN.sourcePool, spec.client.ip);
    await Promise.all(conn.backends.map((h, i) => route(h, `be${i}`, `${spec.client.ip}/32`, spec.lb.backendIp)));
  }

  const servers: BackendServer[] = [];
  const backends: BackendNode[] = conn.backends.map((host, i) => ({ name: `be${i}`, host, ip: spec.backendHosts[i]!.ip, port: BACKEND_PORT, statusPort: BACKEND_STATUS_PORT }));
  for (const be of backends) {
    const s = await startBackendNginx(be.host, be.name, join(workDir, be.name), { workers: spec.backendWorkers, cpus: opts.serverCpus });
    teardown.add(`stop nginx on ${be.name}`, () => s.proc.stop());
    servers.push(s);
  }
  // The data plane must work before any LB is measured on it.
  await Promise.all(
    backends.map(async (b) => {
      const r = await conn.lb.exec(['curl', '-sS', '-o', '/dev/null', '--max-time', '3', `http://${b.ip}:${b.port}/`], { check: false });
      if (r.code !== 0) throw new ProvisionError(`the LB host cannot reach ${b.name}'s nginx at ${b.ip}:${b.port}: ${(r.stdout + r.stderr).trim().split('\n').pop()}`, `check ${spec.lb.backendInterface} and the backend network (and that curl is installed on the LB host)`);
    }),
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
  return {
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
}
