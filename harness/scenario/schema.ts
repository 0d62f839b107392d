// The single source of scenario types and of the published JSON schema (`lbbench schema`).
// Every object is strict: an unknown key is an error that names the valid ones.
import { z } from 'zod';

/** "5s", "500ms", "2m" or a number of seconds; always seconds after parsing. */
export const Duration = z
  .union([
    z.number().positive(),
    z
      .string()
      .regex(/^\d+(\.\d+)?(ms|s|m)$/, { message: 'expected a duration like "5s", "500ms" or "2m"' }),
  ])
  .transform((v) => {
    if (typeof v === 'number') return v;
    const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(v)!;
    const n = Number(m[1]);
    return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
  })
  .refine((s) => s > 0, { message: 'duration must be greater than zero' })
  .meta({ description: 'Seconds, or a string like "5s", "500ms", "2m".' });

const CpuList = z
  .string()
  .regex(/^\d+(-\d+)?(,\d+(-\d+)?)*$/, { message: 'expected a CPU list like "0", "1-3" or "0,2"' });

const common = {
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]*$/, { message: 'use lowercase letters, digits and "-"' })
    .optional()
    .meta({ description: 'Label in results and reports; defaults to kind (and mode).' }),
};

export const RouterSpec = z
  .strictObject({ kind: z.literal('router'), ...common })
  .meta({ description: 'Plain IP forwarding to the first backend: the baseline without any LB.' });

export const IptablesDnatSpec = z
  .strictObject({
    kind: z.literal('iptables-dnat'),
    ...common,
    algorithm: z.enum(['round-robin', 'random']).default('round-robin'),
  })
  .meta({ description: 'iptables nat-table DNAT with the statistic match (nth or random).' });

export const NftablesSpec = z
  .strictObject({
    kind: z.literal('nftables'),
    ...common,
    algorithm: z.enum(['round-robin', 'random', 'hash']).default('round-robin'),
  })
  .meta({ description: 'nftables DNAT with numgen inc/random or jhash over the 5-tuple.' });

export const NginxSpec = z
  .strictObject({
    kind: z.literal('nginx'),
    ...common,
    mode: z.enum(['l4', 'l7']).default('l7'),
    workers: z.int().min(1).max(64).default(1),
    /** L7 only: reuse upstream connections (what a production proxy does). */
    upstreamKeepalive: z.boolean().default(true),
  })
  .meta({ description: 'nginx as a proxy: stream (L4) or http (L7), round robin.' });

export const HaproxySpec = z
  .strictObject({
    kind: z.literal('haproxy'),
    ...common,
    mode: z.enum(['tcp', 'http']).default('http'),
    threads: z.int().min(1).max(64).default(1),
    balance: z.enum(['roundrobin', 'leastconn', 'source']).default('roundrobin'),
  })
  .meta({ description: 'haproxy in tcp (L4) or http (L7) mode.' });

export const LbSpec = z.discriminatedUnion('kind', [
  RouterSpec,
  IptablesDnatSpec,
  NftablesSpec,
  NginxSpec,
  HaproxySpec,
]);
export type LbSpec = z.output<typeof LbSpec>;
export type LbKind = LbSpec['kind'];
export const LB_KINDS = LbSpec.options.map((o) => o.shape.kind.value) as LbKind[];

export const LoadSpec = z.strictObject({
  generator: z.literal('wrk').default('wrk'),
  duration: Duration.default(5),
  warmup: Duration.default(1),
  connections: z.int().min(1).max(10000).default(32),
  threads: z.int().min(1).max(64).default(1),
  path: z.string().startsWith('/', { message: 'a path starts with "/"' }).default('/'),
  /** wrk's socket/request timeout. */
  timeout: Duration.default(2),
});
export type LoadSpec = z.output<typeof LoadSpec>;

export const NetnsTopologySpec = z.strictObject({
  kind: z.literal('netns').default('netns'),
  /** Backends built; defaults to the largest count in sweep.backends. */
  backends: z.int().min(1).max(250).optional(),
  /** nginx worker processes per backend. */
  backendWorkers: z.int().min(1).max(16).default(1),
});
export const TopologySpec = NetnsTopologySpec;
export type TopologySpec = z.output<typeof TopologySpec>;

export const SweepSpec = z.strictObject({
  backends: z.array(z.int().min(1).max(250)).min(1).default([1]),
  connections: z.array(z.int().min(1).max(10000)).min(1).optional(),
  threads: z.array(z.int().min(1).max(64)).min(1).optional(),
});
export type SweepSpec = z.output<typeof SweepSpec>;

export const CpuSpec = z.union([
  z.enum(['auto', 'off']),
  z.strictObject({ generator: CpuList, servers: CpuList }),
]);

export const ScenarioSpec = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, {
    message: 'use letters, digits, ".", "_" and "-" (it becomes part of file names)',
  }),
  description: z.string().optional(),
  /** A topology name (topologies/<name>.yaml), a path relative to the scenario, or inline. */
  topology: z.union([z.string().min(1), TopologySpec]).default('netns-basic'),
  loadBalancers: z.array(LbSpec).min(1),
  sweep: SweepSpec.default({ backends: [1] }),
  load: LoadSpec.default(LoadSpec.parse({})),
  repetitions: z.int().min(1).max(100).default(3),
  /** CPU pinning: "auto" puts the generator on the last CPU and servers on the rest. */
  cpus: CpuSpec.default('auto'),
  /** Pause before each repetition until the 1-minute load average falls, at most this long. */
  settle: Duration.default(1),
  output: z.string().default('results'),
});
export type ScenarioSpec = z.output<typeof ScenarioSpec>;
/** A scenario after loading: topology resolved to an object, source file remembered. */
export type Scenario = Omit<ScenarioSpec, 'topology'> & {
  topology: TopologySpec & { backends: number };
  file?: string;
};
