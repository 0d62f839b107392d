// mconnect (github.com/Nordix/mconnect, the xcluster connectivity tester): N short TCP connects to
// a VIP, each reading the hostname the backend's `mconnect -server` writes, counted per hostname.
// Format as printed by cmd/mconnect/main.go (commit edbad32): with `-output json` stdout is one
// line from json.Encoder over its `statistics` struct, preceded by one "Read err: <error>" line
// per failed TCP read (fmt.Println in connect()). Log and flag errors go to stderr.
import { ConfigError, ParseError } from '../errors.ts';
import type { Host } from '../host/types.ts';
import type { ConnectionMetrics } from '../results/types.ts';
import { hostPort } from '../lb/family.ts';
import { sourcePoolFor } from '../topology/address-plan.ts';
import { attachNamedServers, requireNordixTool } from './backend-servers.ts';
import { jainFairness } from './connect.ts';
import type { AttachContext, LoadDriver, LoadRunSpec } from './types.ts';

const TOOL = 'mconnect';
const READ_ERR = 'Read err: ';
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

export interface MconnectArgs {
  /** host:port; IPv6 in brackets, as Go's net.Dial wants it: "[1000::]:5001". */
  address: string;
  nconn: number;
  /** Deadline for the whole run: connects and reads still pending then count as failed. */
  timeoutS: number;
  /** Random source addresses from this CIDR (mconnect -srccidr). */
  srcCidr?: string;
  /** Binary to run; default "mconnect". */
  mconnect?: string;
}

export interface MconnectResult {
  /** Connections attempted (mconnect's "connects" is -nconn, not the successes). */
  connects: number;
  failedConnects: number;
  failedReads: number;
  /** Connections that read a hostname, per hostname. */
  perHost: Record<string, number>;
  /** Sum of perHost; connects = answered + failedConnects + failedReads. */
  answered: number;
  /** RFC 3339 with nanoseconds, exactly as printed (Date would drop the ns). */
  startTime: string;
  timeoutNs: number;
  durationNs: number;
  durationS: number;
  /** The errors of the "Read err:" lines (TCP only; UDP failures print nothing). */
  readErrors: string[];
}

const ADDRESS = /^(\[[0-9A-Za-z:.%_-]+\]|[0-9A-Za-z._-]+):(\d{1,5})$/;

/** Shared with ctraffic.ts: both are Go `flag` programs with the same address and duration rules. */
export function checkGoAddress(tool: string, address: string): void {
  const m = ADDRESS.exec(address);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) {
    throw new ConfigError(
      `${tool}: address must be host:port, got ${JSON.stringify(address)}`,
      [],
      'IPv6 addresses go in brackets: [1000::1]:5001',
    );
  }
}

/**
 * A Go flag.Duration value. A bare number ("10") is rejected by Go with "parse error" and the
 * usage text, and exponent forms (String(1e-7)) are not durations either, so whole seconds are
 * written as "10s" and anything else as whole milliseconds.
 */
export function goDuration(tool: string, seconds: number): string {
  const ms = Math.round(seconds * 1000);
  if (!Number.isFinite(seconds) || ms < 1) {
    throw new ConfigError(`${tool}: timeout must be at least 1 ms, got ${seconds} s`);
  }
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/**
 * Shared with ctraffic.ts. A source CIDR of the other family than a literal target address makes
 * every connect fail (Go binds the source first), which both tools report as a measurement of
 * zero answers rather than an error: refused here instead. Host names are left to the tool.
 */
export function checkSourceFamily(tool: string, address: string, srcCidr: string): void {
  const host = address.slice(0, address.lastIndexOf(':'));
  const target = host.startsWith('[') ? 6 : /^[\d.]+$/.test(host) ? 4 : undefined;
  const source = srcCidr.includes(':') ? 6 : 4;
  if (target !== undefined && target !== source) {
    throw new ConfigError(
      `${tool}: srcCidr ${srcCidr} is IPv${source} but the address ${address} is IPv${target}`,
      [],
      'take the source pool of the target\'s family (PLAN.sourcePool / PLAN6.sourcePool)',
    );
  }
}

export function checkCount(tool: string, what: string, n: number, min = 1): void {
  if (!Number.isSafeInteger(n) || n < min) {
    throw new ConfigError(`${tool}: ${what} must be a whole number ≥ ${min}, got ${n}`);
  }
}

/** Pure. Flags as -name value pairs; mconnect has no positional arguments. */
export function mconnectArgv(o: MconnectArgs): string[] {
  checkGoAddress(TOOL, o.address);
  checkCount(TOOL, 'nconn', o.nconn);
  const argv = [
    o.mconnect ?? 'mconnect',
    '-address', o.address,
    '-nconn', String(o.nconn),
    '-timeout', goDuration(TOOL, o.timeoutS),
    '-output', 'json',
  ];
  if (o.srcCidr !== undefined) {
    if (!/^[0-9A-Fa-f:.]+\/\d{1,3}$/.test(o.srcCidr)) {
      throw new ConfigError(`${TOOL}: srcCidr must be a CIDR like 50.0.0.0/16, got ${JSON.stringify(o.srcCidr)}`);
    }
    checkSourceFamily(TOOL, o.address, o.srcCidr);
    argv.push('-srccidr', o.srcCidr);
  }
  return argv;
}

function excerptOf(text: string, max = 300): string {
  const t = text.trim();
  return t.length <= max ? t : `…${t.slice(-max)}`;
}

/**
 * Pure. Every count is checked (a non-integer or negative count is junk, not zero) and the counts
 * must add up: each connect ends as exactly one of a hostname read, a failed connect or a failed
 * read (without -keep, which mconnectArgv never passes). A run where everything failed is a valid
 * measurement, not an error — mconnect still prints the JSON but exits 1, so callers must not treat
 * that exit code as "no output".
 */
export function parseMconnect(stdout: string): MconnectResult {
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  const readErrors: string[] = [];
  let json: string | undefined;
  for (const line of lines) {
    if (json === undefined && line.startsWith(READ_ERR)) {
      readErrors.push(line.slice(READ_ERR.length));
    } else if (json === undefined && line.startsWith('{')) {
      json = line;
    } else {
      throw new ParseError(
        `unexpected line ${JSON.stringify(line.slice(0, 120))}`,
        TOOL,
        excerptOf(stdout),
        /^Failed connects; /m.test(stdout) ? 'this is the txt report: run mconnect with -output json' : undefined,
      );
    }
  }
  if (json === undefined) {
    throw new ParseError(
      stdout.trim() ? 'no JSON statistics line (run cut short?)' : 'no output on stdout (flag error or killed? see stderr)',
      TOOL,
      excerptOf(stdout),
    );
  }

  let o: Record<string, unknown>; // a line starting with "{" parses to an object or not at all
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch (e) {
    throw new ParseError(`truncated or garbled JSON (${(e as Error).message})`, TOOL, excerptOf(json));
  }
  const bad = (what: string): never => {
    throw new ParseError(what, TOOL, excerptOf(json));
  };
  const count = (key: string): number => {
    const v = o[key];
    return Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : bad(`${key} is ${JSON.stringify(v)}, expected a count`);
  };

  const connects = count('connects');
  const failedConnects = count('failed_connects');
  const failedReads = count('failed_reads');
  const timeoutNs = count('timeout');
  const durationNs = count('duration');
  // mconnect replaces a zero -timeout by its own default, so a zero here is not mconnect's output.
  if (timeoutNs === 0) bad('timeout is 0');
  const startTime = o.start_time;
  if (typeof startTime !== 'string' || !RFC3339.test(startTime)) bad(`start_time is ${JSON.stringify(startTime)}`);
  const hosts = o.hosts;
  if (typeof hosts !== 'object' || hosts === null || Array.isArray(hosts)) return bad('hosts is not an object');
  const perHost: Record<string, number> = {};
  for (const [host, n] of Object.entries(hosts)) {
    // A hostname enters the map with its first read, so a count below 1 cannot come from mconnect.
    if (!Number.isSafeInteger(n) || (n as number) < 1) bad(`hosts[${JSON.stringify(host)}] is ${JSON.stringify(n)}`);
    perHost[host] = n as number;
  }
  const answered = Object.values(perHost).reduce((a, b) => a + b, 0);
  if (answered + failedConnects + failedReads !== connects) {
    bad(`counts do not add up: ${answered} answered + ${failedConnects} failed connects + ${failedReads} failed reads ≠ ${connects} connects`);
  }
  if (readErrors.length !== 0 && readErrors.length !== failedReads) {
    bad(`${readErrors.length} "Read err" lines but failed_reads is ${failedReads} (output of two runs?)`);
  }
  return {
    connects,
    failedConnects,
    failedReads,
    perHost,
    answered,
    startTime: startTime as string,
    timeoutNs,
    durationNs,
    durationS: durationNs / 1e9,
    readErrors,
  };
}

// ---------------------------------------------------------------------------------------------
// The generator: the real mconnect, when the client and the backends have it.

/** Where `mconnect -server` listens on each backend (its default port); the LB's port is redirected to it. */
export const MCONNECT_SERVER_PORT = 5001;

export type MconnectGeneratorMetrics = Omit<ConnectionMetrics, 'perBackend'>;

/** Pure: mconnect's report as connection metrics (fairness over the hosts it saw; the runner recomputes it over the point's backends). */
export function mconnectMetrics(r: MconnectResult): MconnectGeneratorMetrics {
  if (!(r.durationS > 0)) throw new ParseError(`a run of ${r.durationS} s`, TOOL, '');
  return {
    durationS: r.durationS,
    connectionsPerSec: (r.connects - r.failedConnects) / r.durationS,
    connections: { total: r.connects, lost: r.failedReads, failedConnects: r.failedConnects, failedReads: r.failedReads },
    connectionsPerBackend: { ...r.perHost },
    fairness: jainFairness(Object.values(r.perHost)),
    tool: TOOL,
  };
}


/**
 * IPv6, from the source (Nordix/mconnect, cmd/mconnect/main.go at edbad32 and pkg/rndip/rndip.go):
 * - client: connect() dials `*c.addr` with net.Dialer.DialContext("tcp", …), which takes Go's
 *   host:port, so an IPv6 VIP goes in brackets: hostPort().
 * - -srccidr: rndip.New() is net.ParseCIDR; GetIP() keeps the masked bits of the network and
 *   randomizes the rest over all 16 bytes for an IPv6 network (any prefix length: the package's
 *   tests draw from 1000::/16 and /124), GetIPString() puts an IPv6 address in brackets, and
 *   connect() binds "<that>:0" through net.ResolveTCPAddr. So the /64 IPv6 pool works as it is.
 * - server: server() is net.Listen("tcp", *c.addr); attachNamedServers gives it [::]:port for an
 *   IPv6 point (the README's own `mconnect -server -address [::]:5001`).
 */
export const mconnect: LoadDriver<MconnectGeneratorMetrics> = {
  name: 'mconnect',
  ipv6: true,
  tools: [],
  preflight: (host: Host) => requireNordixTool(host, 'mconnect', 'generator: connect'),
  buildArgv(spec: LoadRunSpec) {
    const { load, target } = spec;
    return mconnectArgv({
      address: hostPort(target.ip, target.port),
      nconn: load.connections,
      timeoutS: spec.durationS,
      ...(load.sourceAddresses > 0 ? { srcCidr: sourcePoolFor(target.ip) } : {}),
    });
  },
  async prepare() {},
  parse(stdout: string) {
    return mconnectMetrics(parseMconnect(stdout));
  },
  attach: (ctx: AttachContext) => attachNamedServers(ctx, TOOL, MCONNECT_SERVER_PORT),
};
