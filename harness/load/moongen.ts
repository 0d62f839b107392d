// MoonGen (github.com/emmericp/MoonGen, on libmoon + DPDK) running examples/l3-load-latency.lua:
// UDP load from txDev, received back on rxDev after the load balancer, plus ~1000 hardware-timestamped
// probes per second for latency. Only for bare-metal hosts with DPDK-bound NICs; nothing here runs it.
// The formats parsed below are copied from libmoon's lua/stats.lua ("plain" and "CSV" formatters)
// and lua/histogram.lua; test/fixtures/moongen/README.md lists the sources line by line.
import { posix } from 'node:path';
import { ConfigError, ParseError, PreflightError } from '../errors.ts';
import type { Host } from '../host/types.ts';
import type { PacketMetrics } from '../results/types.ts';
import type { LoadSpec } from '../scenario/schema.ts';
import { commandPath } from '../lb/preflight.ts';
import type { LoadDriver, LoadRunSpec } from './types.ts';

const TOOL = 'moongen';
const MOONGEN_URL = 'https://github.com/emmericp/MoonGen';
const TRAFGEN_HINT = 'netns and VM topologies have no DPDK NICs: use the trafgen generator there (npm run bench:pps)';
const BIND_HINT =
  'bind two NICs to DPDK on a bare-metal host: MoonGen\'s ./setup-hugetlbfs.sh and ./bind-interfaces.sh ' +
  '(or libmoon/deps/dpdk/usertools/dpdk-devbind.py --bind=vfio-pci <pci>)';

/**
 * l3-load-latency.lua has no duration option: it sends until libmoon's running() turns false, which
 * happens on the first SIGINT/SIGTERM; then the counters print their final summaries and the timer
 * task prints the latency summary ~300 ms later. So the run is bounded by `timeout`, and the clock
 * starts before DPDK init, the link wait (up to 9 s) and the ARP lookup (up to 5 s) — this much is
 * added so the load itself lasts at least timeS. The real load time is the number of rate lines.
 */
export const MOONGEN_STARTUP_S = 15;
/** SIGKILL this long after SIGINT if MoonGen hangs while finishing (it then prints no summary). */
export const MOONGEN_KILL_AFTER_S = 10;

export interface MoongenRun {
  /** Path of the MoonGen binary (build/MoonGen in a MoonGen checkout). */
  moongen: string;
  /** Path of examples/l3-load-latency.lua. */
  script: string;
  /** DPDK port numbers, as in MoonGen's "Device N:" list. */
  txDev: number;
  rxDev: number;
  /** Mbit/s as the NIC's hardware rate limiter counts them (Intel 10G: without framing); 0 = no limit. Script default 10000. */
  rate?: number;
  /** Frame size in bytes without CRC. Script default 60. */
  size?: number;
  /** Distinct source IPs (so the LB sees that many flows). Script default 4. */
  flows?: number;
  /** Seconds of load wanted (see MOONGEN_STARTUP_S). */
  timeS: number;
  /** Appended verbatim, e.g. `--dpdk-config=/etc/lbbench/dpdk-conf.lua`. */
  extra?: string[];
}

/**
 * Pure: the argv. `--foreground` matters: without it GNU timeout signals the child and then its
 * whole process group, MoonGen sees SIGINT twice, and libmoon aborts on the second one
 * (lifecycle.cpp: "Received more than one SIGINT/SIGTERM, aborting") before any final summary.
 * `--preserve-status` makes a clean stop exit 0 instead of timeout's 124. Long option names,
 * because forks reuse the short ones (21ms/MoonGen's -f is --file).
 */
export function moongenArgv(o: MoongenRun): string[] {
  const bad = (what: string): never => {
    throw new ConfigError(`moongen: ${what}`);
  };
  const port = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 0) bad(`${name} must be a DPDK port number (integer ≥ 0), got ${v}`);
  };
  port('txDev', o.txDev);
  port('rxDev', o.rxDev);
  if (!Number.isFinite(o.timeS) || o.timeS <= 0) bad(`timeS must be a positive number of seconds, got ${o.timeS}`);
  if (o.rate !== undefined && !(Number.isFinite(o.rate) && o.rate >= 0)) bad(`rate must be Mbit/s ≥ 0, got ${o.rate}`);
  // 60 bytes + CRC is the Ethernet minimum; the script pads its timestamp probes to 84 on its own.
  if (o.size !== undefined && !(Number.isInteger(o.size) && o.size >= 60)) bad(`size must be an integer ≥ 60 (bytes without CRC), got ${o.size}`);
  if (o.flows !== undefined && !(Number.isInteger(o.flows) && o.flows >= 1)) bad(`flows must be an integer ≥ 1, got ${o.flows}`);
  return [
    'timeout', '--foreground', '--preserve-status', '--signal=INT', `--kill-after=${MOONGEN_KILL_AFTER_S}`,
    String(Math.ceil(o.timeS) + MOONGEN_STARTUP_S),
    o.moongen, o.script, String(o.txDev), String(o.rxDev),
    ...(o.rate !== undefined ? ['--rate', String(o.rate)] : []),
    ...(o.flows !== undefined ? ['--flows', String(o.flows)] : []),
    ...(o.size !== undefined ? ['--size', String(o.size)] : []),
    ...(o.extra ?? []),
  ];
}

export type MoongenDir = 'tx' | 'rx';

/** One rate line. Values are as printed: Mpps to 2 decimals, Mbit/s whole. */
export interface MoongenSample {
  /** 1-based index of this counter's update; libmoon prints one per >1 s of its own clock. */
  t: number;
  dev: number;
  dir: MoongenDir;
  mpps: number;
  mbit: number;
  /** Mbit/s plus 20 bytes of preamble and inter-frame gap per packet. */
  mbitWithFraming: number;
}

/**
 * A final summary line. The averages leave out the counter's first and last sample (libmoon's
 * addStats(data, true)), the totals count everything since the counter started, CRC included.
 */
export interface MoongenTotals {
  mppsAvg: number;
  mppsStdDev: number;
  mbitAvg: number;
  mbitStdDev: number;
  mbitWithFramingAvg: number;
  packets: number;
  bytes: number;
}

export interface MoongenDevice {
  dev: number;
  tx?: MoongenTotals;
  rx?: MoongenTotals;
}

export interface MoongenLatency {
  samples: number;
  averageNs: number;
  stdDevNs: number;
  quartilesNs: [number, number, number];
}

export interface MoongenResult {
  /** Sorted by device number. */
  devices: MoongenDevice[];
  /** In output order. */
  samples: MoongenSample[];
  latency?: MoongenLatency;
}

function excerptOf(text: string, max = 300): string {
  const t = text.trim();
  return t.length <= max ? t : `…${t.slice(-max)}`;
}

function fail(message: string, excerpt: string, hint?: string): never {
  throw new ParseError(message, TOOL, excerptOf(excerpt), hint);
}

// Every plain-formatter line is wrapped in colour escapes (getColorCode) whether or not stdout is a
// terminal, and log lines are too.
const ANSI = /\x1b\[[0-9;]*m/g;

// %.2f / %.0f / %.1f of a LuaJIT number; nan and inf are matched so they fail with a reason
// instead of as "malformed".
const NUM = '(-?(?:\\d+(?:\\.\\d+)?|nan|inf))';
const DEV = '\\[Device: id=(\\d+)\\] (TX|RX): ';
const UPDATE_RE = new RegExp(`^${DEV}${NUM} Mpps, ${NUM} Mbit/s \\(${NUM} Mbit/s with framing\\)$`);
const FINAL_RE = new RegExp(
  `^${DEV}${NUM} \\(StdDev ${NUM}\\) Mpps, ${NUM} \\(StdDev ${NUM}\\) Mbit/s \\(${NUM} Mbit/s with framing\\), ` +
    'total (\\d+) packets with (\\d+) bytes \\(incl\\. CRC\\)$',
);
// A counter line starts at "[name] TX:" — anywhere, because a terminal echoes "^C" in front of it.
const STATS_START = /\[[^[\]]*\] (?:TX|RX): /;
const LATENCY_START = /^(?:\[[^\]]*\] )?Samples: /;
const LATENCY_RE = new RegExp(
  `^(?:\\[[^\\]]*\\] )?Samples: (\\d+), Average: ${NUM} ns, StdDev: ${NUM} ns, Quartiles: ${NUM}/${NUM}/${NUM} ns$`,
);

/**
 * Failures MoonGen reports on stdout and then carries on from (libmoon does not check
 * rte_eal_init's result, and a Lua error in one task leaves the others running), so a final
 * summary may still follow. Most specific first.
 */
function diagnose(text: string): { message: string; excerpt: string; hint: string } | undefined {
  const eal = /^EAL: FATAL: (.+)$/m.exec(text) ?? /^PANIC in rte_eal_init\(\):\n(.+)$/m.exec(text);
  if (eal) {
    return {
      message: `DPDK EAL initialization failed: ${eal[1]!.trim()}`,
      excerpt: eal[0],
      hint: `run MoonGen as root with hugepages reserved (MoonGen's ./setup-hugetlbfs.sh) and its NICs bound to DPDK (./bind-interfaces.sh); ${TRAFGEN_HINT}`,
    };
  }
  const cfg = /^\[ERROR\] (Could not load DPDK config: .*|Config file does not contain DPDKConfig statement)$/m.exec(text);
  if (cfg) return { message: `DPDK initialization failed: ${cfg[1]}`, excerpt: cfg[0], hint: 'fix dpdk-conf.lua (passed with --dpdk-config=, or ./dpdk-conf.lua)' };
  const none = /^\[INFO\] {2}Found 0 usable devices:$/m.exec(text);
  if (none) {
    return {
      message: 'no DPDK ports: MoonGen found 0 usable devices (no NIC is bound to a DPDK driver)',
      excerpt: none[0],
      hint: `${BIND_HINT}; ${TRAFGEN_HINT}`,
    };
  }
  const port = /there are only (\d+) ports, tried to configure port id (\d+)/.exec(text);
  if (port) {
    return {
      message: `DPDK port ${port[2]} does not exist: MoonGen found only ${port[1]} DPDK port(s)`,
      excerpt: port[0],
      hint: 'txDev/rxDev are DPDK port numbers, as in MoonGen\'s "Device N:" list, not kernel interface names',
    };
  }
  const down = /^\[ERROR\] Device (\d+) \(([^)]*)\) is DOWN/m.exec(text);
  if (down) {
    return {
      message: `link down on DPDK port ${down[1]} (${down[2]}): MoonGen measured a dead link`,
      excerpt: down[0],
      hint: 'check the cable/optics and that the load balancer\'s port is up',
    };
  }
  const lua = /^\[FATAL\] Lua error in task (\S+)\n(.*)$/m.exec(text);
  if (lua) {
    return {
      message: `Lua error in task ${lua[1]}: ${lua[2]!.trim()}`,
      excerpt: lua[0],
      hint: 'see the stack trace in the output; a task that dies leaves the run without its results',
    };
  }
  return undefined;
}

const key = (dev: number, dir: MoongenDir) => `${dev} ${dir}`;

/**
 * Pure: parse the stdout of examples/l3-load-latency.lua. Throws ParseError for DPDK/EAL failures,
 * a missing final summary (cut off or killed), malformed counter or latency lines, nan/inf where a
 * number belongs, and a latency summary without samples. `latency` is absent only when no
 * "Samples:" line was printed at all.
 */
export function parseMoongen(stdout: string): MoongenResult {
  const text = stdout.replace(ANSI, '').replace(/\r\n?/g, '\n');
  const failure = diagnose(text);
  if (failure) fail(failure.message, failure.excerpt, failure.hint);

  const samples: MoongenSample[] = [];
  const finals = new Map<string, MoongenTotals>();
  const updates = new Map<string, number>();
  const latencies: MoongenLatency[] = [];

  const number = (s: string, what: string, line: string, hint?: string): number => {
    const v = Number(s);
    if (!Number.isFinite(v)) fail(`${what} is ${s}`, line, hint);
    return v;
  };
  // addStats() of an empty list is 0/0, and one sample has no stddev: LuaJIT prints nan.
  const SHORT_RUN = 'MoonGen averages leave out the first and last 1-s sample: a run needs at least 3 of them';

  for (const raw of text.split('\n')) {
    const start = STATS_START.exec(raw);
    if (start) {
      const line = raw.slice(start.index).trimEnd();
      const u = UPDATE_RE.exec(line);
      const f = u ? null : FINAL_RE.exec(line);
      const m = u ?? f;
      if (!m) fail('malformed stats line (expected libmoon\'s plain formatter, counters named "Device: id=N")', line);
      const dev = Number(m[1]);
      const dir = m[2] === 'TX' ? 'tx' : 'rx';
      const k = key(dev, dir);
      if (finals.has(k)) fail(`device ${dev} ${m[2]}: ${u ? 'rate line' : 'second final summary'} after its final summary (output of two runs?)`, line);
      if (u) {
        const t = (updates.get(k) ?? 0) + 1;
        updates.set(k, t);
        const what = `device ${dev} ${m[2]} rate`;
        samples.push({ t, dev, dir, mpps: number(u[3]!, what, line), mbit: number(u[4]!, what, line), mbitWithFraming: number(u[5]!, what, line) });
      } else {
        const what = `device ${dev} ${m[2]} final summary`;
        finals.set(k, {
          mppsAvg: number(f![3]!, what, line, SHORT_RUN),
          mppsStdDev: number(f![4]!, what, line, SHORT_RUN),
          mbitAvg: number(f![5]!, what, line, SHORT_RUN),
          mbitStdDev: number(f![6]!, what, line, SHORT_RUN),
          mbitWithFramingAvg: number(f![7]!, what, line, SHORT_RUN),
          packets: Number(f![8]),
          bytes: Number(f![9]),
        });
      }
      continue;
    }
    if (LATENCY_START.test(raw)) {
      const line = raw.trimEnd();
      const m = LATENCY_RE.exec(line);
      if (!m) fail('malformed latency summary (expected "Samples: N, Average: … ns, StdDev: … ns, Quartiles: …/…/… ns")', line);
      const n = Number(m[1]);
      if (n === 0) {
        fail(
          'latency summary has no samples: none of the timestamped probe packets came back',
          line,
          'MoonGen timestamps in NIC hardware (check with examples/timestamping-tests/test-timestamping-capabilities.lua) ' +
            'and the load balancer must forward the UDP probes (dst port 319) to the rx port',
        );
      }
      const what = 'latency summary';
      latencies.push({
        samples: n,
        averageNs: number(m[2]!, what, line),
        stdDevNs: number(m[3]!, what, line),
        quartilesNs: [number(m[4]!, what, line), number(m[5]!, what, line), number(m[6]!, what, line)],
      });
    }
  }

  if (finals.size === 0) {
    const moongenish = samples.length > 0 || /Initializing DPDK/.test(text);
    fail(
      moongenish
        ? `no final summary ("… total N packets with B bytes") after ${samples.length} rate lines: run cut off or killed`
        : 'no MoonGen output recognized (no DPDK initialization, rate lines or final summary)',
      text,
      moongenish
        ? `MoonGen prints its summaries after the first SIGINT/SIGTERM; a second signal or SIGKILL (timeout --kill-after=${MOONGEN_KILL_AFTER_S}) prevents them`
        : undefined,
    );
  }
  for (const [k, n] of updates) {
    if (!finals.has(k)) {
      const [dev, dir] = k.split(' ');
      fail(`device ${dev} ${dir!.toUpperCase()}: ${n} rate lines but no final summary: run cut off`, text);
    }
  }
  const dirs = new Set([...finals.keys()].map((k) => k.split(' ')[1]));
  for (const d of ['tx', 'rx']) {
    if (!dirs.has(d)) fail(`no ${d.toUpperCase()} final summary (l3-load-latency prints one for each of txDev and rxDev)`, text);
  }
  if (latencies.length > 1) fail(`${latencies.length} latency summaries; l3-load-latency prints one`, text);
  // MoonGen ends every line with "\n"; a partial last line and no latency summary yet means the
  // output was cut while the summary ("Samples: …") could still have been on its way.
  if (latencies.length === 0 && !text.endsWith('\n')) {
    fail('output ends in the middle of a line after the final summaries, before any latency summary: cut off', text);
  }

  const byDev = new Map<number, MoongenDevice>();
  for (const [k, totals] of finals) {
    const [d, dir] = k.split(' ') as [string, MoongenDir];
    const dev = Number(d);
    const entry = byDev.get(dev) ?? { dev };
    entry[dir] = totals;
    byDev.set(dev, entry);
  }
  const result: MoongenResult = { devices: [...byDev.values()].sort((a, b) => a.dev - b.dev), samples };
  if (latencies[0]) result.latency = latencies[0];
  return result;
}

/** One row of libmoon's CSV stats formatter. */
export interface MoongenCsvRow {
  /** Unix seconds (whole) when the row was written. */
  time: number;
  dev: number;
  dir: MoongenDir;
  /** The "PacketRate" column, which holds Mpps. */
  mpps: number;
  mbit: number;
  mbitWithFraming: number;
  /** Cumulative since the counter started, CRC included. */
  packets: number;
  bytes: number;
}

const CSV_HEADER = 'Time,Device,Direction,PacketRate,Mbit,MbitWithFraming,TotalPackets,TotalBytes';
// Values are written with %s, i.e. Lua's tostring ("%.14g"): 7.439546255618, 3809, 1.2e+14 — or
// nan for the averages of a too-short run, which is rejected.
const LUA_NUM = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$/i;

/** Lines of a file written with a trailing "\n" per row; a missing final "\n" means it was cut. */
function fileLines(text: string, what: string): string[] {
  const t = text.replace(/\r\n/g, '\n');
  if (t.trim() === '') fail(`empty ${what}`, t);
  if (!t.endsWith('\n')) fail(`${what} ends in the middle of a line (file cut off)`, t);
  return t.slice(0, -1).split('\n');
}

/**
 * Pure: a file written by libmoon's CSV formatter (stats:newDevTxCounter(dev, "CSV", file)), one
 * header for all counters sharing the file. The formatter writes each counter's final summary as an
 * ordinary row (its averages, not a sample) after its last sample: when the run finished, the last
 * row per device and direction is that summary — a file cut off between rows cannot tell, so the
 * caller decides from MoonGen's exit.
 */
export function parseMoongenCsv(text: string): MoongenCsvRow[] {
  const lines = fileLines(text, 'MoonGen CSV stats');
  if (lines[0] !== CSV_HEADER) fail(`not a MoonGen CSV stats file: header is not "${CSV_HEADER}"`, lines[0]!);
  const rows: MoongenCsvRow[] = [];
  const last = new Map<string, MoongenCsvRow>();
  lines.slice(1).forEach((line, i) => {
    const at = `line ${i + 2}`;
    const cols = line.split(',');
    if (cols.length !== 8) fail(`${at}: ${cols.length} columns, expected 8`, line);
    const [time, name, direction, ...nums] = cols as [string, string, string, ...string[]];
    const dev = /^Device: id=(\d+)$/.exec(name);
    if (!dev) fail(`${at}: device "${name}", expected "Device: id=N"`, line);
    if (direction !== 'TX' && direction !== 'RX') fail(`${at}: direction "${direction}", expected TX or RX`, line);
    if (!/^\d+$/.test(time)) fail(`${at}: time "${time}" is not whole Unix seconds`, line);
    const v = nums.map((s) => {
      const n = LUA_NUM.test(s) ? Number(s) : NaN;
      if (!Number.isFinite(n) || n < 0) fail(`${at}: "${s}" is not a number ≥ 0`, line);
      return n;
    });
    const [mpps, mbit, mbitWithFraming, packets, bytes] = v as [number, number, number, number, number];
    if (!Number.isInteger(packets) || !Number.isInteger(bytes)) fail(`${at}: totals must be whole numbers`, line);
    const row: MoongenCsvRow = { time: Number(time), dev: Number(dev[1]), dir: direction === 'TX' ? 'tx' : 'rx', mpps, mbit, mbitWithFraming, packets, bytes };
    const k = key(row.dev, row.dir);
    const prev = last.get(k);
    if (prev && (row.time < prev.time || row.packets < prev.packets || row.bytes < prev.bytes)) {
      fail(`${at}: time or totals of device ${row.dev} ${direction} go backwards (rows from two runs?)`, line);
    }
    last.set(k, row);
    rows.push(row);
  });
  if (rows.length === 0) fail('MoonGen CSV stats file has a header but no rows', text);
  return rows;
}

/**
 * Pure: histogram.csv as written by libmoon's histogram:save(): "latency,count" per line, no
 * header, ascending latency, one line per distinct value. An empty file is what a run whose
 * probes never came back leaves behind, hence an error, not an empty histogram.
 */
export function parseHistogramCsv(text: string): [latencyNs: number, count: number][] {
  if (text.trim() === '') {
    fail('empty MoonGen histogram CSV: no timestamped probe came back', text, 'see the "Samples: 0" latency summary of the same run');
  }
  const lines = fileLines(text, 'MoonGen histogram CSV');
  const out: [number, number][] = [];
  lines.forEach((line, i) => {
    const at = `line ${i + 1}`;
    const cols = line.split(',');
    if (cols.length !== 2 || !LUA_NUM.test(cols[0]!) || !/^\d+$/.test(cols[1]!)) {
      fail(`${at}: expected "latency_ns,count"`, line);
    }
    const ns = Number(cols[0]);
    const count = Number(cols[1]);
    if (!Number.isFinite(ns)) fail(`${at}: latency "${cols[0]}" is not finite`, line);
    if (count === 0) fail(`${at}: count 0 (histogram:save writes only observed values)`, line);
    if (out.length > 0 && !(ns > out[out.length - 1]![0])) fail(`${at}: latencies not strictly ascending (file from two runs?)`, line);
    out.push([ns, count]);
  });
  return out;
}

/**
 * Pure: why MoonGen cannot run here, or null when it can. `binary` is the resolved MoonGen path
 * (null: not found); `dpdkPorts` is the "Found N usable devices" count when it has been probed.
 * Two ports are needed: the load leaves on txDev and comes back through the load balancer on rxDev.
 */
export function moongenPreflightMessage(found: { binary: string | null; dpdkPorts?: number }): { message: string; hint: string } | null {
  if (found.binary === null || found.binary === '') {
    return {
      message: 'MoonGen not found',
      hint:
        `build it from ${MOONGEN_URL} (git clone, then ./build.sh); it drives DPDK-bound physical NICs, ` +
        `so it needs a bare-metal host with root, hugepages and two spare ports: ${BIND_HINT}. ${TRAFGEN_HINT}`,
    };
  }
  if (found.dpdkPorts !== undefined && found.dpdkPorts < 2) {
    return {
      message: found.dpdkPorts === 0
        ? `MoonGen (${found.binary}) found no DPDK ports`
        : `MoonGen (${found.binary}) found only ${found.dpdkPorts} DPDK port; l3-load-latency needs two (txDev, rxDev)`,
      hint: `${BIND_HINT}. ${TRAFGEN_HINT}`,
    };
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// The generator: bare-metal hosts with MoonGen and two DPDK ports (client role).

export type MoongenGeneratorMetrics = Omit<PacketMetrics, 'perBackend'> & { moongen: { latency?: MoongenLatency; txDev: number; rxDev: number } };

/** Pure: MoonGen's report as packet metrics: sent on txDev, received back on rxDev. */
export function moongenMetrics(r: MoongenResult, txDev: number, rxDev: number): MoongenGeneratorMetrics {
  const tx = r.devices.find((d) => d.dev === txDev)?.tx;
  const rx = r.devices.find((d) => d.dev === rxDev)?.rx;
  if (!tx || !rx) throw new ParseError(`no final TX summary for device ${txDev} or RX summary for device ${rxDev}`, TOOL, '', 'check load.moongen.txDev/rxDev against MoonGen\'s device list');
  if (tx.packets === 0) throw new ParseError('MoonGen sent no packets', TOOL, '');
  // One rate line per counter update, about one per second: the load's real length.
  const seconds = r.samples.filter((s) => s.dev === txDev && s.dir === 'tx').length;
  if (seconds === 0) throw new ParseError('no TX rate lines: the load never ran', TOOL, '');
  return {
    durationS: seconds,
    packets: {
      sent: tx.packets,
      received: rx.packets,
      sentPerSec: tx.mppsAvg * 1e6,
      receivedPerSec: rx.mppsAvg * 1e6,
      lossFraction: Math.max(0, 1 - rx.packets / tx.packets),
      // libmoon counts bytes with the 4-byte CRC; frameBytes is without it, like trafgen's.
      frameBytes: tx.bytes / tx.packets - 4,
      receivedBitsPerSec: rx.mbitAvg * 1e6,
    },
    moongen: { ...(r.latency ? { latency: r.latency } : {}), txDev, rxDev },
  };
}

function settings(load: LoadSpec): NonNullable<LoadSpec['moongen']> {
  if (!load.moongen) throw new ConfigError('generator moongen needs load.moongen: {txDev, rxDev}', [], 'add load.moongen: {txDev: 0, rxDev: 1} (DPDK port numbers)');
  return load.moongen;
}

export const moongen: LoadDriver<MoongenGeneratorMetrics> = {
  name: 'moongen',
  ipv6: "MoonGen's l3-load-latency example builds IPv4 packets",
  tools: [],
  // MoonGen's own time bound (startup + kill-after) on top of the measurement.
  extraBoundS: MOONGEN_STARTUP_S + MOONGEN_KILL_AFTER_S,
  async preflight(host: Host, load?: LoadSpec) {
    const path = load?.moongen?.path ?? 'MoonGen';
    const why = moongenPreflightMessage({ binary: await commandPath(host, path) });
    if (why) throw new PreflightError(`${why.message} on ${host.name} (looked for ${path})`, why.hint);
  },
  unsupported(topology) {
    return topology.kind === 'baremetal'
      ? undefined
      : `MoonGen drives DPDK-bound physical NICs, which a ${topology.kind} topology does not have; use generator: trafgen here, and moongen on a baremetal topology whose client has two DPDK ports`;
  },
  buildArgv(spec: LoadRunSpec) {
    const m = settings(spec.load);
    const binary = m.path ?? 'MoonGen';
    const script = m.script ?? posix.join(posix.dirname(posix.dirname(binary)), 'examples', 'l3-load-latency.lua');
    return moongenArgv({ moongen: binary, script, txDev: m.txDev, rxDev: m.rxDev, rate: m.rate, size: m.size, flows: m.flows, timeS: spec.durationS });
  },
  async prepare() {},
  parse(stdout: string) {
    // The devices are the scenario's; parse() sees only output, so it takes the first TX and the
    // last RX device MoonGen reported (l3-load-latency reports exactly its txDev and rxDev).
    const r = parseMoongen(stdout);
    const txDev = r.devices.find((d) => d.tx)?.dev;
    const rxDev = [...r.devices].reverse().find((d) => d.rx)?.dev;
    if (txDev === undefined || rxDev === undefined) throw new ParseError('no TX and RX device in the final summaries', TOOL, excerptOf(stdout));
    return moongenMetrics(r, txDev, rxDev);
  },
  async attach() {
    // MoonGen counts what came back on its own RX port; the backends' HTTP counters mean nothing here.
    return {
      extra: {},
      counters: async () => ({}),
      metrics: (gen) => {
        const { moongen: _m, ...rest } = gen as MoongenGeneratorMetrics;
        return { ...rest, moongen: _m, perBackend: {} } as PacketMetrics;
      },
    };
  },
};
