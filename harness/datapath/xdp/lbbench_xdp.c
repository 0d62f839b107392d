// SPDX-License-Identifier: GPL-2.0
//
// lbbench's own L4 load balancer: maglev over the flow's 5-tuple, DSR by MAC rewrite.
//
// The VIP lives on the backends' lo, so a VIP packet only needs a new Ethernet header and a
// redirect out of the backend-facing interface: the IP header is not touched and no checksum
// changes. Replies go from the backend to the client without us. There is no connection table:
// a flow follows its table entry, so a flow whose entry moves on a backend change moves too
// (maglev keeps that set small).
//
// IPv4 or IPv6, whichever VIP user space configured. Everything that is not TCP/UDP to VIP:port
// (ARP and neighbour discovery above all: the client has to resolve its gateway through this very
// interface; IPv6 packets with extension headers, fragments among them) is passed to the kernel
// untouched.
//
// User space (harness/lb/xdp.ts) owns the layout below: keep LBB_* constants and the structs in
// step with it (test/unit/xdp.test.ts checks the constants and runs packets through this program).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// Sized for the scenario schema's limits (tableSize ≤ 1000003, a netns topology holds ≤ 189
// backends): array maps are preallocated, and this keeps the table map at 4 MB.
#define LBB_TABLE_MAX 1000003
#define LBB_BACKENDS_MAX 1024
#define LBB_NO_BACKEND 0xffffffffu

enum lbb_drop {
	LBB_DROP_NO_BACKEND = 0, // table entry empty: the backend list is empty
	LBB_DROP_BAD_BACKEND = 1, // table entry points at a slot without a MAC (user space bug)
	LBB_DROP_REDIRECT = 2, // bpf_redirect refused (bad ifindex)
	LBB_DROP_MAX = 4,
};

struct lbb_config {
	__be32 vip; // 0: not configured yet, pass everything
	__be16 port;
	__u8 proto; // IPPROTO_TCP, IPPROTO_UDP, or 0 for both
	__u8 pad0;
	__u32 egress_ifindex;
	__u8 egress_mac[ETH_ALEN];
	__u16 pad1;
	__u32 table_size; // entries of lbb_table in use; a prime ≤ LBB_TABLE_MAX
	__be32 vip6[4]; // the IPv6 VIP; all zero: not configured, pass IPv6
};

struct lbb_backend {
	__u8 mac[ETH_ALEN];
	__u8 valid;
	__u8 pad;
	__be32 ip; // IPv4, for bpftool dumps only; DSR never rewrites the IP header
};

struct lbb_counter {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lbb_config);
} lbb_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LBB_TABLE_MAX);
	__type(key, __u32);
	__type(value, __u32); // backend slot, or LBB_NO_BACKEND
} lbb_table SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LBB_BACKENDS_MAX);
	__type(key, __u32);
	__type(value, struct lbb_backend);
} lbb_backends SEC(".maps");

// Per CPU so the fast path never contends on a cache line; user space sums over CPUs.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LBB_BACKENDS_MAX);
	__type(key, __u32);
	__type(value, struct lbb_counter);
} lbb_bestats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LBB_DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lbb_drops SEC(".maps");

// jhash_3words from the kernel's linux/jhash.h (not a uapi header, so not installable).
static __always_inline __u32 rol32(__u32 w, unsigned int s)
{
	return (w << s) | (w >> (32 - s));
}

static __always_inline __u32 jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	initval += 0xdeadbeef + (3 << 2);
	a += initval;
	b += initval;
	c += initval;
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

static __always_inline int drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&lbb_drops, &reason);
	if (n)
		*n += 1;
	return XDP_DROP;
}

// TCP or UDP, and the protocol the config asks for (0: both).
static __always_inline int lbb_wanted(const struct lbb_config *cfg, __u8 proto)
{
	return (proto == IPPROTO_TCP || proto == IPPROTO_UDP) && (!cfg->proto || proto == cfg->proto);
}

// An IPv6 address as one hash word: maglev needs a stable spread, not the whole address.
static __always_inline __u32 fold6(const struct in6_addr *a)
{
	return a->in6_u.u6_addr32[0] ^ a->in6_u.u6_addr32[1] ^ a->in6_u.u6_addr32[2] ^ a->in6_u.u6_addr32[3];
}

SEC("xdp")
int lbb_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 zero = 0;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	struct lbb_config *cfg = bpf_map_lookup_elem(&lbb_config, &zero);
	if (!cfg)
		return XDP_PASS;

	// The flow as hash words: source, destination, ports, protocol.
	__u32 src, dst, ports = 0;
	__u8 proto;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = (void *)(eth + 1);
		if ((void *)(iph + 1) > end || iph->ihl < 5)
			return XDP_PASS;
		if (!cfg->vip || iph->daddr != cfg->vip)
			return XDP_PASS;
		proto = iph->protocol;
		if (!lbb_wanted(cfg, proto))
			return XDP_PASS;

		// Ports are the first 4 bytes of both TCP and UDP. Non-first fragments carry no ports,
		// so every fragment of a datagram hashes on addresses alone to stay on one backend; only
		// the first fragment can be checked against the port.
		__u16 frag = bpf_ntohs(iph->frag_off);
		int fragmented = frag & 0x3fff; // MF or a fragment offset
		if (!(frag & 0x1fff)) {
			__u8 *l4 = (__u8 *)iph + iph->ihl * 4;
			if ((void *)(l4 + 4) > end)
				return XDP_PASS;
			if (*(__be16 *)(l4 + 2) != cfg->port)
				return XDP_PASS;
			if (!fragmented)
				ports = *(__u32 *)l4;
		}
		src = iph->saddr;
		dst = iph->daddr;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return XDP_PASS;
		const __be32 *d = ip6->daddr.in6_u.u6_addr32;
		if (!(cfg->vip6[0] | cfg->vip6[1] | cfg->vip6[2] | cfg->vip6[3]))
			return XDP_PASS;
		if (d[0] != cfg->vip6[0] || d[1] != cfg->vip6[1] || d[2] != cfg->vip6[2] || d[3] != cfg->vip6[3])
			return XDP_PASS;
		// TCP or UDP right after the fixed header; extension headers (fragments too) go to the kernel.
		proto = ip6->nexthdr;
		if (!lbb_wanted(cfg, proto))
			return XDP_PASS;
		__u8 *l4 = (__u8 *)(ip6 + 1);
		if ((void *)(l4 + 4) > end)
			return XDP_PASS;
		if (*(__be16 *)(l4 + 2) != cfg->port)
			return XDP_PASS;
		ports = *(__u32 *)l4;
		src = fold6(&ip6->saddr);
		dst = fold6(&ip6->daddr);
	} else {
		return XDP_PASS;
	}

	__u32 size = cfg->table_size;
	if (!size || size > LBB_TABLE_MAX)
		return drop(LBB_DROP_NO_BACKEND);
	__u32 idx = jhash_3words(src, dst, ports, proto) % size;
	__u32 *slot = bpf_map_lookup_elem(&lbb_table, &idx);
	if (!slot || *slot == LBB_NO_BACKEND)
		return drop(LBB_DROP_NO_BACKEND);
	__u32 s = *slot;
	struct lbb_backend *be = bpf_map_lookup_elem(&lbb_backends, &s);
	if (!be || !be->valid)
		return drop(LBB_DROP_BAD_BACKEND);

	__builtin_memcpy(eth->h_dest, be->mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, cfg->egress_mac, ETH_ALEN);

	struct lbb_counter *c = bpf_map_lookup_elem(&lbb_bestats, &s);
	if (c) {
		c->packets += 1;
		c->bytes += end - data;
	}
	// Delivery failures after this point (e.g. a veth target without NAPI) are invisible here:
	// they show in the ingress device's xdp drop statistics (ethtool -S), not in our counters.
	int rc = bpf_redirect(cfg->egress_ifindex, 0);
	if (rc != XDP_REDIRECT)
		return drop(LBB_DROP_REDIRECT);
	return rc;
}

// Attached in native mode to the peer of a veth we redirect into: a veth delivers redirected
// frames only when its peer runs NAPI, and an XDP program is what turns NAPI on.
SEC("xdp")
int lbb_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
