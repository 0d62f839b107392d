// What the Debian guest image is made of. The image is rebuilt exactly when this changes: its
// cache key is a hash of the suite, the package list, the guest files and BUILD_VERSION.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/**
 * Bump when build.ts changes what ends up in the image (trimming, keys, initrd layout, disk
 * options): editing a comment there must not cost a 2-minute rebuild, changing the output must.
 */
export const BUILD_VERSION = 1;

export const GUEST_FILE_NAMES = ['initrd-init', 'inittab', 'rc', 'sshd_config'] as const;
export type GuestFileName = (typeof GUEST_FILE_NAMES)[number];

export interface Recipe {
  suite: string;
  variant: string;
  /** Installed with `debootstrap --include`. */
  packages: string[];
  /** Kernel modules the image must ship (checked in modules.dep after the bootstrap). */
  requiredModules: string[];
  /** Loaded by the initrd, in dependency order, so the root disk can be mounted. */
  rootModules: string[];
  diskSize: string;
  files: Record<GuestFileName, string>;
  buildVersion: number;
}

/**
 * The cloud kernel (26 MB) instead of linux-image-amd64: it has ip_vs, ipip, netem and virtio and
 * skips the hardware drivers a qemu guest never needs.
 */
export const PACKAGES = [
  'linux-image-cloud-amd64',
  // busybox is the guest's init (reaps orphans, respawns sshd) and the initrd's whole userland.
  'busybox-static',
  'kmod',
  'procps',
  'iproute2',
  'iptables',
  'conntrack',
  'ethtool',
  'ipvsadm',
  'nginx-light',
  'libnginx-mod-stream',
  'wrk',
  'iperf3',
  'openssh-server',
  // Backend counters: one command reads every nginx stub_status over its unix socket.
  'curl',
];

export const REQUIRED_MODULES = [
  'ip_vs',
  'ip_vs_rr',
  'ip_vs_wrr',
  'ip_vs_lc',
  'ip_vs_sh',
  'ip_vs_mh',
  'ipip',
  'sch_netem',
  'virtio_net',
  'virtio_blk',
  'virtio_pci',
];

const GUEST_DIR = new URL('./guest/', import.meta.url);

export async function loadRecipe(): Promise<Recipe> {
  const files = Object.fromEntries(
    await Promise.all(GUEST_FILE_NAMES.map(async (n) => [n, await readFile(new URL(n, GUEST_DIR), 'utf8')] as const)),
  ) as Record<GuestFileName, string>;
  return {
    suite: 'bookworm',
    variant: 'minbase',
    packages: PACKAGES,
    requiredModules: REQUIRED_MODULES,
    rootModules: ['virtio_pci', 'virtio_blk', 'ext4'],
    diskSize: '1G',
    files,
    buildVersion: BUILD_VERSION,
  };
}

/** Key order and package order do not change the image, so they do not change the hash. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

export function recipeHash(r: Recipe): string {
  const normal = { ...r, packages: [...new Set(r.packages)].sort(), requiredModules: [...r.requiredModules].sort() };
  return createHash('sha256').update(JSON.stringify(canonical(normal))).digest('hex').slice(0, 16);
}

/**
 * `$LBBENCH_CACHE`, else `$XDG_CACHE_HOME/lbbench`, else `~/.cache/lbbench`. A relative
 * XDG_CACHE_HOME is invalid by the XDG spec and ignored.
 */
export function cacheRoot(env: Record<string, string | undefined> = process.env, home = homedir()): string {
  if (env.LBBENCH_CACHE) return env.LBBENCH_CACHE;
  const xdg = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : join(home, '.cache');
  return join(xdg, 'lbbench');
}

export function vmCacheDir(env: Record<string, string | undefined> = process.env, home = homedir()): string {
  return join(cacheRoot(env, home), 'vm');
}
