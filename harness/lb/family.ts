// The address family of an address, and the spellings each tool wants for it: where an IPv4
// driver writes 198.18.1.11:80, /32, iptables, `ip`, an IPv6 one must write [2001:2:0:1::11]:80,
// /128, ip6tables, `ip6`. Several tools accept the IPv4 spelling of a v6 address and silently mean
// something else (an unbracketed --to-destination is an address without a port), so every driver
// goes through these.
export type Family = 4 | 6;

export const familyOf = (ip: string): Family => (ip.includes(':') ? 6 : 4);

/** "198.18.1.11:80" / "[2001:2:0:1::11]:80". */
export const hostPort = (ip: string, port: number): string => (familyOf(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`);

/** The address as one host: "/32" or "/128". */
export const hostPrefix = (ip: string): string => `${ip}/${familyOf(ip) === 6 ? 128 : 32}`;

/** `ip` for this address's family: route, rule and batch commands mean IPv4 unless told -6. */
export const ipCmd = (ip: string): string[] => (familyOf(ip) === 6 ? ['ip', '-6'] : ['ip']);

export const iptablesCmd = (ip: string): 'iptables' | 'ip6tables' => (familyOf(ip) === 6 ? 'ip6tables' : 'iptables');

/** nftables' family keyword for tables and address matches. */
export const nftFamily = (ip: string): 'ip' | 'ip6' => (familyOf(ip) === 6 ? 'ip6' : 'ip');
