// Synthetic runs for the comparison tests: a recorded run with every request metric of an LB
// scaled by a factor (throughput up, latency down by the same factor) and `reps` repetitions
// built from its first one with a small fixed wobble, so the statistics have something to chew.
import type { RunResult } from '../../../harness/results/types.ts';

export interface ScaleOptions {
  runId?: string;
  startedAt?: string;
  /** Throughput multiplier per LB name (latency is divided by it). */
  factor: (lb: string) => number;
  reps?: number;
  /** Relative spread between repetitions (±wobble). */
  wobble?: number;
}

export function scaledRun(base: RunResult, o: ScaleOptions): RunResult {
  const r = structuredClone(base);
  if (o.runId) r.runId = o.runId;
  if (o.startedAt) r.startedAt = o.startedAt;
  const reps = o.reps ?? 6;
  const wobble = o.wobble ?? 0.01;
  for (const p of r.points) {
    const f = o.factor(p.lb.name);
    const first = p.repetitions[0]!;
    p.repetitions = Array.from({ length: reps }, (_, i) => {
      const w = 1 + (wobble * (((i * 7) % 5) - 2)) / 2;
      const m = structuredClone(first.metrics) as { requestsPerSec: number; latencyUs: Record<string, number>; latencyCdf?: [number, number][] };
      m.requestsPerSec *= f * w;
      for (const k of Object.keys(m.latencyUs)) m.latencyUs[k] = m.latencyUs[k]! / (f * w);
      if (m.latencyCdf) m.latencyCdf = m.latencyCdf.map(([pct, us]) => [pct, us / (f * w)]);
      return { ...structuredClone(first), index: i, metrics: m as never };
    });
  }
  return r;
}
