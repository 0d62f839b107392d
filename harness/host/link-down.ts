// A link taken down and brought back, as a failure event does it. Routes through a device go with
// its link (the kernel flushes them when it goes down) and do not come back with it, so the
// node's main table is read first and put back after.
import type { Host } from './types.ts';

/** Pure: `ip -o route show` lines through `dev` that `ip route replace` can take again. */
export function routesVia(ipRouteShow: string, dev: string): string[] {
  return ipRouteShow
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && new RegExp(`\\bdev ${dev}\\b`).test(l) && !/\bproto kernel\b/.test(l) && !/\blinkdown\b/.test(l));
}

/** Takes `dev` down on `host`; the returned function brings it up and restores its routes. */
export async function takeLinkDown(host: Host, dev: string): Promise<() => Promise<void>> {
  const routes = routesVia((await host.exec(['ip', '-o', 'route', 'show'])).stdout, dev);
  await host.exec(['ip', 'link', 'set', dev, 'down']);
  return async () => {
    await host.exec(['ip', 'link', 'set', dev, 'up']);
    if (routes.length) await host.exec(['ip', '-b', '-'], { input: routes.map((r) => `route replace ${r}`).join('\n') + '\n' });
  };
}
