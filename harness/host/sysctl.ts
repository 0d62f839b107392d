// Sysctls an LB or a topology changes for its lifetime: the previous value is put back by the
// teardown ledger, so the next LB (or the user's machine) finds the node as it was.
import type { Host } from './types.ts';
import type { Teardown } from '../teardown.ts';

/** Sets the values and registers their restore; returns what each key was before. */
export async function setSysctls(host: Host, where: string, values: Record<string, string>, teardown: Teardown): Promise<Record<string, string>> {
  const before: Record<string, string> = {};
  for (const [key, value] of Object.entries(values)) {
    const was = (await host.exec(['sysctl', '-n', key])).stdout.trim();
    before[key] = was;
    if (was === value) continue;
    await host.exec(['sysctl', '-q', '-w', `${key}=${value}`]);
    teardown.add(`restore ${key}=${was} on ${where}`, () => host.exec(['sysctl', '-q', '-w', `${key}=${was}`], { check: false }));
  }
  return before;
}
