// The one registry of load balancers. Adding one: a file here, an entry below, a case in
// scenario/schema.ts's LbSpec union, a unit test of its config builder (test/unit/lb-config.test.ts);
// the e2e driver test picks it up from this table.
import type { LbKind, LbSpec } from '../scenario/schema.ts';
import { LB_KINDS } from '../scenario/schema.ts';
import type { LbDriver } from './types.ts';
import { ConfigError } from '../errors.ts';
import { router } from './router.ts';
import { iptablesDnat } from './iptables-dnat.ts';
import { nftables } from './nftables.ts';
import { nginx } from './nginx.ts';
import { haproxy } from './haproxy.ts';
import { ipvs } from './ipvs.ts';
import { ecmp } from './ecmp.ts';
import { nfqueue } from './nfqueue.ts';
import { xdp } from './xdp.ts';
import { vrrp } from './vrrp.ts';

export const lbDrivers: { [K in LbKind]: LbDriver<Extract<LbSpec, { kind: K }>> } = {
  router,
  'iptables-dnat': iptablesDnat,
  nftables,
  nginx,
  haproxy,
  ipvs,
  ecmp,
  nfqueue,
  xdp,
  vrrp,
};

export function getLbDriver<S extends LbSpec>(kind: S['kind']): LbDriver<S> {
  const d = (lbDrivers as Record<string, LbDriver<LbSpec>>)[kind];
  if (!d) throw new ConfigError(`unknown load balancer kind "${kind}"`, [], `valid kinds: ${LB_KINDS.join(', ')}`);
  return d as unknown as LbDriver<S>;
}

/** Whether this LB balances an IPv6 VIP: true, or why not (undefined: not done yet). */
export function ipv6Support(spec: LbSpec): true | string | undefined {
  const v = getLbDriver(spec.kind).ipv6;
  return typeof v === 'function' ? (v as (s: LbSpec) => true | string)(spec) : v;
}

/** Why this LB cannot be measured over IPv6 ("x does not balance IPv6 (why)"), or undefined where it can. */
export function ipv6Refusal(spec: LbSpec & { name?: string }, name = spec.name ?? spec.kind): string | undefined {
  const v6 = ipv6Support(spec);
  return v6 === true ? undefined : `${name} does not balance IPv6${typeof v6 === 'string' ? ` (${v6})` : ' in lbbench yet'}`;
}
