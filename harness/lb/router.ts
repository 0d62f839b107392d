import type { LbDriver } from './types.ts';
import type { LbSpec } from '../scenario/schema.ts';
import { requireTools, toolVersion } from './preflight.ts';

type Spec = Extract<LbSpec, { kind: 'router' }>;

/**
 * The baseline: the LB node only routes, and the client talks to one backend directly. An LB's
 * cost is its result minus this one (the LVS HOWTO's method), so it must run on the same path.
 */
export const router: LbDriver<Spec> = {
  kind: 'router',
  summary: 'plain IP forwarding to the first backend (the baseline)',
  tools: [{ cmd: 'ip', pkg: 'iproute2' }],
  async preflight(host) {
    await requireTools(host, this.tools, 'router');
  },
  // Plain forwarding carries any protocol.
  udp: () => true,
  ipv6: true,
  async apply(ctx) {
    const host = ctx.topo.lb.host;
    let target = ctx.backends[0]!;
    return {
      endpoint: { ip: target.ip, port: target.port },
      async setBackends(list) {
        // A router has no backend set; the target stays the one the generator connects to.
        if (list.length && !list.includes(target)) target = list[0]!;
      },
      async describe() {
        const [version, routes, fwd] = await Promise.all([
          toolVersion(host, ['ip', '-V']),
          host.exec(['ip', 'route', 'show']),
          host.exec(['sysctl', 'net.ipv4.ip_forward']),
        ]);
        return { version, config: `# ${fwd.stdout.trim()}\n# forwarding to ${target.name} ${target.ip}\n${routes.stdout}` };
      },
      async teardown() {},
    };
  },
};
