import type { Host } from '../host/types.ts';
import { sleep } from '../util/time.ts';

function cpuTotals(stat: string): { idle: number; total: number } {
  const line = stat.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) throw new Error('no aggregate cpu line in /proc/stat');
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // idle + iowait count as idle; steal is time we could not have had.
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { idle, total: v.reduce((a, b) => a + b, 0) };
}

/** Share of all CPUs idle over `windowMs`. */
export async function idleFraction(host: Host, windowMs = 250, signal?: AbortSignal): Promise<number> {
  const a = cpuTotals(await host.readFile('/proc/stat'));
  await sleep(windowMs, signal);
  const b = cpuTotals(await host.readFile('/proc/stat'));
  const dt = b.total - a.total;
  return dt > 0 ? (b.idle - a.idle) / dt : 1;
}

/**
 * Wait until the machine is quiet before a repetition (the previous one's TIME_WAIT sockets,
 * conntrack GC and nginx reloads still cost CPU), at most `maxS`. Load average moves too slowly
 * for this; /proc/stat over a short window does not.
 */
export async function waitIdle(
  host: Host,
  maxS: number,
  signal?: AbortSignal,
  threshold = 0.9,
): Promise<{ waitedS: number; idleFraction: number }> {
  const start = Date.now();
  let idle = 0;
  do {
    idle = await idleFraction(host, 250, signal);
    if (idle >= threshold) break;
  } while (Date.now() - start < maxS * 1000);
  return { waitedS: (Date.now() - start) / 1000, idleFraction: Math.round(idle * 1000) / 1000 };
}
