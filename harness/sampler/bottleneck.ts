// What limited a repetition, from what the samplers saw. Pure. The rules are deliberately simple
// and each verdict comes with the numbers that led to it, so a reader can disagree:
//
//   generator  the generator's processes wanted ≥ 90% of the threads it was given — ran or waited
//              runnable for a CPU (schedstat) — or waited for a CPU longer than they ran, or the
//              tester said it fell behind its set rate;
//   link       an LB interface carried ≥ 90% of the topology's linkRate;
//   lb         the LB node's processes (user-space LBs) wanted ≥ 90% of their workers;
//   backend    a backend's server processes wanted ≥ 90% of their workers;
//   unknown    none of these — including a host whose CPUs were all busy with no single role at
//              its limit (on one host every role shares the CPUs; kernel datapaths run in softirq
//              wherever the packet happens to be).
//
// When several hold, the first in that order wins: a saturated generator makes every other
// number a statement about the generator.
import { mean } from '../stats/descriptive.ts';
import type { Sample } from './series.ts';

export type BottleneckVerdict = 'generator' | 'lb' | 'backend' | 'link' | 'unknown';

export interface Bottleneck {
  verdict: BottleneckVerdict;
  evidence: string[];
}

export const SATURATED = 0.9;

export interface BottleneckInput {
  /** Samples per node: "client", "lb", and backends by name. */
  samples: Record<string, Sample[]>;
  /** Threads the generator runs (wrk -t; 1 for single-threaded testers). */
  generatorThreads: number;
  /** The generator's own verdict, where it has one (the traffic tester). */
  generatorSaturated?: boolean;
  /** Worker processes per user-space LB (nginx/haproxy workers; 1 for NFQUEUE). Absent: a kernel datapath. */
  lbWorkers?: number;
  backendWorkers: number;
  /** The topology's link rate, bit/s. */
  linkBitsPerSec?: number;
  /** Names of backends (keys of `samples` that are backends). */
  backends: string[];
}

const fmt = (x: number) => x.toFixed(2);

/**
 * Mean over the intervals where the node had processes: cores they ran, and cores they waited
 * runnable for a CPU (their demand beyond what they got). Intervals with no process at all (a
 * generator not started yet) don't dilute the mean. The sampler doesn't watch itself: it skips
 * its own PID, and its short-lived children never span two snapshots.
 */
export function processUse(samples: Sample[] = []): { ran: number; waited: number } {
  const busy = samples.filter((s) => Object.keys(s.procs).length);
  if (!busy.length) return { ran: 0, waited: 0 };
  const sum = (o: Record<string, number> | undefined) => Object.values(o ?? {}).reduce((a, b) => a + b, 0);
  return { ran: mean(busy.map((s) => sum(s.procs))), waited: mean(busy.map((s) => sum(s.procWait))) };
}

/**
 * The LB node's busiest interface direction: its mean bits/s over the samples and where it was
 * ("eth0 in"). What a shaped link fills first, for the link verdict and the link ceiling alike.
 */
export function busiestDirection(lb: Sample[]): { bitsPerSec: number; where: string } {
  let best = { bitsPerSec: 0, where: '' };
  if (!lb.length) return best;
  for (const name of new Set(lb.flatMap((s) => Object.keys(s.ifaces)))) {
    for (const dir of ['rxBitsPerSec', 'txBitsPerSec'] as const) {
      const v = mean(lb.map((s) => s.ifaces[name]?.[dir] ?? 0));
      if (v > best.bitsPerSec) best = { bitsPerSec: v, where: `${name} ${dir === 'rxBitsPerSec' ? 'in' : 'out'}` };
    }
  }
  return best;
}

/**
 * Waited runnable for a CPU longer than it ran: whatever else it waits for (replies, the
 * network), CPU time is what it was short of.
 */
export const starved = (u: { ran: number; waited: number }) => u.waited >= STARVED_MIN_CORES && u.waited > u.ran;
const STARVED_MIN_CORES = 0.1;

export const processCores = (samples?: Sample[]) => processUse(samples).ran;

/** "0.48 of 1 cores (+0.50 waiting for a CPU)" */
function useText(u: { ran: number; waited: number }, of: number): string {
  return `${fmt(u.ran)} of ${of} cores${u.waited >= 0.05 ? ` (+${fmt(u.waited)} waiting for a CPU)` : ''}`;
}

export function attribute(i: BottleneckInput): Bottleneck {
  const evidence: string[] = [];
  const found: BottleneckVerdict[] = [];
  // Demand (ran + waited) against what it was given: a generator that got half a CPU and waited
  // for the other half is as much the limit as one that ran flat out.
  const gen = processUse(i.samples.client);
  const genLimit = Math.max(1, i.generatorThreads);
  evidence.push(`generator: ${useText(gen, genLimit)}`);
  if (i.generatorSaturated) evidence.push('generator: fell behind its set rate');
  if (gen.ran + gen.waited >= SATURATED * genLimit || starved(gen) || i.generatorSaturated) found.push('generator');

  if (i.linkBitsPerSec) {
    const { bitsPerSec: worst, where } = busiestDirection(i.samples.lb ?? []);
    evidence.push(`link: ${(worst / 1e6).toFixed(1)} of ${(i.linkBitsPerSec / 1e6).toFixed(1)} Mbit/s${where ? ` (${where})` : ''}`);
    if (worst >= SATURATED * i.linkBitsPerSec) found.push('link');
  }

  if (i.lbWorkers !== undefined) {
    const lb = processUse(i.samples.lb);
    evidence.push(`lb: ${useText(lb, i.lbWorkers)}`);
    if (lb.ran + lb.waited >= SATURATED * i.lbWorkers) found.push('lb');
  }

  const demand = (u: { ran: number; waited: number }) => u.ran + u.waited;
  const busiest = i.backends.map((b) => [b, processUse(i.samples[b])] as const).sort((a, b) => demand(b[1]) - demand(a[1]))[0];
  if (busiest) {
    evidence.push(`backend: busiest ${busiest[0]} ${useText(busiest[1], i.backendWorkers)}`);
    if (demand(busiest[1]) >= SATURATED * i.backendWorkers) found.push('backend');
  }

  const host = i.samples.lb ?? i.samples.client ?? [];
  if (host.length) {
    const busy = mean(host.map((s) => s.cpu.busy));
    const cpus = host[host.length - 1]!.cpu.cpus;
    const soft = mean(host.map((s) => s.cpu.softirq));
    evidence.push(`host: ${fmt(busy)} of ${cpus} CPUs busy (softirq ${fmt(soft)})`);
  }
  const order: BottleneckVerdict[] = ['generator', 'link', 'lb', 'backend'];
  return { verdict: order.find((v) => found.includes(v)) ?? 'unknown', evidence };
}
