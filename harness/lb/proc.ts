// Helpers shared by the user-space proxy drivers (nginx, haproxy): who holds the listener, and
// when a reload has really taken.
import { hostPort } from './family.ts';
import type { Host, Spawned } from '../host/types.ts';
import { ProvisionError } from '../errors.ts';
import { waitFor } from '../util/time.ts';

/**
 * PIDs holding the listening socket on ip:port. A reload has taken only when no pre-reload worker
 * is among them: until then an old worker may still accept a connection and, on L4, keep it on the
 * old backend set for the connection's whole life.
 */
export async function listenerPids(host: Host, ip: string, port: number): Promise<Set<number>> {
  const r = await host.exec(['ss', '-Hltnp', 'src', hostPort(ip, port)], { check: false, timeoutMs: 5000 });
  return new Set([...r.stdout.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])));
}

/**
 * Readiness is judged by who holds the listener, so nobody else may hold it before we start: a
 * leftover LB would pass for ours, and with SO_REUSEPORT (haproxy's default) would even share
 * the traffic without either process failing.
 */
export async function requirePortFree(host: Host, ip: string, port: number): Promise<void> {
  const r = await host.exec(['ss', '-Hltnp', 'src', hostPort(ip, port)], { check: false, timeoutMs: 5000 });
  if (r.stdout.trim()) {
    throw new ProvisionError(
      `${ip}:${port} on ${host.name} is already in use:\n${r.stdout.trim()}`,
      'a previous load balancer is still running: tear it down first (lbbench down removes leftovers)',
    );
  }
}

export function tail(text: string, lines = 10): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

/**
 * Send `signal` to the master and wait until only new workers hold the listener. Returns false
 * when that did not happen in time or the master died (the caller says why).
 */
export async function reloadAndWait(
  host: Host,
  proc: Spawned,
  master: number,
  signal: 'HUP' | 'USR2',
  listen: { ip: string; port: number },
  timeoutMs: number,
): Promise<boolean> {
  const before = await listenerPids(host, listen.ip, listen.port);
  before.delete(master);
  await host.exec(['kill', `-${signal}`, String(master)]);
  const took = await waitFor(
    async () => {
      if (!proc.running()) return true;
      const now = [...(await listenerPids(host, listen.ip, listen.port))].filter((p) => p !== master);
      return now.length > 0 && now.every((p) => !before.has(p));
    },
    { timeoutMs, intervalMs: 25 },
  );
  return took && proc.running();
}
