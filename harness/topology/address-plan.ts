// The address plan from DESIGN.md, in one place. Only the benchmarking range 198.18.0.0/15.
import { familyOf } from '../lb/family.ts';

export const PLAN = {
  clientNet: '198.18.0.0/24',
  clientGw: '198.18.0.1',
  clientIp: (i: number) => `198.18.0.${2 + i}`,
  backendNet: '198.18.1.0/24',
  /** The LB node's address towards the clients: the clients' gateway; a standby LB node's, .251 on. */
  lbClientIp: (i: number) => (i === 0 ? '198.18.0.1' : `198.18.0.${250 + i}`),
  /** LB nodes sit at .2–.9 on the backend segment; .1 is kept for a router. */
  lbBackendIp: (i: number) => `198.18.1.${2 + i}`,
  /** Backends .11–.199; .200+ is infrastructure (sshd etc.). */
  backendIp: (i: number) => `198.18.1.${11 + i}`,
  maxBackends: 189,
  /** The client's leg on the backend segment, for replies that bypass the LB node (DSR). */
  clientReturnIp: '198.18.1.250',
  /**
   * DESIGN.md suggested 198.18.64.0/18, but that range contains the VIPs (198.18.100.0/24): the
   * client would treat the VIP as its own address. 198.18.128.0/18 is the same size and disjoint.
   */
  sourcePool: '198.18.128.0/18',
  /**
   * Under an overlay the veths of the backend segment carry an underlay of their own, in the other
   * half of the benchmarking range, so that the plan's backend addresses stay on the overlay.
   */
  underlayNet: '198.19.1.0/24',
  underlayLbIp: (i: number) => `198.19.1.${2 + i}`,
  underlayBackendIp: (i: number) => `198.19.1.${11 + i}`,
  vip: (i = 0) => `198.18.100.${1 + i}`,
  vipNet: '198.18.100.0/24',
} as const;

/**
 * The same plan in the IPv6 benchmarking prefix 2001:2::/48 (RFC 5180), host numbers alike: the
 * client net 2001:2::/64, the backend segment 2001:2:0:1::/64, VIPs in 2001:2:0:100::/64.
 */
export const PLAN6 = {
  clientIp: (i: number) => `2001:2::${2 + i}`,
  lbClientIp: (i: number) => (i === 0 ? '2001:2::1' : `2001:2::${250 + i}`),
  lbBackendIp: (i: number) => `2001:2:0:1::${2 + i}`,
  backendIp: (i: number) => `2001:2:0:1::${11 + i}`,
  vip: (i = 0) => `2001:2:0:100::${1 + i}`,
  clientNet: '2001:2::/64',
  /** The client's leg on the backend segment, for replies that bypass the LB node (DSR). */
  clientReturnIp: '2001:2:0:1::250',
  /** The client's IPv6 source pool (AnyIP on its lo, with ip_nonlocal_bind). */
  sourcePool: '2001:2:0:80::/64',
} as const;

/** The connection testers' source pool of an address's family (the target's). */
export const sourcePoolFor = (ip: string): string => (familyOf(ip) === 6 ? PLAN6.sourcePool : PLAN.sourcePool);

/** Namespaces and links of a run are named `lbb-<id4>-<role><n>` so leftovers are obvious. */
export const NAME_PREFIX = 'lbb-';
