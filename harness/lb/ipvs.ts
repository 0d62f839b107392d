// Linux IPVS in its three forwarding methods. This host's kernel has no ip_vs, so in practice it
// runs on a qemu topology (the whole netns topology inside a Debian guest) or on real hosts; the
// driver itself only needs a Host whose kernel has the modules.
import { familyOf, hostPort, hostPrefix, type Family } from './family.ts';
import type { Deployed, LbDriver } from './types.ts';
import type { LbSpec } from '../scenario/schema.ts';
import type { BackendNode } from '../topology/types.ts';
import type { Host } from '../host/types.ts';
import { ParseError, PreflightError, ProvisionError } from '../errors.ts';
import type { Teardown } from '../teardown.ts';
import { requireTools, toolVersion } from './preflight.ts';
import { addVipToBackends } from './vip.ts';
import { setSysctls } from '../host/sysctl.ts';
import { sleep } from '../util/time.ts';

type Spec = Extract<LbSpec, { kind: 'ipvs' }>;
export type IpvsMode = Spec['mode'];

const ESTIMATOR_MS = 2100;
const METHOD_FLAG: Record<IpvsMode, string> = { nat: '-m', tun: '-i', dr: '-g' };
const METHOD_NAME: Record<string, IpvsMode> = { Masq: 'nat', Tunnel: 'tun', Route: 'dr' };

export interface RealServer {
  ip: string;
  port: number;
  weight: number;
}

/** ipvsadm-restore input for one TCP virtual service and its real servers (one transaction, no half state). */
export function restoreInput(vip: string, port: number, spec: Pick<Spec, 'mode' | 'scheduler'>, servers: RealServer[]): string {
  const svc = hostPort(vip, port);
  return [
    `-A -t ${svc} -s ${spec.scheduler}`,
    // DR and TUN cannot change the port: the real server sees the VIP's port.
    ...servers.map((s) => `-a -t ${svc} -r ${hostPort(s.ip, spec.mode === 'nat' ? s.port : port)} ${METHOD_FLAG[spec.mode]} -w ${s.weight}`),
    '',
  ].join('\n');
}

/**
 * ipvsadm commands (argv after `ipvsadm`) taking the service from `from` to `to`: deletions, then
 * additions, then weight edits. A removed real server gets no new connection; IPVS keeps serving
 * the connections it already has until they end.
 */
export function diffCommands(vip: string, port: number, mode: IpvsMode, from: RealServer[], to: RealServer[]): string[][] {
  const svc = ['-t', hostPort(vip, port)];
  const key = (s: RealServer) => hostPort(s.ip, mode === 'nat' ? s.port : port);
  const had = new Map(from.map((s) => [key(s), s]));
  const want = new Map(to.map((s) => [key(s), s]));
  const out: string[][] = [];
  for (const k of had.keys()) if (!want.has(k)) out.push(['-d', ...svc, '-r', k]);
  for (const [k, s] of want) if (!had.has(k)) out.push(['-a', ...svc, '-r', k, METHOD_FLAG[mode], '-w', String(s.weight)]);
  for (const [k, s] of want) {
    const h = had.get(k);
    if (h && h.weight !== s.weight) out.push(['-e', ...svc, '-r', k, METHOD_FLAG[mode], '-w', String(s.weight)]);
  }
  return out;
}

export interface IpvsStats {
  service: { conns: number; inPkts: number; outPkts: number; inBytes: number; outBytes: number };
  servers: Record<string, { conns: number; inPkts: number; outPkts: number; inBytes: number; outBytes: number }>;
}

/**
 * `ipvsadm -Ln -t VIP:PORT --stats --exact`. Pure; a page without the service line or with a
 * malformed counter line is a ParseError (never zeros).
 */
export function parseStats(text: string): IpvsStats {
  const lines = text.split('\n');
  const num = (s: string) => {
    if (!/^\d+$/.test(s)) throw new ParseError(`not a counter: "${s}"`, 'ipvsadm --stats', text.slice(0, 400));
    return Number(s);
  };
  const counters = (f: string[]) => ({ conns: num(f[0]!), inPkts: num(f[1]!), outPkts: num(f[2]!), inBytes: num(f[3]!), outBytes: num(f[4]!) });
  let service: IpvsStats['service'] | undefined;
  const servers: IpvsStats['servers'] = {};
  for (const line of lines) {
    const svc = /^(TCP|UDP|SCTP)\s+(\S+)\s+(.*)$/.exec(line);
    const rs = /^\s+->\s+(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\]):(\d+)\s+(.*)$/i.exec(line);
    if (svc) {
      const f = svc[3]!.trim().split(/\s+/);
      if (f.length !== 5) throw new ParseError(`service line has ${f.length} counters, expected 5`, 'ipvsadm --stats', line);
      service = counters(f);
    } else if (rs && service) {
      const f = rs[3]!.trim().split(/\s+/);
      if (f.length !== 5) throw new ParseError(`real server line has ${f.length} counters, expected 5`, 'ipvsadm --stats', line);
      // IPv6 real servers are printed in brackets; keyed by the bare address like IPv4 ones.
      servers[rs[1]!.replace(/^\[|\]$/g, '')] = counters(f);
    }
  }
  if (!service) throw new ParseError('no virtual service in ipvsadm output', 'ipvsadm --stats', text.slice(0, 400));
  return { service, servers };
}

/** Forwarding method per real server from `ipvsadm -Ln` (Masq/Tunnel/Route), to confirm what the kernel holds. */
export function parseMethods(text: string): Record<string, IpvsMode> {
  const out: Record<string, IpvsMode> = {};
  for (const m of text.matchAll(/^\s+->\s+(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\]):\d+\s+(Masq|Tunnel|Route)\s/gim)) out[m[1]!.replace(/^\[|\]$/g, '')] = METHOD_NAME[m[2]!]!;
  return out;
}

/** The tunnel module a tun real server decapsulates with: IPVS encapsulates IPv6 in IPv6. */
const tunnelModule = (family: Family) => (family === 6 ? 'ip6_tunnel' : 'ipip');

async function probeModules(host: Host, spec: Spec, family: Family = 4): Promise<void> {
  const mods = ['ip_vs', `ip_vs_${spec.scheduler}`, ...(spec.mode === 'tun' ? [tunnelModule(family)] : [])];
  for (const m of mods) {
    // Built in, already loaded, or loadable: any of these will do.
    const r = await host.exec(['sh', '-c', 'test -d "/sys/module/$1" || modprobe "$1"', 'sh', m], { check: false });
    if (r.code !== 0) {
      const noVs = m === 'ip_vs';
      throw new PreflightError(
        `ipvs: the kernel on ${host.name} has no ${m} module${noVs ? ' (no IPVS)' : ''}: ${(r.stderr || r.stdout).trim().split('\n').pop() ?? ''}`,
        noVs || m === 'ipip' || m === 'ip6_tunnel'
          ? 'run IPVS in a guest with Debian\'s kernel: topology: {kind: qemu} (see scenarios/ipvs-vm.yaml), or on a host whose kernel has CONFIG_IP_VS' +
              (m === 'ipip' ? ' and CONFIG_NET_IPIP' : m === 'ip6_tunnel' ? ' and CONFIG_IPV6_TUNNEL' : '')
          : `use another scheduler (rr, wrr, lc, wlc, sh${m === 'ip_vs_mh' ? '' : ', mh'}); this kernel lacks ${m}`,
      );
    }
  }
}

export const ipvs: LbDriver<Spec> = {
  kind: 'ipvs',
  summary: 'Linux IPVS (ipvsadm): nat, tun (IP-in-IP; IPv6-in-IPv6) or dr (direct routing); rr/wrr/lc/wlc/sh/mh',
  ipv6: true,
  tools: [
    { cmd: 'ipvsadm', pkg: 'ipvsadm' },
    { cmd: 'modprobe', pkg: 'kmod' },
    { cmd: 'ip', pkg: 'iproute2' },
    { cmd: 'sysctl', pkg: 'procps' },
  ],
  async preflight(host, spec) {
    // The kernel first: on a host without ip_vs, installing ipvsadm would not help.
    await probeModules(host, spec);
    await requireTools(host, this.tools, 'ipvs');
  },
  async apply(ctx) {
    const { topo, spec } = ctx;
    const lb = topo.lb;
    const host = lb.host;
    const { vip } = topo;
    const port = ctx.port;
    if (spec.mode !== 'nat') {
      const off = ctx.backends.find((b) => b.port !== port);
      if (off) throw new ProvisionError(`ipvs ${spec.mode} cannot change ports: ${off.name} listens on ${off.port}, clients use ${port}`, 'use mode: nat');
    }
    const weights = new Map<string, number>(Object.entries(spec.weights ?? {}));
    const server = (b: BackendNode): RealServer => ({ ip: b.ip, port: b.port, weight: weights.get(b.name) ?? 1 });

    const { ledger: mine, release: remove } = ctx.teardown.child(`ipvs ${spec.mode} on ${lb.name}`);

    // Modules load in the guest's root namespace; services live in the LB node's namespace.
    await probeModules(topo.root, spec, familyOf(vip));
    // Connections of a deleted service stay in IPVS's table for minutes and, with the default
    // expire_nodest_conn=0, drop every packet that matches them — a client reusing a port would
    // hit the last LB's leftovers. With 1 such a packet expires the entry and is scheduled anew.
    const nodest = 'net.ipv4.vs.expire_nodest_conn';
    const wasNodest = (await host.exec(['sysctl', '-n', nodest])).stdout.trim();
    await host.exec(['sysctl', '-q', '-w', `${nodest}=1`]);
    mine.add(`restore ${nodest} on ${lb.name} once no connection is left`, async () => {
      const left = (await host.exec(['ipvsadm', '-Lnc'], { check: false })).stdout.split('\n').filter((l) => /^(TCP|UDP|SCTP)\s/.test(l)).length;
      if (left === 0) await host.exec(['sysctl', '-q', '-w', `${nodest}=${wasNodest}`], { check: false });
      else ctx.log(`ipvs: ${left} connection entries remain on ${lb.name}; leaving ${nodest}=1 so they cannot drop the next LB's packets`);
    });
    const withVip = new Set<string>();
    const prepareBackends = async (list: BackendNode[]) => {
      const fresh = list.filter((b) => !withVip.has(b.name));
      if (spec.mode === 'nat' || !fresh.length) return;
      if (spec.mode === 'dr') await addVipToBackends(fresh, vip, mine);
      else await Promise.all(fresh.map((b) => holdVipOnTunnel(b, vip, mine)));
      // Where the topology can, replies go straight to the client, as in a real DR/TUN setup.
      await topo.directReturn?.(fresh, mine);
      fresh.forEach((b) => withVip.add(b.name));
    };
    if (spec.mode !== 'nat') {
      // Replies leave the backends with the VIP as source and, in this lab, route back through the
      // director, which holds the VIP too: without accept_local it drops them as martians.
      await setSysctls(host, lb.name, { [`net.ipv4.conf.${lb.backendIf}.accept_local`]: '1' }, mine);
    }
    await prepareBackends(ctx.backends);

    let current = ctx.backends.map(server);
    const svc = hostPort(vip, port);
    mine.add(`ipvsadm: delete service ${svc} on ${lb.name}`, () => host.exec(['ipvsadm', '-D', '-t', svc], { check: false }));
    await host.exec(['ipvsadm-restore'], { input: restoreInput(vip, port, spec, current) });
    const held = parseMethods((await host.exec(['ipvsadm', '-Ln', '-t', svc])).stdout);
    const wrong = Object.entries(held).filter(([, m]) => m !== spec.mode);
    if (wrong.length || Object.keys(held).length !== current.length) {
      throw new ProvisionError(`ipvs: the kernel holds ${JSON.stringify(held)}, expected ${current.length} real servers in ${spec.mode} mode`);
    }
    ctx.log(`ipvs ${spec.mode}/${spec.scheduler} on ${lb.name}: ${vip}:${port} → ${current.length} real servers`);

    const apply = async (next: RealServer[]) => {
      for (const cmd of diffCommands(vip, port, spec.mode, current, next)) await host.exec(['ipvsadm', ...cmd]);
      current = next;
    };
    // The kernel publishes these counters from its estimator timer, every 2 s: read sooner and the
    // last packets of a repetition land in the next one.
    const stats = async () => (await sleep(ESTIMATOR_MS), parseStats((await host.exec(['ipvsadm', '-Ln', '-t', svc, '--stats', '--exact'])).stdout));
    const nameOf = (ip: string) => topo.backends.find((b) => b.ip === ip)?.name ?? ip;

    const deployed: Deployed = {
      endpoint: { ip: vip, port },
      async setBackends(list) {
        await prepareBackends(list);
        await apply(list.map(server));
      },
      async setWeights(w) {
        for (const [name, v] of Object.entries(w)) weights.set(name, v);
        await apply(current.map((s) => ({ ...s, weight: weights.get(nameOf(s.ip)) ?? s.weight })));
      },
      async counters() {
        const s = await stats();
        const out: Record<string, number> = {};
        for (const [ip, c] of Object.entries(s.servers)) {
          const n = nameOf(ip);
          Object.assign(out, { [`conns.${n}`]: c.conns, [`inPkts.${n}`]: c.inPkts, [`outPkts.${n}`]: c.outPkts });
        }
        return Object.assign(out, { conns: s.service.conns, inPkts: s.service.inPkts, outPkts: s.service.outPkts });
      },
      async describe() {
        const [version, list, sysctls] = await Promise.all([
          toolVersion(host, ['ipvsadm', '--version']),
          host.exec(['ipvsadm', '-Ln']),
          host.exec(['sh', '-c', `sysctl net.ipv4.vs.conntrack net.ipv4.vs.expire_nodest_conn net.ipv4.conf.${lb.backendIf}.accept_local 2>&1`], { check: false }),
        ]);
        const config = [
          `# ipvs mode=${spec.mode} scheduler=${spec.scheduler} on ${lb.name}` +
            (spec.mode === 'nat' ? '' : `; VIP held by the backends (${spec.mode === 'dr' ? 'lo, arp_ignore=1/arp_announce=2' : familyOf(vip) === 6 ? 'ip6tnl0' : 'tunl0, rp_filter=0'})`),
          `# replies: ${spec.mode === 'nat' ? 'through the director (NAT)' : topo.directReturn ? 'straight to the client, bypassing the director' : 'by your network\'s routing'}`,
          `# weights: ${current.map((s) => `${nameOf(s.ip)}=${s.weight}`).join(' ')}`,
          ...sysctls.stdout.trim().split('\n').map((l) => `# ${l}`),
          list.stdout.trimEnd(),
          '',
        ].join('\n');
        return { version, config };
      },
      teardown: remove,
    };
    return deployed;
  },
};

/**
 * Decapsulation on a real server. IPv4: ipip's fallback device tunl0 up with the VIP, rp_filter off
 * where the inner packet arrives. IPv6: IPVS sends IPv6-in-IPv6 (next header 41), which the
 * ip6_tunnel module's fallback device ip6tnl0 (any local, any remote) takes once it is up; the VIP
 * on it (nodad) makes the inner packet local. IPv6 has no rp_filter, and neighbour discovery
 * answers only for addresses of the asking interface, so the VIP stays silent on the segment.
 */
async function holdVipOnTunnel(b: BackendNode, vip: string, teardown: Teardown): Promise<void> {
  if (familyOf(vip) === 6) {
    await b.host.exec(['ip', 'link', 'set', 'ip6tnl0', 'up']);
    teardown.add(`ip6tnl0 down on ${b.name}`, () => b.host.exec(['ip', 'link', 'set', 'ip6tnl0', 'down'], { check: false }));
    await b.host.exec(['ip', 'addr', 'replace', hostPrefix(vip), 'dev', 'ip6tnl0', 'nodad']);
    teardown.add(`remove VIP ${vip} from ${b.name} ip6tnl0`, () => b.host.exec(['ip', 'addr', 'del', hostPrefix(vip), 'dev', 'ip6tnl0'], { check: false }));
    return;
  }
  await b.host.exec(['ip', 'link', 'set', 'tunl0', 'up']);
  teardown.add(`tunl0 down on ${b.name}`, () => b.host.exec(['ip', 'link', 'set', 'tunl0', 'down'], { check: false }));
  await setSysctls(
    b.host,
    b.name,
    { 'net.ipv4.conf.tunl0.rp_filter': '0', 'net.ipv4.conf.all.rp_filter': '0', 'net.ipv4.conf.all.arp_ignore': '1', 'net.ipv4.conf.all.arp_announce': '2' },
    teardown,
  );
  await b.host.exec(['ip', 'addr', 'replace', `${vip}/32`, 'dev', 'tunl0']);
  teardown.add(`remove VIP ${vip} from ${b.name} tunl0`, () => b.host.exec(['ip', 'addr', 'del', `${vip}/32`, 'dev', 'tunl0'], { check: false }));
}
