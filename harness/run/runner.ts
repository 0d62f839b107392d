// The only place that sequences a run: preflight everything, provision, then for each point
// apply → (settle → warm-up → measure → record) × repetitions → teardown, writing results after
// every repetition. Every exit path — success, error, signal — goes through one teardown ledger.
import { join, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import type { Scenario } from '../scenario/schema.ts';
import { plan, type PlannedPoint } from '../scenario/plan.ts';
import { Teardown } from '../teardown.ts';
import type { Host } from '../host/types.ts';
import { LocalHost } from '../host/local.ts';
import { newRunId, type NetnsTopology } from '../topology/netns.ts';
import { openSite, type Site } from '../topology/site.ts';
import { getLbDriver, ipv6Refusal, lbDrivers } from '../lb/index.ts';
import { getLoadDriver } from '../load/index.ts';
import { runLoad } from '../load/run.ts';
import { ResultWriter, type PointMeta } from '../results/writer.ts';
import { hostFingerprint } from '../results/fingerprint.ts';
import type { Metrics, Repetition, RunResult } from '../results/types.ts';
import { Interrupted, LbbError, PreflightError, ProvisionError } from '../errors.ts';
import { waitIdle } from './idle.ts';
import { jainFairness } from '../load/connect.ts';
import { sleep } from '../util/time.ts';
import type { Deployed } from '../lb/types.ts';
import type { LoadDriver } from '../load/types.ts';
import type { BackendNode } from '../topology/types.ts';
import { applyTuning } from './tuning.ts';
import { bottleneckOf, cpuPerMillion, lbWorkers, pointSamplers } from '../sampler/point.ts';
import type { Sample } from '../sampler/series.ts';
import { rateOf } from '../report/specs.ts';
import { median } from '../stats/descriptive.ts';
import { clockOffset, fmtEvent, placeEvents, PointState, runEventSchedule, type AppliedEvent } from './events.ts';
import { FLOOD_MARGIN_S, prepareFlood, type FloodResult } from '../load/flood.ts';
import { trafgen } from '../load/trafgen.ts';

export interface RunOptions {
  scenario: Scenario;
  /** Directory under which results/<run-id>/ is created (defaults to scenario.output). */
  outRoot?: string;
  /** Only these LB kinds or names. */
  only?: string[];
  signal?: AbortSignal;
  log?: (line: string) => void;
  root?: Host;
  runId?: string;
}

export interface RunOutcome {
  runId: string;
  resultDir: string;
  result: RunResult;
}

export const LB_PORT = 80;
/** Time the generator gets to start up before an evented measurement begins (node on a TCG guest is slow). */
const START_LEAD_MS = 1500;

/** Which CPUs the generator and the servers get. Recorded in the result either way. */
export function cpuPlan(spec: Scenario['cpus'], ncpu = availableParallelism()): { generator?: string; servers?: string } {
  if (spec === 'off') return {};
  if (spec === 'auto') {
    if (ncpu < 2) return {};
    // The generator gets the last CPU to itself; on a 2-core box the LB, backends and softirqs share CPU 0.
    return { generator: String(ncpu - 1), servers: ncpu === 2 ? '0' : `0-${ncpu - 2}` };
  }
  return { generator: spec.generator, servers: spec.servers };
}

export function selectPoints(points: PlannedPoint[], only?: string[]): PlannedPoint[] {
  if (!only?.length) return points;
  const chosen = points.filter((p) => only.includes(p.lb.kind) || only.includes(p.lb.name!));
  if (!chosen.length) {
    const names = [...new Set(points.flatMap((p) => [p.lb.kind, p.lb.name!]))];
    throw new PreflightError(`--lb ${only.join(',')} matches no load balancer of this scenario`, `choose from: ${names.join(', ')}`);
  }
  return chosen;
}

/**
 * Every LB's and the generator's preflight. Returns the LBs that cannot run here, by name, with why;
 * unless `skipUnavailable`, the first such LB fails the run before anything is built.
 */
export async function preflightAll(
  root: Host,
  points: PlannedPoint[],
  load: LoadDriver,
  generatorHost: Host = root,
  loadSpec?: Scenario['load'],
  skipUnavailable = false,
): Promise<Map<string, PreflightError>> {
  const uid = (await root.exec(['id', '-u'])).stdout.trim();
  if (uid !== '0') throw new PreflightError('lbbench run needs root (it creates network namespaces)', 'run it with sudo');
  const seen = new Set<string>();
  const unavailable = new Map<string, PreflightError>();
  for (const p of points) {
    const key = JSON.stringify(p.lb);
    if (seen.has(key)) continue;
    seen.add(key);
    try {
      await getLbDriver(p.lb.kind).preflight(root, p.lb as never);
    } catch (e) {
      if (!skipUnavailable || !(e instanceof PreflightError)) throw e;
      unavailable.set(p.lb.name!, e);
    }
  }
  if (unavailable.size && unavailable.size === seen.size) {
    const [first] = unavailable.values();
    throw first!;
  }
  await load.preflight(generatorHost, loadSpec);
  if (points.some((p) => (p.params.floodPps ?? 0) > 0)) await trafgen.preflight(generatorHost);
  return unavailable;
}

export async function runScenario(opts: RunOptions): Promise<RunOutcome> {
  const { scenario } = opts;
  const log = opts.log ?? (() => {});
  const signal = opts.signal ?? new AbortController().signal;
  const points = selectPoints(plan(scenario), opts.only);
  const loadDriver = getLoadDriver(scenario.load.generator);
  const teardown = new Teardown();

  // Nothing of the topology is created before every preflight passed; a guest booted or hosts
  // connected only to be asked are let go again.
  let site: Site;
  let unavailable: Map<string, PreflightError>;
  try {
    site = await openSite(scenario.topology, teardown, { log, signal, root: opts.root });
    unavailable = await preflightAll(site.root, points, loadDriver, site.generatorHost, scenario.load, scenario.unavailable === 'skip');
    for (const [name, e] of unavailable) log(`skipping ${name}: ${e.message}${e.hint ? ` (${e.hint})` : ''}`);
  } catch (e) {
    await teardown.unwind((label) => log(`teardown: ${label}`));
    throw e;
  }
  const root = site.root;

  const runId = opts.runId ?? newRunId();
  const resultDir = resolve(opts.outRoot ?? scenario.output, runId);
  const cpus = cpuPlan(scenario.cpus, site.cpus);
  const toolVersionArgv: Record<string, string[]> = {
    wrk: ['wrk', '--version'],
    nginx: ['nginx', '-v'],
    haproxy: ['haproxy', '-v'],
    iptables: ['iptables', '--version'],
    nft: ['nft', '--version'],
    iproute2: ['ip', '-V'],
  };
  const host = await hostFingerprint(root, { tools: toolVersionArgv, gitHost: new LocalHost() });
  const writer = await ResultWriter.create(resultDir, {
    runId,
    startedAt: new Date().toISOString(),
    scenarioFile: scenario.file,
    scenario: scenario as unknown as Record<string, unknown>,
    host,
  });
  await writer.setEnvironment({ cpus, port: LB_PORT, ...site.facts });
  log(`run ${runId}: ${points.length} points × ${scenario.repetitions} repetitions → ${resultDir}`);

  let status: 'complete' | 'interrupted' | 'failed' = 'complete';
  let runError: unknown;
  try {
    // One topology per swept overlay (points come grouped by it), each gone before the next is built.
    let built: { overlay: string | undefined; topo: NetnsTopology; release: () => Promise<void> } | undefined;
    const standbyLb = points.some((p) => getLbDriver(p.lb.kind).needsStandbyLb);
    const ipv6 = points.some((p) => p.params.family === 6);
    const topoFor = async (overlay: PlannedPoint['params']['overlay']): Promise<NetnsTopology> => {
      if (built && built.overlay === overlay) return built.topo;
      await built?.release();
      const { ledger, release } = teardown.child(`topology${overlay ? ` (overlay ${overlay})` : ''}`, (label) => log(`teardown: ${label}`));
      const backends = Math.max(...points.filter((p) => p.params.overlay === overlay).map((p) => p.params.backends));
      built = { overlay, topo: await site.build({ backends, serverCpus: cpus.servers, runId, log, ...(overlay ? { overlay } : {}), ...(standbyLb ? { standbyLb } : {}), ...(ipv6 ? { ipv6 } : {}) }, ledger), release };
      return built.topo;
    };
    for (const [i, point] of points.entries()) {
      throwIfAborted(signal);
      log(`[${i + 1}/${points.length}] ${point.id}`);
      const why = unavailable.get(point.lb.name!);
      if (why) {
        // Recorded as a failed point, so the report and compare-reports show the gap.
        const meta: PointMeta = { id: point.id, lb: { ...point.lb, name: point.lb.name! }, params: point.params };
        await writer.startPoint(meta);
        await writer.setPointError(meta, new PreflightError(`unavailable on this host: ${why.message}`, why.hint), { skipped: true });
        continue;
      }
      const topo = await topoFor(point.params.overlay);
      throwIfAborted(signal);
      await runPoint(point.params.family === 6 ? topo.v6 : topo, point, { scenario, loadDriver, writer, teardown, signal, log, cpus });
    }
  } catch (e) {
    // Whatever was in flight when the signal came (a sleep, wrk) rejects with the bare reason.
    runError = signal.aborted ? new Interrupted(String(signal.reason ?? 'SIGINT')) : e;
    status = signal.aborted ? 'interrupted' : 'failed';
  } finally {
    const failures = await teardown.unwind((label) => log(`teardown: ${label}`));
    for (const f of failures) log(`teardown failed: ${f.label}: ${(f.error as Error).message ?? f.error}`);
    await writer.finish(status, runError);
  }
  if (runError) {
    const err = runError;
    // The caller still renders a report of the partial result.
    if (err instanceof Error) Object.assign(err, { resultDir });
    throw err;
  }
  return { runId, resultDir, result: writer.snapshot() };
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new Interrupted(String(signal.reason ?? 'SIGINT'));
}

interface PointContext {
  scenario: Scenario;
  loadDriver: LoadDriver;
  writer: ResultWriter;
  teardown: Teardown;
  signal: AbortSignal;
  log: (line: string) => void;
  cpus: { generator?: string; servers?: string };
}

/**
 * One point. A failure inside it (an LB that won't start, a parse error) is recorded on the point
 * and the run moves on; an interruption propagates.
 */
async function runPoint(view: NetnsTopology | undefined, point: PlannedPoint, c: PointContext): Promise<void> {
  const meta: PointMeta = { id: point.id, lb: { ...point.lb, name: point.lb.name! }, params: point.params };
  await c.writer.startPoint(meta);
  // The loader refuses these already; a programmatic caller gets the same reason on the point.
  const refused = point.params.family === 6 ? ipv6Refusal(point.lb) : undefined;
  if (!view || refused) {
    const why = refused ?? 'this topology was not built dual-stack';
    await c.writer.setPointError(meta, new PreflightError(`family 6: ${why}`, 'measure it with family 4'), { skipped: true });
    return;
  }
  const topo = view;
  if (topo.network) await c.writer.setPointNetwork(meta, topo.network);
  const ledger = new Teardown();
  const release = c.teardown.add(`load balancer ${point.lb.name}`, () => ledger.unwind());
  let deployed: Deployed | undefined;
  // Timings of deployments a restart-lb replaced.
  const earlierTimings: Record<string, number[]> = {};
  try {
    const backends = topo.backends.slice(0, point.params.backends);
    const driver = getLbDriver(point.lb.kind);
    // One ledger per deployment, so restart-lb can unwind one and apply afresh.
    let lbLedger = new Teardown();
    ledger.add(`load balancer ${point.lb.name} deployment`, () => lbLedger.unwind());
    const deploy = async (list: BackendNode[]): Promise<Deployed> => {
      const d = await driver.apply({
        topo,
        spec: point.lb as never,
        backends: list,
        port: LB_PORT,
        teardown: lbLedger,
        workDir: join(topo.workDir, 'lb', point.id.replace(/[^A-Za-z0-9_-]+/g, '_')),
        log: c.log,
        cpus: c.cpus.servers,
        protocols: c.loadDriver.protocols?.(c.scenario.load),
      });
      lbLedger.add(`teardown ${point.lb.name}`, () => d.teardown());
      return d;
    };
    // Before the LB: its teardown runs first (LIFO), then the host settings go back.
    if (point.tuning) await c.writer.setPointTuning(meta, await applyTuning(point.tuning, topo.lb, ledger, c.log, topo.root));
    deployed = await deploy(backends);
    await c.writer.setPointDescribe(meta, await deployed.describe());

    const load = { ...c.scenario.load, connections: point.params.connections, threads: point.params.threads };
    const target = { ...deployed.endpoint, path: load.path };
    const workDir = join(topo.workDir, 'load');
    const events = c.scenario.events;
    const state = new PointState(topo, backends, point.lb as { weights?: Record<string, number> }, () => deployed!, async (list) => {
      mergeTimings(earlierTimings, deployed?.timings?.());
      await lbLedger.unwind();
      lbLedger = new Teardown();
      deployed = await deploy(list);
    });
    const clock = events.length ? await clockOffset(topo.client.host) : undefined;
    // Non-HTTP generators count what arrived themselves (sinks, servers on the backends).
    const attached = await c.loadDriver.attach?.({ topo, backends, endpoint: deployed.endpoint, load, teardown: ledger, workDir });
    const counters = attached ? () => attached.counters() : () => topo.backendCounters();
    const extra = attached?.extra;
    const floodPps = point.params.floodPps ?? 0;
    const flood = floodPps > 0 ? await prepareFlood({ topo, endpoint: deployed.endpoint, teardown: ledger, workDir }, c.scenario.load.flood?.packet ?? 'syn') : undefined;
    const costs: number[] = [];
    const startSampling = c.scenario.samplers === false ? undefined : await pointSamplers(topo, backends, c.scenario.samplers.interval);
    for (let rep = 0; rep < point.repetitions; rep++) {
      throwIfAborted(c.signal);
      const idle = await waitIdle(topo.root, c.scenario.settle, c.signal);
      if (load.warmup > 0) {
        await runLoad(topo.client.host, c.loadDriver, { load, target, durationS: load.warmup, cpus: c.cpus.generator, workDir, extra }, { signal: c.signal });
      }
      const before = await counters();
      const dpBefore = await deployed.counters?.();
      // The flood is under way before the probe starts and still going when it ends.
      const flooding = flood?.start(floodPps, load.duration + (events.length ? START_LEAD_MS / 1000 : 0) + 2 * FLOOD_MARGIN_S + load.timeout, c.cpus.generator);
      // Stopped by the point's ledger if the run is interrupted meanwhile.
      if (flooding) await sleep(FLOOD_MARGIN_S * 1000, c.signal);
      const startedAt = new Date().toISOString();
      // Events run beside the generator; whatever ends the load (done, failed) ends them too.
      const eventsAc = new AbortController();
      const stopEvents = () => eventsAc.abort(c.signal.reason);
      c.signal.addEventListener('abort', stopEvents, { once: true });
      // With events, the generator starts at an agreed moment (its clock) and events count from it.
      const t0 = Date.now() + (events.length ? START_LEAD_MS : 0);
      const startAtEpochMs = events.length ? t0 + clock!.offsetMs : undefined;
      const applied = events.length ? runEventSchedule(events, state, t0, eventsAc.signal).catch((e) => (eventsAc.signal.aborted ? [] : Promise.reject(e))) : Promise.resolve([]);
      let loadRun: Awaited<ReturnType<typeof runLoad>>;
      let happened: AppliedEvent[];
      const sampling = startSampling?.(load.duration + (t0 - Date.now()) / 1000 + (c.loadDriver.extraBoundS ?? 0) + load.timeout + 5);
      let samples: Record<string, Sample[]> | undefined;
      let flooded: FloodResult | undefined;
      try {
        loadRun = await runLoad(topo.client.host, c.loadDriver, { load, target, durationS: load.duration, cpus: c.cpus.generator, workDir, startAtEpochMs, extra }, { signal: c.signal });
      } finally {
        eventsAc.abort('load finished');
        c.signal.removeEventListener('abort', stopEvents);
        // Stopped whatever happened to the load; a sampler that can't be read only fails the
        // repetition when the load itself succeeded (its error would hide the load's).
        const sampled = sampling ? sampling.stop() : Promise.resolve(undefined);
        happened = await applied;
        // Back to the point's starting state before anything is read or measured again.
        await state.restore();
        samples = await sampled.catch((e) => (loadRun! ? Promise.reject(e) : undefined));
        flooded = await flooding?.finish(true).catch((e) => (loadRun! ? Promise.reject(e) : undefined));
      }
      const { metrics: gen, output } = loadRun;
      const after = await counters();
      const dpAfter = await deployed.counters?.();
      const names = backends.map((b) => b.name);
      const metrics: Metrics = attached ? attached.metrics(gen, counterDelta(before, after)) : { ...gen, perBackend: perBackendDelta(before, after, names) } as Metrics;
      const dead = deadPointMessage(metrics, load.duration);
      if (dead) {
        // A complete report of nothing served is a dead LB, not a data point (its latencies are NaN).
        throw new ProvisionError(`${point.lb.name} ${dead}`, `try it by hand: lbbench up ${c.scenario.file ?? '<scenario>'} --lb ${point.lb.name}`);
      }
      // The tester only names the backends that answered; fairness is over all of this point's
      // (connections for the traffic tester, whose connections carry many messages each).
      const seen = ('connectionsPerBackend' in metrics ? metrics.connectionsPerBackend : 'testerPerBackend' in metrics ? metrics.testerPerBackend : undefined) as Record<string, number> | undefined;
      if (seen) Object.assign(metrics, { fairness: jainFairness(names.map((n) => seen[n] ?? 0)) });
      const eventResults = happened.length ? placeEvents(happened, c.loadDriver, output.stdout, clock!) : undefined;
      const bottleneck = samples
        ? bottleneckOf(samples, {
            lb: point.lb,
            generatorThreads: load.threads,
            generatorSaturated: (metrics as { tester?: { saturated?: boolean } }).tester?.saturated,
            backendWorkers: c.scenario.topology.backendWorkers,
            linkBitsPerSec: (c.scenario.topology as { linkRate?: number }).linkRate,
            backends: names,
          })
        : undefined;
      const repetition: Repetition = {
        index: rep,
        startedAt,
        idle,
        metrics,
        raw: { tool: c.loadDriver.name, argv: output.argv, stdout: output.stdout, stderr: output.stderr },
        ...(dpBefore && dpAfter ? { datapath: counterDelta(dpBefore, dpAfter) } : {}),
        ...(eventResults ? { events: eventResults } : {}),
        ...(samples ? { samples } : {}),
        ...(bottleneck ? { bottleneck } : {}),
        ...(flooded ? { flood: flooded } : {}),
      };
      await c.writer.addRepetition(meta, repetition);
      const cost = cpuPerMillion(samples?.lb, rateOf(repetition), topo.lb.ns === undefined, lbWorkers(point.lb) !== undefined);
      if (cost !== undefined) costs.push(cost);
      c.log(`    rep ${rep + 1}/${point.repetitions}: ${fmtMetrics(metrics)}${bottleneck ? ` · limit: ${bottleneck.verdict}` : ''}`);
      for (const e of eventResults ?? []) c.log(`      ${fmtEvent(e)}`);
    }
    if (costs.length) await c.writer.setPointCpuPerMillion(meta, median(costs));
  } catch (e) {
    if (c.signal.aborted) throw e;
    await c.writer.setPointError(meta, e);
    c.log(`    point failed: ${e instanceof LbbError ? e.message : (e as Error).stack ?? e}`);
  } finally {
    const timings = mergeTimings(earlierTimings, deployed?.timings?.());
    if (Object.keys(timings).length) await c.writer.setPointTimings(meta, timings);
    await release();
  }
  // Let sockets in TIME_WAIT and conntrack entries of this LB not bleed into the next one.
  await sleep(100);
}

function mergeTimings(into: Record<string, number[]>, more: Record<string, number[]> | undefined): Record<string, number[]> {
  for (const [k, v] of Object.entries(more ?? {})) into[k] = [...(into[k] ?? []), ...v];
  return into;
}

/** What cumulative counters counted between two snapshots; a counter that went backwards (a restart) keeps its new value. */
export function counterDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(after).map(([k, v]) => {
      const b = before[k] ?? 0;
      return [k, v >= b ? v - b : v];
    }),
  );
}

/**
 * Requests each backend served between two counter snapshots; each snapshot read is itself one
 * request. A counter that went backwards belongs to a server restarted in between (kill-backends).
 */
export function perBackendDelta(before: Record<string, number>, after: Record<string, number>, names: string[]): Record<string, number> {
  return Object.fromEntries(
    names.map((n) => {
      const [b, a] = [before[n] ?? 0, after[n] ?? 0];
      return [n, Math.max(0, a >= b ? a - b - 1 : a - 1)];
    }),
  );
}

function fmtRate(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** One line per repetition in the run's progress output. */
export function fmtMetrics(m: Metrics): string {
  if ('packets' in m) {
    return `${fmtRate(m.packets.receivedPerSec)} pps arrived of ${fmtRate(m.packets.sentPerSec)} sent (loss ${(100 * m.packets.lossFraction).toFixed(1)}%)`;
  }
  if ('connectionsPerSec' in m) {
    const c = m.connections;
    return `${fmtRate(m.connectionsPerSec)} connections/s (${m.tool}), ${c.lost} lost, ${c.failedConnects} failed connects, fairness ${m.fairness.toFixed(3)}`;
  }
  if ('stream' in m && m.stream.udp) {
    return `${fmtRate(m.stream.udp.packetsPerSec)} datagrams/s arrived (loss ${(100 * m.stream.udp.lossFraction).toFixed(1)}%), ${(m.stream.bitsPerSec / 1e9).toFixed(3)} Gbit/s`;
  }
  if ('stream' in m) return `${(m.stream.bitsPerSec / 1e9).toFixed(2)} Gbit/s${m.stream.retransmits !== undefined ? `, ${m.stream.retransmits} retransmits` : ''}`;
  const e = m.errors;
  const total = e.connect + e.read + e.write + e.timeout + e.status;
  return `${fmtRate(m.requestsPerSec)} req/s, p99 ${(m.latencyUs.p99 / 1000).toFixed(2)} ms${total ? `, ${total} errors` : ''}`;
}

/** Why a repetition's numbers say the LB served nothing, or undefined. */
export function deadPointMessage(m: Metrics, durationS: number): string | undefined {
  if ('packets' in m) return m.packets.received === 0 ? `let none of ${m.packets.sent} packets through in ${durationS}s` : undefined;
  if ('stream' in m) return m.stream.bitsPerSec === 0 ? `carried no stream data in ${durationS}s` : undefined;
  if ('connectionsPerSec' in m) return m.connections.total === m.connections.failedConnects ? `let no connection through in ${durationS}s` : undefined;
  return m.requests === 0 ? `served no request in ${durationS}s (errors: ${JSON.stringify(m.errors)})` : undefined;
}

export { lbDrivers };
