// The xdp LB: our own BPF program (harness/datapath/xdp/lbbench_xdp.c) on the LB node's
// client-facing interface. Maglev over the 5-tuple picks a backend; the frame gets the backend's
// MAC and leaves through the backend-facing interface (DSR: the VIP sits on the backends' lo).
//
// Everything goes through bpftool on a bpffs we mount ourselves, so the maps are pinned and a
// backend change is a handful of map writes with no reload.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Deployed, LbDriver } from './types.ts';
import type { LbSpec } from '../scenario/schema.ts';
import type { BackendNode } from '../topology/types.ts';
import type { ExecOptions, ExecResult, Host } from '../host/types.ts';
import { PreflightError, ProvisionError } from '../errors.ts';
import { Teardown } from '../teardown.ts';
import { requireTools, toolVersion } from './preflight.ts';
import { addVipToBackends, releaseVipFromLbNode } from './vip.ts';
import { familyOf } from './family.ts';
import { maglevTable, MAGLEV_EMPTY } from '../datapath/xdp/maglev.ts';
import { WORK_ROOT } from '../topology/leftovers.ts';

export type XdpSpec = Extract<LbSpec, { kind: 'xdp' }>;
type Spec = XdpSpec;
export type AttachMode = 'native' | 'generic';

export const XDP_SRC_DIR = fileURLToPath(new URL('../datapath/xdp/', import.meta.url));
export const XDP_BUILD_DIR = join(XDP_SRC_DIR, 'build');
export const XDP_OBJECT_NAME = 'lbbench_xdp.o';
export const xdpObjectPath = (outDir = XDP_BUILD_DIR): string => join(outDir, XDP_OBJECT_NAME);

/** What lbbench_xdp.c defines; the unit test reads the C source and checks these against it. */
export const LBB = {
  tableMax: 1_000_003,
  backendsMax: 1024,
  noBackend: 0xffffffff,
  maps: { config: 'lbb_config', table: 'lbb_table', backends: 'lbb_backends', bestats: 'lbb_bestats', drops: 'lbb_drops' },
  progs: { lb: 'lbb_xdp', pass: 'lbb_pass' },
  /** lbb_drops keys, in order. */
  drops: ['no_backend', 'bad_backend', 'redirect'],
} as const;

// --- encoding (pure) ----------------------------------------------------------------------------
// bpftool takes keys and values as raw bytes in the map's layout: little-endian host integers,
// addresses and ports in network order exactly as they appear in the packet.

export function u32le(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}

export function ipv4Bytes(ip: string): Uint8Array {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new RangeError(`not an IPv4 address: ${ip}`);
  }
  return Uint8Array.from(parts);
}

/** The 16 bytes of an IPv6 address in network order ("::" expanded; no embedded IPv4 form). */
export function ipv6Bytes(ip: string): Uint8Array {
  const bad = () => new RangeError(`not an IPv6 address: ${ip}`);
  const halves = ip.split('::');
  if (halves.length > 2) throw bad();
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 2 ? fill < 1 : fill !== 0) || ![...head, ...tail].every((g) => /^[0-9a-f]{1,4}$/i.test(g))) throw bad();
  const words = [...head, ...new Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...tail].map((g) => parseInt(g, 16));
  return Uint8Array.from(words.flatMap((w) => [w >> 8, w & 0xff]));
}

export function macBytes(mac: string): Uint8Array {
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-f]{2}$/i.test(p))) throw new RangeError(`not a MAC address: ${mac}`);
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

export function hexArgs(bytes: Uint8Array): string[] {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0'));
}

export interface XdpConfig {
  vip: string;
  port: number;
  proto: 'tcp' | 'udp' | 'any';
  egressIfindex: number;
  egressMac: string;
  tableSize: number;
}

const PROTO = { tcp: 6, udp: 17, any: 0 } as const;

/** Byte offsets of the structs in lbbench_xdp.c (the unit test compares them with the object's BTF). */
export const LAYOUT = {
  lbb_config: { size: 40, fields: { vip: 0, port: 4, proto: 6, egress_ifindex: 8, egress_mac: 12, table_size: 20, vip6: 24 } },
  lbb_backend: { size: 12, fields: { mac: 0, valid: 6, ip: 8 } },
  lbb_counter: { size: 16, fields: { packets: 0, bytes: 8 } },
} as const;

export function configValue(c: XdpConfig): Uint8Array {
  const { size, fields: f } = LAYOUT.lbb_config;
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  // One family per deployment: the other VIP stays zero, and the program passes that family.
  if (familyOf(c.vip) === 6) b.set(ipv6Bytes(c.vip), f.vip6);
  else b.set(ipv4Bytes(c.vip), f.vip);
  v.setUint16(f.port, c.port, false);
  b[f.proto] = PROTO[c.proto];
  v.setUint32(f.egress_ifindex, c.egressIfindex, true);
  b.set(macBytes(c.egressMac), f.egress_mac);
  v.setUint32(f.table_size, c.tableSize, true);
  return b;
}

/** A valid backend entry. */
export function backendValue(mac: string, ip: string): Uint8Array {
  const { size, fields: f } = LAYOUT.lbb_backend;
  const b = new Uint8Array(size);
  b.set(macBytes(mac), f.mac);
  b[f.valid] = 1;
  // Only for dumps, and IPv4-sized: an IPv6 backend is found by its slot and MAC.
  if (familyOf(ip) === 4) b.set(ipv4Bytes(ip), f.ip);
  return b;
}

export function mapUpdateArgs(pin: string, key: Uint8Array, value: Uint8Array): string[] {
  return ['map', 'update', 'pinned', pin, 'key', 'hex', ...hexArgs(key), 'value', 'hex', ...hexArgs(value)];
}

export function mapLookupArgs(pin: string, key: Uint8Array): string[] {
  return ['map', 'lookup', 'pinned', pin, 'key', 'hex', ...hexArgs(key)];
}

/**
 * Input for `bpftool batch file -`: one process for any number of map operations (a bpftool
 * start costs milliseconds, a map write microseconds). Batch lines are split on blanks, so paths
 * with blanks are refused rather than quoted.
 */
export function batchScript(commands: string[][]): string {
  for (const c of commands) {
    const bad = c.find((a) => /\s/.test(a) || a === '');
    if (bad !== undefined) throw new RangeError(`bpftool batch argument must be non-empty without blanks: "${bad}"`);
  }
  return commands.map((c) => c.join(' ')).join('\n') + '\n';
}

/** Table entries that differ: only these are written on a backend change. */
export function tableUpdates(prev: number[] | undefined, next: number[]): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < next.length; i++) if (!prev || prev[i] !== next[i]) out.push([i, next[i]!]);
  return out;
}

/** Maglev over backend names, as backend slots (the map's values). */
export function slotTable(names: string[], slotOf: (name: string) => number, size: number): number[] {
  return maglevTable(names, size).map((i) => (i === MAGLEV_EMPTY ? LBB.noBackend : slotOf(names[i]!)));
}

const rol32 = (w: number, s: number) => ((w << s) | (w >>> (32 - s))) >>> 0;

/** The kernel's jhash_3words, as lbbench_xdp.c computes it. */
export function jhash3words(a: number, b: number, c: number, initval: number): number {
  const iv = (initval + 0xdeadbeef + (3 << 2)) >>> 0;
  a = (a + iv) >>> 0;
  b = (b + iv) >>> 0;
  c = (c + iv) >>> 0;
  c = ((c ^ b) - rol32(b, 14)) >>> 0;
  a = ((a ^ c) - rol32(c, 11)) >>> 0;
  b = ((b ^ a) - rol32(a, 25)) >>> 0;
  c = ((c ^ b) - rol32(b, 16)) >>> 0;
  a = ((a ^ c) - rol32(c, 4)) >>> 0;
  b = ((b ^ a) - rol32(a, 14)) >>> 0;
  c = ((c ^ b) - rol32(b, 24)) >>> 0;
  return c;
}

const le32 = (bytes: ArrayLike<number>) => ((bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0);

/** An address as the program's hash word: IPv4 as loaded from the packet, IPv6 its four words XORed (fold6). */
function addressWord(ip: string): number {
  if (familyOf(ip) === 4) return le32(ipv4Bytes(ip));
  const b = ipv6Bytes(ip);
  return [0, 4, 8, 12].reduce((x, i) => (x ^ le32(b.subarray(i, i + 4))) >>> 0, 0);
}

/**
 * The table index the program picks for an unfragmented flow. The program reads addresses and the
 * port pair as little-endian words straight from the packet; so does this.
 */
export function flowIndex(f: { src: string; dst: string; proto: 'tcp' | 'udp'; sport: number; dport: number }, tableSize: number): number {
  const ports = le32([f.sport >> 8, f.sport & 0xff, f.dport >> 8, f.dport & 0xff]);
  return jhash3words(addressWord(f.src), addressWord(f.dst), ports, PROTO[f.proto]) % tableSize;
}

/** `ethtool -S` output as name → value. */
export function parseEthtoolStats(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^\s*([\w-]+):\s*(\d+)\s*$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

/**
 * A veth's XDP counters (and the drops that native redirect causes) accumulated since `before`,
 * summed over queues: `rx_queue_0_drops` + `rx_queue_1_drops` → `rx_drops`.
 */
export function xdpStatsDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, v] of Object.entries(after)) {
    const m = /^(rx|tx)_queue_\d+_(drops|xdp_\w+)$/.exec(name);
    if (!m) continue;
    const key = `${m[1]}_${m[2]}`;
    out[key] = (out[key] ?? 0) + v - (before[name] ?? 0);
  }
  return out;
}

const formatStats = (s: Record<string, number>) =>
  Object.entries(s)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || '(no per-queue counters)';

/** Sum of little-endian u64 fields over CPUs, from bpftool's JSON of a per-CPU map lookup. */
export function sumPerCpu(values: { cpu: number; value: string[] }[]): bigint[] {
  const sums: bigint[] = [];
  for (const { value } of values) {
    for (let f = 0; f * 8 < value.length; f++) {
      let n = 0n;
      for (let i = 7; i >= 0; i--) n = (n << 8n) | BigInt(parseInt(value[f * 8 + i]!, 16));
      sums[f] = (sums[f] ?? 0n) + n;
    }
  }
  return sums;
}

// --- commands (pure) -----------------------------------------------------------------------------

/** Run argv in a named network namespace without `ip netns exec`'s private mount namespace, so our bpffs stays visible. */
export function inNetns(ns: string | undefined, argv: string[]): string[] {
  return ns ? ['nsenter', `--net=/run/netns/${ns}`, ...argv] : argv;
}

export function loadallArgv(obj: string, pinDir: string): string[] {
  return ['bpftool', 'prog', 'loadall', obj, join(pinDir, 'progs'), 'pinmaps', join(pinDir, 'maps')];
}

const BPFTOOL_MODE: Record<AttachMode, string> = { native: 'xdpdrv', generic: 'xdpgeneric' };

export function attachArgv(mode: AttachMode, progPin: string, dev: string, ns?: string): string[] {
  return inNetns(ns, ['bpftool', 'net', 'attach', BPFTOOL_MODE[mode], 'pinned', progPin, 'dev', dev]);
}

/** Detaching needs the mode it was attached with: detaching the other mode succeeds and does nothing. */
export function detachArgv(mode: AttachMode, dev: string, ns?: string): string[] {
  return inNetns(ns, ['bpftool', 'net', 'detach', BPFTOOL_MODE[mode], 'dev', dev]);
}

// --- build and preflight -------------------------------------------------------------------------

/** Compile the BPF object into outDir (make is a no-op when it is current); returns its path. */
export async function buildXdp(host: Host, outDir: string = XDP_BUILD_DIR): Promise<string> {
  const r = await host.exec(['make', '-C', XDP_SRC_DIR, `OUT=${outDir}`], { check: false, timeoutMs: 120_000 });
  if (r.code !== 0) {
    throw new ProvisionError(
      `building the XDP program failed:\n${(r.stderr || r.stdout).trim().split('\n').slice(-15).join('\n')}`,
      'apt-get install -y clang llvm libbpf-dev libc6-dev make',
    );
  }
  return xdpObjectPath(outDir);
}

async function mtime(path: string): Promise<number | undefined> {
  return stat(path).then(
    (s) => s.mtimeMs,
    () => undefined,
  );
}

/**
 * Which attach modes really work here, tried on a throwaway veth pair with our own object: what
 * `lbbench doctor` reports and what `attach: auto` will pick. Each value is true or the error.
 */
export async function probeXdpAttach(host: Host): Promise<Record<AttachMode, true | string>> {
  const id = `${process.pid}-${Date.now().toString(36)}`;
  // "lbb-" like a topology's names, so `lbbench down` finds it after a crash.
  const ns = `lbb-pf${id.slice(-4)}-xdp`;
  const dir = join(WORK_ROOT, `doctor-xdp-${id}`);
  const out: Record<AttachMode, true | string> = { native: 'not tried', generic: 'not tried' };
  const undo = new Teardown();
  const firstLine = (r: ExecResult) => (r.stderr || r.stdout).trim().split('\n').pop() || `exit ${r.code}`;
  try {
    await host.exec(['mkdir', '-p', dir]);
    undo.add('rmdir', () => host.exec(['rm', '-rf', dir], { check: false }));
    await host.exec(['mount', '-t', 'bpf', 'bpf', dir]);
    undo.add('umount', () => host.exec(['umount', dir], { check: false }));
    await host.exec(['ip', 'netns', 'add', ns]);
    undo.add('netns', () => host.exec(['ip', 'netns', 'del', ns], { check: false }));
    await host.exec(['ip', '-n', ns, 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'a1']);
    await host.exec(['ip', '-n', ns, 'link', 'set', 'a0', 'up']);
    await host.exec(['ip', '-n', ns, 'link', 'set', 'a1', 'up']);
    const load = await host.exec(loadallArgv(xdpObjectPath(), dir), { check: false, timeoutMs: 60_000 });
    if (load.code !== 0) {
      const why = `bpftool cannot load ${xdpObjectPath()}: ${firstLine(load)}`;
      return { native: why, generic: why };
    }
    for (const mode of ['native', 'generic'] as const) {
      const r = await host.exec(attachArgv(mode, join(dir, 'progs', LBB.progs.lb), 'a0', ns), { check: false, timeoutMs: 15_000 });
      out[mode] = r.code === 0 ? true : firstLine(r);
      if (r.code === 0) await host.exec(detachArgv(mode, 'a0', ns), { check: false });
    }
    return out;
  } finally {
    await undo.unwind();
  }
}

// --- the driver ----------------------------------------------------------------------------------

interface LinkInfo {
  ifindex: number;
  ifname: string;
  address: string;
  link_index?: number;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string };
  xdp?: { mode: number; prog?: { id: number; name: string } };
}

async function linkInfo(host: Host, dev: string, ns?: string): Promise<LinkInfo> {
  const argv = ['ip', '-j', '-d', ...(ns ? ['-n', ns] : []), 'link', 'show', 'dev', dev];
  return (JSON.parse((await host.exec(argv)).stdout) as LinkInfo[])[0]!;
}

/**
 * The other end of a veth, as (namespace, name). Undefined when `dev` is no veth (a real NIC has
 * no peer whose settings matter) or the peer's namespace has no name we could enter.
 */
async function vethPeer(host: Host, dev: string, ownNs: string | undefined): Promise<{ ns?: string; ifname: string } | undefined> {
  const l = await linkInfo(host, dev);
  if (l.linkinfo?.info_kind !== 'veth' || l.link_index === undefined) return undefined;
  let ns = ownNs;
  if (l.link_netnsid !== undefined) {
    const ids = JSON.parse((await host.exec(['ip', '-j', 'netns', 'list-id'])).stdout || '[]') as { nsid: number; name?: string }[];
    ns = ids.find((i) => i.nsid === l.link_netnsid)?.name;
    if (!ns) return undefined;
  }
  const links = JSON.parse((await host.exec(['ip', '-j', ...(ns && ns !== ownNs ? ['-n', ns] : []), 'link', 'show'])).stdout) as LinkInfo[];
  const peer = links.find((x) => x.ifindex === l.link_index);
  return peer ? { ns, ifname: peer.ifname } : undefined;
}

/** The MAC of the interface that holds the backend's address (the one DSR frames must reach). */
async function backendMac(b: BackendNode): Promise<string> {
  const addrs = JSON.parse((await b.host.exec(['ip', '-j', 'addr', 'show'])).stdout) as {
    ifname: string;
    address?: string;
    addr_info?: { local: string }[];
  }[];
  const l = addrs.find((a) => a.addr_info?.some((i) => i.local === b.ip));
  if (!l?.address) throw new ProvisionError(`xdp: no interface on ${b.name} holds ${b.ip}`);
  return l.address;
}

const XDP_MODE_NAMES: Record<number, string> = { 1: 'native', 2: 'generic', 3: 'offload', 4: 'multi' };

export const xdp: LbDriver<Spec> = {
  kind: 'xdp',
  summary: 'our BPF LB: XDP maglev over the 5-tuple, DSR by MAC rewrite (VIP on the backends)',
  tools: [
    { cmd: 'bpftool', pkg: 'bpftool' },
    { cmd: 'clang', pkg: 'clang' },
    { cmd: 'make', pkg: 'make' },
    { cmd: 'ethtool', pkg: 'ethtool' },
    { cmd: 'nsenter', pkg: 'util-linux' },
    { cmd: 'ip', pkg: 'iproute2' },
  ],
  async preflight(host) {
    await requireTools(host, this.tools, 'xdp');
    const headers = await host.exec(['sh', '-c', 'test -f /usr/include/bpf/bpf_helpers.h && test -f "/usr/include/$(uname -m)-linux-gnu/asm/types.h"'], {
      check: false,
    });
    if (headers.code !== 0) {
      throw new PreflightError(`xdp: BPF headers missing on ${host.name} (bpf/bpf_helpers.h, asm/types.h)`, 'apt-get install -y libbpf-dev libc6-dev');
    }
    const obj = xdpObjectPath();
    const [built, source] = await Promise.all([mtime(obj), mtime(join(XDP_SRC_DIR, 'lbbench_xdp.c'))]);
    if (built === undefined) {
      throw new PreflightError(`xdp: the BPF object ${obj} is not built`, `lbbench setup   (or: make -C ${XDP_SRC_DIR})`);
    }
    if (source !== undefined && source > built) {
      throw new PreflightError(`xdp: ${obj} is older than lbbench_xdp.c`, `make -C ${XDP_SRC_DIR}   (or: lbbench setup)`);
    }
    // Listing programs needs the bpf syscall and CAP_BPF/CAP_SYS_ADMIN: the cheapest probe of both.
    const bpf = await host.exec(['bpftool', 'prog', 'show'], { check: false, timeoutMs: 15_000 });
    if (bpf.code !== 0) {
      throw new PreflightError(
        `xdp: the bpf syscall is not usable on ${host.name}: ${(bpf.stderr || bpf.stdout).trim().split('\n').pop()}`,
        'run lbbench as root (bpftool needs CAP_BPF and CAP_NET_ADMIN); the kernel needs CONFIG_BPF_SYSCALL=y',
      );
    }
  },

  // The program's config matches TCP, UDP or both on the VIP's port.
  udp: () => true,
  // One VIP of either family per deployment (the config holds both slots, one left zero).
  ipv6: true,
  async apply(ctx) {
    const lb = ctx.topo.lb;
    const { vip } = ctx.topo;
    const spec = ctx.spec;
    // A netns LB node shares the root host's kernel: mount and bpftool map work happen there, in
    // the root mount namespace (a mount made under `ip netns exec` would vanish with its private
    // mount namespace, taking the pins with it). Elsewhere the LB node is its own machine.
    const machine = lb.ns ? ctx.topo.root : lb.host;
    const inLbNet = (argv: string[], opts?: ExecOptions): Promise<ExecResult> =>
      lb.ns ? machine.exec(inNetns(lb.ns, argv), opts) : lb.host.exec(argv, opts);
    const inNet = (ns: string | undefined, argv: string[], opts?: ExecOptions): Promise<ExecResult> =>
      ns && ns !== lb.ns ? machine.exec(inNetns(ns, argv), opts) : inLbNet(argv, opts);

    if (spec.tableSize > LBB.tableMax) {
      throw new ProvisionError(`xdp: tableSize ${spec.tableSize} exceeds the program's table (${LBB.tableMax} entries)`);
    }
    const obj = xdpObjectPath();
    if ((await mtime(obj)) === undefined) {
      throw new ProvisionError(`xdp: the BPF object ${obj} is not built`, `lbbench setup   (or: make -C ${XDP_SRC_DIR})`);
    }

    // Our own ledger, registered in the run's ledger before anything exists: a failure half-way
    // unwinds through ctx.teardown, and Deployed.teardown() unwinds the same steps.
    const { ledger: mine, release: remove } = ctx.teardown.child(`xdp: remove LB on ${lb.name}`);

    const egress = await linkInfo(lb.host, lb.backendIf);
    const [macs, ingressPeer, egressPeer] = await Promise.all([
      Promise.all(ctx.backends.map(backendMac)),
      vethPeer(lb.host, lb.clientIf, lb.ns),
      vethPeer(lb.host, lb.backendIf, lb.ns),
    ]);
    const macOf = new Map(ctx.backends.map((b, i) => [b.name, macs[i]!]));

    await addVipToBackends(ctx.backends, vip, mine);
    const withVip = new Set(ctx.backends.map((b) => b.name));
    await releaseVipFromLbNode(lb, vip, mine);

    const bpffs = join(ctx.workDir, 'bpffs');
    await machine.exec(['mkdir', '-p', bpffs]);
    mine.add(`xdp: remove ${bpffs}`, () => machine.exec(['rmdir', bpffs], { check: false }));
    await machine.exec(['mount', '-t', 'bpf', 'bpf', bpffs]);
    // Unmounting our own bpffs instance drops every pin in it: the maps and programs are freed
    // once nothing is attached.
    mine.add(`xdp: unmount ${bpffs}`, () => machine.exec(['umount', bpffs], { check: false }));

    const pin = {
      lb: join(bpffs, 'progs', LBB.progs.lb),
      pass: join(bpffs, 'progs', LBB.progs.pass),
      map: (m: keyof typeof LBB.maps) => join(bpffs, 'maps', LBB.maps[m]),
    };
    const load = await machine.exec(loadallArgv(obj, bpffs), { check: false, timeoutMs: 60_000 });
    if (load.code !== 0) {
      throw new ProvisionError(`xdp: bpftool could not load ${obj}:\n${(load.stderr || load.stdout).trim().split('\n').slice(-20).join('\n')}`);
    }
    // Writes run without -j: bpftool's JSON echo of every command more than doubles the time of a
    // large table (100k entries: 1.7 s plain, 4.8 s with -j, here).
    const update = async (commands: string[][]) => {
      if (commands.length) await machine.exec(['bpftool', 'batch', 'file', '-'], { input: batchScript(commands), timeoutMs: 600_000 });
    };
    const lookup = async (commands: string[][]) =>
      (await machine.exec(['bpftool', '-j', 'batch', 'file', '-'], { input: batchScript(commands) })).stdout;

    // Slots are per name for the life of the deployment, so a backend keeps its counters across
    // scale events and a slot is never reused for another backend while flows may still hit it.
    const slots = new Map<string, number>();
    const slotOf = (name: string) => slots.get(name)!;
    const ensureSlots = async (list: BackendNode[]) => {
      const fresh = list.filter((b) => !slots.has(b.name));
      if (slots.size + fresh.length > LBB.backendsMax) {
        throw new ProvisionError(`xdp: more than ${LBB.backendsMax} distinct backends`);
      }
      for (const b of fresh) slots.set(b.name, slots.size);
      await update(fresh.map((b) => mapUpdateArgs(pin.map('backends'), u32le(slotOf(b.name)), backendValue(macOf.get(b.name)!, b.ip))));
    };
    let table: number[] | undefined;
    let active: BackendNode[] = [];
    const program = async (list: BackendNode[]) => {
      await ensureSlots(list);
      const next = slotTable(
        list.map((b) => b.name),
        slotOf,
        spec.tableSize,
      );
      await update(tableUpdates(table, next).map(([i, s]) => mapUpdateArgs(pin.map('table'), u32le(i), u32le(s))));
      table = next;
      active = list;
    };

    await program(ctx.backends);
    const config: XdpConfig = {
      vip,
      port: ctx.port,
      proto: ctx.protocols?.includes('udp') ? 'any' : 'tcp',
      egressIfindex: egress.ifindex,
      egressMac: egress.address,
      tableSize: spec.tableSize,
    };
    // Written last: until the config holds the VIP the program passes everything.
    await update([mapUpdateArgs(pin.map('config'), u32le(0), configValue(config))]);

    /**
     * What native redirect between veths needs. Both were checked on the netns topology (kernel
     * 6.18) by undoing each one under load:
     * - the redirect target's peer (the bridge port) must run NAPI. Without it every connection
     *   timed out, the program's counters still rose, and the only trace was rx_queue_0_drops in
     *   `ethtool -S` of the ingress veth. An XDP_PASS program on the peer turns NAPI on and its
     *   undo is a plain detach; `ethtool -K PEER gro on` worked as well, but would need the old
     *   setting remembered and makes the bridge forward GRO'd super-packets.
     * - the veth sending into our ingress must not offload TX checksums: native XDP turns the skb
     *   into a bare frame, CHECKSUM_PARTIAL is lost and the backend gets a TCP checksum that was
     *   never filled in. With it left on, connections stalled and the backend counted
     *   TcpInCsumErrors.
     * Generic XDP keeps the skb: it worked with neither.
     */
    const prepareNative = async (): Promise<Array<() => Promise<void>>> => {
      const undo: Array<() => Promise<void>> = [];
      if (egress.linkinfo?.info_kind === 'veth' && !egressPeer) {
        throw new ProvisionError(`xdp: the peer of ${lb.backendIf} is in no named namespace, so NAPI cannot be turned on there and native redirects would be dropped`);
      }
      if (egressPeer) {
        const peer = await linkInfo(lb.host, egressPeer.ifname, egressPeer.ns !== lb.ns ? egressPeer.ns : undefined);
        if (!peer.xdp) {
          await inNet(egressPeer.ns, attachArgv('native', pin.pass, egressPeer.ifname));
          undo.push(
            mine.add(`xdp: detach NAPI program from ${egressPeer.ns ?? ''}/${egressPeer.ifname}`, () =>
              inNet(egressPeer.ns, detachArgv('native', egressPeer.ifname), { check: false }),
            ),
          );
        } else if (peer.xdp.mode !== 1) {
          throw new ProvisionError(`xdp: ${egressPeer.ifname} (peer of ${lb.backendIf}) already runs a non-native XDP program; native redirect needs NAPI there`);
        }
      }
      if (ingressPeer) {
        const k = await inNet(ingressPeer.ns, ['ethtool', '-k', ingressPeer.ifname]);
        if (/^tx-checksumming: on/m.test(k.stdout)) {
          await inNet(ingressPeer.ns, ['ethtool', '-K', ingressPeer.ifname, 'tx', 'off']);
          undo.push(
            mine.add(`xdp: ethtool -K ${ingressPeer.ifname} tx on (${ingressPeer.ns ?? ''})`, () =>
              inNet(ingressPeer.ns, ['ethtool', '-K', ingressPeer.ifname, 'tx', 'on'], { check: false }),
            ),
          );
        }
      }
      return undo;
    };

    const attach = async (mode: AttachMode): Promise<string | undefined> => {
      const r = await inLbNet(attachArgv(mode, pin.lb, lb.clientIf), { check: false });
      if (r.code !== 0) return (r.stderr || r.stdout).trim().split('\n').pop() ?? `exit ${r.code}`;
      mine.add(`xdp: detach ${mode} XDP from ${lb.name} ${lb.clientIf}`, () => inLbNet(detachArgv(mode, lb.clientIf), { check: false }));
      return undefined;
    };

    let mode: AttachMode = spec.attach === 'generic' ? 'generic' : 'native';
    let fallback = '';
    if (mode === 'native') {
      let undo: Array<() => Promise<void>> = [];
      let err: string | undefined;
      try {
        undo = await prepareNative();
        err = await attach('native');
      } catch (e) {
        if (spec.attach === 'native') throw e;
        err = (e as Error).message;
      }
      if (err) {
        for (const u of undo.reverse()) await u();
        if (spec.attach === 'native') {
          throw new ProvisionError(`xdp: native attach on ${lb.name} ${lb.clientIf} failed: ${err}`, 'use attach: generic (or auto)');
        }
        fallback = ` (native failed: ${err})`;
        ctx.log(`xdp: native attach on ${lb.clientIf} failed (${err}); falling back to generic`);
        mode = 'generic';
      }
    }
    if (mode === 'generic') {
      const err = await attach('generic');
      if (err) throw new ProvisionError(`xdp: generic attach on ${lb.name} ${lb.clientIf} failed: ${err}`);
    }
    const attached = (await linkInfo(lb.host, lb.clientIf)).xdp;
    if (!attached?.prog || XDP_MODE_NAMES[attached.mode] !== mode) {
      throw new ProvisionError(`xdp: ${lb.clientIf} on ${lb.name} does not show our program in ${mode} mode after attach`);
    }
    const progId = attached.prog.id;
    const vethStats = async () => {
      const [i, e] = await Promise.all([
        inLbNet(['ethtool', '-S', lb.clientIf], { check: false }),
        inLbNet(['ethtool', '-S', lb.backendIf], { check: false }),
      ]);
      return { ingress: parseEthtoolStats(i.stdout), egress: parseEthtoolStats(e.stdout) };
    };
    const statsAtAttach = await vethStats();
    ctx.log(`xdp: ${mode} on ${lb.name} ${lb.clientIf} (prog ${progId}), ${ctx.backends.length} backends, table ${spec.tableSize}`);

    let torn = false;
    const deployed: Deployed = {
      endpoint: { ip: vip, port: ctx.port },
      async setBackends(list) {
        if (torn) throw new ProvisionError(`xdp LB on ${lb.name} was torn down`);
        const fresh = list.filter((b) => !withVip.has(b.name));
        const freshMacs = await Promise.all(fresh.map(backendMac));
        fresh.forEach((b, i) => macOf.set(b.name, freshMacs[i]!));
        // A backend must hold the VIP before the first frame reaches it.
        await addVipToBackends(fresh, vip, mine);
        for (const b of fresh) withVip.add(b.name);
        await program(list);
      },
      async describe() {
        const [version, prog, net, counters, stats] = await Promise.all([
          toolVersion(machine, ['bpftool', 'version']),
          machine.exec(['bpftool', '-j', 'prog', 'show', 'pinned', pin.lb]),
          inLbNet(['bpftool', 'net', 'show']),
          readCounters(),
          vethStats(),
        ]);
        const p = JSON.parse(prog.stdout) as { id: number; tag: string; name: string };
        const share = new Map<number, number>();
        for (const s of table ?? []) share.set(s, (share.get(s) ?? 0) + 1);
        const lines = [
          `# attach: ${mode} on ${lb.name} ${lb.clientIf} (requested ${spec.attach})${fallback}`,
          `# program: ${p.name} id ${p.id} tag ${p.tag} (${obj})`,
          ...(mode === 'native'
            ? [
                `# native: NAPI on ${egressPeer ? `${egressPeer.ns ?? lb.ns}/${egressPeer.ifname}` : '(no veth peer)'}; ` +
                  `tx checksum offload off on ${ingressPeer ? `${ingressPeer.ns ?? lb.ns}/${ingressPeer.ifname}` : '(no veth peer)'}`,
              ]
            : []),
          `# config: vip ${config.vip} port ${config.port}/${config.proto} egress ${lb.backendIf} ifindex ${config.egressIfindex} mac ${config.egressMac} table ${config.tableSize}`,
          `# backends (slot name ip mac active table-entries packets bytes):`,
          ...[...slots].map(([name, s]) => {
            const b = [...active, ...ctx.backends].find((x) => x.name === name);
            const c = counters.backends[s] ?? [0n, 0n];
            return `#   ${s} ${name} ${b?.ip ?? '?'} ${macOf.get(name)} ${active.some((x) => x.name === name) ? 'yes' : 'no'} ${share.get(s) ?? 0} ${c[0]} ${c[1]}`;
          }),
          `# drops: ${LBB.drops.map((d, i) => `${d} ${counters.drops[i] ?? 0n}`).join(', ')}`,
          // Native redirect failures never reach the program's counters: the ingress veth counts
          // them as rx drops. Generic mode does not touch these counters.
          ...(mode === 'native'
            ? [
                `# since attach, ${lb.clientIf}: ${formatStats(xdpStatsDelta(statsAtAttach.ingress, stats.ingress))}`,
                `# since attach, ${lb.backendIf}: ${formatStats(xdpStatsDelta(statsAtAttach.egress, stats.egress))}`,
              ]
            : []),
          `# bpftool net show (${lb.name}):`,
          net.stdout.trimEnd(),
          '',
        ];
        return { version: `lbbench_xdp ${p.tag}, ${version}`, config: lines.join('\n') };
      },
      async counters() {
        const c = await readCounters();
        const out: Record<string, number> = {};
        for (const [name, s] of slots) {
          const [packets = 0n, bytes = 0n] = c.backends[s] ?? [];
          out[`packets.${name}`] = Number(packets);
          out[`bytes.${name}`] = Number(bytes);
        }
        LBB.drops.forEach((d, i) => (out[`drop.${d}`] = Number(c.drops[i] ?? 0n)));
        return out;
      },
      async teardown() {
        torn = true;
        await remove();
      },
    };

    async function readCounters(): Promise<{ backends: bigint[][]; drops: bigint[] }> {
      const slotList = [...slots.values()];
      const out = await lookup([
        ...slotList.map((s) => mapLookupArgs(pin.map('bestats'), u32le(s))),
        ...LBB.drops.map((_, i) => mapLookupArgs(pin.map('drops'), u32le(i))),
      ]);
      const results = JSON.parse(out) as { output: { values: { cpu: number; value: string[] }[] } }[];
      const backends: bigint[][] = [];
      slotList.forEach((s, i) => (backends[s] = sumPerCpu(results[i]!.output.values)));
      const drops = LBB.drops.map((_, i) => sumPerCpu(results[slotList.length + i]!.output.values)[0] ?? 0n);
      return { backends, drops };
    }

    return deployed;
  },
};
