// topology.linkRate: every veth link of a netns topology shaped to one rate, in both directions,
// by a token bucket (tbf) at the root of each end's egress. tbf rather than netem or htb classes:
// this project's kernel has tbf and htb but no netem, and one rate per device needs no classes.
// The qdiscs live in the namespaces and go with them at teardown. Frames an XDP program sends on
// (XDP_TX, XDP_REDIRECT: the xdp LB) skip the LB node's egress qdisc, but every path still
// crosses a shaped egress before and after it (the client's eth0, the switch's ports).
import type { Host } from '../host/types.ts';
import { ProvisionError } from '../errors.ts';

/** An Ethernet frame at MTU 1500 (what a veth carries when GSO does not batch). */
const FRAME_BYTES = 1514;
/** How long a frame may wait in the shaper; tbf's `limit` is rate × latency + burst. */
export const TBF_LATENCY = '50ms';

/**
 * The bucket: at least what the rate sends in 10 ms, i.e. rate/HZ for HZ ≥ 100 (kernels are built
 * with HZ 100–1000; this one has 250), so a timer tick late never leaves the link idle below its
 * rate; and at least four full frames, so small rates still pass a frame train at once (a bucket
 * under one frame would drop every full-size frame). GSO packets larger than the bucket are
 * segmented by tbf, not dropped.
 */
export function tbfBurstBytes(rateBitsPerSec: number): number {
  return Math.max(Math.ceil(rateBitsPerSec / 8 / 100), 4 * FRAME_BYTES);
}

/**
 * `tc qdisc` arguments after `dev X root`. The 50 ms queue is a switch port's buffer: long enough
 * that TCP's bursts at a few Mbit/s are queued rather than dropped, short enough not to swamp the
 * latency percentiles with bufferbloat.
 */
export function tbfArgs(rateBitsPerSec: number): string[] {
  return ['tbf', 'rate', `${Math.round(rateBitsPerSec)}bit`, 'burst', String(tbfBurstBytes(rateBitsPerSec)), 'latency', TBF_LATENCY];
}

/** Pure: `tc -b` lines that shape these devices (of one namespace) to the rate. */
export function shapingLines(devs: string[], rateBitsPerSec: number): string[] {
  return devs.map((d) => ['qdisc', 'replace', 'dev', d, 'root', ...tbfArgs(rateBitsPerSec)].join(' '));
}

/** Shape devices per namespace, with one `tc -n NS -b -` each. */
export async function shapeLinks(root: Host, devsByNs: Map<string, string[]>, rateBitsPerSec: number): Promise<void> {
  await Promise.all(
    [...devsByNs].map(async ([ns, devs]) => {
      try {
        await root.exec(['tc', '-n', ns, '-b', '-'], { input: shapingLines(devs, rateBitsPerSec).join('\n') + '\n', timeoutMs: 30_000 });
      } catch (e) {
        throw new ProvisionError(`shaping ${devs.join(', ')} in ${ns} to ${formatRate(rateBitsPerSec)} failed: ${(e as Error).message}`, 'the kernel needs the tbf qdisc (CONFIG_NET_SCH_TBF); or remove topology.linkRate to run unshaped', { cause: e });
      }
    }),
  );
}

/** 20000000 → "20mbit": the largest unit that keeps the number whole. */
export function formatRate(bitsPerSec: number): string {
  for (const [unit, per] of [['gbit', 1e9], ['mbit', 1e6], ['kbit', 1e3]] as const) {
    if (bitsPerSec >= per && bitsPerSec % per === 0) return `${bitsPerSec / per}${unit}`;
  }
  return `${bitsPerSec}bit`;
}

/** For the result's environment (shown in the report): the links' rate, when they are shaped. */
export function linkFacts(topology: { linkRate?: number }): { linkRate?: string } {
  return topology.linkRate ? { linkRate: formatRate(topology.linkRate) } : {};
}
