// Shared by lbbench's built-in testers (copied next to them onto the client host): plain Node, no
// dependencies.

export function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

/** "198.18.128.0/18:1000" → the first 1000 addresses of the pool, used in turn as source addresses. */
export function poolAddresses(spec) {
  if (!spec) return [];
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
