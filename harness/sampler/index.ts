// Samplers beside a measurement: one shell loop per node (sampler.sh) started before the load and
// stopped after it; its output is parsed into per-interval rates (series.ts).
import { readFileSync } from 'node:fs';
import type { Host } from '../host/types.ts';
import { parseSamplerOutput } from './proc.ts';
import { samplesOf, type Sample } from './series.ts';

export type { Sample } from './series.ts';

const SCRIPT = readFileSync(new URL('./sampler.sh', import.meta.url), 'utf8');

export interface SamplerOptions {
  intervalS: number;
  /** Upper bound of the measurement: the loop ends by itself after it (and a margin). */
  maxS: number;
  /** Watch every process of the node's network namespace (netns nodes). */
  discover: boolean;
  pids?: number[];
}

export interface RunningSampler {
  /** Stops the loop and returns the rates it saw, with its raw output for the record. */
  stop(): Promise<{ samples: Sample[]; raw: string }>;
}

/** Puts the script where `startSampler` runs it from (a short argv reads better in ps than the script). */
export async function installSampler(host: Host, dir: string): Promise<string> {
  const path = `${dir}/lbbench-sampler.sh`;
  await host.writeFile(path, SCRIPT);
  return path;
}

export function startSampler(host: Host, script: string, o: SamplerOptions): RunningSampler {
  const count = Math.ceil(o.maxS / o.intervalS) + 2;
  const p = host.spawn(['sh', script, String(o.intervalS), String(count), o.discover ? '1' : '0', ...(o.pids ?? []).map(String)], {
    timeoutMs: Math.ceil((o.maxS + 5 + 2 * o.intervalS) * 1000),
  });
  return {
    async stop() {
      const r = await p.stop(1000);
      return { samples: samplesOf(parseSamplerOutput(r.stdout)), raw: r.stdout };
    },
  };
}
