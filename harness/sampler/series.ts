// Snapshots → rates: what each interval between two snapshots cost and carried. Pure.
import { ParseError } from '../errors.ts';
import { parseConntrackStat, parseNetDev, parseProcSection, parseProcStat, parseSnmp, type CpuTimes, type Tick } from './proc.ts';

/** Kernel clock ticks per second of /proc CPU times (USER_HZ; 100 on every Linux ABI we meet). */
export const USER_HZ = 100;

export interface IfRates {
  rxPps: number;
  txPps: number;
  rxBitsPerSec: number;
  txBitsPerSec: number;
  /** rx + tx drops and errors per second. */
  dropsPerSec: number;
}

/** One interval on one node. CPU figures are in cores (1 = one CPU fully busy). */
export interface Sample {
  /** End of the interval, seconds after the first snapshot. */
  t: number;
  cpu: { user: number; system: number; softirq: number; busy: number; cpus: number };
  /** Per watched process ("comm:pid"), cores. Absent: the process was gone. */
  procs: Record<string, number>;
  /** Per watched process, time its threads waited runnable for a CPU, in cores: demand it could not run. */
  procWait?: Record<string, number>;
  ifaces: Record<string, IfRates>;
  conntrack?: { entries: number; dropsPerSec: number; insertFailedPerSec: number; earlyDropPerSec: number };
  /** Socket-level trouble per second: listen queue overflows, TCP retransmits, UDP buffer errors. */
  sockets: { listenOverflowsPerSec: number; listenDropsPerSec: number; retransPerSec: number; udpRcvbufErrorsPerSec: number; udpInErrorsPerSec: number };
}

const busyOf = (c: CpuTimes) => c.user + c.nice + c.system + c.irq + c.softirq + c.steal;

function perSec(a: number | undefined, b: number | undefined, dt: number): number {
  // A counter absent on either side (older kernel, module not loaded) is 0 change, not an error;
  // a counter going backwards means a reset (interface recreated): the interval says nothing.
  if (a === undefined || b === undefined || b < a) return 0;
  return (b - a) / dt;
}

interface Parsed {
  atMs: number;
  cpu?: { total: CpuTimes; cpus: number };
  dev: ReturnType<typeof parseNetDev>;
  net: Record<string, number>;
  ct?: { count: number; stat?: Record<string, number> };
  pids: Record<number, { comm: string; jiffies: number; waitNs?: number }>;
}

function parseTick(t: Tick): Parsed {
  const f = t.files;
  const net = { ...(f['/proc/net/snmp'] ? parseSnmp(f['/proc/net/snmp']) : {}), ...(f['/proc/net/netstat'] ? parseSnmp(f['/proc/net/netstat'], '/proc/net/netstat') : {}) };
  const count = f['/proc/sys/net/netfilter/nf_conntrack_count'];
  let ct: Parsed['ct'];
  if (count !== undefined) {
    const n = Number(count.trim());
    if (!Number.isInteger(n)) throw new ParseError(`nf_conntrack_count: expected a number, got ${JSON.stringify(count.slice(0, 40))}`, 'sampler');
    ct = { count: n, stat: f['/proc/net/stat/nf_conntrack'] ? parseConntrackStat(f['/proc/net/stat/nf_conntrack']) : undefined };
  }
  const pids: Parsed['pids'] = {};
  for (const [pid, text] of Object.entries(t.pids)) {
    // A process that exited between the sampler's check and its cat leaves an empty section: it is
    // gone from this snapshot, like one the sampler never saw. Anything else must parse.
    if (!text.trim()) continue;
    const p = parseProcSection(text);
    pids[Number(pid)] = { comm: p.comm, jiffies: p.utime + p.stime, waitNs: p.waitNs };
  }
  return {
    atMs: t.atMs,
    cpu: f['/proc/stat'] ? parseProcStat(f['/proc/stat']) : undefined,
    dev: f['/proc/net/dev'] ? parseNetDev(f['/proc/net/dev']) : {},
    net,
    ct,
    pids,
  };
}

/** Rates over each pair of consecutive snapshots. Fewer than two snapshots give no samples. */
export function samplesOf(ticks: Tick[]): Sample[] {
  const parsed = ticks.map(parseTick);
  const out: Sample[] = [];
  for (let i = 1; i < parsed.length; i++) {
    const [a, b] = [parsed[i - 1]!, parsed[i]!];
    const dt = (b.atMs - a.atMs) / 1000;
    if (!(dt > 0)) throw new ParseError(`snapshots out of order (${a.atMs} then ${b.atMs})`, 'sampler');
    const cores = (x: number, y: number) => Math.max(0, (y - x) / USER_HZ / dt);
    const cpu = a.cpu && b.cpu
      ? {
          user: cores(a.cpu.total.user + a.cpu.total.nice, b.cpu.total.user + b.cpu.total.nice),
          system: cores(a.cpu.total.system + a.cpu.total.irq, b.cpu.total.system + b.cpu.total.irq),
          softirq: cores(a.cpu.total.softirq, b.cpu.total.softirq),
          busy: cores(busyOf(a.cpu.total), busyOf(b.cpu.total)),
          cpus: b.cpu.cpus,
        }
      : { user: 0, system: 0, softirq: 0, busy: 0, cpus: 0 };
    const procs: Record<string, number> = {};
    const procWait: Record<string, number> = {};
    for (const [pid, p] of Object.entries(b.pids)) {
      const before = a.pids[Number(pid)];
      if (!before || before.comm !== p.comm) continue;
      procs[`${p.comm}:${pid}`] = cores(before.jiffies, p.jiffies);
      // Threads come and go between snapshots; a sum that shrank says nothing about waiting.
      if (before.waitNs !== undefined && p.waitNs !== undefined) procWait[`${p.comm}:${pid}`] = Math.max(0, (p.waitNs - before.waitNs) / 1e9 / dt);
    }
    const ifaces: Record<string, IfRates> = {};
    for (const [name, y] of Object.entries(b.dev)) {
      const x = a.dev[name];
      if (!x || name === 'lo') continue;
      ifaces[name] = {
        rxPps: perSec(x.rxPackets, y.rxPackets, dt),
        txPps: perSec(x.txPackets, y.txPackets, dt),
        rxBitsPerSec: 8 * perSec(x.rxBytes, y.rxBytes, dt),
        txBitsPerSec: 8 * perSec(x.txBytes, y.txBytes, dt),
        dropsPerSec: perSec(x.rxDropped + x.txDropped + x.rxErrors + x.txErrors, y.rxDropped + y.txDropped + y.rxErrors + y.txErrors, dt),
      };
    }
    const n = (k: string) => perSec(a.net[k], b.net[k], dt);
    const s: Sample = {
      t: (b.atMs - parsed[0]!.atMs) / 1000,
      cpu,
      procs,
      ...(Object.keys(procWait).length ? { procWait } : {}),
      ifaces,
      sockets: {
        listenOverflowsPerSec: n('TcpExt.ListenOverflows'),
        listenDropsPerSec: n('TcpExt.ListenDrops'),
        retransPerSec: n('Tcp.RetransSegs'),
        udpRcvbufErrorsPerSec: n('Udp.RcvbufErrors'),
        udpInErrorsPerSec: n('Udp.InErrors'),
      },
    };
    if (b.ct) {
      const st = (k: string) => perSec(a.ct?.stat?.[k], b.ct?.stat?.[k], dt);
      s.conntrack = { entries: b.ct.count, dropsPerSec: st('drop'), insertFailedPerSec: st('insert_failed'), earlyDropPerSec: st('early_drop') };
    }
    out.push(s);
  }
  return out;
}
