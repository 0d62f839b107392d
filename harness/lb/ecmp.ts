// ECMP as the load balancer, in the xcluster arrangement: the LB node is only a router holding a
// multipath route to the VIP, and every backend is an "LB node" of its own that holds the VIP. The
// router's multipath hash is then the whole balancing algorithm, which is what a cluster fronted by
// ECMP gets from its router: no state, no conntrack, and a reshuffle whenever the nexthop set
// changes (classic) or only the departed/required buckets moving (resilient).
import { join } from 'node:path';
import type { Deployed, LbContext, LbDriver } from './types.ts';
import type { LbSpec } from '../scenario/schema.ts';
import type { BackendNode, Topology } from '../topology/types.ts';
import type { Host, Spawned } from '../host/types.ts';
import { PreflightError, ProvisionError } from '../errors.ts';
import type { Teardown } from '../teardown.ts';
import { requireTools, toolVersion } from './preflight.ts';
import { tail } from './proc.ts';
import { takeLinkDown } from '../host/link-down.ts';
import { addVipToBackends, releaseVipFromLbNode } from './vip.ts';
import { familyOf, hostPrefix, ipCmd } from './family.ts';
import { setSysctls } from '../host/sysctl.ts';
import { waitFor } from '../util/time.ts';

type Spec = Extract<LbSpec, { kind: 'ecmp' }>;

/**
 * Nexthop object ids on the router: well clear of the small ids people (and `ip nexthop` examples)
 * use by hand. A backend's member id follows its position in the topology, not in the current set,
 * so it keeps its id — and with it its buckets — across backend changes.
 */
export const GROUP_ID = 999;
export const memberId = (slot: number): number => 1000 + slot;

/**
 * eBGP with one private 4-byte ASN per speaker: each backend's path is then "external, AS path
 * length 1, origin IGP" like every other one, which is exactly what bird needs to call the paths
 * equivalent and merge them (bgp_rte_mergable: same local_pref, path length, origin, MED,
 * external-ness, IGP metric). iBGP would also merge, but needs a full mesh or a reflector
 * configuration for nothing here.
 */
export const ROUTER_ASN = 4_200_000_000;
export const speakerAsn = (slot: number): number => ROUTER_ASN + 1 + slot;

export const HASH_POLICY = 'net.ipv4.fib_multipath_hash_policy';
/** IPv6 has its own: the IPv4 one does not govern IPv6 routes (whose default hash includes the flow label). */
export const HASH_POLICY6 = 'net.ipv6.fib_multipath_hash_policy';
/** 1 = L4 hash (addresses, ports, protocol): with one client address the source ports still spread. */
const L4_HASH = '1';

/**
 * Fast BGP: hold 3 s is the RFC minimum; the defaults (first connect 5 s after start, 60–300 s
 * back-off after an error) would make a deployment wait for many seconds before any session
 * exists. 1 s is bird's floor for the connect delay (bgp_active: MAX(1, connect_delay_time)); with
 * bird's first UPDATE leaving about a keepalive after the session is up, 3 sessions converge in
 * 1–2 s here.
 */
export const BGP_TIMERS = ['hold time 3;', 'keepalive time 1;', 'connect retry time 1;', 'connect delay time 1;', 'error wait time 1, 2;'];

const ROUTE_TIMEOUT_MS = 5_000;
const BGP_TIMEOUT_MS = 20_000;
const POLL_MS = 5;
// sockaddr_un.sun_path is 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH = 107;

/** A backend as the router sees it: its slot (index in topo.backends) fixes nexthop id and ASN. */
export interface Member {
  name: string;
  ip: string;
  slot: number;
}

export function toMembers(topo: Pick<Topology, 'backends'>, list: BackendNode[]): Member[] {
  return list
    .map((b) => {
      const slot = topo.backends.findIndex((x) => x.name === b.name);
      if (slot < 0) throw new ProvisionError(`ecmp: backend ${b.name} is not part of this topology`);
      return { name: b.name, ip: b.ip, slot };
    })
    .sort((a, b) => a.slot - b.slot);
}

// --- static: route and nexthop commands --------------------------------------------------------

/** What the static control plane has put into the router's tables (or may have, after a failure). */
export interface StaticState {
  routed: boolean;
  group: boolean;
  nexthops: number[];
}
export const EMPTY_STATE: StaticState = { routed: false, group: false, nexthops: [] };

/**
 * `ip -b` lines that take the router from `state` to routing the VIP over `members` (none: no
 * route, so the router answers "unreachable"), and the state afterwards.
 *
 * classic: one multipath route, rewritten whole (hash-threshold: most flows may move).
 * resilient: member nexthops are created once and never rewritten (even an identical `replace`
 * notifies every route using it), the group is replaced in place, and the route is written only
 * once: the kernel then moves only the buckets it must. `idle_timer 0` lets buckets move at once
 * instead of waiting for them to go idle, so a change is visible immediately, as with classic.
 */
export function staticRouteLines(
  spec: Pick<Spec, 'nexthops' | 'buckets'>,
  vip: string,
  dev: string,
  members: Member[],
  state: StaticState,
): { lines: string[]; next: StaticState } {
  const dst = hostPrefix(vip);
  if (spec.nexthops === 'classic') {
    if (!members.length) return { lines: state.routed ? [`route del ${dst}`] : [], next: EMPTY_STATE };
    const hops = members.map((m) => `nexthop via ${m.ip} dev ${dev}`).join(' ');
    return { lines: [`route replace ${dst} ${hops}`], next: { routed: true, group: false, nexthops: [] } };
  }
  const want = members.map((m) => memberId(m.slot));
  const stale = state.nexthops.filter((id) => !want.includes(id));
  if (!members.length) {
    return {
      lines: [
        ...(state.routed ? [`route del ${dst}`] : []),
        ...(state.group ? [`nexthop del id ${GROUP_ID}`] : []),
        ...stale.map((id) => `nexthop del id ${id}`),
      ],
      next: EMPTY_STATE,
    };
  }
  return {
    lines: [
      ...members
        .filter((m) => !state.nexthops.includes(memberId(m.slot)))
        .map((m) => `nexthop replace id ${memberId(m.slot)} via ${m.ip} dev ${dev}`),
      `nexthop replace id ${GROUP_ID} group ${want.join('/')} type resilient buckets ${spec.buckets} idle_timer 0`,
      ...(state.routed ? [] : [`route replace ${dst} nhid ${GROUP_ID}`]),
      ...stale.map((id) => `nexthop del id ${id}`),
    ],
    next: { routed: true, group: true, nexthops: want },
  };
}

/** Everything either state may hold: what to remove when a batch failed half-way. */
function unionState(a: StaticState, b: StaticState): StaticState {
  return { routed: a.routed || b.routed, group: a.group || b.group, nexthops: [...new Set([...a.nexthops, ...b.nexthops])] };
}

// --- bgp: bird configs -------------------------------------------------------------------------

const q = (s: string) => JSON.stringify(s);
/** A bird symbol for a node name ("rt" and other words are keywords in bird, hence the prefix). */
export const birdProto = (name: string): string => `bgp_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;

/** bird's channel and the VIP as a host route, for the VIP's family. */
const birdFamily = (vip: string) => ({ ch: familyOf(vip) === 6 ? 'ipv6' : 'ipv4', net: hostPrefix(vip) });

/**
 * bird's router id is always a 32-bit number in IPv4 notation ("router id 2001:…" is a syntax
 * error): an IPv4 address as it is, an IPv6 one by its last group, unique in our plan.
 */
export function routerId(ip: string): string {
  if (familyOf(ip) === 4) return ip;
  const last = parseInt(ip.split(':').at(-1) || '0', 16);
  return `0.0.${last >> 8}.${last & 255}`;
}

/**
 * The router (LB node): one passive eBGP neighbor per backend, VIP/32 only, and `merge paths` in
 * the kernel protocol — without it bird installs only the best path, i.e. no ECMP at all.
 * Passive: the speakers connect, so the router never races them into a collision.
 */
export function routerBirdConf(o: { vip: string; routerIp: string; members: Member[]; logFile: string }): string {
  const { ch, net } = birdFamily(o.vip);
  return [
    '# generated by lbbench: ECMP router; merges the backends\' VIP announcements into one multipath route',
    `log ${q(o.logFile)} all;`,
    `router id ${routerId(o.routerIp)};`,
    'protocol device {}',
    `protocol kernel kernel${ch.slice(-1)} {`,
    `  ${ch} {`,
    '    import none;',
    `    export where net = ${net};`,
    '  };',
    '  merge paths on;',
    '}',
    'template bgp lbnode {',
    `  local ${o.routerIp} as ${ROUTER_ASN};`,
    '  passive on;',
    ...BGP_TIMERS.map((t) => `  ${t}`),
    `  ${ch} {`,
    `    import where net = ${net};`,
    '    export none;',
    '  };',
    '}',
    ...o.members.flatMap((m) => [
      `protocol bgp ${birdProto(m.name)} from lbnode {`,
      `  neighbor ${m.ip} as ${speakerAsn(m.slot)};`,
      '}',
    ]),
    '',
  ].join('\n');
}

/** Name of the speaker's static protocol: disabling it withdraws the VIP, enabling announces it. */
export const ANNOUNCE_PROTO = 'vip';
const SPEAKER_BGP_PROTO = 'bgp_router';

/**
 * A backend (speaker): VIP/32 as a static route on lo, exported to the router only. No kernel
 * protocol, so bird never touches the backend's own table. ORIGIN is set explicitly because the
 * router only merges paths of equal origin (other daemons default to INCOMPLETE).
 */
export function speakerBirdConf(o: {
  vip: string;
  ip: string;
  slot: number;
  routerIp: string;
  announce: boolean;
  logFile: string;
}): string {
  const { ch, net } = birdFamily(o.vip);
  return [
    '# generated by lbbench: ECMP speaker; announces the VIP to the router',
    `log ${q(o.logFile)} all;`,
    `router id ${routerId(o.ip)};`,
    'protocol device {}',
    `protocol static ${ANNOUNCE_PROTO} {`,
    ...(o.announce ? [] : ['  disabled;']),
    `  ${ch};`,
    `  route ${net} via "lo";`,
    '}',
    `protocol bgp ${SPEAKER_BGP_PROTO} {`,
    `  local ${o.ip} as ${speakerAsn(o.slot)};`,
    `  neighbor ${o.routerIp} as ${ROUTER_ASN};`,
    ...BGP_TIMERS.map((t) => `  ${t}`),
    `  ${ch} {`,
    '    import none;',
    `    export filter { if net = ${net} then { bgp_origin = ORIGIN_IGP; accept; } reject; };`,
    '  };',
    '}',
    '',
  ].join('\n');
}

/** Protocol names in state Established from `birdc show protocols`. */
export function establishedProtocols(out: string): Set<string> {
  const up = new Set<string>();
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1] === 'BGP' && f[3] === 'up' && f.includes('Established')) up.add(f[0]!);
  }
  return up;
}

// --- observing the router ----------------------------------------------------------------------

/** Gateways of the VIP's route from `ip -j route show VIP/32`, sorted; [] when there is no route. */
export function routeGateways(json: string): string[] {
  const routes = JSON.parse(json || '[]') as { gateway?: string; nexthops?: { gateway?: string }[] }[];
  const gws = routes.flatMap((r) => (r.nexthops ? r.nexthops.map((h) => h.gateway) : [r.gateway]));
  return gws.filter((g): g is string => !!g).sort();
}

async function vipGateways(host: Host, vip: string): Promise<string[]> {
  // Route dumps default to IPv4: without -6 an IPv6 VIP's route reads as no route at all.
  return routeGateways((await host.exec([...ipCmd(vip), '-j', 'route', 'show', hostPrefix(vip)])).stdout);
}

function sameSet(a: string[], b: string[]): boolean {
  const [x, y] = [[...a].sort(), [...b].sort()];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Epoch ms of an `ip -ts` line's "[2026-11-23T09:39:37.000658]" (local time, as ip prints it). */
export function monitorEvents(out: string): { ms: number; text: string }[] {
  const events: { ms: number; text: string }[] = [];
  for (const line of out.split('\n')) {
    const m = /^\[(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d+)\]\s*(.*)$/.exec(line);
    if (!m) continue;
    const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
    const frac = Number(`0.${m[7]}`) * 1000;
    events.push({ ms: new Date(y, mo - 1, d, h, mi, s).getTime() + frac, text: m[8]! });
  }
  return events;
}

/** Monitor lines about the VIP's route or its nexthop group (added, replaced or deleted). */
export function isVipEvent(text: string, vip: string): boolean {
  const t = text.replace(/^Deleted /, '');
  return t === vip || t.startsWith(`${vip} `) || t.startsWith(`${hostPrefix(vip)} `) || t.startsWith(`id ${GROUP_ID} `);
}

export interface UpdateDelay {
  /** Issue → the router's table holding the new set. */
  ms: number;
  /** monitor: kernel notification time from `ip -ts monitor`; poll: first poll that saw it (upper bound). */
  source: 'monitor' | 'poll';
  from: number;
  to: number;
}

/**
 * The thesis' ECMP update delay: from issuing a change (a route write, a BGP announce/withdraw)
 * until the router's kernel table shows the new nexthop set. The time comes from `ip -ts monitor`
 * (the kernel's notification, free of our polling cost); polling every few ms only decides when it
 * is over, and is the fallback when the monitor saw nothing (not subscribed yet, or the node's clock
 * is not ours — the monitor stamps with the LB node's clock, the issue time is the harness's).
 */
export async function measureUpdateDelay(
  host: Host,
  vip: string,
  expectIps: string[],
  issue: () => Promise<void>,
  timeoutMs: number,
): Promise<UpdateDelay> {
  const from = (await vipGateways(host, vip)).length;
  const mon: Spawned = host.spawn(['ip', '-ts', 'monitor', 'route', 'nexthop'], { timeoutMs: timeoutMs + 30_000 });
  try {
    // Subscribed once its rtnetlink socket exists: events after that queue in the socket.
    await waitFor(
      async () =>
        !mon.running() ||
        (await host.exec(['ss', '-H', '-f', 'netlink', '-p'], { check: false })).stdout.includes(`/${mon.pid} `),
      { timeoutMs: 2000, intervalMs: POLL_MS },
    );
    const t0 = Date.now();
    await issue();
    const seen = await waitFor(async () => sameSet(await vipGateways(host, vip), expectIps), { timeoutMs, intervalMs: POLL_MS });
    const polled = Date.now();
    if (!seen) {
      throw new ProvisionError(
        `ecmp: the router's route to ${vip} did not become [${expectIps.join(', ')}] within ${timeoutMs} ms ` +
          `(now: [${(await vipGateways(host, vip)).join(', ')}])`,
      );
    }
    const out = await mon.stop(500);
    const last = monitorEvents(out.stdout)
      .filter((e) => isVipEvent(e.text, vip) && e.ms >= t0 - 1 && e.ms <= polled + 5)
      .at(-1);
    return last
      ? { ms: round(Math.max(0, last.ms - t0)), source: 'monitor', from, to: expectIps.length }
      : { ms: polled - t0, source: 'poll', from, to: expectIps.length };
  } finally {
    await mon.stop(500);
  }
}

const round = (ms: number) => Math.round(ms * 100) / 100;

// --- the driver --------------------------------------------------------------------------------

export interface EcmpDeployed extends Deployed {
  /** One entry per setBackends call that changed the set, in order. */
  updateDelays(): UpdateDelay[];
}

/** The part that differs between static and BGP: how the router's route comes to be. */
interface ControlPlane {
  /** Untimed work before a change (BGP: start speakers for new backends, wait for sessions). */
  prepare(members: Member[]): Promise<void>;
  /** The change itself; the update delay runs from its start. */
  issue(members: Member[]): Promise<void>;
  version(): Promise<string>;
  /** Why a change may not have reached the router, for error messages. */
  diagnose(): Promise<string>;
  /** notes: "# " lines for the header; sections: dumps appended after the route tables. */
  describe(): Promise<{ notes: string[]; sections: string[] }>;
}

function resilientBgpUnsupported(): PreflightError {
  return new PreflightError(
    'ecmp: mode bgp with nexthops resilient is not supported: bird installs its merged multipath ' +
      'route as a plain RTA_MULTIPATH route and cannot drive a kernel nexthop group',
    'use nexthops: classic with mode: bgp, or mode: static for a resilient nexthop group',
  );
}

async function ipBatch(host: Host, lines: string[], force = false): Promise<void> {
  if (!lines.length) return;
  await host.exec(['ip', ...(force ? ['-force'] : []), '-b', '-'], { input: lines.join('\n') + '\n', check: !force });
}

function staticPlane(ctx: LbContext<Spec>, own: Teardown): ControlPlane {
  const { host, backendIf: dev, name } = ctx.topo.lb;
  const { vip } = ctx.topo;
  let state: StaticState = EMPTY_STATE;
  own.add(`remove ECMP route ${vip} and nexthops on ${name}`, async () => {
    await ipBatch(host, staticRouteLines(ctx.spec, vip, dev, [], state).lines, true);
    state = EMPTY_STATE;
  });
  return {
    async prepare() {},
    async issue(members) {
      const { lines, next } = staticRouteLines(ctx.spec, vip, dev, members, state);
      const prev = state;
      state = unionState(prev, next);
      await ipBatch(host, lines);
      state = next;
    },
    version: () => toolVersion(host, ['ip', '-V']),
    diagnose: async () => `ip nexthop show on ${name}:\n${(await host.exec(['ip', 'nexthop', 'show'], { check: false })).stdout.trim() || '(none)'}`,
    async describe() {
      return { notes: [], sections: [] };
    },
  };
}

interface Bird {
  node: string;
  host: Host;
  dir: string;
  sock: string;
  proc: Spawned;
}

async function startBird(host: Host, node: string, dir: string, text: string, own: Teardown): Promise<Bird> {
  const file = join(dir, 'bird.conf');
  const sock = join(dir, 'bird.ctl');
  if (Buffer.byteLength(sock) > MAX_SOCKET_PATH) {
    throw new ProvisionError(`ecmp: bird's control socket path is too long for a unix socket: ${sock}`, 'use a shorter work directory');
  }
  await host.writeFile(file, text);
  const check = await host.exec(['bird', '-p', '-c', file], { check: false });
  if (check.code !== 0) throw new ProvisionError(`bird rejected ${file}:\n${tail(`${check.stdout}\n${check.stderr}`)}`);
  // -f: bird stays our child (a forked bird is re-parented to PID 1, which does not reap here).
  const proc = host.spawn(['bird', '-f', '-c', file, '-s', sock, '-P', join(dir, 'bird.pid')]);
  own.add(`stop bird on ${node}`, () => proc.stop());
  const up = await waitFor(async () => !proc.running() || (await host.exec(['test', '-S', sock], { check: false })).code === 0, {
    timeoutMs: 10_000,
    intervalMs: 20,
  });
  if (!up || !proc.running()) {
    const out = await proc.stop(500);
    throw new ProvisionError(`bird on ${node} did not start: ${tail(`${out.stdout}\n${out.stderr}`) || '(no output)'}`, `try: bird -p -c ${file}`);
  }
  return { node, host, dir, sock, proc };
}

async function birdc(b: Bird, args: string[]): Promise<string> {
  const r = await b.host.exec(['birdc', '-s', b.sock, ...args], { check: false, timeoutMs: 10_000 });
  return `${r.stdout}${r.stderr}`;
}

async function bgpPlane(ctx: LbContext<Spec>, own: Teardown, initial: Member[]): Promise<ControlPlane> {
  const { topo } = ctx;
  const lb = topo.lb;
  const { vip } = topo;
  const routerIp = lb.backendIp;
  const dirOf = (node: string) => join(ctx.workDir, `bird-${node}`);
  const known: Member[] = [...initial];
  const routerText = () => routerBirdConf({ vip, routerIp, members: known, logFile: join(dirOf(lb.name), 'bird.log') });

  // bird's kernel protocol removes its routes on a clean stop; this covers a bird that was killed.
  own.add(`remove ${vip} route on ${lb.name}`, () => lb.host.exec(['ip', 'route', 'del', hostPrefix(vip)], { check: false }));
  const router = await startBird(lb.host, lb.name, dirOf(lb.name), routerText(), own);

  const speakers = new Map<string, Bird & { announced: boolean; slot: number }>();
  const sortedSpeakers = () => [...speakers.values()].sort((a, b) => a.slot - b.slot);
  const startSpeaker = async (m: Member, announce: boolean) => {
    const be = topo.backends[m.slot]!;
    const dir = dirOf(m.name);
    const text = speakerBirdConf({ vip, ip: m.ip, slot: m.slot, routerIp, announce, logFile: join(dir, 'bird.log') });
    const b = await startBird(be.host, m.name, dir, text, own);
    speakers.set(m.name, { ...b, announced: announce, slot: m.slot });
  };

  const protocols = () => birdc(router, ['show', 'protocols']);
  const failure = async (what: string) => {
    const dead = [router, ...speakers.values()].filter((b) => !b.proc.running()).map((b) => b.node);
    return new ProvisionError(
      `ecmp bgp: ${what}${dead.length ? ` (bird exited on ${dead.join(', ')})` : ''}\n` +
        `birdc show protocols on ${lb.name}:\n${(await protocols()).trim()}`,
      `see the bird logs under ${ctx.workDir}`,
    );
  };

  const t0 = Date.now();
  await Promise.all(initial.map((m) => startSpeaker(m, true)));
  const want = initial.map((m) => m.ip);
  const converged = await waitFor(async () => sameSet(await vipGateways(lb.host, vip), want), {
    timeoutMs: BGP_TIMEOUT_MS,
    intervalMs: 20,
  });
  if (!converged) throw await failure(`${lb.name}'s route to ${vip} did not reach ${want.length} nexthops within ${BGP_TIMEOUT_MS / 1000}s`);
  const convergedMs = Date.now() - t0;
  ctx.log(`ecmp bgp: ${want.length} paths to ${vip} merged on ${lb.name} after ${convergedMs} ms`);

  return {
    async prepare(members) {
      const fresh = members.filter((m) => !speakers.has(m.name));
      if (!fresh.length) return;
      known.push(...fresh.filter((m) => !known.some((k) => k.name === m.name)));
      known.sort((a, b) => a.slot - b.slot);
      await lb.host.writeFile(join(router.dir, 'bird.conf'), routerText());
      const r = await birdc(router, ['configure']);
      if (!/Reconfigur/.test(r) || /error|failed/i.test(r)) throw await failure(`reconfiguring the router failed: ${r.trim()}`);
      // Sessions first, untimed: the measured delay is the announcement's, not a session start-up.
      await Promise.all(fresh.map((m) => startSpeaker(m, false)));
      const names = fresh.map((m) => birdProto(m.name));
      const up = await waitFor(async () => {
        const est = establishedProtocols(await protocols());
        return names.every((n) => est.has(n));
      }, { timeoutMs: BGP_TIMEOUT_MS, intervalMs: 50 });
      if (!up) throw await failure(`BGP sessions to ${fresh.map((m) => m.name).join(', ')} did not come up`);
    },
    async issue(members) {
      const on = new Set(members.map((m) => m.name));
      await Promise.all(
        [...speakers.values()]
          .filter((s) => s.announced !== on.has(s.node))
          .map(async (s) => {
            const verb = on.has(s.node) ? 'enable' : 'disable';
            const out = await birdc(s, [verb, ANNOUNCE_PROTO]);
            if (!out.includes(`${ANNOUNCE_PROTO}: ${verb}d`) && !out.includes(`already ${verb}d`)) {
              throw new ProvisionError(`ecmp bgp: birdc ${verb} ${ANNOUNCE_PROTO} on ${s.node} failed: ${out.trim()}`);
            }
            s.announced = on.has(s.node);
          }),
      );
    },
    diagnose: async () => `birdc show protocols on ${lb.name}:\n${(await protocols()).trim()}`,
    async version() {
      const [ip, bird] = await Promise.all([toolVersion(lb.host, ['ip', '-V']), toolVersion(lb.host, ['bird', '--version'])]);
      return `${bird}; ${ip}`;
    },
    async describe() {
      const birds = [router, ...sortedSpeakers()];
      const [protos, routes, ...confs] = await Promise.all([
        protocols(),
        birdc(router, ['show', 'route', 'all']),
        ...birds.map((b) => b.host.readFile(join(b.dir, 'bird.conf'))),
      ]);
      return {
        notes: [
          `# initial convergence: ${convergedMs} ms (birds started → ${lb.name}'s route has every path)`,
          `# announcing: ${sortedSpeakers().filter((s) => s.announced).map((s) => s.node).join(' ') || '(none)'}`,
        ],
        sections: [
          `## ${lb.name}: birdc show protocols`,
          protos!.trimEnd(),
          `## ${lb.name}: birdc show route all`,
          routes!.trimEnd(),
          ...birds.flatMap((b, i) => [`## ${b.node}: bird.conf`, confs[i]!.trimEnd()]),
        ],
      };
    },
  };
}

export const ecmp: LbDriver<Spec> = {
  kind: 'ecmp',
  summary: 'ECMP multipath route on the router to backends holding the VIP (static or bird BGP; classic or resilient nexthops)',
  tools: [
    { cmd: 'ip', pkg: 'iproute2' },
    { cmd: 'ss', pkg: 'iproute2' },
    { cmd: 'sysctl', pkg: 'procps' },
    // Only for mode bgp. bird2: packaged in Debian, one daemon for the router and the speakers,
    // and `merge paths` turns equivalent BGP paths into one kernel multipath route (gobgp needs a
    // separate zebra/FRR for the kernel side; exabgp cannot install routes at all).
    { cmd: 'bird', pkg: 'bird2' },
    { cmd: 'birdc', pkg: 'bird2' },
  ],
  async preflight(host, spec) {
    if (spec.mode === 'bgp' && spec.nexthops === 'resilient') throw resilientBgpUnsupported();
    await requireTools(host, this.tools.filter((t) => spec.mode === 'bgp' || t.pkg !== 'bird2'), 'ecmp');
    const policy = await host.exec(['sysctl', '-n', HASH_POLICY], { check: false });
    if (policy.code !== 0) {
      throw new PreflightError(`ecmp: the kernel on ${host.name} has no ${HASH_POLICY} (no multipath routing)`, 'use a kernel built with CONFIG_IP_ROUTE_MULTIPATH=y');
    }
    if (spec.nexthops === 'resilient') {
      const help = await host.exec(['ip', 'nexthop', 'help'], { check: false });
      if (!/resilient/.test(`${help.stdout}${help.stderr}`)) {
        throw new PreflightError(
          `ecmp: iproute2 on ${host.name} does not know resilient nexthop groups (needs ≥ 5.13)`,
          'apt-get install -y iproute2 (Debian 12 or newer), or use nexthops: classic',
        );
      }
      const rel = (await host.exec(['uname', '-r'])).stdout.trim();
      const [maj = 0, min = 0] = rel.split(/[.-]/).map(Number);
      if (maj < 5 || (maj === 5 && min < 13)) {
        throw new PreflightError(`ecmp: kernel ${rel} on ${host.name} has no resilient nexthop groups (needs ≥ 5.13)`, 'use a newer kernel, or nexthops: classic');
      }
    }
  },
  // A route to the VIP carries any protocol (the hash policy reads UDP ports as it reads TCP's).
  udp: () => true,
  ipv6: true,
  async apply(ctx): Promise<EcmpDeployed> {
    const { topo, spec } = ctx;
    const lb = topo.lb;
    const { vip } = topo;
    if (spec.mode === 'bgp' && spec.nexthops === 'resilient') throw resilientBgpUnsupported();
    const offPort = ctx.backends.find((b) => b.port !== ctx.port);
    if (offPort) {
      throw new ProvisionError(
        `ecmp forwards without address or port translation: clients must use the backends' port (${offPort.name} listens on ${offPort.port}, not ${ctx.port})`,
      );
    }

    // Our own ledger, registered before anything exists: Deployed.teardown() must also undo what
    // the shared VIP helpers register, and they hand back no undo function of their own.
    const { ledger: own, release } = ctx.teardown.child(`ecmp ${spec.mode}/${spec.nexthops} on ${lb.name}: route, birds, VIP placement, sysctls`);

    const policyKey = familyOf(vip) === 6 ? HASH_POLICY6 : HASH_POLICY;
    const { [policyKey]: was } = await setSysctls(lb.host, lb.name, { [policyKey]: L4_HASH }, own);

    await releaseVipFromLbNode(lb, vip, own);
    const holding = new Set<string>();
    const holdVip = async (list: BackendNode[]) => {
      const fresh = list.filter((b) => !holding.has(b.name));
      fresh.forEach((b) => holding.add(b.name));
      await addVipToBackends(fresh, vip, own);
    };
    await holdVip(ctx.backends);

    const initial = toMembers(topo, ctx.backends);
    let plane: ControlPlane;
    if (spec.mode === 'static') {
      plane = staticPlane(ctx, own);
      await plane.issue(initial);
      const ok = await waitFor(async () => sameSet(await vipGateways(lb.host, vip), initial.map((m) => m.ip)), { timeoutMs: ROUTE_TIMEOUT_MS });
      if (!ok) throw new ProvisionError(`ecmp: ${lb.name}'s route to ${vip} does not show the ${initial.length} backends just written`);
    } else {
      plane = await bgpPlane(ctx, own, initial);
    }
    ctx.log(`ecmp ${spec.mode}/${spec.nexthops}: ${lb.name} routes ${vip} over ${initial.length} backends`);

    const delays: UpdateDelay[] = [];
    let current = initial;
    return {
      endpoint: { ip: vip, port: ctx.port },
      async setBackends(list) {
        const offPort = list.find((b) => b.port !== ctx.port);
        if (offPort) throw new ProvisionError(`ecmp: ${offPort.name} listens on ${offPort.port}, clients use ${ctx.port}`);
        const members = toMembers(topo, list);
        // Nothing changes, so there is no update to time (a zero would skew the delays).
        if (sameSet(members.map((m) => m.name), current.map((m) => m.name))) return;
        await holdVip(list);
        await plane.prepare(members);
        const timeout = spec.mode === 'bgp' ? BGP_TIMEOUT_MS : ROUTE_TIMEOUT_MS;
        const d = await measureUpdateDelay(lb.host, vip, members.map((m) => m.ip), () => plane.issue(members), timeout).catch(
          async (e: unknown) => {
            if (e instanceof ProvisionError) throw new ProvisionError(`${e.message}\n${await plane.diagnose()}`, e.hint, { cause: e });
            throw e;
          },
        );
        delays.push(d);
        current = members;
        ctx.log(`ecmp: ${d.from} → ${d.to} nexthops on ${lb.name} in ${d.ms} ms (${d.source})`);
      },
      async failLbNode(how) {
        if (how !== 'link-down') throw new ProvisionError(`ecmp: fail-lb-node how: ${how} — an ECMP LB node here is a backend; kill-backends kills its server`);
        // The router is not told: its route keeps the dead next hop until something withdraws it
        // (nothing, with static routes; BGP's hold timer, with bird).
        const victim = topo.backends.find((b) => b.name === current.at(-1)?.name);
        if (!victim) throw new ProvisionError('ecmp: no LB node in the route to fail');
        const up = await takeLinkDown(victim.host, 'eth0');
        return {
          target: [victim.name],
          async restore() {
            await up();
            // With BGP the session comes back and the path is announced again; the next repetition starts with every path.
            const want = current.map((m) => m.ip);
            const back = await waitFor(async () => sameSet(await vipGateways(lb.host, vip), want), { timeoutMs: BGP_TIMEOUT_MS, intervalMs: POLL_MS });
            if (!back) throw new ProvisionError(`ecmp: ${victim.name} is back, but the route to ${vip} is not [${want.join(', ')}] within ${BGP_TIMEOUT_MS} ms`);
          },
        };
      },
      // Empty until a change: a point without changes has no delay to report.
      timings: (): Record<string, number[]> => (delays.length ? { routeUpdateMs: delays.map((d) => d.ms) } : {}),
      updateDelays: () => delays.map((d) => ({ ...d })),
      async describe() {
        const [version, policy, route, nexthops, extra] = await Promise.all([
          plane.version(),
          lb.host.exec(['sysctl', '-n', policyKey], { check: false }),
          lb.host.exec([...ipCmd(vip), 'route', 'show', hostPrefix(vip)], { check: false }),
          lb.host.exec(['ip', 'nexthop', 'show'], { check: false }),
          plane.describe(),
        ]);
        const config = [
          `# ecmp mode=${spec.mode} nexthops=${spec.nexthops}${spec.nexthops === 'resilient' ? ` buckets=${spec.buckets} idle_timer=0` : ''}: ` +
            `${lb.name} routes ${vip} to backends that hold it on lo`,
          `# ${lb.name} ${policyKey} = ${policy.stdout.trim()} (was ${was}; 1 = L4 hash)`,
          `# backends: ${current.map((m) => `${m.name}=${m.ip}`).join(' ') || '(none)'}`,
          `# update delays ms (change issued → ${lb.name}'s table shows the new set): [${delays.map((d) => d.ms).join(', ')}]` +
            (delays.length ? ` (${delays.map((d) => `${d.from}→${d.to} ${d.source}`).join(', ')})` : ''),
          ...extra.notes,
          `## ${lb.name}: ip route show ${hostPrefix(vip)}`,
          route.stdout.trimEnd(),
          `## ${lb.name}: ip nexthop show`,
          nexthops.stdout.trimEnd(),
          ...extra.sections,
          '',
        ].join('\n');
        return { version, config };
      },
      teardown: release,
    };
  },
};
