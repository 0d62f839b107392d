// ctraffic (github.com/Nordix/ctraffic, the xcluster continuous-traffic tester): nconn long-lived
// TCP echo connections at a fixed packet rate, re-connected when they break. It answers "how many
// established connections did the LB break, and when" — what a fail-over or a backend change costs.
// Format as printed by cmd/ctraffic/main.go (2025 version, the one with -retries/-srcfile/-udp):
// stdout is one json.Encoder line over its `statistics` struct (no json tags, so the keys are the
// Go field names); `-monitor` lines and log.Fatal messages go to stderr.
import { ConfigError, ParseError } from '../errors.ts';
import { checkCount, checkGoAddress, checkSourceFamily, goDuration } from './mconnect.ts';
import type { Host } from '../host/types.ts';
import type { ConnectionMetrics } from '../results/types.ts';
import { familyOf, hostPort } from '../lb/family.ts';
import { PLAN, PLAN6 } from '../topology/address-plan.ts';
import { attachNamedServers, requireNordixTool } from './backend-servers.ts';
import { jainFairness } from './connect.ts';
import type { ConnectionRecord } from './traffic.ts';
import type { AttachContext, LoadDriver, LoadRunSpec } from './types.ts';

const TOOL = 'ctraffic';
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
/** ctraffic raises smaller -psize values to 64 (the first packet carries the server's hostname). */
export const CTRAFFIC_MIN_PSIZE = 64;
const UINT32_MAX = 2 ** 32 - 1;

export interface CtrafficArgs {
  /** host:port; IPv6 in brackets: "[1000::]:5003". */
  address: string;
  nconn: number;
  /** Total KB/s over all connections (ctraffic gives each connection rate/nconn). */
  rate: number;
  /** Run length. Must exceed 2 s: a client opens no connection with less than 2 s left. */
  timeoutS: number;
  /** Binary to run; default "ctraffic". */
  ctraffic?: string;
  /** Bytes per packet; ctraffic's default is 1024. */
  psize?: number;
  srcCidr?: string;
  /** Connection slots are nconn × retries; one more re-connect and ctraffic exits 1. Default 10. */
  retries?: number;
  /** false: a broken connection is not replaced. Default true (ctraffic's default). */
  reconnect?: boolean;
  /** Per-second progress lines on stderr. */
  monitor?: boolean;
  /** 'all' (default) adds the per-connection entries and samples parseCtraffic needs. */
  stats?: 'all' | 'summary';
}

/** Pure. */
export function ctrafficArgv(o: CtrafficArgs): string[] {
  checkGoAddress(TOOL, o.address);
  checkCount(TOOL, 'nconn', o.nconn);
  if (!Number.isFinite(o.rate) || o.rate <= 0) throw new ConfigError(`${TOOL}: rate must be a positive KB/s, got ${o.rate}`);
  if (!(o.timeoutS > 2)) {
    throw new ConfigError(
      `${TOOL}: timeout must be over 2 s, got ${o.timeoutS} s`,
      [],
      'each ctraffic client stops opening connections when less than 2 s of the run remain',
    );
  }
  const argv = [
    o.ctraffic ?? 'ctraffic',
    '-address', o.address,
    '-nconn', String(o.nconn),
    '-rate', String(o.rate),
    '-timeout', goDuration(TOOL, o.timeoutS),
    '-stats', o.stats ?? 'all',
  ];
  if (o.psize !== undefined) {
    // Refused rather than passed on: ctraffic would silently send 64-byte packets instead.
    checkCount(TOOL, 'psize', o.psize, CTRAFFIC_MIN_PSIZE);
    argv.push('-psize', String(o.psize));
  }
  if (o.srcCidr !== undefined) {
    if (!/^[0-9A-Fa-f:.]+\/\d{1,3}$/.test(o.srcCidr)) {
      throw new ConfigError(`${TOOL}: srcCidr must be a CIDR like 50.0.0.0/16, got ${JSON.stringify(o.srcCidr)}`);
    }
    checkSourceFamily(TOOL, o.address, o.srcCidr);
    argv.push('-srccidr', o.srcCidr);
  }
  if (o.retries !== undefined) {
    checkCount(TOOL, 'retries', o.retries);
    argv.push('-retries', String(o.retries));
  }
  // Go bool flags take their value only as -flag=false; "-reconnect false" would end flag parsing.
  if (o.reconnect === false) argv.push('-reconnect=false');
  if (o.monitor) argv.push('-monitor');
  return argv;
}

/** The summary every ctraffic run prints (`-stats summary` and `-stats all`). */
export interface CtrafficSummary {
  /** RFC 3339 with nanoseconds, exactly as printed. */
  started: string;
  /** Measured run time; a little under -timeout, as clients stop before a packet would overrun it. */
  durationNs: number;
  durationS: number;
  rateKBps: number;
  packetSize: number;
  connections: {
    /** -nconn. */
    requested: number;
    /** Established connections that broke (each is replaced when -reconnect is on). */
    lost: number;
    /** Failed connect attempts, retries included; not a number of connections. */
    failedConnects: number;
  };
  packets: {
    sent: number;
    received: number;
    /** Not sent on purpose: the connection fell behind its rate (delays, retransmits). */
    dropped: number;
    /** Sent but never echoed: in flight when a connection broke. */
    lostInFlight: number;
  };
  /** TCP retransmits, from connections that lasted to the end (broken ones report none). */
  retransmits: number;
}

export interface CtrafficConnection {
  /** Offsets from the run's start. */
  startedNs: number;
  /** null: never connected. */
  connectNs: number | null;
  /** For a lasting connection (or one that never connected) this is the configured -timeout. */
  endedNs: number;
  /** Why it broke; null when it lasted (or never connected). */
  error: string | null;
  sent: number;
  received: number;
  dropped: number;
  retransmits: number;
  local: string;
  remote: string;
  /** The backend's hostname from the first echo; null when none came back. */
  host: string | null;
}

/** ctraffic's once-a-second sample of the cumulative packet counters. */
export interface CtrafficSample {
  timeNs: number;
  sent: number;
  received: number;
  dropped: number;
}

/** One second of `ctraffic -analyze connections`, centred at tS. */
export interface CtrafficInterval {
  tS: number;
  active: number;
  new: number;
  failed: number;
  connecting: number;
}

export interface CtrafficResult extends CtrafficSummary {
  connections: CtrafficSummary['connections'] & {
    /** Connection entries, re-connects included. */
    total: number;
    /** Established and never broken. */
    lasting: number;
    neverConnected: number;
  };
  perConnection: CtrafficConnection[];
  samples: CtrafficSample[];
  /** Derived from perConnection exactly as ctraffic's own analyzer does it. */
  timeline: CtrafficInterval[];
  /** Lasting and lost connections per backend hostname (`ctraffic -analyze hosts`). */
  hosts: Record<string, { lasting: number; lost: number }>;
}

type Obj = Record<string, unknown>;

function excerptOf(text: string, max = 300): string {
  const t = text.trim();
  return t.length <= max ? t : `…${t.slice(-max)}`;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

interface Doc {
  doc: Obj;
  bad: (what: string, hint?: string) => never;
  summary: CtrafficSummary;
}

function parseDoc(stdout: string): Doc {
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) {
    throw new ParseError('no output on stdout (-stats none, a flag error or killed? see stderr)', TOOL, '');
  }
  if (lines.length > 1 || !lines[0]!.startsWith('{')) {
    const stray = lines.find((l) => !l.startsWith('{')) ?? lines[1]!;
    throw new ParseError(
      `expected one JSON line, found ${JSON.stringify(stray.slice(0, 120))}`,
      TOOL,
      excerptOf(stdout),
      /^Conn act\/fail\/connecting: /.test(stray) ? '-monitor lines belong to stderr: parse stdout alone' : undefined,
    );
  }
  const json = lines[0]!;
  let doc: Obj; // a line starting with "{" parses to an object or not at all
  try {
    doc = JSON.parse(json) as Obj;
  } catch (e) {
    throw new ParseError(`truncated or garbled JSON (${(e as Error).message})`, TOOL, excerptOf(json));
  }
  const bad = (what: string, hint?: string): never => {
    throw new ParseError(what, TOOL, excerptOf(json), hint);
  };
  const u32 = (o: Obj, key: string, where = ''): number => {
    const v = o[key];
    return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= UINT32_MAX
      ? (v as number)
      : bad(`${where}${key} is ${JSON.stringify(v)}, expected a count`);
  };
  const started = doc.Started;
  if (typeof started !== 'string' || !RFC3339.test(started)) return bad(`Started is ${JSON.stringify(started)}`);
  const durationNs = doc.Duration;
  if (!Number.isSafeInteger(durationNs) || (durationNs as number) <= 0) return bad(`Duration is ${JSON.stringify(durationNs)}`);
  const rate = doc.Rate;
  if (typeof rate !== 'number' || !(rate >= 0)) return bad(`Rate is ${JSON.stringify(rate)}`);
  const requested = doc.Connections;
  if (!Number.isSafeInteger(requested) || (requested as number) < 0) return bad(`Connections is ${JSON.stringify(requested)}`);
  const packetSize = u32(doc, 'PacketSize');
  if (packetSize < CTRAFFIC_MIN_PSIZE) bad(`PacketSize is ${packetSize}, ctraffic never uses less than ${CTRAFFIC_MIN_PSIZE}`);
  const sent = u32(doc, 'Sent');
  const received = u32(doc, 'Received');
  if (received > sent) bad(`Received ${received} > Sent ${sent}: an echo without a request`);
  return {
    doc,
    bad,
    summary: {
      started,
      durationNs: durationNs as number,
      durationS: (durationNs as number) / 1e9,
      rateKBps: rate,
      packetSize,
      connections: { requested: requested as number, lost: u32(doc, 'FailedConnections'), failedConnects: u32(doc, 'FailedConnects') },
      packets: { sent, received, dropped: u32(doc, 'Dropped'), lostInFlight: sent - received },
      retransmits: u32(doc, 'Retransmits'),
    },
  };
}

/** Pure. For `-stats summary`: the per-connection entries and samples must be absent. */
export function parseCtrafficSummary(stdout: string): CtrafficSummary {
  const { doc, bad, summary } = parseDoc(stdout);
  if ('ConnStats' in doc || 'Samples' in doc) bad('per-connection statistics present: this is -stats all output, use parseCtraffic');
  return summary;
}

/**
 * Pure. For `-stats all`. Beyond types, the entries must agree with the summary (per-connection
 * packet counters sum to the totals, broken entries number FailedConnections) and each entry must
 * be over: ctraffic prints its statistics before dying on "Too many re-connects", and those have
 * entries that never ended — a cut-short run, not a measurement. A run where nothing connected
 * is a measurement (every entry neverConnected); ctraffic exits 0 for it.
 */
export function parseCtraffic(stdout: string): CtrafficResult {
  const { doc, bad, summary } = parseDoc(stdout);
  if (!Array.isArray(doc.ConnStats) || doc.ConnStats.length === 0) {
    // omitempty drops an empty list, so absence also means no client ever started a connection.
    return bad('no ConnStats (per-connection statistics)', 'run ctraffic with -stats all and a -timeout over 2 s');
  }
  const u32 = (o: Obj, key: string, where: string): number => {
    const v = o[key];
    return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= UINT32_MAX
      ? (v as number)
      : bad(`${where}.${key} is ${JSON.stringify(v)}, expected a count`);
  };
  const ns = (o: Obj, key: string, where: string): number => {
    const v = o[key];
    return Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : bad(`${where}.${key} is ${JSON.stringify(v)}, expected ns ≥ 0`);
  };
  const str = (o: Obj, key: string, where: string): string => {
    const v = o[key];
    return typeof v === 'string' ? v : bad(`${where}.${key} is ${JSON.stringify(v)}, expected a string`);
  };

  const perConnection = doc.ConnStats.map((c: unknown, i): CtrafficConnection => {
    const where = `ConnStats[${i}]`;
    if (!isObj(c)) return bad(`${where} is not an object`);
    // An unfinished entry's end is Go's zero time minus the start: 0, or a huge negative number.
    if (!Number.isSafeInteger(c.Ended) || (c.Ended as number) <= 0) {
      return bad(
        `${where} never ended (Ended ${JSON.stringify(c.Ended)}): the run was cut short`,
        'ctraffic prints its statistics before exiting on "Too many re-connects" (see stderr): raise -retries',
      );
    }
    const startedNs = ns(c, 'Started', where);
    const connect = ns(c, 'Connect', where);
    const endedNs = c.Ended as number;
    const err = str(c, 'Err', where);
    const e: CtrafficConnection = {
      startedNs,
      connectNs: connect === 0 ? null : connect,
      endedNs,
      error: err === '' ? null : err,
      sent: u32(c, 'Sent', where),
      received: u32(c, 'Received', where),
      dropped: u32(c, 'Dropped', where),
      retransmits: u32(c, 'Retransmits', where),
      local: str(c, 'Local', where),
      remote: str(c, 'Remote', where),
      host: c.Host === undefined ? null : str(c, 'Host', where),
    };
    if (startedNs > endedNs || (e.connectNs !== null && (e.connectNs < startedNs || e.connectNs > endedNs))) {
      bad(`${where}: Started ${startedNs}, Connect ${connect}, Ended ${endedNs} are out of order`);
    }
    if (e.received > e.sent) bad(`${where}: Received ${e.received} > Sent ${e.sent}`);
    // Traffic, an error and the addresses all come from Run(), which only a connected entry reaches.
    if (e.connectNs === null && (e.sent > 0 || e.error !== null || e.local !== '' || e.host !== null)) {
      bad(`${where} never connected but has traffic, an error or addresses`);
    }
    if (e.connectNs !== null && (e.local === '' || e.remote === '')) bad(`${where} connected without local/remote addresses`);
    return e;
  });

  const sum = (k: 'sent' | 'received' | 'dropped' | 'retransmits') => perConnection.reduce((a, c) => a + c[k], 0);
  const totals = { sent: summary.packets.sent, received: summary.packets.received, dropped: summary.packets.dropped, retransmits: summary.retransmits };
  for (const k of ['sent', 'received', 'dropped', 'retransmits'] as const) {
    if (sum(k) !== totals[k]) bad(`per-connection ${k} add up to ${sum(k)}, the summary says ${totals[k]}`);
  }
  const broken = perConnection.filter((c) => c.error !== null).length;
  if (broken !== summary.connections.lost) bad(`${broken} entries have an error, FailedConnections is ${summary.connections.lost}`);
  // Entries beyond the first nconn are replacements, one per broken connection at most.
  if (perConnection.length > summary.connections.requested + summary.connections.lost) {
    bad(`${perConnection.length} entries for ${summary.connections.requested} connections and ${summary.connections.lost} re-connects`);
  }

  // Samples are absent (omitempty) when the run ended before the first one, a second in.
  const rawSamples = doc.Samples === undefined ? [] : doc.Samples;
  if (!Array.isArray(rawSamples)) return bad('Samples is not a list');
  let prev: CtrafficSample = { timeNs: 0, sent: 0, received: 0, dropped: 0 };
  const samples = rawSamples.map((s: unknown, i): CtrafficSample => {
    const where = `Samples[${i}]`;
    if (!isObj(s)) return bad(`${where} is not an object`);
    const cur = { timeNs: ns(s, 'Time', where), sent: u32(s, 'Sent', where), received: u32(s, 'Received', where), dropped: u32(s, 'Dropped', where) };
    // Cumulative counters read by one sampler goroutine: time moves on and no counter goes back.
    if (cur.timeNs <= prev.timeNs || cur.sent < prev.sent || cur.received < prev.received || cur.dropped < prev.dropped) {
      bad(`${where} goes backwards from the sample before it`);
    }
    if (cur.sent > totals.sent || cur.received > totals.received || cur.dropped > totals.dropped) bad(`${where} exceeds the final totals`);
    prev = cur;
    return cur;
  });

  const lasting = perConnection.filter((c) => c.connectNs !== null && c.error === null).length;
  const hosts: Record<string, { lasting: number; lost: number }> = {};
  for (const c of perConnection) {
    if (c.host === null) continue;
    const h = (hosts[c.host] ??= { lasting: 0, lost: 0 });
    if (c.error === null) h.lasting++;
    else h.lost++;
  }
  return {
    ...summary,
    connections: {
      ...summary.connections,
      total: perConnection.length,
      lasting,
      neverConnected: perConnection.filter((c) => c.connectNs === null).length,
    },
    perConnection,
    samples,
    timeline: connectionTimeline(perConnection, summary.durationNs),
    hosts,
  };
}

const SECOND = 1_000_000_000;

/**
 * Pure. ctraffic's analyzeConnections, step for step, so the numbers match `ctraffic -stat_file
 * … -analyze connections`: whole-second intervals up to the measured duration, a broken entry
 * counted as failed in the interval it ended in, an entry that never connected counted as
 * connecting until its end.
 */
export function connectionTimeline(conns: CtrafficConnection[], durationNs: number): CtrafficInterval[] {
  const rows: CtrafficInterval[] = [];
  let last = 0;
  for (let i = SECOND; i < durationNs; i += SECOND) {
    let active = 0;
    let failed = 0;
    let connecting = 0;
    let fresh = 0;
    for (const c of conns) {
      if (c.endedNs < last) continue;
      if (c.endedNs < i) {
        if (c.error !== null) failed++;
        continue;
      }
      if (c.startedNs > i) continue;
      if (c.startedNs > last) fresh++;
      if (c.connectNs === null || c.connectNs > i) connecting++;
      else active++;
    }
    rows.push({ tS: (last + SECOND / 2) / SECOND, active, new: fresh, failed, connecting });
    last = i;
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// The generator: the real ctraffic, when the client and the backends have it.

/** Where `ctraffic -server` listens on each backend (its default port); the LB's port is redirected to it. */
export const CTRAFFIC_SERVER_PORT = 5003;
/** lbbench's load.rate is messages/s; with 1 KiB packets ctraffic's KB/s is the same number. */
const PSIZE = 1024;

/**
 * ctraffic's IPv6 sources: the first /112 of PLAN6.sourcePool (2001:2:0:80::/64), not the whole /64.
 * This ctraffic draws -srccidr addresses from github.com/Nordix/mconnect/pkg/rndip/v2
 * (GetIPStringIdx(connection index)), whose source the corpus does not hold; what the source does
 * show is IPv6 sources used with a /112 — the author's xcluster ovl/load-balancer README runs
 * `ctraffic -address [1000::]:5003 … -srccidr 2000::/112` — and client() passing the generator's
 * string through withPort(), which expects IPv6 in brackets. A /112 inside the pool is routed
 * like the rest of it (a local route on the client's lo, the pool routed to the client) and holds
 * 65536 addresses, more than the IPv4 pool's /18.
 */
export const CTRAFFIC_SOURCE_POOL6 = `${PLAN6.sourcePool.slice(0, PLAN6.sourcePool.indexOf('/'))}/112`;

export type CtrafficGeneratorMetrics = Omit<ConnectionMetrics, 'perBackend'>;

/**
 * Pure: ctraffic's connections as lbbench's connection records (ms since its start), so events are
 * accounted the same way as for the built-in traffic tester.
 */
export function ctrafficRecords(r: CtrafficResult): ConnectionRecord[] {
  return r.perConnection.map((c, id) => {
    const outcome: ConnectionRecord['outcome'] = c.connectNs === null ? 'connect-failed' : c.error ? 'lost' : 'lasted';
    return {
      id,
      src: c.local,
      start: (c.connectNs ?? c.startedNs) / 1e6,
      end: outcome === 'lasted' ? null : c.endedNs / 1e6,
      backend: c.host,
      backends: c.host ? 1 : 0,
      messages: c.received,
      outcome,
      reason: outcome === 'lasted' ? null : (c.error ?? 'connect failed'),
    };
  });
}

export function ctrafficMetrics(r: CtrafficResult): CtrafficGeneratorMetrics {
  const perBackend: Record<string, number> = {};
  for (const c of r.perConnection) if (c.host) perBackend[c.host] = (perBackend[c.host] ?? 0) + 1;
  const established = r.perConnection.filter((c) => c.connectNs !== null).length;
  return {
    durationS: r.durationS,
    connectionsPerSec: established / r.durationS,
    connections: { total: established, lost: r.connections.lost, failedConnects: r.connections.failedConnects, lasted: r.connections.lasting },
    connectionsPerBackend: perBackend,
    fairness: jainFairness(Object.values(perBackend)),
    tool: TOOL,
  };
}

/**
 * IPv6, from the source (Nordix/ctraffic cmd/ctraffic/main.go, the 2025 version):
 * - client: echoConn.Connect() dials `*c.addr` with net.Dialer.DialContext("tcp", …): Go's
 *   host:port, IPv6 in brackets (hostPort()), as in the README's `-address [1000::1]:5003`.
 * - -srccidr: clientMain() makes rndip.New(*c.srccidr) (mconnect's pkg/rndip/v2), client() binds
 *   withPort(GetIPStringIdx(id)) through net.ResolveTCPAddr; see CTRAFFIC_SOURCE_POOL6.
 * - server: serverMain() is net.Listen("tcp", *c.addr); attachNamedServers gives it [::]:port for
 *   an IPv6 point (the README's image runs `ctraffic -server -address [::]:5003`).
 */
export const ctraffic: LoadDriver<CtrafficGeneratorMetrics> = {
  name: 'ctraffic',
  ipv6: true,
  tools: [],
  preflight: (host: Host) => requireNordixTool(host, 'ctraffic', 'generator: traffic'),
  buildArgv(spec: LoadRunSpec) {
    const { load, target } = spec;
    return ctrafficArgv({
      address: hostPort(target.ip, target.port),
      nconn: load.connections,
      rate: load.rate,
      psize: PSIZE,
      timeoutS: spec.durationS,
      ...(load.sourceAddresses > 0 ? { srcCidr: familyOf(target.ip) === 6 ? CTRAFFIC_SOURCE_POOL6 : PLAN.sourcePool } : {}),
    });
  },
  async prepare() {},
  parse(stdout: string) {
    return ctrafficMetrics(parseCtraffic(stdout));
  },
  timeline(stdout: string) {
    const r = parseCtraffic(stdout);
    return { startEpochMs: Date.parse(r.started), endMs: r.durationS * 1000, records: ctrafficRecords(r) };
  },
  attach: (ctx: AttachContext) => attachNamedServers(ctx, TOOL, CTRAFFIC_SERVER_PORT),
};
