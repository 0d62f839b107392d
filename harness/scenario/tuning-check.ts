// Cross-field checks of `tuning:` that zod cannot express: a profile that would break one of the
// scenario's load balancers is refused at load time, with where it is and what to write instead.
import { LbSpec, TuningProfile } from './schema.ts';
import { rawList, type Finding } from './raw.ts';

/** LBs that need conntrack on their node: NOTRACK would break them, so `conntrack: false` is refused. */
export function needsConntrack(lb: { kind: string; state?: unknown }): boolean {
  return lb.kind === 'iptables-dnat' || lb.kind === 'nftables' || (lb.kind === 'nfqueue' && lb.state === 'conntrack');
}

/** Load-time checks zod can't express: profiles that would break one of the scenario's LBs. */
export function tuningFindings(data: unknown): Finding[] {
  const profiles = rawList(data, ['tuning']);
  const lbs = rawList(data, ['loadBalancers']).map((l) => LbSpec.safeParse(l)).filter((r) => r.success).map((r) => r.data);
  const findings: Finding[] = [];
  profiles.forEach((raw, i) => {
    const p = TuningProfile.safeParse(raw);
    if (!p.success || p.data.conntrack !== false) return;
    const broken = lbs.filter((lb) => needsConntrack(lb as { kind: string; state?: unknown }));
    if (broken.length) {
      findings.push({
        path: ['tuning', i, 'conntrack'],
        message: `${broken.map((b) => b.name ?? b.kind).join(', ')} need${broken.length === 1 ? 's' : ''} conntrack on the LB node (NAT or connection marks); drop conntrack: false from profile "${p.data.name}", or measure those LBs in a scenario of their own`,
      });
    }
  });
  return findings;
}
