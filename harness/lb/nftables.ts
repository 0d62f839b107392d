import type { LbDriver, Protocol } from './types.ts';
import type { LbSpec } from '../scenario/schema.ts';
import type { BackendNode } from '../topology/types.ts';
import { PreflightError } from '../errors.ts';
import { requireTools, toolVersion } from './preflight.ts';
import { nftFamily } from './family.ts';

type Spec = Extract<LbSpec, { kind: 'nftables' }>;
const TABLE = 'lbbench';

const SELECTOR: Record<Spec['algorithm'], string> = {
  'round-robin': 'numgen inc',
  random: 'numgen random',
  hash: 'jhash ip saddr . tcp sport . ip daddr . tcp dport',
};

/** The selector for a protocol and family: the hash reads that protocol's ports and that family's addresses. */
const selector = (algorithm: Spec['algorithm'], proto: Protocol, fam: 'ip' | 'ip6') =>
  SELECTOR[algorithm].replaceAll('tcp ', `${proto} `).replaceAll('ip ', `${fam} `);

/**
 * The whole table as one nft script. `flush table` + definition in one file is one transaction,
 * so a live backend change never leaves a moment without the rule.
 */
export function nftScript(vip: string, port: number, backends: BackendNode[], algorithm: Spec['algorithm'], weights: Record<string, number> = {}, protocols: Protocol[] = ['tcp']): string {
  // A weight w is w consecutive slots of the selector's range (0-2 : be0 for weight 3); weight 0, none.
  let slot = 0;
  const entries = backends.flatMap((b) => {
    const w = weights[b.name] ?? 1;
    if (w === 0) return [];
    const key = w === 1 ? `${slot}` : `${slot}-${slot + w - 1}`;
    slot += w;
    return [`${key} : ${b.ip} . ${b.port}`];
  });
  // No backends: no rule, so connections to the VIP are refused by the LB node itself.
  // A rule per protocol (its own numgen counter; the hash reads that protocol's ports).
  const fam = nftFamily(vip);
  const rule = slot
    ? protocols.map((p) => `    ${fam} daddr ${vip} ${p} dport ${port} dnat ${fam} addr . port to ${selector(algorithm, p, fam)} mod ${slot} map { ${entries.join(', ')} }`)
    : [];
  return [
    `table ${fam} ${TABLE} {}`,
    `flush table ${fam} ${TABLE}`,
    `table ${fam} ${TABLE} {`,
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
  udp: () => true,
  ipv6: true,
  async apply(ctx) {
    const host = ctx.topo.lb.host;
    const { vip } = ctx.topo;
    const fam = nftFamily(vip);
    const weights = { ...ctx.spec.weights };
    let current = ctx.backends;
    const load = (list: BackendNode[]) =>
      host.exec(['nft', '-f', '-'], { input: nftScript(vip, ctx.port, list, ctx.spec.algorithm, weights, ctx.protocols) });
    const remove = ctx.teardown.add(`nftables: delete table ${TABLE} on ${host.name}`, async () => {
      await host.exec(['nft', 'delete', 'table', fam, TABLE], { check: false });
      await host.exec(['conntrack', '-F'], { check: false });
    });
    await load(ctx.backends);
    return {
      endpoint: { ip: vip, port: ctx.port },
      async setBackends(list) {
        await load(list);
        current = list;
      },
      async setWeights(w) {
        Object.assign(weights, w);
        await load(current);
      },
      async describe() {
        const [version, rules] = await Promise.all([
          toolVersion(host, ['nft', '--version']),
          host.exec(['nft', 'list', 'table', fam, TABLE]),
        ]);
        return { version, config: rules.stdout };
      },
      teardown: remove,
    };
  },
};
