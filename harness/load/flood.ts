// A background flood beside the measured load: TCP SYNs or small UDP datagrams at the VIP, every
// packet from a random address of the client's source pool and a random port, at a set rate, from
// trafgen on the client. The measured load is then the probe: its success rate and latency under
// the flood are what "service health under attack" means (IPVS vs an XDP LB at 1, 3, 10 Mpps with a
// curl loop beside it). Replies to the spoofed sources come back to the client, which owns the
// pool (AnyIP) and resets or ignores them, as real clients would.
import { posix } from 'node:path';
import { ParseError, ProvisionError } from '../errors.ts';
import type { Spawned } from '../host/types.ts';
import { PLAN, PLAN6 } from '../topology/address-plan.ts';
import { familyOf } from '../lb/family.ts';
import type { AttachContext } from './types.ts';
import { parseTrafgen, readyForTrafgen, trafgenArgv } from './trafgen.ts';

export type FloodPacket = 'syn' | 'udp';

/** What the flood sent during one repetition (trafgen's own count; what arrived is the LB's business). */
export interface FloodResult {
  packet: FloodPacket;
  targetPps: number;
  sent: number;
  sentPerSec: number;
  seconds: number;
}

/** Pure: first and last address of an IPv4 CIDR as unsigned 32-bit numbers (trafgen's drnd bounds). */
export function cidrRange(cidr: string): [number, number] {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  if (!m) throw new Error(`not an IPv4 CIDR: ${cidr}`);
  const base = m.slice(1, 5).reduce((a, o) => a * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(m[5]));
  const first = base - (base % size);
  return [first, first + size - 1];
}

/**
 * Pure: the trafgen config. 60-byte frames either way (the minimum; 64 on the wire): a SYN with six
 * bytes of fill, or a UDP datagram with 18 bytes of payload. trafgen fills in lengths and
 * checksums, also for the fields it randomizes per packet.
 */
export function floodConfig(o: { dstMac: string; srcMac: string; dstIp: string; dstPort: number; packet: FloodPacket; sourcePool?: string }): string {
  if (familyOf(o.dstIp) === 6) return floodConfig6(o);
  const [lo, hi] = cidrRange(o.sourcePool ?? PLAN.sourcePool);
  const l4 = o.packet === 'syn' ? [`  tcp(sp=drnd(1024, 65535), dp=${o.dstPort}, syn),`, '  fill(0x00, 6)'] : [`  udp(sp=drnd(1024, 65535), dp=${o.dstPort}),`, '  fill(0x00, 18)'];
  return ['{', `  eth(da=${o.dstMac}, sa=${o.srcMac}),`, `  ipv4(saddr=drnd(${lo}, ${hi}), daddr=${o.dstIp}, ttl=64),`, ...l4, '}', ''].join('\n');
}

/** Sources over IPv6: as many as the IPv4 pool has, in the IPv6 pool. */
const V6_SOURCES = 16383;

/**
 * IPv6: trafgen's drnd() makes a whole random IPv6 address (outside any pool, so replies would
 * go nowhere), while dinc() keeps the prefix and steps the last four bytes: the sources walk
 * through the first 16383 addresses of the client's IPv6 pool, each packet with a random port.
 * 74-byte frames either way (the hop limit must be set: trafgen's default is 0).
 */
function floodConfig6(o: { dstMac: string; srcMac: string; dstIp: string; dstPort: number; packet: FloodPacket }): string {
  const l4 = o.packet === 'syn' ? [`  tcp(sp=drnd(1024, 65535), dp=${o.dstPort}, syn),`] : [`  udp(sp=drnd(1024, 65535), dp=${o.dstPort}),`, '  fill(0x00, 12)'];
  const base = PLAN6.sourcePool.replace(/::\/\d+$/, '::1');
  return ['{', `  eth(da=${o.dstMac}, sa=${o.srcMac}),`, `  ipv6(saddr=${base}, saddr=dinc(1, ${V6_SOURCES}), daddr=${o.dstIp}, hl=64),`, ...l4, '}', ''].join('\n');
}

/** Seconds the flood starts before the probe and keeps going after it, so the probe is inside it throughout. */
export const FLOOD_MARGIN_S = 1;

export interface FloodControl {
  start(pps: number, durationS: number, cpus?: string): RunningFlood;
}

export interface RunningFlood {
  /** Waits for the flood to end (it ends itself after its duration; `early` stops it now) and reads what it sent. */
  finish(early?: boolean): Promise<FloodResult>;
}

/** The client's side of a point's flood: eth0 made fit for trafgen and the config written; undone by `teardown`. */
export async function prepareFlood(ctx: Pick<AttachContext, 'topo' | 'endpoint' | 'teardown' | 'workDir'>, packet: FloodPacket): Promise<FloodControl> {
  const { topo } = ctx;
  const macs = await readyForTrafgen(topo, ctx.teardown);
  const conf = posix.join(ctx.workDir, `flood-${packet}.cfg`);
  await topo.client.host.exec(['mkdir', '-p', ctx.workDir]);
  await topo.client.host.writeFile(conf, floodConfig({ ...macs, dstIp: ctx.endpoint.ip, dstPort: ctx.endpoint.port, packet }));
  return {
    start(pps, durationS, cpus) {
      const argv = trafgenArgv(conf, durationS, { pps, cpus });
      const proc: Spawned = topo.client.host.spawn(argv, { timeoutMs: (durationS + 15) * 1000 });
      const stop = ctx.teardown.add(`stop the flood (pid ${proc.pid ?? '?'})`, () => proc.stop(2000, 'SIGINT'));
      return {
        async finish(early = false) {
          const r = early ? await proc.stop(2000, 'SIGINT') : await proc.exited;
          await stop();
          try {
            const t = parseTrafgen(r.stdout);
            if (!(t.seconds > 0) || t.packets === 0) throw new ParseError(`the flood sent ${t.packets} packets in ${t.seconds} s`, 'trafgen', r.stdout.slice(-300));
            return { packet, targetPps: pps, sent: t.packets, sentPerSec: t.packets / t.seconds, seconds: t.seconds };
          } catch (e) {
            const why = r.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('Cannot set system socket memory')).slice(-2).join('; ');
            throw new ProvisionError(`the flood (${argv.join(' ')}) did not run: ${(e as Error).message}${why ? `; trafgen said: ${why}` : ''}`);
          }
        },
      };
    },
  };
}

/** Pure: the probe's share of attempts that got an answer (non-2xx counts as failed), from any request generator's metrics. */
export function probeSuccess(m: { requests: number; errors: { connect: number; read: number; write: number; timeout: number; status: number } }): number {
  const e = m.errors;
  const attempts = m.requests + e.connect + e.read + e.write + e.timeout;
  return attempts === 0 ? 0 : Math.max(0, m.requests - e.status) / attempts;
}
