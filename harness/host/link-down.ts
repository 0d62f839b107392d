// A link taken down and brought back, as a failure event does it. Routes through a device go with
// its link (the kernel flushes them when it goes down) and do not come back with it, so the
// node's main table is read first and put back after.
import type { Host } from './types.ts';

/** Pure: `ip -o route show` lines through `dev` that `ip route replace` can take again. */
export function routesVia(ipRouteShow: string, dev: string): string[] {
  return ipRouteShow
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && new RegExp(`\\bdev ${dev}\\b`).test(l) && !/\bproto kernel\b/.test(l) && !/\blinkdown\b/.test(l) && !/^(fe80|ff00|multicast|local)\b/.test(l));
}

/** Takes `dev` down on `host`; the returned function brings it up and restores its routes (both families). */
export async function takeLinkDown(host: Host, dev: string): Promise<() => Promise<void>> {
  const [v4, v6] = await Promise.all([['ip', '-o', 'route', 'show'], ['ip', '-6', '-o', 'route', 'show']].map(async (argv) => routesVia((await host.exec(argv)).stdout, dev)));
  await host.exec(['ip', 'link', 'set', dev, 'down']);
  return async () => {
    await host.exec(['ip', 'link', 'set', dev, 'up']);
    // One batch per family: a batch line cannot name its family, and "default" alone means IPv4.
    for (const [ip, routes] of [[['ip'], v4], [['ip', '-6'], v6]] as const) {
      if (routes.length) await host.exec([...ip, '-b', '-'], { input: routes.map((r) => `route replace ${r}`).join('\n') + '\n' });
    }
  };
}
