// Tuning profiles (scenario `tuning`): host settings on the LB node applied before a point and
// restored after it, each change registered on the point's teardown ledger before it is made, so
// a failure or Ctrl-C half-way still puts back what was changed. What was there before and what
// was set is recorded with the point.
import { ConfigError } from '../errors.ts';
import type { Host } from '../host/types.ts';
import type { TuningProfile } from '../scenario/schema.ts';
import type { Teardown } from '../teardown.ts';
import type { LbNode } from '../topology/types.ts';

/** ethtool -K short names → the feature names `ethtool -k` prints. */
export const OFFLOAD_FEATURES: Record<string, string> = {
  gro: 'generic-receive-offload',
  gso: 'generic-segmentation-offload',
  tso: 'tcp-segmentation-offload',
  lro: 'large-receive-offload',
  rx: 'rx-checksumming',
  tx: 'tx-checksumming',
  sg: 'scatter-gather',
  rxvlan: 'rx-vlan-offload',
  txvlan: 'tx-vlan-offload',
  ntuple: 'ntuple-filters',
  rxhash: 'receive-hashing',
};

/** `ethtool -k IF` → feature → {on, fixed}. */
export function parseEthtoolFeatures(text: string): Record<string, { on: boolean; fixed: boolean }> {
  const out: Record<string, { on: boolean; fixed: boolean }> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([a-z0-9-]+):\s+(on|off)(\s+\[fixed\])?/.exec(line);
    if (m) out[m[1]!] = { on: m[2] === 'on', fixed: !!m[3] };
  }
  return out;
}

export interface TuningChange {
  what: string;
  before: string;
  after: string;
}

export interface TuningRecord {
  name: string;
  changes: TuningChange[];
}

const sh = (host: Host, script: string) => host.exec(['sh', '-c', script]);
const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Writes `value` to every file matching `glob` (sysfs queue files), returning what each held. */
async function writeQueues(host: Host, glob: string, value: string, what: string, teardown: Teardown, changes: TuningChange[]): Promise<void> {
  const files = (await sh(host, `for f in ${glob}; do [ -e "$f" ] && echo "$f"; done`)).stdout.split('\n').filter(Boolean);
  if (!files.length) throw new ConfigError(`tuning: ${what}: no ${glob} on ${host.name}`, [], 'this interface has no such queues; drop the setting from the profile');
  for (const f of files) {
    const before = (await host.exec(['cat', f])).stdout.trim();
    teardown.add(`restore ${f}`, () => sh(host, `echo ${quote(before)} > ${quote(f)}`).then(() => undefined));
    await sh(host, `echo ${quote(value)} > ${quote(f)}`);
    changes.push({ what: f.replace(/^\/sys\/class\/net\//, ''), before, after: value });
  }
}

/**
 * Sets a sysctl on the LB node. Keys the kernel keeps once per host (net.core.netdev_budget,
 * netdev_max_backlog, rps_sock_flow_entries) don't exist inside a namespace: for a namespace node
 * they are set on the host that holds it, and recorded as host-wide.
 */
async function setSysctl(node: Host, key: string, value: string, teardown: Teardown, changes: TuningChange[], hostWide?: Host): Promise<void> {
  let host = node;
  let label = key;
  const probe = await node.exec(['sysctl', '-n', key], { check: false });
  if (probe.code !== 0) {
    if (!hostWide) throw new ConfigError(`tuning: sysctl ${key} does not exist on ${node.name}`, [], 'check the name with `sysctl -a`, or drop it from the profile');
    host = hostWide;
    label = `${key} (host-wide)`;
  }
  const before = (await host.exec(['sysctl', '-n', key])).stdout.trim();
  teardown.add(`restore ${key}=${before}`, () => host.exec(['sysctl', '-q', '-w', `${key}=${before}`]).then(() => undefined));
  await host.exec(['sysctl', '-q', '-w', `${key}=${value}`]);
  changes.push({ what: label, before, after: (await host.exec(['sysctl', '-n', key])).stdout.trim() });
}

/** Applies a profile to the LB node; every change is undone by `teardown`. */
export async function applyTuning(profile: TuningProfile, lb: LbNode, teardown: Teardown, log: (l: string) => void = () => {}, root?: Host): Promise<TuningRecord> {
  const host = lb.host;
  // Only a namespace node shares its host's kernel-wide settings; a machine of its own has them.
  const hostWide = lb.ns !== undefined ? root : undefined;
  const changes: TuningChange[] = [];
  const ifaces = [...new Set([lb.clientIf, lb.backendIf])];
  for (const [k, v] of Object.entries(profile.sysctls ?? {})) await setSysctl(host, k, String(v), teardown, changes, hostWide);
  for (const [short, state] of Object.entries(profile.offloads ?? {})) {
    const feature = OFFLOAD_FEATURES[short]!;
    for (const ifname of ifaces) {
      const f = parseEthtoolFeatures((await host.exec(['ethtool', '-k', ifname])).stdout)[feature];
      if (!f) throw new ConfigError(`tuning "${profile.name}": ${ifname} has no ${feature} (${short})`, [], `drop ${short} from the profile's offloads`);
      const before = f.on ? 'on' : 'off';
      if (before === state) {
        changes.push({ what: `${ifname} ${short}`, before, after: state });
        continue;
      }
      if (f.fixed) throw new ConfigError(`tuning "${profile.name}": ${ifname} ${feature} is fixed ${before}; the driver doesn't let it change`, [], `drop ${short} from the profile's offloads`);
      teardown.add(`restore ${ifname} ${short} ${before}`, () => host.exec(['ethtool', '-K', ifname, short, before]).then(() => undefined));
      await host.exec(['ethtool', '-K', ifname, short, state]);
      changes.push({ what: `${ifname} ${short}`, before, after: state });
    }
  }
  if (profile.rps) {
    if (profile.rps.flowEntries) await setSysctl(host, 'net.core.rps_sock_flow_entries', String(profile.rps.flowEntries), teardown, changes, hostWide);
    for (const ifname of ifaces) {
      await writeQueues(host, `/sys/class/net/${ifname}/queues/rx-*/rps_cpus`, profile.rps.cpus, 'rps', teardown, changes);
      if (profile.rps.flowEntries) await writeQueues(host, `/sys/class/net/${ifname}/queues/rx-*/rps_flow_cnt`, String(profile.rps.flowEntries), 'rps flow count', teardown, changes);
    }
  }
  if (profile.xps) for (const ifname of ifaces) await writeQueues(host, `/sys/class/net/${ifname}/queues/tx-*/xps_cpus`, profile.xps, 'xps', teardown, changes);
  if (profile.conntrack === false) {
    for (const chain of ['PREROUTING', 'OUTPUT']) {
      const rule = [chain, '-m', 'comment', '--comment', 'lbbench-tuning', '-j', 'NOTRACK'];
      teardown.add(`remove NOTRACK from raw ${chain}`, () => host.exec(['iptables', '-w', '-t', 'raw', '-D', ...rule], { check: false }).then(() => undefined));
      await host.exec(['iptables', '-w', '-t', 'raw', '-I', ...rule]);
      changes.push({ what: `iptables raw ${chain}`, before: 'tracked', after: 'NOTRACK' });
    }
  }
  log(`    tuning "${profile.name}": ${changes.length ? changes.map((c) => `${c.what} ${c.before}→${c.after}`).join(', ') : 'nothing changed (baseline)'}`);
  return { name: profile.name, changes };
}

