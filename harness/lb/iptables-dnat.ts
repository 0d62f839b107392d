import { hostPort, hostPrefix, iptablesCmd } from './family.ts';
import type { LbDriver, Protocol } from './types.ts';
import type { LbSpec } from '../scenario/schema.ts';
import type { BackendNode } from '../topology/types.ts';
import { PreflightError } from '../errors.ts';
import { requireTools, toolVersion } from './preflight.ts';

type Spec = Extract<LbSpec, { kind: 'iptables-dnat' }>;
const CHAIN = 'LBB_VIP';

/**
 * The chain's rules for n backends. Rule i matches 1 in (n-i) of the connections that reach it, so
 * each backend gets 1/n overall; nat rules see only a connection's first packet (conntrack keeps
 * the rest on the same backend).
 */
export function dnatRules(backends: BackendNode[], algorithm: Spec['algorithm'], protocols: Protocol[] = ['tcp']): string[] {
  // One sequence per protocol: the protocol match comes first, so each sequence's nth counters
  // count only its own protocol's connections.
  return protocols.flatMap((proto) => protoRules(backends, algorithm, proto));
}

function protoRules(backends: BackendNode[], algorithm: Spec['algorithm'], proto: Protocol): string[] {
  const n = backends.length;
  return backends.map((b, i) => {
    const left = n - i;
    const match =
      left === 1
        ? ''
        : algorithm === 'random'
          ? `-m statistic --mode random --probability ${(1 / left).toFixed(8)} `
          : `-m statistic --mode nth --every ${left} --packet 0 `;
    return `-A ${CHAIN} -p ${proto} ${match}-j DNAT --to-destination ${hostPort(b.ip, b.port)}`;
  });
}

/** iptables-restore input that replaces the chain in one transaction (live backend changes drop nothing). */
export function restoreInput(backends: BackendNode[], algorithm: Spec['algorithm'], protocols: Protocol[] = ['tcp']): string {
  return ['*nat', `:${CHAIN} - [0:0]`, ...dnatRules(backends, algorithm, protocols), 'COMMIT', ''].join('\n');
}

export const iptablesDnat: LbDriver<Spec> = {
  kind: 'iptables-dnat',
  summary: 'iptables DNAT with the statistic match (kernel, conntrack)',
  tools: [
    { cmd: 'iptables', pkg: 'iptables' },
    { cmd: 'iptables-restore', pkg: 'iptables' },
    { cmd: 'conntrack', pkg: 'conntrack' },
  ],
  async preflight(host) {
    await requireTools(host, this.tools, 'iptables-dnat');
    const r = await host.exec(['iptables', '-t', 'nat', '-S'], { check: false });
    if (r.code !== 0) {
      throw new PreflightError(`iptables nat table unusable on ${host.name}: ${r.stderr.trim()}`, 'modprobe iptable_nat nf_nat (or use the nftables LB)');
    }
  },
  udp: () => true,
  ipv6: true,
  async apply(ctx) {
    const host = ctx.topo.lb.host;
    const { vip } = ctx.topo;
    const algorithm = ctx.spec.algorithm;
    const protocols = ctx.protocols ?? ['tcp'];
    const jumps = protocols.map((p) => ['PREROUTING', '-d', hostPrefix(vip), '-p', p, '--dport', String(ctx.port), '-j', CHAIN]);
    // ip6tables for an IPv6 VIP: the same rules, its own tables.
    const ipt = iptablesCmd(vip);

    await host.exec([ipt, '-t', 'nat', '-N', CHAIN]);
    ctx.teardown.add(`${ipt}: delete chain ${CHAIN} on ${host.name}`, async () => {
      await host.exec([ipt, '-t', 'nat', '-F', CHAIN], { check: false });
      await host.exec([ipt, '-t', 'nat', '-X', CHAIN], { check: false });
    });
    await host.exec([`${ipt}-restore`, '-n'], { input: restoreInput(ctx.backends, algorithm, protocols) });
    const removeJump = ctx.teardown.add(`${ipt}: delete PREROUTING jumps on ${host.name}`, async () => {
      for (const jump of jumps) await host.exec([ipt, '-t', 'nat', '-D', ...jump], { check: false });
    });
    for (const jump of jumps) await host.exec([ipt, '-t', 'nat', '-A', ...jump]);

    let torn = false;
    return {
      endpoint: { ip: vip, port: ctx.port },
      async setBackends(list) {
        await host.exec([`${ipt}-restore`, '-n'], { input: restoreInput(list, algorithm, protocols) });
      },
      async describe() {
        const [version, rules] = await Promise.all([
          toolVersion(host, [ipt, '--version']),
          host.exec([ipt, '-t', 'nat', '-S']),
        ]);
        return { version, config: rules.stdout };
      },
      async teardown() {
        if (torn) return;
        torn = true;
        await removeJump();
        await host.exec([ipt, '-t', 'nat', '-F', CHAIN], { check: false });
        await host.exec([ipt, '-t', 'nat', '-X', CHAIN], { check: false });
        // Established flows would keep their DNAT mapping into the next LB's measurement.
        await host.exec(['conntrack', '-F'], { check: false });
      },
    };
  },
};
