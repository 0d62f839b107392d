// trafgen (netsniff-ng) as a small-packet generator: 60-byte TCP SYNs with a random source port,
// so every packet is a new flow for the LB to hash. Header functions let trafgen fill in lengths
// and checksums (conntrack-based LBs drop packets with a bad TCP checksum as INVALID).
import { familyOf, iptablesCmd } from '../lb/family.ts';
import { posix } from 'node:path';
import { ParseError, PreflightError, ProvisionError } from '../errors.ts';
import type { Host } from '../host/types.ts';
import type { PacketMetrics } from '../results/types.ts';
import { ownsNamespaces, topologyName } from '../scenario/schema.ts';
import { tbfArgs } from '../topology/shaping.ts';
import type { AttachContext, LoadDriver, LoadRunSpec } from './types.ts';

export interface SynFlood {
  dstMac: string;
  srcMac: string;
  srcIp: string;
  dstIp: string;
  dstPort: number;
}

/** Pure: the trafgen packet config. */
export function trafgenSynConfig(s: SynFlood): string {
  // IPv6: a 74-byte frame with no fill; the hop limit must be set, or it is 0 and the LB node drops
  // every packet (Ip6InHdrErrors) while trafgen counts them as sent.
  if (familyOf(s.dstIp) === 6) {
    return ['{', `  eth(da=${s.dstMac}, sa=${s.srcMac}),`, `  ipv6(saddr=${s.srcIp}, daddr=${s.dstIp}, hl=64),`, `  tcp(sp=drnd(), dp=${s.dstPort}, syn),`, '}', ''].join('\n');
  }
  return [
    '{',
    `  eth(da=${s.dstMac}, sa=${s.srcMac}),`,
    `  ipv4(saddr=${s.srcIp}, daddr=${s.dstIp}, ttl=64),`,
    `  tcp(sp=drnd(), dp=${s.dstPort}, syn),`,
    '  fill(0x00, 6)',
    '}',
    '',
  ].join('\n');
}

/** Pure: trafgen's exit summary ("N packets outgoing", "B bytes outgoing", "S sec, U usec on CPUk"). */
export function parseTrafgen(stdout: string): { packets: number; bytes: number; seconds: number } {
  const packets = /^\s*(\d+) packets outgoing$/m.exec(stdout);
  const bytes = /^\s*(\d+) bytes outgoing$/m.exec(stdout);
  const time = /^\s*(\d+) sec, (\d+) usec on CPU\d+/m.exec(stdout);
  if (!packets || !bytes || !time) {
    throw new ParseError('no exit summary (packets/bytes outgoing, sec/usec on CPU)', 'trafgen', stdout.slice(-300));
  }
  return { packets: Number(packets[1]), bytes: Number(bytes[1]), seconds: Number(time[1]) + Number(time[2]) / 1e6 };
}

/** Ethernet + IPv4 + TCP + 6 bytes of fill: the 60-byte minimum frame (64 on the wire with FCS). */
export const SYN_FRAME_BYTES = 60;
const CONF = 'trafgen-syn.cfg';
const SINK_COMMENT = 'lbbench-trafgen-sink';

export type PacketGeneratorMetrics = Omit<PacketMetrics, 'perBackend'>;

/** Pure: the sink rule's packet counter in `iptables -t raw -L PREROUTING -v -x -n` output. */
export function parseSinkCounter(out: string): number {
  const line = out.split('\n').find((l) => l.includes(SINK_COMMENT));
  const n = line ? /^\s*(\d+)\s+\d+\s+DROP/.exec(line)?.[1] : undefined;
  if (n === undefined) throw new ParseError('the sink rule is missing from the raw table', 'iptables', out.slice(0, 300));
  return Number(n);
}

export async function nsMac(host: Host, dev: string): Promise<string> {
  // A namespace's /sys is only its own inside `ip netns exec`, which is how namespace hosts run commands.
  return (await host.exec(['cat', `/sys/class/net/${dev}/address`])).stdout.trim();
}

/**
 * The client's eth0 made fit for trafgen for the point (undone by `teardown`), and the MACs its
 * frames need. veth has no qdisc (noqueue): when the peer's ring is full (an XDP program on it
 * keeps it busy) the send fails with EAGAIN and trafgen gives up ("Flushing TX_RING failed"). A
 * FIFO queues instead, as a NIC's ring would. A link shaped by topology.linkRate has a tbf there,
 * which does not do: trafgen sends as fast as it can, the tbf holds the packets back until the
 * socket's send buffer is full, and trafgen stops with the same EAGAIN (seen at 20mbit). So the
 * FIFO stands in for the tbf during the point and the tbf is put back after; the shapers further
 * on (the LB node's egress, the switch's ports) still hold what arrives to the link's rate, and
 * the excess shows as loss.
 */
export async function readyForTrafgen(topo: AttachContext['topo'], teardown: AttachContext['teardown']): Promise<{ dstMac: string; srcMac: string }> {
  const { label, argv } = topo.linkRate
    ? { label: 'client0: eth0 shaped again', argv: ['tc', 'qdisc', 'replace', 'dev', 'eth0', 'root', ...tbfArgs(topo.linkRate)] }
    : { label: 'client0: eth0 back to noqueue', argv: ['tc', 'qdisc', 'del', 'dev', 'eth0', 'root'] };
  teardown.add(label, () => topo.client.host.exec(argv, { check: false }));
  await topo.client.host.exec(['tc', 'qdisc', 'replace', 'dev', 'eth0', 'root', 'pfifo', 'limit', '1000']);
  return { dstMac: await nsMac(topo.lb.host, topo.lb.clientIf), srcMac: await nsMac(topo.client.host, 'eth0') };
}

/** Pure: trafgen run for `durationS`, stopped by SIGINT so that it prints its summary. */
export function trafgenArgv(conf: string, durationS: number, opts: { cpus?: string; pps?: number } = {}): string[] {
  const argv = ['timeout', '-s', 'INT', String(durationS), 'trafgen', '--dev', 'eth0', '--conf', conf, '-P', '1', ...(opts.pps ? ['-b', `${opts.pps}pps`] : []), '-q'];
  return opts.cpus ? ['taskset', '-c', opts.cpus, ...argv] : argv;
}

/**
 * 60-byte TCP SYNs with random source ports at the VIP, as fast as one trafgen thread can; each
 * backend drops them in its raw table, and those DROP rules' counters are what arrived. A run is
 * ended by SIGINT from `timeout` to trafgen's process group: its per-CPU workers stop and the parent
 * prints its summary (signalling only the parent leaves a worker running).
 */
export const trafgen: LoadDriver<PacketGeneratorMetrics> = {
  name: 'trafgen',
  ipv6: true,
  tools: [{ cmd: 'trafgen', pkg: 'netsniff-ng' }],
  async preflight(host: Host) {
    // `trafgen --version` exits 1 after printing its version; what matters is that it ran.
    const r = await host.exec(['trafgen', '--version'], { check: false, timeoutMs: 10_000 });
    if (!/^trafgen \d/m.test(r.stdout)) throw new PreflightError(`trafgen is not installed on ${host.name}`, 'lbbench setup (Debian package netsniff-ng)');
  },
  unsupported(topology) {
    // The client's interface and the LB's MAC are known only where lbbench built the links.
    if (!ownsNamespaces(topology)) {
      return `trafgen writes Ethernet frames on the client's eth0 towards the LB node's MAC, which lbbench knows only on netns and qemu one-guest topologies (not ${topologyName(topology)}); use MoonGen on bare metal`;
    }
    return undefined;
  },
  buildArgv(spec: LoadRunSpec) {
    return trafgenArgv(posix.join(spec.workDir, CONF), spec.durationS, { cpus: spec.cpus });
  },
  async prepare(host: Host, spec: LoadRunSpec) {
    const x = spec.extra ?? {};
    if (!x.dstMac || !x.srcMac) throw new ProvisionError('trafgen: no MAC addresses (the point did not attach the generator)');
    await host.exec(['mkdir', '-p', spec.workDir]);
    await host.writeFile(
      posix.join(spec.workDir, CONF),
      trafgenSynConfig({ dstMac: String(x.dstMac), srcMac: String(x.srcMac), srcIp: String(x.srcIp), dstIp: spec.target.ip, dstPort: spec.target.port }),
    );
  },
  parse(stdout: string, stderr: string) {
    let t: ReturnType<typeof parseTrafgen>;
    try {
      t = parseTrafgen(stdout);
    } catch (e) {
      // trafgen says why it stopped on stderr (its socket-memory warnings are noise).
      const why = stderr.split('\n').filter((l) => l.trim() && !l.startsWith('Cannot set system socket memory')).slice(-2).join('; ');
      if (why && e instanceof ParseError) throw new ParseError(`${e.message.replace(/^trafgen: /, '')}; trafgen said: ${why}`, 'trafgen', e.excerpt);
      throw e;
    }
    if (!(t.seconds > 0) || t.packets === 0) throw new ParseError(`sent ${t.packets} packets in ${t.seconds} s`, 'trafgen', stdout.slice(-300));
    return {
      durationS: t.seconds,
      packets: {
        sent: t.packets,
        received: NaN,
        sentPerSec: t.packets / t.seconds,
        receivedPerSec: NaN,
        lossFraction: NaN,
        frameBytes: t.bytes / t.packets,
        receivedBitsPerSec: NaN,
      },
    };
  },
  async attach(ctx: AttachContext) {
    const { topo, backends, endpoint } = ctx;
    const rule = ['PREROUTING', '-p', 'tcp', '--syn', '--dport', String(endpoint.port), '-m', 'comment', '--comment', SINK_COMMENT, '-j', 'DROP'];
    const ipt = iptablesCmd(endpoint.ip);
    for (const b of backends) {
      ctx.teardown.add(`${b.name}: remove the trafgen sink`, () => b.host.exec([ipt, '-t', 'raw', '-D', ...rule], { check: false }));
      await b.host.exec([ipt, '-t', 'raw', '-I', ...rule]);
    }
    const extra = { ...(await readyForTrafgen(topo, ctx.teardown)), srcIp: topo.client.ip };
    return {
      extra,
      async counters() {
        const counts = await Promise.all(backends.map(async (b) => parseSinkCounter((await b.host.exec([ipt, '-t', 'raw', '-L', 'PREROUTING', '-v', '-x', '-n'])).stdout)));
        return Object.fromEntries(backends.map((b, i) => [b.name, counts[i]!]));
      },
      metrics(gen, arrived) {
        const g = gen as PacketGeneratorMetrics;
        const received = Object.values(arrived).reduce((a, b) => a + b, 0);
        const p = g.packets;
        return {
          durationS: g.durationS,
          packets: {
            ...p,
            received,
            receivedPerSec: received / g.durationS,
            lossFraction: Math.max(0, 1 - received / p.sent),
            receivedBitsPerSec: (received * p.frameBytes * 8) / g.durationS,
          },
          perBackend: arrived,
        };
      },
    };
  },
};
