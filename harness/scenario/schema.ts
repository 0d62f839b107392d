// The single source of scenario types and of the published JSON schema (`lbbench schema`).
// Every object is strict: an unknown key is an error that names the valid ones.
import { z } from 'zod';
import { mulberry32 } from '../stats/compare.ts';

/**
 * "5s", "500ms", "2m" or a number of seconds; always seconds after parsing.
 * Give it defaults with `.prefault("5s")`, not `.default(5)`: a default on a transforming schema is
 * an output value, which zod leaves out of the input JSON schema, so editors would not show it.
 */
export const Duration = z
  .union([
    z.number().positive(),
    z
      .string()
      .regex(/^\d+(\.\d+)?(ms|s|m)$/, { message: 'expected a duration like "5s", "500ms" or "2m"' }),
  ])
  .transform((v) => {
    if (typeof v === 'number') return v;
    const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(v)!;
    const n = Number(m[1]);
    return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
  })
  .refine((s) => s > 0, { message: 'duration must be greater than zero' })
  .meta({ description: 'Seconds, or a string like "5s", "500ms", "2m".' });

const CpuList = z
  .string()
  .regex(/^\d+(-\d+)?(,\d+(-\d+)?)*$/, { message: 'expected a CPU list like "0", "1-3" or "0,2"' });

const common = {
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]*$/, { message: 'use lowercase letters, digits and "-"' })
    .optional()
    .meta({ description: 'Label in results and reports; defaults to kind (and mode).' }),
};

export const RouterSpec = z
  .strictObject({ kind: z.literal('router'), ...common })
  .meta({ description: 'Plain IP forwarding to the first backend: the baseline without any LB.' });

export const IptablesDnatSpec = z
  .strictObject({
    kind: z.literal('iptables-dnat'),
    ...common,
    algorithm: z
      .enum(['round-robin', 'random'])
      .default('round-robin')
      .meta({ description: 'round-robin: statistic --mode nth; random: --mode random.' }),
  })
  .meta({ description: 'iptables nat-table DNAT with the statistic match (nth or random).' });

export const NftablesSpec = z
  .strictObject({
    kind: z.literal('nftables'),
    ...common,
    algorithm: z
      .enum(['round-robin', 'random', 'hash'])
      .default('round-robin')
      .meta({ description: 'round-robin: numgen inc; random: numgen random; hash: jhash of the 5-tuple.' }),
    weights: z
      .record(z.string().regex(/^be\d+$/, { message: 'backend names are be0, be1, …' }), z.int().min(0).max(1000))
      .optional()
      .meta({ description: 'Weight per backend name (default 1 each): a weight is that many slots of the numgen/jhash range.' }),
  })
  .meta({ description: 'nftables DNAT with numgen inc/random or jhash over the 5-tuple.' });

export const NginxSpec = z
  .strictObject({
    kind: z.literal('nginx'),
    ...common,
    mode: z
      .enum(['l4', 'l7'])
      .default('l7')
      .meta({ description: 'l4: stream module (TCP proxy); l7: http proxy.' }),
    workers: z.int().min(1).max(64).default(1).meta({ description: 'nginx worker processes.' }),
    upstreamKeepalive: z
      .boolean()
      .default(true)
      .meta({ description: 'L7 only: reuse upstream connections (what a production proxy does).' }),
  })
  .meta({ description: 'nginx as a proxy: stream (L4) or http (L7), round robin.' });

export const HaproxySpec = z
  .strictObject({
    kind: z.literal('haproxy'),
    ...common,
    mode: z
      .enum(['tcp', 'http'])
      .default('http')
      .meta({ description: 'tcp: L4 proxy; http: L7 proxy.' }),
    threads: z.int().min(1).max(64).default(1).meta({ description: 'haproxy nbthread.' }),
    balance: z
      .enum(['roundrobin', 'leastconn', 'source'])
      .default('roundrobin')
      .meta({ description: 'haproxy balance algorithm.' }),
  })
  .meta({ description: 'haproxy in tcp (L4) or http (L7) mode.' });

export const IpvsSpec = z
  .strictObject({
    kind: z.literal('ipvs'),
    ...common,
    mode: z
      .enum(['nat', 'tun', 'dr'])
      .default('nat')
      .meta({ description: 'nat: masquerading (replies return through the director); tun: IP-in-IP to the real servers; dr: direct routing by MAC rewrite. tun and dr answer straight from the backends.' }),
    scheduler: z
      .enum(['rr', 'wrr', 'lc', 'wlc', 'sh', 'mh'])
      .default('rr')
      .meta({ description: 'IPVS scheduler (ipvsadm -s): round robin, weighted, least-connection, source hash, maglev hash.' }),
    weights: z
      .record(z.string().regex(/^be\d+$/, { message: 'backend names are be0, be1, …' }), z.int().min(0).max(65535))
      .optional()
      .meta({ description: 'Initial weight per backend name (default 1 each); wrr/wlc/mh honour them.' }),
  })
  .meta({ description: 'Linux IPVS (needs a kernel with ip_vs: on this project\'s hosts, a qemu topology).' });

const Prime = z
  .int()
  .min(7)
  .max(1_000_003)
  .refine(
    (n) => {
      for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
      return true;
    },
    { message: 'must be a prime (maglev needs it), e.g. 251, 997, 65537' },
  );

export const EcmpSpec = z
  .strictObject({
    kind: z.literal('ecmp'),
    ...common,
    mode: z
      .enum(['static', 'bgp'])
      .default('static')
      .meta({ description: 'static: the harness writes the multipath route; bgp: each LB node announces the VIP to the router.' }),
    nexthops: z
      .enum(['classic', 'resilient'])
      .default('classic')
      .meta({ description: 'classic: hash-threshold multipath route; resilient: a resilient nexthop group (less reshuffling).' }),
    buckets: z.int().min(2).max(4096).default(128).meta({ description: 'Buckets of a resilient nexthop group.' }),
  })
  .meta({ description: 'ECMP: a multipath route to the VIP over the LB nodes (here: each backend is an LB node), static or BGP-driven.' });

export const NfqueueSpec = z
  .strictObject({
    kind: z.literal('nfqueue'),
    ...common,
    tableSize: Prime.default(997).meta({ description: 'Maglev lookup table size: a prime, ideally ≥ 100 × backends.' }),
    queue: z.int().min(0).max(65535).default(0).meta({ description: 'NFQUEUE queue number.' }),
    state: z.enum(['stateless', 'conntrack']).default('stateless').meta({
      description:
        'stateless: every packet to the VIP is queued and placed by the maglev table, so a backend change moves the connections whose slot changed (the design under test). ' +
        'conntrack: only a connection\'s first packet is queued and its mark kept in conntrack, so connections stay where they started.',
    }),
  })
  .meta({ description: 'Our user-space maglev LB on NFQUEUE: verdict with a fwmark, policy routing to the backend (VIP on the backends).' });

export const XdpSpec = z
  .strictObject({
    kind: z.literal('xdp'),
    ...common,
    attach: z
      .enum(['auto', 'native', 'generic'])
      .default('auto')
      .meta({ description: 'native (xdpdrv), generic (xdpgeneric), or auto: native where it works.' }),
    tableSize: Prime.default(997).meta({ description: 'Maglev lookup table size: a prime, ideally ≥ 100 × backends.' }),
  })
  .meta({ description: 'Our BPF LB: maglev over the 5-tuple in a map, DSR by MAC rewrite (VIP on the backends).' });

export const VrrpSpec = z
  .strictObject({
    kind: z.literal('vrrp'),
    ...common,
    advertInt: z
      .number()
      .min(0.01)
      .max(255)
      .default(0.1)
      .meta({ description: 'Seconds between VRRP adverts (VRRPv3, centiseconds): the backup takes over after about 3.6 of them. Below 0.05 expect false failovers on a loaded 2-core host.' }),
  })
  .meta({
    description:
      "Two LB nodes (lb0 active, lb1 backup) share the VIP with keepalived's VRRP on the client segment (MetalLB's L2 mode, the design the ECMP thesis rejected); each forwards with nftables DNAT (numgen) and masquerade. Needs no more than the netns topology: lbbench adds the standby node.",
  });

export const LbSpec = z
  .discriminatedUnion('kind', [RouterSpec, IptablesDnatSpec, NftablesSpec, NginxSpec, HaproxySpec, IpvsSpec, EcmpSpec, NfqueueSpec, XdpSpec, VrrpSpec])
  .meta({ description: 'One load balancer under test, chosen by kind.' });
export type LbSpec = z.output<typeof LbSpec>;
/** An LbSpec after loading: the name default (kind, or kind-mode) has been filled in. */
export type NamedLbSpec = LbSpec & { name: string };
export type LbKind = LbSpec['kind'];
export const LB_KINDS = LbSpec.options.map((o) => o.shape.kind.value) as LbKind[];

export const LoadSpec = z
  .strictObject({
    generator: z
      .enum(['wrk', 'connect', 'traffic', 'trafgen', 'iperf3', 'moongen', 'mconnect', 'ctraffic'])
      .default('wrk')
      .meta({
        description:
          'wrk: HTTP throughput and latency. connect: the built-in connection tester (one request per connection; per-backend counts, fairness, failed connects/reads; needs node on the client). ' +
          'traffic: the built-in traffic tester (load.connections long-lived connections sending load.rate messages/s in all; per-connection outcomes and per-second samples; what events are measured with). ' +
          'trafgen: 60-byte TCP SYNs at the VIP as fast as one thread can, counted where they arrive (packets/s, loss). ' +
          'iperf3: one bulk TCP stream set (load.connections streams) through the LB to the one backend of a point (Gbit/s, retransmits). ' +
          'moongen: MoonGen\'s l3-load-latency on a bare-metal client with two DPDK ports (load.moongen). ' +
          'mconnect / ctraffic: the real Nordix tools, when the client and the backends have them (lbbench starts their servers on the backends).',
      }),
    duration: Duration.prefault('5s').meta({ description: 'Measured time per repetition (seconds or "5s").' }),
    warmup: Duration.prefault('1s').meta({ description: 'Unmeasured load before each repetition.' }),
    connections: z.int().min(1).max(10000).default(32).meta({ description: 'Open connections (wrk -c).' }),
    threads: z.int().min(1).max(64).default(1).meta({ description: 'Generator threads (wrk -t); at most connections.' }),
    path: z
      .string()
      .startsWith('/', { message: 'a path starts with "/"' })
      .default('/')
      .meta({ description: 'HTTP request path.' }),
    timeout: Duration.prefault('2s').meta({ description: "Socket/request timeout (wrk -T); traffic: a connection that gets no reply for this long is lost." }),
    rate: z
      .number()
      .positive()
      .max(1_000_000)
      .default(500)
      .meta({ description: 'traffic only: messages per second over all connections (each connection sends at connections/rate intervals).' }),
    protocol: z
      .enum(['tcp', 'udp'])
      .default('tcp')
      .meta({ description: 'iperf3 only: tcp streams, or udp datagrams (the LBs then balance UDP on the port too; TCP-only LBs are refused).' }),
    packetSize: z.int().min(16).max(65507).optional().meta({ description: 'iperf3 only: bytes of payload per datagram/write (iperf3 -l); small for a packet-rate test, e.g. 64.' }),
    bitrate: z
      .string()
      .regex(/^\d+(\.\d+)?[KMG]?$/, { message: 'expected an iperf3 bitrate like "0" (unlimited), "500M" or "2G"' })
      .default('0')
      .meta({ description: 'iperf3 UDP only: target bits/s per stream (iperf3 -b); "0" sends as fast as it can.' }),
    moongen: z
      .strictObject({
        path: z.string().min(1).optional().meta({ description: 'The MoonGen binary (default: MoonGen on PATH).' }),
        script: z.string().min(1).optional().meta({ description: 'Lua script (default: examples/l3-load-latency.lua of the MoonGen checkout the binary is in).' }),
        txDev: z.int().min(0).meta({ description: 'DPDK port that sends towards the LB.' }),
        rxDev: z.int().min(0).meta({ description: 'DPDK port the traffic comes back on.' }),
        rate: z.number().min(0).optional().meta({ description: 'Mbit/s (0: line rate).' }),
        size: z.int().min(60).max(9000).optional().meta({ description: 'Frame size in bytes without CRC.' }),
        flows: z.int().min(1).optional().meta({ description: 'Distinct source addresses.' }),
      })
      .optional()
      .meta({ description: 'moongen only: which DPDK ports and what to send.' }),
    sourceAddresses: z
      .int()
      .min(0)
      .max(16000)
      .default(0)
      .meta({ description: "connect and traffic: connect from this many addresses of the client's source pool (198.18.128.0/18, netns topologies), so hashing LBs see many clients; 0: the client's own address." }),
    flood: z
      .strictObject({
        packet: z.enum(['syn', 'udp']).default('syn').meta({ description: 'syn: 60-byte TCP SYNs to the LB port; udp: 60-byte UDP datagrams to it.' }),
        pps: z.int().min(0).max(100_000_000).default(0).meta({ description: 'Packets per second (0: no flood); sweep.floodPps replaces it.' }),
      })
      .optional()
      .meta({
        description:
          "A background flood at the VIP while the load runs, which becomes the probe: trafgen on the client sends SYNs or small UDP datagrams, each from a random address of the client's source pool and a random port, at a set rate. The probe's success rate and latency are measured under it (netns and qemu one-guest topologies).",
      }),
  })
  .meta({ description: 'How load is generated at every point.' });
export type LoadSpec = z.output<typeof LoadSpec>;

const RATE_UNITS: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 };
const LINK_RATE_MIN = 100e3;
const LINK_RATE_MAX = 100e9;

/**
 * "1gbit", "100mbit", "500kbit" → bits per second (SI prefixes, as tc reads them), or what is
 * wrong with the text. tc's own "mbps"/"kbps" mean bytes per second, a classic factor-8 slip, so
 * they are refused with the bit spelling to write instead.
 */
export function parseLinkRate(text: string): number | string {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/i.exec(text.trim());
  const unit = m?.[2]!.toLowerCase();
  if (!m || !unit) return 'expected a link rate like "1gbit", "100mbit", "20mbit" or "500kbit"';
  const bytes = /^([kmg]?)(bps|byte|bytes)$/.exec(unit);
  if (bytes) return `"${unit}" is bytes per second in tc; write the rate in bits: "${Number((Number(m[1]) * 8).toPrecision(12))}${bytes[1]}bit"`;
  const per = RATE_UNITS[unit];
  if (per === undefined) return `unknown unit "${m[2]}"; write bit, kbit, mbit or gbit, e.g. "100mbit"`;
  const bits = Number(m[1]) * per;
  if (bits < LINK_RATE_MIN || bits > LINK_RATE_MAX) return 'a link rate must lie between "100kbit" and "100gbit"';
  return Math.round(bits);
}

export const LinkRate = z
  .string()
  .superRefine((v, ctx) => {
    const r = parseLinkRate(v);
    if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
  })
  .transform((v) => parseLinkRate(v) as number)
  .meta({ description: 'A rate like "1gbit", "100mbit", "500kbit" (bits per second once parsed).' });

export const Overlay = z.enum(['none', 'vxlan']);
export type Overlay = z.output<typeof Overlay>;

const netnsLayout = {
    backends: z
      .int()
      .min(1)
      .max(250)
      .optional()
      .meta({ description: 'Backends built; defaults to the largest count in sweep.backends.' }),
    backendWorkers: z
      .int()
      .min(1)
      .max(16)
      .default(1)
      .meta({ description: 'nginx worker processes per backend.' }),
    linkRate: LinkRate.optional().meta({
      description:
        'Shape every veth link (client–LB, LB–switch, switch–backends) to this rate in both directions with a tbf qdisc, e.g. "1gbit" or "100mbit"; unset: veth speed (as fast as the CPUs go). Not with qemu placement per-role.',
    }),    overlay: Overlay.optional().meta({
      description:
        'How the LB node reaches the backends: none (routed onto their segment, like flannel host-gw) or vxlan (a VXLAN overlay over that segment: the backends\' addresses on vxlan0, 50 bytes of headers per packet, MTU 1450). Unset: none. Sweep it with sweep.overlay. Not with qemu placement per-role.',
    }),
};

export const NetnsTopologySpec = z
  .strictObject({
    kind: z.literal('netns').default('netns').meta({ description: 'Network namespaces on this host.' }),
    ...netnsLayout,
  })
  .meta({ description: 'Client, router, LB node and backends as network namespaces on one host.' });

export const QemuTopologySpec = z
  .strictObject({
    kind: z.literal('qemu').meta({ description: 'The netns topology inside a Debian guest booted with qemu (a kernel with ip_vs, ipip, netem).' }),
    ...netnsLayout,
    guest: z
      .strictObject({
        memoryMb: z.int().min(256).max(65536).default(2048).meta({ description: 'Guest memory in MiB.' }),
        cpus: z.int().min(1).max(64).default(2).meta({ description: 'Guest vCPUs.' }),
        accel: z
          .enum(['auto', 'kvm', 'tcg'])
          .default('auto')
          .meta({ description: 'auto: KVM when it really boots a guest here, else TCG (software; numbers only comparable within the guest).' }),
      })
      .prefault({})
      .meta({ description: 'The guest machine (per-role: each guest).' }),
    placement: z
      .enum(['one-guest', 'per-role'])
      .default('one-guest')
      .meta({
        description:
          'one-guest: the whole netns topology inside one guest (cheap). per-role: a guest each for the client, the LB and every backend, linked by qemu datagram sockets (the LB bridges the backend links).',
      }),
  })
  // Per-role guests are linked by qemu sockets, not by the veths linkRate shapes.
  .refine((t) => t.placement !== 'per-role' || t.overlay === undefined || t.overlay === 'none', {
    path: ['overlay'],
    message: 'overlay is built on the veths of placement one-guest; per-role guests are linked by qemu sockets — remove overlay or use placement: one-guest',
  })
  .refine((t) => t.placement !== 'per-role' || t.linkRate === undefined, {
    path: ['linkRate'],
    message: 'linkRate shapes the veth links of placement one-guest; per-role guests are linked by qemu sockets it does not shape — remove linkRate or use placement: one-guest',
  })
  .meta({ description: 'The topology on qemu guests (image from vm-images/, cached): all in one guest, or one guest per role.' });

const Ipv4 = z.ipv4({ message: 'expected an IPv4 address such as 198.18.0.2' });
const Ipv6 = z.ipv6({ message: 'expected an IPv6 address such as 2001:2::2' });
const Ifname = z.string().regex(/^[A-Za-z0-9_.:@-]{1,15}$/, { message: 'expected an interface name such as eth0' });

const SshEndpoint = z
  .strictObject({
    host: z.string().min(1).meta({ description: 'Management address or name to reach sshd on.' }),
    port: z.int().min(1).max(65535).default(22),
    user: z.string().min(1).optional().meta({ description: 'Defaults to ssh.user.' }),
    hostKey: z
      .string()
      .regex(/^(ssh-|ecdsa-)\S+ [A-Za-z0-9+/=]+/, { message: 'expected a public key line such as "ssh-ed25519 AAAA…" (the host\'s /etc/ssh/ssh_host_ed25519_key.pub)' })
      .optional()
      .meta({ description: 'Pinned host key; without it the host must be in ssh.knownHosts.' }),
  })
  .meta({ description: 'How to reach a host over SSH.' });

export const BaremetalTopologySpec = z
  .strictObject({
    kind: z.literal('baremetal').meta({ description: 'Existing machines (bare metal or VMs) reached over SSH.' }),
    ssh: z
      .strictObject({
        user: z.string().min(1).default('root'),
        privateKey: z.string().min(1).default('~/.ssh/id_ed25519').meta({ description: 'Key file for every host (no passphrase).' }),
        knownHosts: z.string().min(1).default('~/.ssh/known_hosts').meta({ description: 'Checked for hosts without a pinned hostKey.' }),
      })
      .prefault({})
      .meta({ description: 'Defaults for every host.' }),
    vip: Ipv4.default('198.18.100.1').meta({ description: 'The virtual IP; the harness puts it on the LB host\'s lo for the run.' }),
    vip6: Ipv6.default('2001:2:0:100::1').meta({ description: 'The IPv6 virtual IP, for points of family 6 (with the hosts\' ip6 addresses).' }),
    client: z
      .strictObject({ ssh: SshEndpoint, ip: Ipv4, ip6: Ipv6.optional().meta({ description: 'Its IPv6 address on the client network (for family 6).' }), interface: Ifname })
      .meta({ description: 'Runs the load generator.' }),
    lb: z
      .strictObject({
        ssh: SshEndpoint,
        clientInterface: Ifname,
        clientIp: Ipv4,
        clientIp6: Ipv6.optional().meta({ description: 'IPv6 address on the client network (for family 6).' }),
        backendInterface: Ifname,
        backendIp: Ipv4,
        backendIp6: Ipv6.optional().meta({ description: 'IPv6 address on the backend network (for family 6).' }),
      })
      .meta({ description: 'The load balancer under test: also the router between the client and backend networks.' }),
    backendHosts: z
      .array(z.strictObject({ ssh: SshEndpoint, ip: Ipv4, ip6: Ipv6.optional().meta({ description: 'Its IPv6 address on the backend network (for family 6).' }), interface: Ifname }))
      .min(1)
      .meta({ description: 'Backends, in order (be0, be1, …): each runs lbbench\'s nginx for the run.' }),
    routes: z
      .boolean()
      .default(true)
      .meta({ description: 'Add (and remove afterwards) host routes so client → VIP and backend → client go through the LB host.' }),
    backendWorkers: z.int().min(1).max(16).default(1).meta({ description: 'nginx worker processes per backend.' }),
  })
  .superRefine((t, ctx) => {
    // IPv6 is all or nothing: a half-addressed lab would fail only when a family-6 point reaches it.
    const v6 = ipv6Fields(t);
    const given = v6.filter((f) => f.value !== undefined);
    if (given.length === 0 || given.length === v6.length) return;
    for (const f of v6.filter((f) => f.value === undefined)) {
      ctx.addIssue({ code: 'custom', path: f.path, message: `${given.map((g) => g.name).join(', ')} ${given.length === 1 ? 'is' : 'are'} set, so write ${f.name} too (an IPv6 address such as ${f.example}), or remove every IPv6 address` });
    }
  })
  .meta({ description: 'Hosts with roles reached over SSH; the same LB and load drivers run on them.' });

/** The IPv6 addresses a bare-metal topology needs for family 6, where they go and an example each. */
export function ipv6Fields(t: {
  client: { ip6?: string | undefined };
  lb: { clientIp6?: string | undefined; backendIp6?: string | undefined };
  backendHosts: { ip6?: string | undefined }[];
}): { path: (string | number)[]; name: string; value: string | undefined; example: string }[] {
  return [
    { path: ['client', 'ip6'], name: 'client.ip6', value: t.client.ip6, example: '2001:2::2' },
    { path: ['lb', 'clientIp6'], name: 'lb.clientIp6', value: t.lb.clientIp6, example: '2001:2::1' },
    { path: ['lb', 'backendIp6'], name: 'lb.backendIp6', value: t.lb.backendIp6, example: '2001:2:0:1::2' },
    ...t.backendHosts.map((b, i) => ({ path: ['backendHosts', i, 'ip6'], name: `backendHosts[${i}].ip6`, value: b.ip6, example: `2001:2:0:1::${11 + i}` })),
  ];
}

export const TopologySpec = z.discriminatedUnion('kind', [NetnsTopologySpec, QemuTopologySpec, BaremetalTopologySpec]);
export type TopologySpec = z.output<typeof TopologySpec>;

/**
 * Whether lbbench builds the topology's namespaces itself (netns, qemu one-guest), and so knows
 * every link, MAC and server process there; bare metal and per-role guests are hosts it is given.
 */
export const ownsNamespaces = (t: TopologySpec): boolean => t.kind === 'netns' || (t.kind === 'qemu' && t.placement === 'one-guest');

/** The topology as messages name it: "netns", "baremetal", "qemu per-role". */
export const topologyName = (t: TopologySpec): string => `${t.kind}${t.kind === 'qemu' && t.placement === 'per-role' ? ' per-role' : ''}`;

const SYSCTL_KEY = /^net\.[a-z0-9_.-]+$/;
/** ethtool -K short names (harness/run/tuning.ts maps them to `ethtool -k` feature names). */
const OFFLOADS = ['gro', 'gso', 'tso', 'lro', 'rx', 'tx', 'sg', 'rxvlan', 'txvlan', 'ntuple', 'rxhash'];
const CpuMask = z.string().regex(/^[0-9a-fA-F,]+$/, { message: 'a hex CPU mask as sysfs takes it, e.g. "3" for CPUs 0 and 1' });

export const TuningProfile = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, { message: 'use letters, digits, ".", "_" and "-" (it becomes part of point ids)' })
      .meta({ description: 'Names the profile in point ids and charts: "rps", "no-gro".' }),
    sysctls: z
      .record(z.string(), z.union([z.number(), z.string()]))
      .superRefine((o, ctx) => {
        // Only network settings: a benchmark profile has no business changing the rest of the kernel.
        for (const k of Object.keys(o)) if (!SYSCTL_KEY.test(k)) ctx.addIssue({ code: 'custom', path: [k], message: `${k}: expected a network sysctl such as "net.core.netdev_max_backlog"` });
      })
      .optional()
      .meta({ description: 'Set on the LB node before the point, restored after: {net.core.netdev_budget: 600}. Keys the kernel keeps per host rather than per namespace are set (and restored) host-wide.' }),
    offloads: z
      .record(z.string(), z.enum(['on', 'off']))
      .superRefine((o, ctx) => {
        for (const k of Object.keys(o)) if (!OFFLOADS.includes(k)) ctx.addIssue({ code: 'custom', path: [k], message: `${k}: not an offload lbbench sets; write one of ${OFFLOADS.join(', ')}` });
      })
      .optional()
      .meta({ description: "ethtool -K on the LB node's interfaces: {gro: off, tso: off}." }),
    rps: z
      .strictObject({
        cpus: CpuMask.meta({ description: 'rps_cpus of every receive queue of the LB node (hex mask).' }),
        flowEntries: z.int().min(0).max(1 << 20).optional().meta({ description: 'RFS: rps_sock_flow_entries (host-wide) and rps_flow_cnt per queue; 0 or absent: RPS without RFS.' }),
      })
      .optional()
      .meta({ description: 'Receive packet steering on the LB node.' }),
    xps: CpuMask.optional().meta({ description: 'xps_cpus of every transmit queue of the LB node (hex mask).' }),
    conntrack: z
      .boolean()
      .optional()
      .meta({ description: "false: the LB node's traffic skips conntrack (NOTRACK in the raw table). Not for LBs that need it (iptables-dnat, nftables, nfqueue with state: conntrack)." }),
  })
  .meta({ description: 'A named set of host settings on the LB node, applied before a point and restored after.' });
export type TuningProfile = z.output<typeof TuningProfile>;

export const SweepSpec = z
  .strictObject({
    backends: z
      .array(z.int().min(1).max(250))
      .min(1)
      .default([1])
      .meta({ description: 'Backend counts to measure, e.g. [1, 2, 4].' }),
    connections: z
      .array(z.int().min(1).max(10000))
      .min(1)
      .optional()
      .meta({ description: 'Connection counts to measure; replaces load.connections.' }),
    threads: z
      .array(z.int().min(1).max(64))
      .min(1)
      .optional()
      .meta({ description: 'Generator thread counts to measure; replaces load.threads.' }),
    overlay: z
      .array(Overlay)
      .min(1)
      .optional()
      .meta({ description: 'Backend networks to measure, e.g. [none, vxlan]; replaces topology.overlay. The topology is built once per value.' }),
    family: z
      .array(z.union([z.literal(4), z.literal(6)]))
      .min(1)
      .optional()
      .meta({ description: 'Address families to measure every LB over, e.g. [4, 6]: the topology is dual-stack (IPv6 in 2001:2::/48) and each point uses one family\'s addresses end to end.' }),
    floodPps: z
      .array(z.int().min(0).max(100_000_000))
      .min(1)
      .optional()
      .meta({ description: 'Flood rates to measure the probe under, packets/s, e.g. [0, 20000, 100000] (0: no flood); replaces load.flood.pps.' }),
  })
  .meta({ description: 'The matrix: every load balancer is measured at every combination.' });
export type SweepSpec = z.output<typeof SweepSpec>;

const BackendName = z.string().regex(/^be\d+$/, { message: 'backend names are be0, be1, …' });
const eventCommon = {
  at: Duration.meta({ description: 'When, counted from the start of the measured run (not the warm-up): "10s".' }),
};
const backendTarget = {
  backends: z.array(BackendName).min(1).optional().meta({ description: 'Which backends, by name.' }),
  count: z.int().min(1).optional().meta({ description: 'Or how many: removing/killing takes the last ones in use; adding/starting the first ones out.' }),
};
const backendEvent = <A extends string>(action: A, description: string) =>
  z.strictObject({ ...eventCommon, action: z.literal(action), ...backendTarget }).meta({ description });

export const EventSpec = z
  .discriminatedUnion('action', [
    backendEvent('remove-backends', 'Take backends out of the LB (live backend change; the servers keep running).'),
    backendEvent('add-backends', 'Put backends (back) into the LB.'),
    backendEvent('remove-lb-nodes', 'ECMP: withdraw LB nodes from the multipath route (here the LB nodes are the backends).'),
    backendEvent('add-lb-nodes', 'ECMP: announce LB nodes again.'),
    backendEvent('kill-backends', "SIGKILL the backends' server processes; the LB is not told (its health checking, if any, must notice)."),
    backendEvent('start-backends', 'Start killed backend servers again.'),
    z
      .strictObject({
        ...eventCommon,
        action: z.literal('set-weights'),
        weights: z.record(BackendName, z.int().min(0).max(65535)).meta({ description: 'New weight per backend name; others keep theirs.' }),
      })
      .meta({ description: 'Change backend weights (LBs that take weights: nftables, ipvs).' }),
    z
      .strictObject({ ...eventCommon, action: z.literal('restart-lb') })
      .meta({ description: 'Tear the LB down and apply it again (process restart, rules flushed and rewritten).' }),
    z
      .strictObject({
        ...eventCommon,
        action: z.literal('fail-lb-node'),
        how: z
          .enum(['link-down', 'kill'])
          .default('link-down')
          .meta({ description: "link-down: the node's client link goes down (vrrp: the active node; ecmp: the last LB node in the route). kill: SIGKILL the node's LB daemon (vrrp: keepalived on the active node)." }),
      })
      .meta({ description: 'Fail an LB node without telling anyone: its link goes down or its daemon dies; brought back when the repetition ends.' }),
    z
      .strictObject({
        ...eventCommon,
        action: z.literal('set-lb-nodes'),
        count: z.int().min(1).meta({ description: 'LB nodes in the multipath route after the event: the last ones in use are withdrawn, or the first ones out announced.' }),
      })
      .meta({ description: 'ECMP: set the number of LB nodes that announce the VIP.' }),
  ])
  .meta({ description: 'Something done to the system during a measurement; its connection loss is measured (needs load.generator: traffic).' });
export type EventSpec = z.output<typeof EventSpec>;
export type EventAction = EventSpec['action'];

/**
 * A timeline of LB-node counts, written once and expanded to one set-lb-nodes event per step when
 * the scenario is loaded: the same steps every repetition (random ones come from a seed), so runs
 * and repetitions compare.
 */
export const LbNodeTimeline = z
  .strictObject({
    action: z.literal('lb-node-timeline'),
    at: Duration.meta({ description: 'The first change, counted from the start of the measured run.' }),
    every: Duration.meta({ description: 'Time between changes: "20s".' }),
    counts: z.array(z.int().min(1)).min(1).optional().meta({ description: 'Scripted: the LB-node count at each step, e.g. [4, 2, 6].' }),
    random: z
      .strictObject({
        min: z.int().min(1).meta({ description: 'Fewest LB nodes.' }),
        max: z.int().min(2).meta({ description: 'Most LB nodes.' }),
        steps: z.int().min(1).max(1000).meta({ description: 'Number of changes.' }),
        seed: z.int().min(0).default(1).meta({ description: 'Same seed, same counts.' }),
      })
      .optional()
      .meta({ description: 'Random: each step a count in [min, max] other than the one before.' }),
  })
  .superRefine((t, ctx) => {
    if ((t.counts === undefined) === (t.random === undefined)) {
      ctx.addIssue({ code: 'custom', message: `lb-node-timeline needs either counts: [4, 2, 6] or random: { min, max, steps } (not ${t.counts ? 'both' : 'neither'})` });
    }
    if (t.random && t.random.max <= t.random.min) {
      ctx.addIssue({ code: 'custom', path: ['random', 'max'], message: `max ${t.random.max} must be above min ${t.random.min} so that every step changes the count` });
    }
  })
  .meta({ description: 'ECMP: change the number of LB nodes on a timeline (scripted or random) while the load runs.' });
export type LbNodeTimeline = z.output<typeof LbNodeTimeline>;

export function timelineCounts(t: LbNodeTimeline): number[] {
  if (t.counts) return [...t.counts];
  const { min, max, steps, seed } = t.random!;
  const next = mulberry32(seed);
  const out: number[] = [];
  for (let k = 0; k < steps; k++) {
    const prev = out.at(-1);
    // Drawn from the range without the previous count, so every step is a change.
    const choices = Array.from({ length: max - min + 1 }, (_, i) => min + i).filter((c) => c !== prev);
    out.push(choices[Math.floor(next() * choices.length)]!);
  }
  return out;
}

export function expandTimeline(t: LbNodeTimeline): EventSpec[] {
  return timelineCounts(t).map((count, k) => ({ at: Math.round((t.at + k * t.every) * 1000) / 1000, action: 'set-lb-nodes' as const, count }));
}

export const EventInput = z.discriminatedUnion('action', [...EventSpec.options, LbNodeTimeline]);

export const CpuSpec = z.union([
  z.enum(['auto', 'off']),
  z.strictObject({
    generator: CpuList.meta({ description: 'CPUs for the load generator, e.g. "3".' }),
    servers: CpuList.meta({ description: 'CPUs for the LB and backends, e.g. "0-2".' }),
  }),
]);

export const ScenarioSpec = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, {
        message: 'use letters, digits, ".", "_" and "-" (it becomes part of file names)',
      })
      .meta({ description: 'Scenario name; part of the run id and result paths.' }),
    description: z.string().optional().meta({ description: 'Free text shown in reports.' }),
    topology: z
      .union([z.string().min(1), TopologySpec])
      .prefault('netns-basic')
      .meta({
        description:
          'A topology name (topologies/<name>.yaml), a .yaml path relative to this file, or an inline map.',
      }),
    loadBalancers: z
      .array(LbSpec)
      .min(1)
      .meta({ description: 'Load balancers to compare, measured in this order.' }),
    sweep: SweepSpec.default({ backends: [1] }),
    load: LoadSpec.default(LoadSpec.parse({})),
    events: z
      .array(EventInput)
      .default([])
      .transform((list): EventSpec[] => list.flatMap((e) => (e.action === 'lb-node-timeline' ? expandTimeline(e) : [e])))
      .meta({ description: 'Scheduled during every measured repetition of every point, in order of `at`; undone before the next repetition.' }),
    repetitions: z
      .int()
      .min(1)
      .max(100)
      .default(3)
      .meta({ description: 'Measurements per point; compare-reports wants at least 5.' }),
    cpus: CpuSpec.default('auto').meta({
      description:
        'CPU pinning: "auto" puts the generator on the last CPU and servers on the rest; "off"; or explicit lists.',
    }),
    tuning: z
      .array(TuningProfile)
      .default([])
      .refine((ps) => new Set(ps.map((p) => p.name)).size === ps.length, { message: 'two tuning profiles share a name; give each its own' })
      .meta({
        description:
          'Tuning profiles, a sweep axis: every point is measured once per profile (params.tuning = its name), each applied to the LB node before the point and restored after. Empty: the host as it is. A profile with only a name changes nothing (the baseline).',
      }),
    samplers: z
      .union([
        z.literal(false),
        z.strictObject({
          interval: Duration.prefault('1s').meta({ description: 'Time between snapshots (at least 0.2s).' }),
        }),
      ])
      .prefault({})
      .refine((v) => v === false || v.interval >= 0.2, { message: 'a sampler interval below 0.2s costs more than it tells; write "1s" or "0.5s"' })
      .meta({
        description:
          'CPU (host, per process, with runqueue wait), interface, conntrack and socket counters on the client, the LB node and up to 8 backends during every measurement, and the bottleneck verdict from them; false: off.',
      }),
    settle: Duration.prefault('1s').meta({
      description: 'Pause before each repetition until the 1-minute load average falls, at most this long.',
    }),
    thresholds: z
      .array(z.string().min(1))
      .default([])
      .meta({
        description:
          'Pass/fail criteria checked on every point\'s median once the run is done, e.g. "req_per_s > 50000", "latency.p99 < 5ms", "connection_loss < 0.3"; a violation makes `lbbench run` exit 99. Metrics: those of compare-reports.',
      }),
    unavailable: z
      .enum(['fail', 'skip'])
      .default('fail')
      .meta({ description: 'A load balancer this host cannot run (its preflight fails): fail the run before anything is built, or skip it (recorded as a failed point with the reason) and measure the others.' }),
    output: z.string().default('results').meta({ description: 'Directory for results/<run-id>/.' }),
  })
  .meta({ description: 'An lbbench scenario: which load balancers, on which topology, under which load.' });
export type ScenarioSpec = z.output<typeof ScenarioSpec>;
/** A scenario after loading: topology resolved to an object, source file remembered. */
export type Scenario = Omit<ScenarioSpec, 'topology' | 'loadBalancers'> & {
  loadBalancers: NamedLbSpec[];
  topology: TopologySpec & { backends: number };
  file?: string;
};
