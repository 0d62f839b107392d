// Our own user-space maglev LB: iptables queues a flow's first packet to lbbench-nfq, which
// answers with fwmark = backend index + 1; policy routing sends marked packets to that backend,
// which holds the VIP itself (DSR-style delivery, no NAT). conntrack carries the mark to the rest
// of the flow, so the program sees one packet per connection.
import { hostPrefix, ipCmd, iptablesCmd } from './family.ts';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Deployed, LbDriver, Protocol } from './types.ts';
import type { LbSpec } from '../scenario/schema.ts';
import type { BackendNode } from '../topology/types.ts';
import type { Host, Spawned } from '../host/types.ts';
import { CommandError, PreflightError, ProvisionError } from '../errors.ts';
import { requireTools, toolVersion } from './preflight.ts';
import { addVipToBackends, releaseVipFromLbNode } from './vip.ts';
import { waitFor } from '../util/time.ts';
import { tail } from './proc.ts';
import { PLAN } from '../topology/address-plan.ts';

type Spec = Extract<LbSpec, { kind: 'nfqueue' }>;

export const NFQ_SRC_DIR = fileURLToPath(new URL('../datapath/nfqueue/', import.meta.url));
export const NFQ_BUILD_DIR = join(NFQ_SRC_DIR, 'build');
export const NFQ_PROGRAM = 'lbbench-nfq';
/** Debian packages `buildNfqueue` needs (for `lbbench setup`). */
export const NFQ_BUILD_PACKAGES = ['gcc', 'make', 'pkg-config', 'libnetfilter-queue-dev'];

export const nfqBinary = (outDir = NFQ_BUILD_DIR): string => join(outDir, NFQ_PROGRAM);
const BUILD_HINT = `npx lbbench setup   (or: make -C ${NFQ_SRC_DIR} after apt-get install -y ${NFQ_BUILD_PACKAGES.join(' ')})`;

/** `make` the program into outDir and check it with its self-test; returns the binary's path. */
export async function buildNfqueue(host: Host, outDir: string = NFQ_BUILD_DIR): Promise<string> {
  const out = resolve(outDir);
  try {
    await host.exec(['make', '-C', NFQ_SRC_DIR, `OUT=${out}`], { timeoutMs: 180_000 });
    const bin = nfqBinary(out);
    await host.exec([bin, '--selftest'], { timeoutMs: 10_000 });
    return bin;
  } catch (e) {
    if (!(e instanceof CommandError)) throw e;
    throw new ProvisionError(
      `building ${NFQ_PROGRAM} on ${host.name} failed:\n${tail(e.stderr || e.stdout || e.message, 15)}`,
      `apt-get install -y ${NFQ_BUILD_PACKAGES.join(' ')}`,
      { cause: e },
    );
  }
}

export const CHAIN = 'LBB_NFQ';
export const SAVE_CHAIN = 'LBB_NFQ_SAVE';
/** Policy routing: backend i uses fwmark i+1, routing table TABLE_BASE+i, rule preference PREF_BASE+i. */
export const TABLE_BASE = 100;
export const PREF_BASE = 1000;

/**
 * The mangle chains. A queue verdict of NF_ACCEPT resumes at the next netfilter hook, not at the
 * next rule: anything after -j NFQUEUE in the same chain never sees the first packet. So the mark
 * is saved to conntrack in FORWARD, after routing has used it, and only while the connection has
 * none (later packets restore it and skip the queue).
 */
export function mangleRestoreInput(queue: number, state: 'stateless' | 'conntrack' = 'conntrack'): string {
  const sticky = state === 'conntrack';
  return [
    '*mangle',
    `:${CHAIN} - [0:0]`,
    `:${SAVE_CHAIN} - [0:0]`,
    ...(sticky ? [`-A ${CHAIN} -j CONNMARK --restore-mark`, `-A ${CHAIN} -m mark ! --mark 0 -j RETURN`] : []),
    // --queue-bypass: while no program is bound, packets pass unmarked instead of being dropped.
    `-A ${CHAIN} -j NFQUEUE --queue-num ${queue} --queue-bypass`,
    ...(sticky ? [`-A ${SAVE_CHAIN} -m connmark --mark 0 -m mark ! --mark 0 -j CONNMARK --save-mark`] : []),
    'COMMIT',
    '',
  ].join('\n');
}

/** The jumps into our chains (iptables -t mangle argv after -A/-D), two per balanced protocol on the VIP's port. */
export function mangleJumps(vip: string, port: number, protocols: Protocol[] = ['tcp']): string[][] {
  return protocols.flatMap((p) => {
    const match = ['-d', hostPrefix(vip), '-p', p, '--dport', String(port)];
    return [
      ['PREROUTING', ...match, '-j', CHAIN],
      ['FORWARD', ...match, '-j', SAVE_CHAIN],
    ];
  });
}

/** `ip -b` lines: for backend i, fwmark i+1 → table 100+i, whose only route sends the VIP to it. */
export function policyRoutingBatch(vip: string, backends: BackendNode[], dev: string): string[] {
  return backends.flatMap((b, i) => [
    `rule add fwmark ${i + 1} table ${TABLE_BASE + i} pref ${PREF_BASE + i}`,
    `route replace ${hostPrefix(vip)} via ${b.ip} dev ${dev} table ${TABLE_BASE + i}`,
  ]);
}

/** `ip -force -b` lines undoing policyRoutingBatch for n backends. */
export function policyRoutingUndoBatch(n: number): string[] {
  return Array.from({ length: n }, (_, i) => [`rule del pref ${PREF_BASE + i}`, `route flush table ${TABLE_BASE + i}`]).flat();
}

/** The control-socket command selecting the active backends (indices into topo.backends). */
export function activeCommand(indices: number[]): string {
  return `active ${indices.length ? [...indices].sort((a, b) => a - b).join(',') : '-'}`;
}

export function programArgv(
  bin: string,
  spec: Spec,
  o: { backends: number; active: number[]; control: string; stats: string; cpus?: string },
): string[] {
  const argv = [
    bin,
    '--queue', String(spec.queue),
    '--table-size', String(spec.tableSize),
    '--backends', String(o.backends),
    '--active', o.active.length ? o.active.join(',') : '-',
    '--control', o.control,
    '--stats', o.stats,
  ];
  return o.cpus ? ['taskset', '-c', o.cpus, ...argv] : argv;
}

export interface QueueCounters {
  queue: number;
  portid: number;
  /** Packets waiting for a verdict right now. */
  waiting: number;
  /** Dropped because the queue was full (queue-maxlen). */
  queueDropped: number;
  /** Dropped because the program's netlink socket buffer was full. */
  userDropped: number;
  idSequence: number;
}

/** /proc/net/netfilter/nfnetlink_queue (per network namespace): one line per bound queue. */
export function parseQueueProc(text: string): QueueCounters[] {
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter((f) => f.length >= 8 && f.every(Number.isFinite))
    .map((f) => ({
      queue: f[0]!,
      portid: f[1]!,
      waiting: f[2]!,
      queueDropped: f[5]!,
      userDropped: f[6]!,
      idSequence: f[7]!,
    }));
}

/** What the program reports on `stats` (and writes to its stats file). */
export interface ProgramStats {
  version: string;
  queue: number;
  table_size: number;
  backends: number;
  uptime_s: number;
  packets: number;
  accepted: number;
  no_backend: number;
  unparsed: number;
  enobufs: number;
  verdict_errors: number;
  rebuilds: number;
  active: number[];
  backend_packets: number[];
  table_shares: number[];
}

/** The packet counter of the NFQUEUE rule in `iptables -t mangle -L CHAIN -v -x -n` output. */
export function queueRuleHits(listing: string): number | undefined {
  const line = listing.split('\n').find((l) => /\bNFQUEUE\b/.test(l) && /^\s*\d+/.test(l));
  return line ? Number(line.trim().split(/\s+/)[0]) : undefined;
}

/** Lines of `ip route show table all` that belong to our policy-routing tables. */
export function ourRoutes(text: string, backends: number): string[] {
  return text.split('\n').filter((l) => {
    const m = /\btable (\d+)\b/.exec(l);
    return m !== null && Number(m[1]) >= TABLE_BASE && Number(m[1]) < TABLE_BASE + backends;
  });
}

/** sun_path holds 107 bytes; a deep per-point work dir can exceed that. */
export function controlSocketPath(workDir: string, fallbackDir: string, queue: number): string {
  const preferred = join(workDir, 'ctl.sock');
  return Buffer.byteLength(preferred) <= 100 ? preferred : join(fallbackDir, `nfq${queue}-${randomBytes(3).toString('hex')}.sock`);
}

const START_TIMEOUT_MS = 10_000;
const PROC_QUEUE = '/proc/net/netfilter/nfnetlink_queue';

/**
 * Probe the NFQUEUE/CONNMARK/connmark/mark xtables extensions with our own rules in a throwaway
 * namespace: iptables-nft needs the compat modules, and only loading the rules shows they exist.
 */
async function probeKernel(host: Host, queue: number): Promise<void> {
  // Modular kernels load these on first use by iptables, except the queue's netlink side.
  await host.exec(['modprobe', 'nfnetlink_queue'], { check: false });
  // "lbb-<id>-" like a topology's names, so `lbbench down` would find it after a crash.
  const ns = `lbb-pf${randomBytes(2).toString('hex')}-nfq`;
  const add = await host.exec(['ip', 'netns', 'add', ns], { check: false });
  if (add.code !== 0) {
    throw new PreflightError(`cannot create a network namespace on ${host.name}: ${tail(add.stderr, 2)}`, 'run lbbench as root (sudo)');
  }
  try {
    const inNs = (argv: string[], input?: string) => host.exec(['ip', 'netns', 'exec', ns, ...argv], { check: false, input });
    const load = await inNs(['iptables-restore', '-n'], mangleRestoreInput(queue));
    const jump = load.code === 0 ? await inNs(['iptables', '-t', 'mangle', '-A', ...mangleJumps(PLAN.vip(0), 80)[0]!]) : load;
    if (jump.code !== 0) {
      throw new PreflightError(
        `the kernel on ${host.name} rejects the nfqueue LB's iptables rules: ${tail(jump.stderr, 3) || 'no message'}`,
        'modprobe nfnetlink_queue xt_NFQUEUE xt_CONNMARK xt_connmark xt_mark (kernel config NETFILTER_XT_TARGET_NFQUEUE, NETFILTER_XT_CONNMARK)',
      );
    }
    // The file is per network namespace, so look where the LB will run: in a namespace.
    if ((await inNs(['test', '-e', PROC_QUEUE])).code !== 0) {
      throw new PreflightError(`${PROC_QUEUE} is missing on ${host.name}: no nfnetlink_queue`, 'modprobe nfnetlink_queue (kernel config NETFILTER_NETLINK_QUEUE)');
    }
  } finally {
    await host.exec(['ip', 'netns', 'del', ns], { check: false });
  }
}

export const nfqueue: LbDriver<Spec> = {
  kind: 'nfqueue',
  summary: 'our user-space maglev LB on NFQUEUE (fwmark verdicts + policy routing, VIP on the backends)',
  tools: [
    { cmd: 'ip', pkg: 'iproute2' },
    { cmd: 'iptables', pkg: 'iptables' },
    { cmd: 'iptables-restore', pkg: 'iptables' },
    { cmd: 'conntrack', pkg: 'conntrack' },
    { cmd: 'taskset', pkg: 'util-linux' },
  ],
  async preflight(host, spec) {
    await requireTools(host, this.tools, 'nfqueue');
    const bin = nfqBinary();
    const built = await host.exec(['test', '-x', bin], { check: false });
    if (built.code !== 0) {
      throw new PreflightError(`${NFQ_PROGRAM} is not built (${bin} missing)`, BUILD_HINT);
    }
    // An old binary would measure old code under the new source's name.
    const stale = await host.exec(['test', join(NFQ_SRC_DIR, 'lbbench-nfq.c'), '-nt', bin], { check: false });
    if (stale.code === 0) throw new PreflightError(`${bin} is older than its source`, BUILD_HINT);
    await probeKernel(host, spec.queue);
  },

  // The program hashes TCP and UDP ports alike.
  udp: () => true,
  ipv6: true,
  async apply(ctx) {
    const host = ctx.topo.lb.host;
    const { vip } = ctx.topo;
    const all = ctx.topo.backends;
    const indexOf = (b: BackendNode): number => {
      const i = all.findIndex((x) => x === b || x.name === b.name);
      if (i < 0) throw new ProvisionError(`backend ${b.name} is not part of the topology (${all.map((x) => x.name).join(', ')})`);
      return i;
    };
    const bin = nfqBinary();
    const control = controlSocketPath(ctx.workDir, ctx.topo.workDir, ctx.spec.queue);
    const statsFile = join(ctx.workDir, 'stats.json');
    const send = async (cmd: string): Promise<string> => {
      const r = await host.exec([bin, '--control', control, '--send', cmd], { check: false, timeoutMs: 10_000 });
      const line = r.stdout.trim();
      if (r.code !== 0 || !line.startsWith('ok')) {
        throw new ProvisionError(`${NFQ_PROGRAM} on ${host.name}: "${cmd}" failed: ${line || tail(r.stderr, 3)}`);
      }
      return line.slice(3);
    };

    // Our own ledger, registered before anything exists: Deployed.teardown() and the caller's
    // unwind then share one ordered undo path (rules off, then the program, then routes and VIPs).
    const { ledger: own, release: teardown } = ctx.teardown.child(`tear down nfqueue LB on ${host.name}`);

    // Every backend of the topology gets the VIP and a route now, so a scale event only has to
    // change the program's active set.
    await addVipToBackends(all, vip, own);
    await releaseVipFromLbNode(ctx.topo.lb, vip, own);
    // -6 for the whole batch: `rule add fwmark` names no address, and would be an IPv4 rule.
    const ip = ipCmd(vip);
    const ipt = iptablesCmd(vip);
    own.add(`remove policy routing for ${all.length} backends on ${host.name}`, () =>
      host.exec([...ip, '-force', '-b', '-'], { input: policyRoutingUndoBatch(all.length).join('\n') + '\n', check: false }),
    );
    await host.exec([...ip, '-b', '-'], { input: policyRoutingBatch(vip, all, ctx.topo.lb.backendIf).join('\n') + '\n' });

    // A stats file from an earlier program would pass for readiness.
    await host.exec(['rm', '-f', statsFile, control]);
    await host.exec(['mkdir', '-p', ctx.workDir]);
    const active = ctx.backends.map(indexOf);
    const proc: Spawned = host.spawn(
      programArgv(bin, ctx.spec, { backends: all.length, active, control, stats: statsFile, cpus: ctx.cpus }),
    );
    own.add(`stop ${NFQ_PROGRAM} on ${host.name}`, () => proc.stop());
    // The program writes its stats file after binding the queue and opening the control socket,
    // just before its ready line (Host.spawn gives no output until exit, so the file is the signal).
    const up = await waitFor(
      async () => !proc.running() || (await host.readFile(statsFile).then(() => true, () => false)),
      { timeoutMs: START_TIMEOUT_MS, intervalMs: 20 },
    );
    if (!up || !proc.running()) {
      const out = await proc.stop().catch(() => undefined);
      throw new ProvisionError(
        `${NFQ_PROGRAM} on ${host.name} did not start${up ? '' : ` within ${START_TIMEOUT_MS / 1000}s`}: ${tail(`${out?.stdout ?? ''}\n${out?.stderr ?? ''}`, 5) || 'no output'}`,
        `try it by hand: ip netns exec ${ctx.topo.lb.ns ?? host.name} ${programArgv(bin, ctx.spec, { backends: all.length, active, control, stats: statsFile }).join(' ')}`,
      );
    }

    // Rules only now, with the queue bound: every queued packet meets the program, so rule hits
    // minus the program's count is exactly what bypassed it.
    const jumps = mangleJumps(vip, ctx.port, ctx.protocols);
    own.add(`iptables: remove mangle chains ${CHAIN}, ${SAVE_CHAIN} on ${host.name}`, async () => {
      for (const j of jumps) await host.exec([ipt, '-t', 'mangle', '-D', ...j], { check: false });
      for (const c of [CHAIN, SAVE_CHAIN]) {
        await host.exec([ipt, '-t', 'mangle', '-F', c], { check: false });
        await host.exec([ipt, '-t', 'mangle', '-X', c], { check: false });
      }
      // Connections keep their mark in conntrack; the next LB on this node must start clean.
      await host.exec(['conntrack', '-F'], { check: false });
    });
    await host.exec([`${ipt}-restore`, '-n'], { input: mangleRestoreInput(ctx.spec.queue, ctx.spec.state) });
    for (const j of jumps) await host.exec([ipt, '-t', 'mangle', '-A', ...j]);
    ctx.log(`nfqueue: ${NFQ_PROGRAM} on queue ${ctx.spec.queue}, maglev ${ctx.spec.tableSize}, active ${active.join(',') || '-'} of ${all.length}`);

    const readStats = async (): Promise<ProgramStats | undefined> => {
      const text = proc.running()
        ? await send('stats').catch(() => undefined)
        : await host.readFile(statsFile).catch(() => undefined);
      return text ? (JSON.parse(text) as ProgramStats) : undefined;
    };

    const name = (i: number) => all[i]?.name ?? `#${i}`;
    const readCounters = async () => {
      const [stats, queues, chains] = await Promise.all([
        readStats(),
        host.exec(['cat', PROC_QUEUE], { check: false }),
        host.exec([ipt, '-t', 'mangle', '-L', CHAIN, '-v', '-x', '-n'], { check: false }),
      ]);
      const q = parseQueueProc(queues.stdout).find((x) => x.queue === ctx.spec.queue);
      const hits = queueRuleHits(chains.stdout);
      // Packets that hit the NFQUEUE rule but reached no verdict of ours: bypassed while no
      // program was bound, or dropped by the kernel (counted separately).
      const bypassed = hits !== undefined && stats && q ? hits - stats.packets - q.queueDropped - q.userDropped - q.waiting : undefined;
      return { stats, q, hits, bypassed, queues };
    };

    const deployed: Deployed = {
      endpoint: { ip: vip, port: ctx.port },
      async setBackends(list) {
        if (!proc.running()) {
          throw new ProvisionError(`${NFQ_PROGRAM} on ${host.name} is not running: ${tail((await proc.exited).stderr)}`);
        }
        await send(activeCommand(list.map(indexOf)));
      },
      async counters() {
        const { stats, q, hits, bypassed } = await readCounters();
        const out: Record<string, number> = {};
        if (stats) {
          stats.backend_packets.forEach((n, i) => (out[`packets.${name(i)}`] = n));
          for (const k of ['packets', 'accepted', 'no_backend', 'unparsed', 'enobufs', 'verdict_errors'] as const) out[`program.${k}`] = stats[k];
        }
        if (q) Object.assign(out, { 'queue.dropped': q.queueDropped, 'queue.user_dropped': q.userDropped });
        if (hits !== undefined) out['rule.hits'] = hits;
        if (bypassed !== undefined) out['bypassed'] = bypassed;
        return out;
      },
      async describe() {
        const [version, { stats, q, hits, bypassed, queues }, rules, routes] = await Promise.all([
          toolVersion(host, [bin, '--version']),
          readCounters(),
          host.exec([...ip, 'rule', 'show'], { check: false }),
          host.exec([...ip, ...(ip.length === 1 ? ['-4'] : []), 'route', 'show', 'table', 'all'], { check: false }),
        ]);
        const mangle = await host.exec([ipt, '-t', 'mangle', '-S', '-v'], { check: false });
        const config = [
          `# ${NFQ_PROGRAM}: queue ${ctx.spec.queue}, maglev table size ${ctx.spec.tableSize}, ${all.length} backends in the topology, ` +
            (ctx.spec.state === 'stateless' ? 'stateless (every packet queued)' : 'conntrack (first packet queued, mark kept in conntrack)'),
          `# active: ${stats ? stats.active.map(name).join(',') || '-' : 'unknown (program not answering)'}`,
          stats
            ? `# table shares: ${stats.table_shares.map((n, i) => `${name(i)}=${n}`).join(' ')}`
            : '# table shares: unknown',
          stats
            ? `# program: packets=${stats.packets} accepted=${stats.accepted} no_backend=${stats.no_backend} unparsed=${stats.unparsed} ` +
              `enobufs=${stats.enobufs} verdict_errors=${stats.verdict_errors} rebuilds=${stats.rebuilds} ` +
              `per-backend ${stats.backend_packets.map((n, i) => `${name(i)}=${n}`).join(' ')}`
            : '# program: no stats',
          q
            ? `# queue ${q.queue} (${PROC_QUEUE}): waiting=${q.waiting} queue_dropped=${q.queueDropped} user_dropped=${q.userDropped} id_sequence=${q.idSequence}`
            : `# queue ${ctx.spec.queue}: not bound (${PROC_QUEUE}: ${queues.stdout.trim() || 'empty'})`,
          `# NFQUEUE rule hits=${hits ?? 'unknown'} bypassed=${bypassed ?? 'unknown'}`,
          stats ? `# stats: ${JSON.stringify(stats)}` : '# stats: unavailable',
          '# iptables -t mangle -S',
          mangle.stdout.trim(),
          '# ip rule show',
          rules.stdout.trim(),
          `# policy routing tables ${TABLE_BASE}..${TABLE_BASE + all.length - 1}`,
          ourRoutes(routes.stdout, all.length).join('\n'),
          '',
        ].join('\n');
        return { version, config };
      },
      teardown,
    };
    return deployed;
  },
};
