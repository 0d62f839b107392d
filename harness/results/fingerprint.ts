// The environment a result was measured in. compare-reports refuses or warns when two runs'
// fingerprints differ, so every field is read the same way every time and nothing here throws
// for a missing detail: an unknown value is recorded as such, the run still happens.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Host } from '../host/types.ts';
import type { HostFingerprint } from './types.ts';

/** The lbbench checkout this module lives in (harness/results/ → repo root). */
export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Sysctls that move HTTP and packet-rate numbers the most. */
export const FINGERPRINT_SYSCTLS = [
  'net.core.somaxconn',
  'net.ipv4.tcp_tw_reuse',
  'net.ipv4.ip_local_port_range',
  'net.core.netdev_max_backlog',
  'net.ipv4.tcp_congestion_control',
  'net.netfilter.nf_conntrack_max',
] as const;

export interface FingerprintOptions {
  /** Where the lbbench checkout is, when the measured host is a guest or a remote (default: host). */
  gitHost?: Host;
  /** Tool name → argv printing its version, e.g. `{ wrk: ['wrk', '-v'] }`. */
  tools: Record<string, string[]>;
  /** Checkout whose git revision is recorded; null skips git. Default: this lbbench checkout. */
  repoRoot?: string | null;
  /** Recorded as-is; default: the version in the package.json of the code that is running. */
  lbbenchVersion?: string;
}

const UNKNOWN = 'unknown';
const TOOL_TIMEOUT_MS = 10_000;

function firstLine(s: string): string | undefined {
  return s.split('\n').map((l) => l.trim()).find((l) => l.length > 0);
}

async function tryRead(host: Host, path: string): Promise<string | undefined> {
  try {
    return await host.readFile(path);
  } catch {
    return undefined;
  }
}

async function tryExec(host: Host, argv: string[]) {
  try {
    return await host.exec(argv, { check: false, timeoutMs: TOOL_TIMEOUT_MS });
  } catch {
    return undefined;
  }
}

/** Many tools print their version on stderr (nginx -v) or exit non-zero after printing it (wrk -v). */
async function toolVersion(host: Host, argv: string[]): Promise<string> {
  const r = await tryExec(host, argv);
  if (!r) return 'unavailable';
  // 127 is the shell's "command not found" (SSH hosts run argv through one): not a version.
  if (r.code === 127) return 'not installed';
  return firstLine(r.stdout) ?? firstLine(r.stderr) ?? `unavailable (exit ${r.code})`;
}

export function parseCpuinfo(text: string): { model: string; cpus: number } {
  const lines = text.split('\n');
  const field = (name: string) =>
    lines.find((l) => l.split(':')[0]!.trim() === name)?.split(':').slice(1).join(':').trim();
  // x86 says "model name"; many ARM kernels only give "Hardware" or "CPU part".
  const model = field('model name') ?? field('Hardware') ?? field('cpu model') ?? field('CPU part') ?? UNKNOWN;
  const cpus = lines.filter((l) => /^processor\s*:/.test(l)).length;
  return { model, cpus };
}

export function parseMemTotal(text: string): number {
  const m = /^MemTotal:\s+(\d+)\s*kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : 0;
}

export function readPackageVersion(root: string): string {
  try {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? UNKNOWN;
  } catch {
    return UNKNOWN;
  }
}

async function gitInfo(host: Host, root: string): Promise<HostFingerprint['git']> {
  const rev = await tryExec(host, ['git', '-C', root, 'rev-parse', 'HEAD']);
  if (!rev || rev.code !== 0 || !firstLine(rev.stdout)) return null;
  const st = await tryExec(host, ['git', '-C', root, 'status', '--porcelain']);
  // An unreadable status is reported dirty: claiming a clean tree we couldn't check would lie.
  const dirty = !st || st.code !== 0 || st.stdout.trim().length > 0;
  return { rev: firstLine(rev.stdout)!, dirty };
}

async function sysctls(host: Host): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const values = await Promise.all(
    FINGERPRINT_SYSCTLS.map((k) => tryRead(host, `/proc/sys/${k.replace(/\./g, '/')}`)),
  );
  FINGERPRINT_SYSCTLS.forEach((k, i) => {
    const v = values[i];
    // nf_conntrack_max only exists once the module is loaded; absent means "not loaded", not "0".
    if (v !== undefined) out[k] = v.trim().replace(/\s+/g, ' ');
  });
  return out;
}

/**
 * Fingerprint of the machine `host` runs on. Pass the host lbbench itself runs on: git and the
 * lbbench version describe this checkout, and `node` is this process's version. Values that
 * can't be read are "unknown" (strings) or 0 (cpus, memoryBytes), never a guess.
 */
export async function hostFingerprint(host: Host, opts: FingerprintOptions): Promise<HostFingerprint> {
  const root = opts.repoRoot === undefined ? PACKAGE_ROOT : opts.repoRoot;
  const [hostnameFile, uname, cpuinfo, meminfo, git, sys, toolEntries] = await Promise.all([
    tryRead(host, '/proc/sys/kernel/hostname'),
    tryExec(host, ['uname', '-r']),
    tryRead(host, '/proc/cpuinfo'),
    tryRead(host, '/proc/meminfo'),
    root === null ? Promise.resolve(null) : gitInfo(opts.gitHost ?? host, root),
    sysctls(host),
    Promise.all(Object.entries(opts.tools).map(async ([name, argv]) => [name, await toolVersion(host, argv)] as const)),
  ]);
  const cpu = parseCpuinfo(cpuinfo ?? '');
  if (cpu.cpus === 0) {
    // Some container /proc views hide per-CPU entries.
    const n = Number(firstLine((await tryExec(host, ['nproc']))?.stdout ?? ''));
    if (Number.isInteger(n) && n > 0) cpu.cpus = n;
  }
  return {
    hostname: firstLine(hostnameFile ?? '') ?? UNKNOWN,
    kernel: (uname && uname.code === 0 && firstLine(uname.stdout)) || UNKNOWN,
    cpuModel: cpu.model,
    cpus: cpu.cpus,
    memoryBytes: parseMemTotal(meminfo ?? ''),
    node: process.version,
    tools: Object.fromEntries(toolEntries),
    git,
    sysctls: sys,
    lbbenchVersion: opts.lbbenchVersion ?? readPackageVersion(PACKAGE_ROOT),
  };
}
