import type { LbDriver } from './types.ts';
import type { LbSpec } from '../scenario/schema.ts';
import type { BackendNode } from '../topology/types.ts';
import { PreflightError } from '../errors.ts';
import { requireTools, toolVersion } from './preflight.ts';

type Spec = Extract<LbSpec, { kind: 'nftables' }>;
const TABLE = 'lbbench';

const SELECTOR: Record<Spec['algorithm'], string> = {
  'round-robin': 'numgen inc',
  random: 'numgen random',
  hash: 'jhash ip saddr . tcp sport . ip daddr . tcp dport',
};

/**
 * The whole table as one nft script. `flush table` + definition in one file is one transaction,
 * so a live backend change never leaves a moment without the rule.
 */
export function nftScript(vip: string, port: number, backends: BackendNode[], algorithm: Spec['algorithm']): string {
  const map = backends.map((b, i) => `${i} : ${b.ip} . ${b.port}`).join(', ');
  // No backends: no rule, so connections to the VIP are refused by the LB node itself.
  const rule = backends.length
    ? [`    ip daddr ${vip} tcp dport ${port} dnat ip addr . port to ${SELECTOR[algorithm]} mod ${backends.length} map { ${map} }`]
    : [];
  return [
    `table ip ${TABLE} {}`,
    `flush table ip ${TABLE}`,
    `table ip ${TABLE} {`,
    `  chain prerouting {`,
    `    type nat hook prerouting priority dstnat; policy accept;`,
    ...rule,
    `  }`,
    `}`,
    '',
  ].join('\n');
}

export const nftables: LbDriver<Spec> = {
  kind: 'nftables',
  summary: 'nftables DNAT with numgen/jhash maps (kernel, conntrack)',
  tools: [
    { cmd: 'nft', pkg: 'nftables' },
    { cmd: 'conntrack', pkg: 'conntrack' },
  ],
  async preflight(host) {
    await requireTools(host, this.tools, 'nftables');
    const r = await host.exec(['nft', 'list', 'tables'], { check: false });
    if (r.code !== 0) throw new PreflightError(`nft unusable on ${host.name}: ${r.stderr.trim()}`, 'modprobe nf_tables nft_nat');
  },
  async apply(ctx) {
    const host = ctx.topo.lb.host;
    const { vip } = ctx.topo;
    const load = (list: BackendNode[]) =>
      host.exec(['nft', '-f', '-'], { input: nftScript(vip, ctx.port, list, ctx.spec.algorithm) });
    const remove = ctx.teardown.add(`nftables: delete table ${TABLE} on ${host.name}`, async () => {
      await host.exec(['nft', 'delete', 'table', 'ip', TABLE], { check: false });
      await host.exec(['conntrack', '-F'], { check: false });
    });
    await load(ctx.backends);
    return {
      endpoint: { ip: vip, port: ctx.port },
      setBackends: async (list) => void (await load(list)),
      async describe() {
        const [version, rules] = await Promise.all([
          toolVersion(host, ['nft', '--version']),
          host.exec(['nft', 'list', 'table', 'ip', TABLE]),
        ]);
        return { version, config: rules.stdout };
      },
      teardown: remove,
    };
  },
};
