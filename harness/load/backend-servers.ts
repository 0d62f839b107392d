// Generators that bring their own server (iperf3, mconnect, ctraffic) run it on the backends for a
// point, and the LB's port is redirected to it there: the LB is configured exactly as for HTTP, and
// what it balances reaches the generator's server instead of nginx.
import { familyOf, hostPort, iptablesCmd } from '../lb/family.ts';
import { PreflightError, ProvisionError } from '../errors.ts';
import type { Host } from '../host/types.ts';
import type { ConnectionMetrics } from '../results/types.ts';
import type { Protocol } from '../lb/types.ts';
import type { BackendNode } from '../topology/types.ts';
import { waitFor } from '../util/time.ts';
import type { AttachContext, Attached } from './types.ts';
import { commandPath } from '../lb/preflight.ts';

export interface BackendServerSpec {
  /** Short name for teardown labels and errors. */
  label: string;
  /** Where the server listens on each backend. */
  port: number;
  protocols: Protocol[];
  /** The server's argv on one backend. */
  argv(backend: BackendNode): string[];
}

/**
 * Starts the server on each backend (and waits until it listens), with the LB's port redirected to
 * it; everything is undone by ctx.teardown. A server that exits or never listens is a ProvisionError
 * with its output.
 */
export async function startBackendServers(ctx: AttachContext, backends: BackendNode[], s: BackendServerSpec): Promise<void> {
  await Promise.all(
    backends.map(async (be) => {
      for (const proto of s.protocols) {
        const redirect = ['PREROUTING', '-p', proto, '--dport', String(ctx.endpoint.port), '-m', 'comment', '--comment', `lbbench-${s.label}`, '-j', 'REDIRECT', '--to-ports', String(s.port)];
        // The redirect lives in the table of the family the traffic arrives in.
        const ipt = iptablesCmd(ctx.endpoint.ip);
        ctx.teardown.add(`${be.name}: remove the ${s.label} ${proto} redirect`, () => be.host.exec([ipt, '-t', 'nat', '-D', ...redirect], { check: false }));
        await be.host.exec([ipt, '-t', 'nat', '-I', ...redirect]);
      }
      const server = be.host.spawn(s.argv(be));
      ctx.teardown.add(`${be.name}: stop the ${s.label} server`, () => server.stop());
      const listening = async () => (await be.host.exec(['ss', '-Hln', `sport = :${s.port}`], { check: false })).stdout.trim() !== '';
      const up = await waitFor(async () => !server.running() || (await listening()), { timeoutMs: 5000 });
      if (!up || !server.running()) {
        const out = await server.stop(200);
        throw new ProvisionError(`${s.label} server on ${be.name} did not start: ${(out.stderr || out.stdout).trim().slice(-300) || 'no output'}`, `try it by hand on ${be.name}: ${s.argv(be).join(' ')}`);
      }
    }),
  );
}

/**
 * Runs argv with the UTS hostname set to the backend's name: tools that report "which server
 * answered" by hostname (mconnect, ctraffic) would otherwise all report the machine's.
 */
export function asHostname(name: string, argv: string[]): string[] {
  return ['unshare', '--uts', 'sh', '-c', 'hostname "$0" && exec "$@"', name, ...argv];
}

/**
 * Where a Nordix tool's server listens (its -address): both servers are net.Listen("tcp", address)
 * (mconnect's server(), ctraffic's serverMain()). For an IPv6 point "[::]:port", the form both
 * READMEs use: Go listens on a wildcard "tcp" address with one AF_INET6 socket and IPV6_V6ONLY=0
 * (net/ipsock_posix.go favoriteAddrFamily), so IPv4 still arrives too. For IPv4 "0.0.0.0:port",
 * which Go opens the same way when it can, but as plain AF_INET on a backend without IPv6, where
 * "[::]" would fail.
 */
export function namedServerAddress(endpointIp: string, port: number): string {
  return hostPort(familyOf(endpointIp) === 6 ? '::' : '0.0.0.0', port);
}

/**
 * attach() of a Nordix tool (mconnect, ctraffic): its server on every backend, named like the
 * backend, on the tool's port; the stored per-backend counts are the tool's own connection counts.
 */
export async function attachNamedServers(ctx: AttachContext, tool: string, port: number): Promise<Attached> {
  await startBackendServers(ctx, ctx.backends, {
    label: tool,
    port,
    protocols: ['tcp'],
    argv: (be) => asHostname(be.name, [tool, '-server', '-address', namedServerAddress(ctx.endpoint.ip, port)]),
  });
  return {
    extra: {},
    counters: async () => ({}),
    metrics: (gen) => {
      const g = gen as Omit<ConnectionMetrics, 'perBackend'>;
      return { ...g, perBackend: { ...g.connectionsPerBackend } };
    },
  };
}

/** Preflight of a Nordix tool: on PATH of the generator host (the backends run the same build). */
export async function requireNordixTool(host: Host, tool: string, instead: string): Promise<void> {
  if ((await commandPath(host, tool)) === null) {
    throw new PreflightError(
      `${tool} is not installed on ${host.name} (looked for ${tool})`,
      `${tool} is not packaged by Debian: build it from github.com/Nordix/${tool} (go build ./cmd/${tool}) and put it on PATH on the client and the backends; ${instead} measures the same without it`,
    );
  }
}
