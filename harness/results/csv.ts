// samples.csv: one row per repetition, for spreadsheets and users' own scripts.
//
// The column order below is a published contract — append new columns at the END, never rename,
// reorder or remove one (bump FORMAT_VERSION and say so in the changelog if you must).
//
//   run_id                  RunResult.runId
//   point_id                PointResult.id
//   lb                      lb.name
//   lb_kind                 lb.kind
//   backends                params.backends
//   params                  every other param, "k=v;k=v" sorted by key (non-scalars as JSON)
//   repetition              Repetition.index (empty on a point that failed before any repetition)
//   started_at              ISO timestamp of the repetition
//   requests_per_sec        metrics.requestsPerSec
//   transfer_bytes_per_sec  metrics.transferBytesPerSec
//   requests                metrics.requests
//   duration_s              metrics.durationS
//   latency_p50_us … latency_p99_9_us, latency_max_us, latency_mean_us, latency_stdev_us   (µs)
//   errors_connect, errors_read, errors_write, errors_timeout, errors_status
//   per_backend             requests per backend, "be0=12;be1=10" in natural name order
//   point_error             PointResult.error (repeated on each row of that point)
//   packets_sent, packets_received, packets_received_per_sec, packet_loss_fraction   (trafgen)
//   bits_per_sec            stream bits/s that arrived (iperf3), or received frames' bits (trafgen)
//   stream_retransmits      TCP retransmits (iperf3)
//   connections_total, connections_lost, connections_failed   (connect, traffic)
//   fairness                Jain's index over backends (connect, traffic)
//
// Columns that do not apply to a generator are empty.
//
// A point that failed before its first repetition still gets one row (metrics empty) so a failure
// can't vanish from the export.
import { stringify } from 'csv-stringify/sync';
import type { PointResult, Repetition, RunResult } from './types.ts';

export const CSV_COLUMNS = [
  'run_id',
  'point_id',
  'lb',
  'lb_kind',
  'backends',
  'params',
  'repetition',
  'started_at',
  'requests_per_sec',
  'transfer_bytes_per_sec',
  'requests',
  'duration_s',
  'latency_p50_us',
  'latency_p75_us',
  'latency_p90_us',
  'latency_p99_us',
  'latency_p99_9_us',
  'latency_max_us',
  'latency_mean_us',
  'latency_stdev_us',
  'errors_connect',
  'errors_read',
  'errors_write',
  'errors_timeout',
  'errors_status',
  'per_backend',
  'point_error',
  'packets_sent',
  'packets_received',
  'packets_received_per_sec',
  'packet_loss_fraction',
  'bits_per_sec',
  'stream_retransmits',
  'connections_total',
  'connections_lost',
  'connections_failed',
  'fairness',
] as const;

type Row = Record<(typeof CSV_COLUMNS)[number], string | number | undefined>;

const byName = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

function scalar(v: unknown): string {
  return v === null || typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** "k=v;k=v" — compact in a spreadsheet cell and trivially split by users' scripts. */
export function formatKv(obj: Record<string, unknown>): string {
  return Object.keys(obj)
    .sort(byName)
    .map((k) => `${k}=${scalar(obj[k])}`)
    .join(';');
}

function pointCols(runId: string, p: PointResult) {
  const { backends, ...rest } = p.params;
  return {
    run_id: runId,
    point_id: p.id,
    lb: p.lb.name,
    lb_kind: p.lb.kind,
    backends,
    params: formatKv(rest),
    point_error: p.error,
  };
}

function repCols(r: Repetition) {
  const m = r.metrics;
  const extra = m as { connections?: { total: number; lost?: number; failedConnects: number }; fairness?: number };
  const common = {
    repetition: r.index,
    started_at: r.startedAt,
    duration_s: m.durationS,
    per_backend: formatKv(m.perBackend ?? {}),
    connections_total: extra.connections?.total,
    connections_lost: extra.connections?.lost,
    connections_failed: extra.connections?.failedConnects,
    fairness: extra.fairness,
  };
  if ('packets' in m) {
    return { ...common, packets_sent: m.packets.sent, packets_received: m.packets.received, packets_received_per_sec: m.packets.receivedPerSec, packet_loss_fraction: m.packets.lossFraction, bits_per_sec: m.packets.receivedBitsPerSec };
  }
  if ('stream' in m) return { ...common, bits_per_sec: m.stream.bitsPerSec, stream_retransmits: m.stream.retransmits };
  if ('connectionsPerSec' in m) return common;
  return {
    ...common,
    requests_per_sec: m.requestsPerSec,
    transfer_bytes_per_sec: m.transferBytesPerSec,
    requests: m.requests,
    latency_p50_us: m.latencyUs.p50,
    latency_p75_us: m.latencyUs.p75,
    latency_p90_us: m.latencyUs.p90,
    latency_p99_us: m.latencyUs.p99,
    latency_p99_9_us: m.latencyUs['p99.9'],
    latency_max_us: m.latencyUs.max,
    latency_mean_us: m.latencyUs.mean,
    latency_stdev_us: m.latencyUs.stdev,
    errors_connect: m.errors.connect,
    errors_read: m.errors.read,
    errors_write: m.errors.write,
    errors_timeout: m.errors.timeout,
    errors_status: m.errors.status,
  };
}

export function toCsv(result: RunResult): string {
  const rows: Partial<Row>[] = [];
  for (const p of result.points) {
    const base = pointCols(result.runId, p);
    if (p.repetitions.length === 0) rows.push(base);
    for (const r of p.repetitions) rows.push({ ...base, ...repCols(r) });
  }
  return stringify(rows, { header: true, columns: [...CSV_COLUMNS] });
}
