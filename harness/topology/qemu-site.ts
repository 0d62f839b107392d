// topology kind qemu: the netns topology inside one Debian guest (or one guest per role), so a host without ip_vs, ipip
// or netem (this one) runs the LBs that need them. The image is built once per recipe and cached;
// the guest boots with snapshot=on and is always stopped by the teardown ledger.
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Host } from '../host/types.ts';
import type { Teardown } from '../teardown.ts';
import { BaremetalTopologySpec, type Scenario } from '../scenario/schema.ts';
import { ensureImage } from '../../vm-images/build.ts';
import { bootGuests, dgramPair, type Guest } from './qemu.ts';
import { buildBaremetalTopology } from './baremetal.ts';
import { PLAN, PLAN6 } from './address-plan.ts';
import { buildNetnsTopology } from './netns.ts';
import { WORK_ROOT } from './leftovers.ts';
import { linkFacts } from './shaping.ts';
import type { Site } from './site.ts';

type QemuTopology = Extract<Scenario['topology'], { kind: 'qemu' }>;

export async function openQemuSite(
  topology: QemuTopology,
  teardown: Teardown,
  opts: { log?: (msg: string) => void; signal?: AbortSignal; root?: Host },
): Promise<Site> {
  if (topology.placement === 'per-role') return openPerRoleSite(topology, teardown, opts);
  const log = opts.log ?? (() => {});
  const image = await ensureImage(log);
  const workDir = join(WORK_ROOT, `qemu-${randomBytes(3).toString('hex')}`);
  await mkdir(workDir, { recursive: true });
  teardown.add(`remove ${workDir}`, () => rm(workDir, { recursive: true, force: true }));
  const [guest] = await bootGuests([{ name: 'lbbench', memoryMb: topology.guest.memoryMb, cpus: topology.guest.cpus }], {
    image,
    accel: topology.guest.accel,
    workDir,
    log,
    teardown,
    signal: opts.signal,
  });
  const g = guest!;
  log(`guest ${g.name}: ${g.accel} (${g.accelReason}), SSH after ${(g.bootMs / 1000).toFixed(1)} s`);
  return {
    root: g.host,
    cpus: topology.guest.cpus,
    facts: {
      topology: 'qemu',
      ...linkFacts(topology),
      guest: {
        accel: g.accel,
        accelReason: g.accelReason,
        bootMs: Math.round(g.bootMs),
        memoryMb: topology.guest.memoryMb,
        cpus: topology.guest.cpus,
        kernel: image.kernelVersion,
        imageRecipe: image.recipeHash,
        imageBuiltAt: image.builtAt,
      },
    },
    build: (o, td) => buildNetnsTopology({ ...o, backendWorkers: topology.backendWorkers, linkRate: topology.linkRate, overlay: o.overlay ?? topology.overlay, root: g.host }, td),
  };
}

/**
 * One guest per role: client — lb on a point-to-point link, and one link from the LB to each
 * backend, bridged inside the LB guest into one backend segment. Once addressed, the guests are
 * hosts reached over SSH like a bare-metal lab, and the bare-metal builder takes over.
 */
export async function openPerRoleSite(
  topology: QemuTopology,
  teardown: Teardown,
  opts: { log?: (msg: string) => void; signal?: AbortSignal },
): Promise<Site> {
  const log = opts.log ?? (() => {});
  const image = await ensureImage(log);
  // Short: unix socket paths for the links live here (108 bytes at most).
  const workDir = join('/tmp', `lbbq-${randomBytes(3).toString('hex')}`);
  await mkdir(workDir, { recursive: true });
  teardown.add(`remove ${workDir}`, () => rm(workDir, { recursive: true, force: true }));
  const n = topology.backends ?? 1;
  const [clientEnd, lbClientEnd] = dgramPair(workDir, 'c', 'net1');
  const beLinks = Array.from({ length: n }, (_, i) => dgramPair(workDir, `b${i}`, `net${i + 2}`));
  const guest = { memoryMb: topology.guest.memoryMb, cpus: topology.guest.cpus };
  const guests = await bootGuests(
    [
      { name: 'client', ...guest, extraNetdevs: [clientEnd] },
      { name: 'lb', ...guest, extraNetdevs: [lbClientEnd, ...beLinks.map(([lbEnd]) => lbEnd)] },
      ...beLinks.map(([, beEnd], i) => ({ name: `be${i}`, ...guest, extraNetdevs: [{ ...beEnd, id: 'net1' }] })),
    ],
    { image, accel: topology.guest.accel, workDir, log, teardown, signal: opts.signal },
  );
  const [client, lb, ...backends] = guests as [Guest, Guest, ...Guest[]];
  const common = ['net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0', 'net.ipv4.tcp_tw_reuse=1'];
  // Dual stack from the start, as a lab would be: the IPv6 plan's addresses (nodad: usable at once)
  // beside the IPv4 ones; a run of family 4 never touches them.
  const addr = (v4: string, v6: string, dev: string) => `ip addr add ${v4}/24 dev ${dev} && ip addr add ${v6}/64 dev ${dev} nodad`;
  await Promise.all([
    client.host.exec(['sh', '-c', `${addr(PLAN.clientIp(0), PLAN6.clientIp(0), 'eth1')} && ip link set eth1 up && sysctl -q -w "$@"`, 'sh', ...common, 'net.ipv4.ip_local_port_range=1024 65000']),
    lb.host.exec([
      'sh',
      '-c',
      [
        addr(PLAN.clientGw, PLAN6.lbClientIp(0), 'eth1'),
        'ip link set eth1 up',
        'ip link add br0 type bridge',
        ...backends.map((_, i) => `ip link set eth${i + 2} master br0 && ip link set eth${i + 2} up`),
        addr(PLAN.lbBackendIp(0), PLAN6.lbBackendIp(0), 'br0'),
        'ip link set br0 up',
        'sysctl -q -w "$@"',
      ].join(' && '),
      'sh',
      ...common,
    ]),
    ...backends.map((b, i) => b.host.exec(['sh', '-c', `${addr(PLAN.backendIp(i), PLAN6.backendIp(i), 'eth1')} && ip link set eth1 up && sysctl -q -w "$@"`, 'sh', ...common])),
  ]);
  const placeholder = { host: '127.0.0.1', port: 22 };
  const spec = BaremetalTopologySpec.parse({
    kind: 'baremetal',
    vip: PLAN.vip(0),
    vip6: PLAN6.vip(0),
    client: { ssh: placeholder, ip: PLAN.clientIp(0), ip6: PLAN6.clientIp(0), interface: 'eth1' },
    lb: { ssh: placeholder, clientInterface: 'eth1', clientIp: PLAN.clientGw, clientIp6: PLAN6.lbClientIp(0), backendInterface: 'br0', backendIp: PLAN.lbBackendIp(0), backendIp6: PLAN6.lbBackendIp(0) },
    backendHosts: backends.map((_, i) => ({ ssh: placeholder, ip: PLAN.backendIp(i), ip6: PLAN6.backendIp(i), interface: 'eth1' })),
    backendWorkers: topology.backendWorkers,
  });
  return {
    root: lb.host,
    generatorHost: client.host,
    cpus: topology.guest.cpus,
    facts: {
      topology: 'qemu',
      placement: 'per-role',
      guest: {
        accel: lb.accel,
        accelReason: lb.accelReason,
        bootMs: Object.fromEntries(guests.map((g) => [g.name, Math.round(g.bootMs)])),
        memoryMb: topology.guest.memoryMb,
        cpus: topology.guest.cpus,
        kernel: image.kernelVersion,
        imageRecipe: image.recipeHash,
        imageBuiltAt: image.builtAt,
      },
    },
    build: (o, td) => buildBaremetalTopology(spec, { ...o, conn: { client: client.host, lb: lb.host, backends: backends.map((b) => b.host) } }, td),
  };
}
