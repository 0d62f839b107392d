// wrk (4.1, as packaged by Debian). Numbers come from the LBBENCH_JSON line our Lua done() hook
// prints; wrk's own text summary is only used to check that line belongs to this run.
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { ConfigError, ParseError, PreflightError } from '../errors.ts';
import type { Host } from '../host/types.ts';
import type { LatencyUs, WrkErrors } from '../results/types.ts';
import type { RequestGeneratorMetrics, LoadDriver, LoadRunSpec, LoadTarget } from './types.ts';

const TOOL = 'wrk';
const INSTALL_HINT = 'apt-get install -y wrk (or run `lbbench setup`)';
export const WRK_SCRIPT_NAME = 'lbbench-report.lua';
const JSON_MARKER = 'LBBENCH_JSON ';
/** Bumped together with the "v" field of wrk-report.lua. */
const JSON_VERSION = 1;

let scriptText: string | undefined;
/** The Lua reporter, read lazily so importing the registry costs no I/O. */
function reportScript(): string {
  scriptText ??= readFileSync(new URL('./wrk-report.lua', import.meta.url), 'utf8');
  return scriptText;
}

/**
 * wrk's time arguments accept whole numbers with an s/m/h unit only: `-d 1.5s`, `-d 1500ms` and
 * `--timeout 0.5s` are all rejected with the usage text. Fractional seconds are therefore rounded
 * up to whole seconds (never measuring less than asked), minimum 1 s. The measured duration comes
 * from wrk's own clock (summary.duration) anyway, so rates stay exact.
 */
export function wrkSeconds(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new ConfigError(`wrk: duration must be a positive number of seconds, got ${seconds}`);
  }
  // Round to the millisecond first so 1.5 s parsed from "1500ms" noise like 3.0000000000000004
  // does not become 4 s.
  return `${Math.max(1, Math.ceil(Math.round(seconds * 1000) / 1000))}s`;
}

function targetUrl(t: LoadTarget): string {
  const host = t.ip.includes(':') ? `[${t.ip}]` : t.ip;
  return `http://${host}:${t.port}${t.path}`;
}

/** "wrk debian/4.1.0-3+b2 [epoll] Copyright …" → "debian/4.1.0-3+b2". */
export function parseWrkVersion(stdout: string): string | undefined {
  return /^wrk (\S+)/m.exec(stdout)?.[1];
}

/** wrk has no real --version: it prints the version line plus usage to stdout and exits 1. */
export async function wrkVersion(host: Host): Promise<string> {
  let out = '';
  try {
    const r = await host.exec(['wrk', '--version'], { check: false, timeoutMs: 10_000 });
    out = r.stdout;
    const v = parseWrkVersion(r.stdout);
    if (v) return v;
    out = (r.stderr || r.stdout).trim();
  } catch (e) {
    out = e instanceof Error ? e.message : String(e);
  }
  throw new PreflightError(
    `wrk not found on ${host.name}${out ? `: ${excerptOf(out, 200)}` : ''}`,
    INSTALL_HINT,
  );
}

function excerptOf(text: string, max = 300): string {
  const t = text.trim();
  return t.length <= max ? t : `…${t.slice(-max)}`;
}

function fail(message: string, stdout: string, stderr: string, excerpt?: string): never {
  const err = stderr.trim();
  // wrk reports fatal problems (refused connection, bad script, bad arguments) on stderr and
  // prints no summary; that line is the useful part of the message.
  const said = err ? `; wrk stderr: ${excerptOf(err.split('\n').slice(0, 3).join(' | '), 200)}` : '';
  throw new ParseError(`${message}${said}`, TOOL, excerpt ?? excerptOf(stdout || stderr));
}

type Json = unknown;
type Obj = Record<string, Json>;

function isObj(v: Json): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parse wrk's output. The JSON line is the source of truth; the text summary must agree with it on
 * the request count (catches output spliced from two runs). A run that completed but served no
 * request is a measurement, not a parse error: when wrk recorded no latency sample at all (dead
 * target, or every response slower than --timeout) the latency figures are NaN and the CDF is
 * empty — zero would read as "infinitely fast".
 */
export function parseWrk(stdout: string, stderr: string): RequestGeneratorMetrics {
  const lines = stdout.split('\n');
  const jsonIdx = lines.flatMap((l, i) => (l.startsWith(JSON_MARKER) ? [i] : []));
  if (jsonIdx.length === 0) {
    fail(
      stdout.trim()
        ? 'no LBBENCH_JSON line: run cut short, or the Lua reporter was not loaded'
        : stderr.trim()
          ? 'no summary on stdout'
          : 'no output at all (killed before the end of the run?)',
      stdout,
      stderr,
    );
  }
  if (jsonIdx.length > 1) fail(`${jsonIdx.length} LBBENCH_JSON lines; expected one`, stdout, stderr);
  const idx = jsonIdx[0]!;
  const jsonText = lines[idx]!.slice(JSON_MARKER.length).trimEnd();
  const jsonExcerpt = excerptOf(jsonText, 200);

  let doc: Json;
  try {
    doc = JSON.parse(jsonText);
  } catch (e) {
    fail(`truncated or garbled LBBENCH_JSON (${(e as Error).message})`, stdout, stderr, jsonExcerpt);
  }
  const bad = (what: string): never => fail(`LBBENCH_JSON: ${what}`, stdout, stderr, jsonExcerpt);

  const num = (o: Obj, key: string, where: string, integer = true): number => {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (integer && !Number.isInteger(v))) {
      return bad(`${where}${key} is ${JSON.stringify(v)}, expected a ${integer ? 'count' : 'number'} ≥ 0`);
    }
    return v;
  };
  const pairs = (v: Json, where: string): [number, number][] => {
    if (!Array.isArray(v)) return bad(`${where} is not a list`);
    return v.map((p, i) => {
      if (!Array.isArray(p) || p.length !== 2) return bad(`${where}[${i}] is not a [percentile, µs] pair`);
      const [k, us] = p as Json[];
      if (typeof k !== 'number' || !(k >= 0 && k <= 100) || typeof us !== 'number' || !Number.isFinite(us) || us < 0) {
        return bad(`${where}[${i}] is ${JSON.stringify(p)}`);
      }
      return [k, us];
    });
  };

  if (!isObj(doc)) return bad('not an object');
  if (doc.v !== JSON_VERSION) bad(`format version ${JSON.stringify(doc.v)}, expected ${JSON_VERSION}`);
  const durationUs = num(doc, 'duration_us', '');
  if (durationUs === 0) bad('duration_us is 0');
  const requests = num(doc, 'requests', '');
  const bytes = num(doc, 'bytes', '');
  if (!isObj(doc.errors)) return bad('errors missing');
  const e = doc.errors;
  const errors: WrkErrors = {
    connect: num(e, 'connect', 'errors.'),
    read: num(e, 'read', 'errors.'),
    write: num(e, 'write', 'errors.'),
    timeout: num(e, 'timeout', 'errors.'),
    status: num(e, 'status', 'errors.'),
  };
  if (!isObj(doc.latency)) return bad('latency missing');
  const lat = doc.latency;
  // wrk 4.1 starts its histogram with min = UINT64_MAX and max = 0; min > max means no sample.
  const min = num(lat, 'min', 'latency.', false);
  const max = num(lat, 'max', 'latency.');
  const mean = num(lat, 'mean', 'latency.', false);
  const stdev = num(lat, 'stdev', 'latency.', false);
  const named = new Map(pairs(lat.percentiles, 'latency.percentiles'));
  const cdf = pairs(doc.cdf, 'cdf');

  const need = [50, 75, 90, 99, 99.9];
  for (const p of need) if (!named.has(p)) bad(`latency.percentiles lacks p${p}`);
  if (cdf.length < 2) bad(`cdf has ${cdf.length} points`);
  for (let i = 1; i < cdf.length; i++) {
    if (!(cdf[i]![0] > cdf[i - 1]![0])) bad(`cdf percentiles not ascending at ${i}`);
  }

  const empty = min > max;
  let latencyUs: LatencyUs;
  let latencyCdf: [number, number][];
  if (empty) {
    latencyUs = { mean: NaN, stdev: NaN, max: NaN, p50: NaN, p75: NaN, p90: NaN, p99: NaN, 'p99.9': NaN };
    for (const p of named.keys()) latencyUs[`p${p}`] = NaN;
    latencyCdf = [];
  } else {
    latencyUs = { mean, stdev, max, min, p50: 0, p75: 0, p90: 0, p99: 0, 'p99.9': 0 };
    for (const [p, us] of named) latencyUs[`p${p}`] = us;
    const ordered = [min, ...[...named.entries()].sort((a, b) => a[0] - b[0]).map(([, us]) => us), max];
    for (let i = 1; i < ordered.length; i++) {
      if (ordered[i]! < ordered[i - 1]!) bad(`latency percentiles out of order: ${ordered.join(', ')}`);
    }
    if (mean < min || mean > max) bad(`latency mean ${mean} outside [${min}, ${max}]`);
    for (let i = 1; i < cdf.length; i++) {
      if (cdf[i]![1] < cdf[i - 1]![1]) bad(`cdf latency decreases at ${cdf[i]![0]}%`);
    }
    if (cdf[cdf.length - 1]![1] !== max) bad('cdf does not end at the maximum latency');
    latencyCdf = cdf;
  }

  // The text summary wrk printed before our line must describe the same run.
  const summary = lines
    .slice(0, idx)
    .map((l) => /^\s*(\d+) requests in \S+, \S+ read\s*$/.exec(l))
    .filter((m) => m !== null);
  if (summary.length !== 1) fail('wrk text summary ("N requests in …") missing or repeated', stdout, stderr);
  const textRequests = Number(summary[0]![1]);
  if (textRequests !== requests) {
    fail(`text summary says ${textRequests} requests, LBBENCH_JSON says ${requests}`, stdout, stderr);
  }

  const durationS = durationUs / 1e6;
  const requestsPerSec = requests / durationS;
  const rpsLine = /^Requests\/sec:\s+(\S+)\s*$/m.exec(lines.slice(0, idx).join('\n'));
  if (rpsLine) {
    const text = Number(rpsLine[1]);
    if (!(Math.abs(text - requestsPerSec) <= Math.max(0.01, requestsPerSec * 0.005))) {
      fail(`text summary says ${rpsLine[1]} req/s, LBBENCH_JSON gives ${requestsPerSec.toFixed(2)}`, stdout, stderr);
    }
  }

  return {
    requestsPerSec,
    transferBytesPerSec: bytes / durationS,
    requests,
    durationS,
    latencyUs,
    latencyCdf,
    errors,
  };
}

/**
 * Threads are clamped to connections: wrk refuses `-t` > `-c` ("number of connections must be >=
 * threads"), and a sweep over connections starting at 1 should not fail for it. The clamped value
 * is in the argv stored with every result. Note wrk gives each thread ⌊c/t⌋ connections, so
 * -c 10 -t 4 really opens 8.
 */
export function buildWrkArgv(spec: LoadRunSpec): string[] {
  const { load, target } = spec;
  const threads = Math.min(load.threads, load.connections);
  const argv = [
    'wrk',
    '-t', String(threads),
    '-c', String(load.connections),
    '-d', wrkSeconds(spec.durationS),
    '--timeout', wrkSeconds(load.timeout),
    '--latency',
    '-s', posix.join(spec.workDir, WRK_SCRIPT_NAME),
    targetUrl(target),
  ];
  return spec.cpus ? ['taskset', '-c', spec.cpus, ...argv] : argv;
}

export const wrk: LoadDriver<RequestGeneratorMetrics> = {
  name: 'wrk',
  ipv6: true,
  tools: [{ cmd: 'wrk', pkg: 'wrk' }],
  async preflight(host) {
    await wrkVersion(host);
  },
  buildArgv: buildWrkArgv,
  async prepare(host, spec) {
    await host.writeFile(posix.join(spec.workDir, WRK_SCRIPT_NAME), reportScript());
  },
  parse: parseWrk,
};
