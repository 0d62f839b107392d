// trafgen (netsniff-ng) as a small-packet generator: 60-byte TCP SYNs with a random source port,
// so every packet is a new flow for the LB to hash. Header functions let trafgen fill in lengths
// and checksums (conntrack-based LBs drop packets with a bad TCP checksum as INVALID).
import { ParseError } from '../errors.ts';

export interface SynFlood {
  dstMac: string;
  srcMac: string;
  srcIp: string;
  dstIp: string;
  dstPort: number;
}

/** Pure: the trafgen packet config. */
export function trafgenSynConfig(s: SynFlood): string {
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
