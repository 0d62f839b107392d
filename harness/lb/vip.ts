// Shared by the L4 datapaths whose backends answer for the VIP themselves (ECMP, NFQUEUE, XDP):
// the VIP goes on each backend's lo (ARP-silent), and comes off the LB node, where a local VIP
// would win the route lookup and the packets would never be forwarded.
import { setSysctls } from '../host/sysctl.ts';
import { hostPrefix } from './family.ts';
import type { Teardown } from '../teardown.ts';
import type { BackendNode, LbNode } from '../topology/types.ts';

/** VIP on lo with arp_ignore=1/arp_announce=2, so backends accept it but never claim it on the wire. */
export async function addVipToBackends(backends: BackendNode[], vip: string, teardown: Teardown): Promise<void> {
  await Promise.all(
    backends.map(async (b) => {
      await setSysctls(b.host, b.name, { 'net.ipv4.conf.all.arp_ignore': '1', 'net.ipv4.conf.all.arp_announce': '2' }, teardown);
      // /128 for IPv6: a /32 there would make all of 2001:2::/32 local.
      await b.host.exec(['ip', 'addr', 'replace', hostPrefix(vip), 'dev', 'lo']);
      teardown.add(`remove VIP ${vip} from ${b.name}`, () => b.host.exec(['ip', 'addr', 'del', hostPrefix(vip), 'dev', 'lo'], { check: false }));
    }),
  );
}

/**
 * Take the VIP off the LB node for the life of this LB; put it back in teardown for the next one.
 * Early demux goes off too: a proxy LB that ran before (nginx, haproxy) leaves TIME_WAIT sockets
 * for VIP:port on this node for a minute, early demux attaches them to incoming packets with the
 * same 4-tuple, and ip_forward drops any packet that carries a socket — so SYNs from reused client
 * ports would vanish without a counter.
 */
export async function releaseVipFromLbNode(lb: LbNode, vip: string, teardown: Teardown): Promise<void> {
  await setSysctls(lb.host, lb.name, { 'net.ipv4.ip_early_demux': '0' }, teardown);
  const has = (await lb.host.exec(['ip', '-o', 'addr', 'show', 'dev', 'lo'])).stdout.includes(` ${hostPrefix(vip)} `);
  if (!has) return;
  await lb.host.exec(['ip', 'addr', 'del', hostPrefix(vip), 'dev', 'lo']);
  teardown.add(`restore VIP ${vip} on ${lb.name}`, () => lb.host.exec(['ip', 'addr', 'replace', hostPrefix(vip), 'dev', 'lo'], { check: false }));
}
