// Parsers of the /proc files the sampler reads, and of the sampler's framed output. Pure: text
// in, numbers out. A file that doesn't have the shape the kernel gives it is a ParseError — a
// counter we can't read must not turn into a zero.
import { ParseError } from '../errors.ts';

const TOOL = 'sampler';

function fail(what: string, text: string): never {
  throw new ParseError(what, TOOL, text.slice(0, 400));
}

function int(s: string | undefined, what: string, text: string, radix = 10): number {
  const n = s !== undefined && (radix === 16 ? /^[0-9a-f]+$/i : /^-?\d+$/).test(s) ? parseInt(s, radix) : NaN;
  if (!Number.isFinite(n)) fail(`${what}: expected a number, got ${JSON.stringify(s)}`, text);
  return n;
}

/** Jiffies (USER_HZ) per CPU state, from a "cpu …" line of /proc/stat. */
export interface CpuTimes {
  user: number;
  nice: number;
  system: number;
  idle: number;
  iowait: number;
  irq: number;
  softirq: number;
  steal: number;
}

const CPU_FIELDS = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'] as const;

/** /proc/stat: the all-CPU line and the number of per-CPU lines. */
export function parseProcStat(text: string): { total: CpuTimes; cpus: number } {
  const lines = text.split('\n');
  const all = lines.find((l) => /^cpu\s/.test(l));
  if (!all) fail('/proc/stat: no "cpu" line', text);
  const f = all.trim().split(/\s+/).slice(1);
  if (f.length < CPU_FIELDS.length) fail(`/proc/stat: "cpu" line has ${f.length} fields, expected at least ${CPU_FIELDS.length}`, text);
  const total = Object.fromEntries(CPU_FIELDS.map((k, i) => [k, int(f[i], `/proc/stat cpu ${k}`, text)])) as unknown as CpuTimes;
  const cpus = lines.filter((l) => /^cpu\d+\s/.test(l)).length;
  if (!cpus) fail('/proc/stat: no per-CPU lines', text);
  return { total, cpus };
}

export interface IfCounters {
  rxBytes: number;
  rxPackets: number;
  rxErrors: number;
  rxDropped: number;
  txBytes: number;
  txPackets: number;
  txErrors: number;
  txDropped: number;
}

/** /proc/net/dev: counters per interface. */
export function parseNetDev(text: string): Record<string, IfCounters> {
  const lines = text.split('\n').filter((l) => l.trim());
  if (lines.length < 2 || !/Receive/.test(lines[0]!) || !/bytes\s+packets/.test(lines[1]!)) fail('/proc/net/dev: missing header', text);
  const out: Record<string, IfCounters> = {};
  for (const line of lines.slice(2)) {
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (!m) fail(`/proc/net/dev: unexpected line ${JSON.stringify(line)}`, text);
    const v = m[2]!.trim().split(/\s+/);
    if (v.length < 16) fail(`/proc/net/dev: ${m[1]} has ${v.length} columns, expected 16`, text);
    const n = (i: number) => int(v[i], `/proc/net/dev ${m[1]}`, text);
    out[m[1]!] = { rxBytes: n(0), rxPackets: n(1), rxErrors: n(2), rxDropped: n(3), txBytes: n(8), txPackets: n(9), txErrors: n(10), txDropped: n(11) };
  }
  return out;
}

/** /proc/net/snmp and /proc/net/netstat: "Proto: names…" / "Proto: values…" line pairs → "Proto.Name". */
export function parseSnmp(text: string, file = '/proc/net/snmp'): Record<string, number> {
  const lines = text.split('\n').filter((l) => l.trim());
  if (lines.length % 2) fail(`${file}: odd number of lines (a header without values)`, text);
  const out: Record<string, number> = {};
  for (let i = 0; i < lines.length; i += 2) {
    const [hp, ...names] = lines[i]!.trim().split(/\s+/);
    const [vp, ...values] = lines[i + 1]!.trim().split(/\s+/);
    if (!hp?.endsWith(':') || hp !== vp || names.length !== values.length) fail(`${file}: header and values of ${hp} don't match`, text);
    names.forEach((n, k) => (out[`${hp.slice(0, -1)}.${n}`] = int(values[k], `${file} ${hp}${n}`, text)));
  }
  return out;
}

/** /proc/net/stat/nf_conntrack: per-CPU hex counters, summed (entries is the table size, not summed). */
export function parseConntrackStat(text: string): Record<string, number> {
  const lines = text.split('\n').filter((l) => l.trim());
  if (!lines.length || !lines[0]!.startsWith('entries')) fail('/proc/net/stat/nf_conntrack: missing header', text);
  const names = lines[0]!.trim().split(/\s+/);
  const out: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  for (const line of lines.slice(1)) {
    const v = line.trim().split(/\s+/);
    if (v.length !== names.length) fail(`/proc/net/stat/nf_conntrack: ${v.length} values for ${names.length} columns`, text);
    names.forEach((n, k) => {
      const x = int(v[k], `nf_conntrack ${n}`, text, 16);
      out[n] = n === 'entries' ? Math.max(out[n]!, x) : out[n]! + x;
    });
  }
  return out;
}

/**
 * The sampler's per-process section: /proc/<pid>/stat, then /proc/<pid>/task/<tid>/schedstat per
 * thread ("ns run, ns waited runnable, timeslices"). Wait time is what tells a starved process
 * (wanted a CPU, didn't get it) from one that is idle.
 */
export function parseProcSection(text: string): { pid: number; comm: string; utime: number; stime: number; runNs?: number; waitNs?: number; threads?: number } {
  const [stat = '', ...sched] = text.split('\n').filter((l) => l.trim());
  const p = parsePidStat(stat);
  if (!sched.length) return p;
  let runNs = 0;
  let waitNs = 0;
  for (const line of sched) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 3) fail(`/proc/${p.pid}/task/*/schedstat: expected 3 fields, got ${JSON.stringify(line.slice(0, 60))}`, text);
    runNs += int(f[0], 'schedstat run', text);
    waitNs += int(f[1], 'schedstat wait', text);
  }
  return { ...p, runNs, waitNs, threads: sched.length };
}

/** /proc/<pid>/stat: CPU time in jiffies. The command name may hold spaces and parentheses. */
export function parsePidStat(text: string): { pid: number; comm: string; utime: number; stime: number } {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) fail('/proc/<pid>/stat: no (comm)', text);
  const pid = int(text.slice(0, open).trim(), '/proc/<pid>/stat pid', text);
  const rest = text.slice(close + 1).trim().split(/\s+/);
  // Fields after comm start at field 3 (state); utime and stime are fields 14 and 15.
  if (rest.length < 13) fail(`/proc/${pid}/stat: ${rest.length + 2} fields, expected at least 15`, text);
  return { pid, comm: text.slice(open + 1, close), utime: int(rest[11], 'utime', text), stime: int(rest[12], 'stime', text) };
}

/** One snapshot of the sampler's output. */
export interface Tick {
  /** Wall clock of the snapshot (the node's clock), ms since the epoch. */
  atMs: number;
  files: Record<string, string>;
  pids: Record<number, string>;
}

/**
 * The sampler's framed output → complete snapshots. The last snapshot may be cut short when the
 * sampler is stopped mid-write: it is dropped. Anything else out of frame is an error.
 */
export function parseSamplerOutput(text: string): Tick[] {
  const ticks: Tick[] = [];
  let cur: Tick | undefined;
  let section: { kind: 'file' | 'pid'; key: string; lines: string[] } | undefined;
  const close = () => {
    if (!cur || !section) return;
    const body = section.lines.join('\n');
    if (section.kind === 'file') cur.files[section.key] = body;
    else cur.pids[Number(section.key)] = body;
    section = undefined;
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('@@tick ')) {
      if (cur) fail(`snapshot at ${cur.atMs} has no @@end`, text);
      cur = { atMs: int(line.slice(7).trim(), '@@tick', text), files: {}, pids: {} };
    } else if (line.startsWith('@@file ') || line.startsWith('@@pid ')) {
      if (!cur) fail(`${line} outside a snapshot`, text);
      close();
      const [tag, key] = [line.slice(2, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1).trim()];
      section = { kind: tag as 'file' | 'pid', key, lines: [] };
    } else if (line === '@@end') {
      if (!cur) fail('@@end outside a snapshot', text);
      close();
      ticks.push(cur);
      cur = undefined;
    } else if (section) {
      section.lines.push(line);
    } else if (line.trim()) {
      fail(`unexpected line ${JSON.stringify(line.slice(0, 80))}`, text);
    }
  }
  return ticks;
}
