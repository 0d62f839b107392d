// Pure parts of the image build: the initrd's cpio archive, the module load order, and package
// versions from dpkg's status file. Written here rather than shelled out so the host needs no
// cpio or kmod, and so they can be tested without building anything.

export interface CpioEntry {
  /** Relative, no leading slash. */
  path: string;
  /** Full st_mode, type bits included (0o040755 directory, 0o100755 file, 0o120777 symlink, 0o020600 char device). */
  mode: number;
  data?: Buffer | string;
  /** Device number of a character/block device. */
  rdev?: [major: number, minor: number];
}

const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4);
}

/**
 * The "newc" format the kernel unpacks: a 110-byte ASCII header, the NUL-terminated name, padding
 * to 4 bytes, the data, padding to 4 bytes; ends with TRAILER!!!. Timestamps are zero so the same
 * inputs give the same bytes.
 */
export function cpioNewc(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const put = (path: string, mode: number, data: Buffer, rdev: [number, number] = [0, 0]) => {
    const name = Buffer.from(path + '\0');
    const header =
      '070701' +
      [ino++, mode, 0, 0, (mode & S_IFMT) === S_IFDIR ? 2 : 1, 0, data.length, 0, 0, rdev[0], rdev[1], name.length, 0].map(hex8).join('');
    parts.push(Buffer.from(header, 'latin1'), name, pad4(110 + name.length), data, pad4(data.length));
  };
  for (const e of entries) {
    if (e.path.startsWith('/') || !e.path) throw new Error(`cpio path must be relative: ${JSON.stringify(e.path)}`);
    put(e.path, e.mode, typeof e.data === 'string' ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0)), e.rdev);
  }
  put('TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(parts);
}

/** Module name as modprobe spells it: basename without .ko(.xz|.zst|.gz), dashes as underscores. */
export function moduleName(path: string): string {
  return path
    .replace(/^.*\//, '')
    .replace(/\.ko(\.(xz|zst|gz))?$/, '')
    .replace(/-/g, '_');
}

export interface ModuleIndex {
  /** name → path relative to /lib/modules/KVER */
  path: Map<string, string>;
  /** name → names it depends on */
  deps: Map<string, string[]>;
  builtin: Set<string>;
}

export function parseModulesDep(modulesDep: string, modulesBuiltin = ''): ModuleIndex {
  const path = new Map<string, string>();
  const deps = new Map<string, string[]>();
  for (const line of modulesDep.split('\n')) {
    const m = /^([^:\s]+):\s*(.*)$/.exec(line.trim());
    if (!m) continue;
    const name = moduleName(m[1]!);
    path.set(name, m[1]!);
    deps.set(name, m[2]!.split(/\s+/).filter(Boolean).map(moduleName));
  }
  const builtin = new Set(modulesBuiltin.split('\n').filter((l) => l.trim()).map(moduleName));
  return { path, deps, builtin };
}

/**
 * Paths to insmod, dependencies first, each once. Built-in modules need nothing. Throws listing
 * every name that is neither a module nor built in.
 */
export function moduleLoadOrder(index: ModuleIndex, names: string[]): string[] {
  const missing = names.map((n) => n.replace(/-/g, '_')).filter((n) => !index.path.has(n) && !index.builtin.has(n));
  if (missing.length) throw new Error(`kernel has no module ${missing.join(', ')}`);
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string, chain: string[]) => {
    if (seen.has(name) || index.builtin.has(name)) return;
    if (chain.includes(name)) throw new Error(`module dependency cycle: ${[...chain, name].join(' → ')}`);
    const p = index.path.get(name);
    if (!p) throw new Error(`module ${chain.at(-1)} depends on ${name}, which modules.dep does not list`);
    for (const d of index.deps.get(name) ?? []) visit(d, [...chain, name]);
    seen.add(name);
    order.push(p);
  };
  for (const n of names) visit(n.replace(/-/g, '_'), []);
  return order;
}

/** Installed packages and their versions from /var/lib/dpkg/status. */
export function parseDpkgStatus(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (f: string) => new RegExp(`^${f}: (.*)$`, 'm').exec(stanza)?.[1]?.trim();
    const pkg = field('Package');
    const version = field('Version');
    if (pkg && version && /install ok installed/.test(field('Status') ?? '')) out.set(pkg, version);
  }
  return out;
}
