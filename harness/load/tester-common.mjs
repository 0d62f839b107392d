// Shared by lbbench's built-in testers (copied next to them onto the client host): plain Node, no
// dependencies.

export function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

/** "198.18.128.0/18:1000" → the first 1000 addresses of the pool, used in turn as source addresses. */
export function poolAddresses(spec) {
  if (!spec) return [];
  const v6 = /^([0-9a-fA-F:]+)\/(\d+):(\d+)$/.exec(spec);
  if (v6) return poolAddresses6(v6[1], +v6[2], +v6[3], spec);
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+):(\d+)$/.exec(spec);
  if (!m) throw new Error(`bad --sources ${spec}`);
  const base = ((+m[1] << 24) >>> 0) + (+m[2] << 16) + (+m[3] << 8) + +m[4];
  const size = 2 ** (32 - +m[5]);
  const count = Math.min(+m[6], size - 2);
  return Array.from({ length: count }, (_, i) => {
    const a = base + 1 + i;
    return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
  });
}

/** "2001:2:0:80::/64" → its first `count` host addresses (base + 1 …), written out in full (net takes any form). */
function poolAddresses6(prefix, len, count, spec) {
  const [head, tail = ''] = prefix.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  if (h.length + t.length > 8 || len < 64 || len > 128) throw new Error(`bad --sources ${spec}`);
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t].map((g) => parseInt(g, 16));
  // The host part of a /64 or longer fits the last four groups; count stays far below 2^48.
  const low = groups.slice(4).reduce((a, g) => a * 65536 + g, 0);
  const size = len >= 80 ? 2 ** (128 - len) : Number.MAX_SAFE_INTEGER;
  return Array.from({ length: Math.min(count, size - 2) }, (_, i) => {
    let a = low + 1 + i;
    const last = [0, 0, 0, 0].map(() => {
      const g = a % 65536;
      a = Math.floor(a / 65536);
      return g;
    }).reverse();
    return [...groups.slice(0, 4), ...last].map((g) => g.toString(16)).join(':');
  });
}
