// The result contract (types.ts) as a zod schema: readers validate against it, tests check real
// runs against it, and `lbbench schema --result` could publish it. Objects are loose: names may
// grow without a format bump; the ones listed here stay.
import { z } from 'zod';

const num = z.number();
const LatencyUs = z.looseObject({ mean: num, stdev: num, max: num, p50: num, p75: num, p90: num, p99: num, 'p99.9': num });
const perBackend = z.record(z.string(), z.int().nonnegative());
const RequestMetrics = z.looseObject({
  requestsPerSec: num.nonnegative(),
  transferBytesPerSec: num.nonnegative(),
  requests: z.int().nonnegative(),
  durationS: num.positive(),
  latencyUs: LatencyUs,
  latencyCdf: z.array(z.tuple([num, num])),
  errors: z.looseObject({ connect: z.int(), read: z.int(), write: z.int(), timeout: z.int(), status: z.int() }),
  perBackend,
});
const PacketMetrics = z.looseObject({
  durationS: num.positive(),
  packets: z.looseObject({
    sent: z.int().positive(),
    received: z.int().nonnegative(),
    sentPerSec: num.positive(),
    receivedPerSec: num.nonnegative(),
    lossFraction: num.min(0).max(1),
    frameBytes: num.positive(),
    receivedBitsPerSec: num.nonnegative(),
  }),
  perBackend,
});
const StreamMetrics = z.looseObject({
  durationS: num.positive(),
  stream: z.looseObject({ protocol: z.enum(['tcp', 'udp']), bitsPerSec: num.nonnegative(), senderBitsPerSec: num.nonnegative(), retransmits: z.int().nonnegative().optional(), placement: z.string() }),
  perBackend,
});
const ConnectionMetrics = z.looseObject({
  durationS: num.positive(),
  connectionsPerSec: num.nonnegative(),
  connections: z.looseObject({ total: z.int().nonnegative(), lost: z.int().nonnegative(), failedConnects: z.int().nonnegative() }),
  connectionsPerBackend: perBackend,
  fairness: num.min(0).max(1),
  perBackend,
  tool: z.string(),
});
const Metrics = z.union([RequestMetrics, PacketMetrics, StreamMetrics, ConnectionMetrics]);
const nonneg = num.nonnegative();
const Sample = z.looseObject({
  t: nonneg,
  cpu: z.looseObject({ user: nonneg, system: nonneg, softirq: nonneg, busy: nonneg, cpus: z.int().nonnegative() }),
  procs: z.record(z.string(), nonneg),
  procWait: z.record(z.string(), nonneg).optional(),
  ifaces: z.record(z.string(), z.looseObject({ rxPps: nonneg, txPps: nonneg, rxBitsPerSec: nonneg, txBitsPerSec: nonneg, dropsPerSec: nonneg })),
  conntrack: z.looseObject({ entries: z.int().nonnegative(), dropsPerSec: nonneg, insertFailedPerSec: nonneg, earlyDropPerSec: nonneg }).optional(),
  sockets: z.looseObject({ listenOverflowsPerSec: nonneg, listenDropsPerSec: nonneg, retransPerSec: nonneg, udpRcvbufErrorsPerSec: nonneg, udpInErrorsPerSec: nonneg }),
});
const Repetition = z.looseObject({
  index: z.int().nonnegative(),
  startedAt: z.iso.datetime(),
  idle: z.looseObject({ waitedS: num, idleFraction: num }).optional(),
  metrics: Metrics,
  raw: z.looseObject({ tool: z.string(), argv: z.array(z.string()), stdout: z.string(), stderr: z.string(), file: z.string().optional() }),
  datapath: z.record(z.string(), num).optional(),
  samples: z.record(z.string(), z.array(Sample)).optional(),
  bottleneck: z.looseObject({ verdict: z.enum(['generator', 'lb', 'backend', 'link', 'unknown']), evidence: z.array(z.string()) }).optional(),
  flood: z
    .looseObject({ packet: z.enum(['syn', 'udp']), targetPps: z.int().positive(), sent: z.int().positive(), sentPerSec: num.positive(), seconds: num.positive() })
    .optional(),
  events: z
    .array(
      z.looseObject({
        at: num,
        scheduledAt: num.nonnegative(),
        action: z.string(),
        target: z.array(z.string()),
        how: z.enum(['link-down', 'kill']).optional(),
        tookMs: num.nonnegative(),
        inLb: z.int().nonnegative().optional(),
        updateMs: num.nonnegative().optional(),
        alive: z.int().nonnegative(),
        lost: z.int().nonnegative(),
        observedLoss: num.min(0).max(1),
        idealLoss: num.min(0).max(1),
        perBackend: z.record(z.string(), z.looseObject({ alive: z.int().nonnegative(), lost: z.int().nonnegative() })),
        lastFailureMs: z.int().nonnegative().optional(),
        interruption: z.looseObject({ ms: z.int().nonnegative(), overMs: num.positive(), lastAnswerMs: z.int().optional(), firstAnswerMs: z.int().nullable().optional() }).optional(),
        error: z.string().optional(),
      }),
    )
    .optional(),
});
const Point = z.looseObject({
  id: z.string().min(1),
  lb: z.looseObject({ kind: z.string(), name: z.string() }),
  params: z.looseObject({ backends: z.int().positive() }),
  lbDescribe: z.looseObject({ version: z.string(), config: z.string() }).optional(),
  datapathTimings: z.record(z.string(), z.array(num.nonnegative())).optional(),
  cpuPerMillion: nonneg.optional(),
  tuning: z.looseObject({ name: z.string(), changes: z.array(z.looseObject({ what: z.string(), before: z.string(), after: z.string() })) }).optional(),
  network: z
    .looseObject({ overlay: z.enum(['none', 'vxlan']), mtu: z.int().positive(), underlayMtu: z.int().positive(), overheadBytes: z.int().nonnegative(), encapsulation: z.string() })
    .optional(),
  repetitions: z.array(Repetition),
  error: z.string().optional(),
  skipped: z.boolean().optional(),
});
export const RunResultSchema = z.looseObject({
  formatVersion: z.int().positive(),
  runId: z.string().min(1),
  status: z.enum(['running', 'complete', 'interrupted', 'failed']),
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime().optional(),
  scenarioFile: z.string().optional(),
  scenario: z.record(z.string(), z.unknown()),
  host: z.looseObject({
    hostname: z.string(),
    kernel: z.string(),
    cpuModel: z.string(),
    cpus: z.int(),
    memoryBytes: z.number(),
    node: z.string(),
    tools: z.record(z.string(), z.string()),
    git: z.looseObject({ rev: z.string(), dirty: z.boolean() }).nullable(),
    sysctls: z.record(z.string(), z.string()),
    lbbenchVersion: z.string(),
  }),
  environment: z.record(z.string(), z.unknown()).optional(),
  points: z.array(Point),
  error: z.string().optional(),
});

/** Every problem as `path: message`, or [] when the object is a valid result. */
/** The result contract as JSON Schema (`lbbench schema --result`, schemas/result.schema.json). */
export function resultJsonSchema(): Record<string, unknown> {
  return { ...z.toJSONSchema(RunResultSchema, { io: 'output' }), title: 'lbbench result (result.json)' };
}

export function resultProblems(obj: unknown): string[] {
  const r = RunResultSchema.safeParse(obj);
  if (r.success) return [];
  return r.error.issues.map((i) => `${i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') || '(root)'}: ${i.message}`);
}
