// `lbbench setup` and `lbbench doctor`: what this project needs from Debian, and how to tell
// whether a machine has it. One list serves both, so doctor's fixes are exactly setup's steps.
import type { Host } from './host/types.ts';
import { LbbError } from './errors.ts';
import { lbDrivers } from './lb/index.ts';
import { probeXdpAttach } from './lb/xdp.ts';
import { LbSpec, type TopologySpec } from './scenario/schema.ts';
import { Teardown } from './teardown.ts';
import { connectAll } from './topology/baremetal.ts';

export interface Requirement {
  /** Command looked for on PATH. */
  cmd: string;
  pkg: string;
  why: string;
  /** Argv that prints a version (first non-empty line is kept). */
  version?: string[];
  /** Extra file that must exist (e.g. a module the package ships). */
  file?: string;
  /** Only the test suite needs it: installed by `setup --tests`, not reported missing by doctor. */
  testsOnly?: boolean;
}

export const REQUIREMENTS: Requirement[] = [
  { cmd: 'ip', pkg: 'iproute2', why: 'namespaces, links, routes', version: ['ip', '-V'] },
  { cmd: 'sysctl', pkg: 'procps', why: 'per-namespace sysctls', version: ['sysctl', '--version'] },
  { cmd: 'taskset', pkg: 'util-linux', why: 'CPU pinning', version: ['taskset', '--version'] },
  { cmd: 'nginx', pkg: 'nginx-light', why: 'backends and the nginx LB', version: ['nginx', '-v'] },
  {
    cmd: 'nginx',
    pkg: 'libnginx-mod-stream',
    why: 'nginx L4 (stream) LB',
    file: '/usr/lib/nginx/modules/ngx_stream_module.so',
  },
  { cmd: 'haproxy', pkg: 'haproxy', why: 'haproxy LB', version: ['haproxy', '-v'] },
  { cmd: 'wrk', pkg: 'wrk', why: 'HTTP load generator', version: ['wrk', '--version'] },
  { cmd: 'iptables', pkg: 'iptables', why: 'iptables DNAT LB', version: ['iptables', '--version'] },
  { cmd: 'nft', pkg: 'nftables', why: 'nftables LB', version: ['nft', '--version'] },
  { cmd: 'conntrack', pkg: 'conntrack', why: 'flushing NAT state between LBs', version: ['conntrack', '--version'] },
  { cmd: 'bird', pkg: 'bird2', why: 'ECMP in BGP mode', version: ['bird', '--version'] },
  { cmd: 'keepalived', pkg: 'keepalived', why: 'VRRP failover (kind: vrrp)', version: ['keepalived', '--version'] },
  { cmd: 'gcc', pkg: 'gcc', why: 'building the NFQUEUE LB', version: ['gcc', '--version'] },
  { cmd: 'make', pkg: 'make', why: 'building the datapaths', version: ['make', '--version'] },
  { cmd: 'pkg-config', pkg: 'pkg-config', why: 'building the NFQUEUE LB' },
  { cmd: 'gcc', pkg: 'libnetfilter-queue-dev', why: 'building the NFQUEUE LB', file: '/usr/include/libnetfilter_queue/libnetfilter_queue.h' },
  { cmd: 'clang', pkg: 'clang', why: 'building the XDP LB', version: ['clang', '--version'] },
  { cmd: 'llc', pkg: 'llvm', why: 'building the XDP LB' },
  { cmd: 'bpftool', pkg: 'bpftool', why: 'loading the XDP LB', version: ['bpftool', 'version'] },
  { cmd: 'clang', pkg: 'libbpf-dev', why: 'building the XDP LB', file: '/usr/include/bpf/bpf_helpers.h' },
  { cmd: 'ethtool', pkg: 'ethtool', why: 'veth offloads for native XDP', version: ['ethtool', '--version'] },
  { cmd: 'gcc', pkg: 'libc6-dev', why: 'headers for the datapaths', file: '/usr/include/x86_64-linux-gnu/asm/types.h' },
  { cmd: 'trafgen', pkg: 'netsniff-ng', why: 'packet-rate generator (generator: trafgen)', version: ['trafgen', '--version'] },
  { cmd: 'iperf3', pkg: 'iperf3', why: 'TCP stream generator (generator: iperf3)', version: ['iperf3', '--version'] },
  { cmd: 'qemu-system-x86_64', pkg: 'qemu-system-x86', why: 'VM guests for what this kernel lacks (IPVS, ipip, netem)', version: ['qemu-system-x86_64', '--version'] },
  { cmd: 'setpriv', pkg: 'util-linux', why: 'qemu guests die with the harness (--pdeathsig)' },
  { cmd: 'debootstrap', pkg: 'debootstrap', why: 'building the VM guest image', version: ['debootstrap', '--version'] },
  { cmd: 'mkfs.ext4', pkg: 'e2fsprogs', why: 'the VM image disk (mkfs.ext4 -d, no loop mount)', version: ['mkfs.ext4', '-V'] },
  { cmd: 'ssh-keygen', pkg: 'openssh-client', why: 'VM image keys (client key, pinned guest host key)' },
  // /usr/sbin/sshd: found because root's PATH (and sudo's secure_path) has /usr/sbin. Installing
  // the package starts and enables the system sshd where systemd runs, so only `setup --tests`
  // (what CI runs) installs it; the tests run their own sshd in namespaces.
  { cmd: 'sshd', pkg: 'openssh-server', why: 'SSH hosts in tests (real sshd)', version: ['sshd', '-V'], testsOnly: true },
  // Headless, driven by playwright-core: the published site's pages are checked in a real browser.
  { cmd: 'chromium', pkg: 'chromium', why: 'checking published pages in a real browser (tests)', version: ['chromium', '--version'], testsOnly: true },
  { cmd: 'curl', pkg: 'curl', why: 'backend counters on remote hosts', version: ['curl', '--version'] },
];

export const PACKAGES = [...new Set(REQUIREMENTS.filter((r) => !r.testsOnly).map((r) => r.pkg))];
export const TEST_PACKAGES = [...new Set(REQUIREMENTS.map((r) => r.pkg))];

export async function installedPackages(host: Host, pkgs: string[]): Promise<Set<string>> {
  const r = await host.exec(['dpkg-query', '-W', '-f=${Package} ${Status}\\n', ...pkgs], { check: false });
  return new Set(
    r.stdout
      .split('\n')
      .filter((l) => l.endsWith('install ok installed'))
      .map((l) => l.split(' ')[0]!),
  );
}

/** Idempotent: installs only what is missing, and runs `apt-get update` only if it must install. */
export async function setup(host: Host, log: (s: string) => void, pkgs = PACKAGES): Promise<string[]> {
  const have = await installedPackages(host, pkgs);
  const missing = pkgs.filter((p) => !have.has(p));
  if (!missing.length) {
    log(`all ${pkgs.length} packages already installed: ${pkgs.join(' ')}`);
    return [];
  }
  log(`installing: ${missing.join(' ')}`);
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  await host.exec(['apt-get', 'update', '-qq'], { env, timeoutMs: 600_000 });
  await host.exec(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...missing], { env, timeoutMs: 1_200_000 });
  return missing;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

async function probe(host: Host, argv: string[]): Promise<{ ok: boolean; out: string }> {
  const r = await host.exec(argv, { check: false, timeoutMs: 15_000 }).catch((e: Error) => ({ code: 1, stdout: '', stderr: e.message }));
  return { ok: r.code === 0, out: (r.stdout.trim() || r.stderr.trim()).split('\n')[0] ?? '' };
}

/** Pure: the addresses (without prefix length) in `ip -o addr show` output. */
export function heldAddresses(ipAddrShow: string): string[] {
  return [...ipAddrShow.matchAll(/\binet6? ([0-9a-f.:]+)\//gi)].map((m) => m[1]!);
}

/** Every check runs; none stops the others, so one doctor run lists everything to fix. */
export async function doctor(host: Host): Promise<Check[]> {
  const checks: Check[] = [];
  const uid = (await probe(host, ['id', '-u'])).out;
  checks.push({ name: 'root', ok: uid === '0', detail: `uid ${uid}`, fix: 'run lbbench as root (sudo)' });
  const kernel = (await probe(host, ['uname', '-r'])).out;
  checks.push({ name: 'kernel', ok: true, detail: kernel });

  for (const r of REQUIREMENTS.filter((x) => !x.testsOnly)) {
    const found = await probe(host, ['sh', '-c', 'command -v "$1"', 'sh', r.cmd]);
    let ok = found.ok;
    let detail = found.ok ? found.out : 'not found';
    if (ok && r.file) {
      ok = (await probe(host, ['test', '-e', r.file])).ok;
      detail = ok ? r.file : `${r.file} missing`;
    } else if (ok && r.version) {
      detail = (await probe(host, r.version)).out || detail;
    }
    checks.push({ name: `${r.pkg} (${r.why})`, ok, detail, fix: `apt-get install -y ${r.pkg}   (or: lbbench setup)` });
  }

  // Kernel features, tried for real in a throwaway namespace rather than guessed from config files.
  const ns = `lbb-doctor-${process.pid}`;
  const made = await probe(host, ['ip', 'netns', 'add', ns]);
  checks.push({ name: 'network namespaces', ok: made.ok, detail: made.ok ? 'ip netns add works' : made.out, fix: 'needs CONFIG_NET_NS and root' });
  if (made.ok) {
    try {
      const feature = async (name: string, argv: string[], fix: string) => {
        const r = await probe(host, ['ip', 'netns', 'exec', ns, ...argv]);
        checks.push({ name, ok: r.ok, detail: r.ok ? 'works' : r.out, fix });
      };
      await feature('veth', ['ip', 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'a1'], 'modprobe veth');
      await feature('bridge', ['ip', 'link', 'add', 'br0', 'type', 'bridge'], 'modprobe bridge');
      await feature('iptables nat', ['iptables', '-t', 'nat', '-S'], 'modprobe iptable_nat (and install iptables)');
      await feature('nftables', ['nft', 'add', 'table', 'ip', 'lbbdoctor'], 'modprobe nf_tables (and install nftables)');
      await feature('statistic match', ['iptables', '-t', 'nat', '-A', 'PREROUTING', '-m', 'statistic', '--mode', 'nth', '--every', '2', '--packet', '0', '-j', 'ACCEPT'], 'modprobe xt_statistic');
    } finally {
      await probe(host, ['ip', 'netns', 'del', ns]);
    }
  }
  checks.push(...(await datapathChecks(host)));
  return checks;
}

/** The LB variants whose needs differ (ECMP's BGP needs bird, resilient groups a newer kernel). */
const DOCTOR_VARIANTS: Record<string, unknown>[] = [
  ...Object.keys(lbDrivers)
    .filter((k) => k !== 'ecmp')
    .map((kind) => ({ kind })),
  { kind: 'ecmp', mode: 'static', nexthops: 'classic' },
  { kind: 'ecmp', mode: 'static', nexthops: 'resilient' },
  { kind: 'ecmp', mode: 'bgp', nexthops: 'classic' },
];

/** Each LB datapath's own preflight, so "usable" means exactly what `lbbench run` will accept. */
export async function datapathChecks(host: Host): Promise<Check[]> {
  const checks: Check[] = [];
  for (const raw of DOCTOR_VARIANTS) {
    const spec = LbSpec.parse(raw);
    const name = `datapath ${[spec.kind, 'mode' in spec && spec.kind === 'ecmp' ? `${spec.mode}/${spec.nexthops}` : ''].filter(Boolean).join(' ')}`;
    try {
      await (lbDrivers[spec.kind] as { preflight(h: Host, s: LbSpec): Promise<void> }).preflight(host, spec);
    } catch (e) {
      if (!(e instanceof LbbError)) throw e;
      if (spec.kind === 'ipvs' && /no ip_vs module/.test(e.message)) {
        // Expected on kernels like this one: IPVS then runs in a qemu guest with Debian's kernel.
        const qemu = await probe(host, ['sh', '-c', 'command -v qemu-system-x86_64']);
        checks.push({
          name,
          ok: qemu.ok,
          detail: qemu.ok ? 'not in this kernel; runs in a qemu guest (topology: {kind: qemu})' : `${e.message}, and no qemu-system-x86_64 to run it in a guest`,
          fix: 'apt-get install -y qemu-system-x86 debootstrap   (or: lbbench setup)',
        });
        continue;
      }
      checks.push({ name, ok: false, detail: e.message, fix: e.hint });
      continue;
    }
    if (spec.kind !== 'xdp') {
      checks.push({ name, ok: true, detail: 'usable' });
      continue;
    }
    const modes = await probeXdpAttach(host);
    const say = (m: keyof typeof modes) => (modes[m] === true ? `${m} attach works` : `${m} attach fails (${modes[m]})`);
    checks.push({
      name,
      ok: modes.native === true || modes.generic === true,
      detail: `${modes.native === true || modes.generic === true ? 'usable' : 'not usable'}: ${say('native')} on veth, ${say('generic')}`,
      fix: 'run as root on a kernel with CONFIG_BPF_SYSCALL (native XDP on veth needs ≥ 4.19); the message above is bpftool\'s',
    });
  }
  return checks;
}

/**
 * `lbbench doctor --topology FILE` for hosts reached over SSH: every host is connected with its
 * key checked, then each role is asked for what it will be asked to do.
 */
export async function doctorBaremetal(spec: Extract<TopologySpec, { kind: 'baremetal' }>): Promise<Check[]> {
  const checks: Check[] = [];
  const td = new Teardown();
  try {
    let conn: Awaited<ReturnType<typeof connectAll>>;
    try {
      conn = await connectAll(spec, td);
    } catch (e) {
      if (!(e instanceof LbbError)) throw e;
      return [{ name: 'ssh', ok: false, detail: e.message, fix: e.hint }];
    }
    const roles: [string, Host, string[]][] = [
      ['client', conn.client, ['wrk', 'ip']],
      ['lb', conn.lb, ['ip', 'sysctl', 'curl']],
      ...conn.backends.map((h, i): [string, Host, string[]] => [`be${i}`, h, ['nginx', 'curl', 'ip']]),
    ];
    for (const [role, h, tools] of roles) {
      const uid = (await probe(h, ['id', '-u'])).out;
      const kernel = (await probe(h, ['uname', '-r'])).out;
      checks.push({ name: `${role} ${h.name}: ssh, root`, ok: uid === '0', detail: `uid ${uid}, kernel ${kernel}`, fix: 'log in as root (ssh.user: root) or give the user passwordless root' });
      for (const t of tools) {
        const found = await probe(h, ['sh', '-c', 'command -v "$1"', 'sh', t]);
        const pkg = REQUIREMENTS.find((r) => r.cmd === t)?.pkg ?? t;
        checks.push({ name: `${role} ${h.name}: ${t}`, ok: found.ok, detail: found.ok ? found.out : 'not found', fix: `apt-get install -y ${pkg} on that host` });
      }
    }
    // The addresses the file gives each interface: lbbench adds only the VIP, never these.
    const held: [string, Host, string, (string | undefined)[]][] = [
      ['client', conn.client, spec.client.interface, [spec.client.ip, spec.client.ip6]],
      ['lb', conn.lb, spec.lb.clientInterface, [spec.lb.clientIp, spec.lb.clientIp6]],
      ['lb', conn.lb, spec.lb.backendInterface, [spec.lb.backendIp, spec.lb.backendIp6]],
      ...conn.backends.map((h, i): [string, Host, string, (string | undefined)[]] => [`be${i}`, h, spec.backendHosts[i]!.interface, [spec.backendHosts[i]!.ip, spec.backendHosts[i]!.ip6]]),
    ];
    for (const [role, h, dev, addrs] of held) {
      const want = addrs.filter((a): a is string => a !== undefined);
      const shown = await h.exec(['ip', '-o', 'addr', 'show', 'dev', dev], { check: false, timeoutMs: 15_000 }).catch(() => ({ code: 1, stdout: '' }));
      const has = heldAddresses(shown.stdout);
      const missing = want.filter((a) => !has.includes(a));
      checks.push({
        name: `${role} ${h.name}: ${want.join(', ')} on ${dev}`,
        ok: shown.code === 0 && missing.length === 0,
        detail: shown.code !== 0 ? `no interface ${dev}` : missing.length ? `${missing.join(', ')} not configured` : 'configured',
        fix: shown.code !== 0 ? `name the interface that carries ${want[0]} in the topology file` : `ip addr add ${missing[0]}/<prefix> dev ${dev} on that host (lbbench adds only the VIP), or correct the topology file`,
      });
    }
    for (const c of await datapathChecks(conn.lb)) checks.push({ ...c, name: `lb ${conn.lb.name}: ${c.name}` });
    return checks;
  } finally {
    await td.unwind();
  }
}
