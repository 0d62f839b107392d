// Scheduled events during a measurement (scale in/out, weight changes, killed backends, LB restarts)
// and their accounting: which connections were alive when an event happened, how many of those it
// broke, and how many it would have broken at best.
import type { Host } from '../host/types.ts';
import type { Deployed } from '../lb/types.ts';
import type { LoadDriver } from '../load/types.ts';
import type { RunTopology } from '../topology/netns.ts';
import type { BackendNode } from '../topology/types.ts';
import { ProvisionError } from '../errors.ts';
import type { EventAction, EventSpec } from '../scenario/schema.ts';
import type { ConnectionRecord } from '../load/traffic.ts';
import type { EventResult } from '../results/types.ts';
import { sleep } from '../util/time.ts';

/** What the runner lets events do to the running point. */
export interface EventControl {
  /** Backends of this point that could be in the LB (the point's set plus any the topology has beyond it). */
  readonly available: string[];
  /** Backends currently in the LB, in order. */
  inLb(): string[];
  killed(): string[];
  setBackends(names: string[]): Promise<void>;
  setWeights(weights: Record<string, number>): Promise<void>;
  killBackends(names: string[]): Promise<void>;
  startBackends(names: string[]): Promise<void>;
  restartLb(): Promise<void>;
  /** Fail an LB node of the running LB; returns which (restored when the repetition ends). */
  failLbNode(how: 'link-down' | 'kill'): Promise<string[]>;
  /** The datapath's own measure of the last backend change (ECMP: issued → router's table updated), once. */
  takeUpdateMs?(): number | undefined;
}

/** An event as it happened, on the runner's clock, before it is placed on the tester's timeline. */
export interface AppliedEvent {
  spec: EventSpec;
  target: string[];
  /** Runner's Date.now() when applying began. */
  startedEpochMs: number;
  tookMs: number;
  /** Backends (LB nodes) in the LB once it was applied. */
  inLb: number;
  updateMs?: number;
  error?: string;
}

/** Removing and killing take the last backends in use; adding and starting the first ones out. */
export function resolveTarget(e: EventSpec, ctl: Pick<EventControl, 'available' | 'inLb' | 'killed'>): string[] {
  // fail-lb-node: the driver knows which node is the active one; apply() says.
  if (e.action === 'restart-lb' || e.action === 'set-lb-nodes' || e.action === 'fail-lb-node') return [];
  if (e.action === 'set-weights') return Object.keys(e.weights);
  if (e.backends) return [...e.backends];
  const count = e.count!;
  const inLb = ctl.inLb();
  const killed = ctl.killed();
  switch (e.action) {
    case 'remove-backends':
    case 'remove-lb-nodes':
      return inLb.slice(-count);
    case 'kill-backends':
      return inLb.filter((n) => !killed.includes(n)).slice(-count);
    case 'add-backends':
    case 'add-lb-nodes':
      return ctl.available.filter((n) => !inLb.includes(n)).slice(0, count);
    case 'start-backends':
      return killed.slice(0, count);
  }
}

async function apply(e: EventSpec, target: string[], ctl: EventControl): Promise<string[] | void> {
  const inLb = ctl.inLb();
  switch (e.action) {
    case 'remove-backends':
    case 'remove-lb-nodes':
      return ctl.setBackends(inLb.filter((n) => !target.includes(n)));
    case 'add-backends':
    case 'add-lb-nodes':
      return ctl.setBackends(ctl.available.filter((n) => inLb.includes(n) || target.includes(n)));
    case 'set-weights':
      return ctl.setWeights(e.weights);
    case 'kill-backends':
      return ctl.killBackends(target);
    case 'start-backends':
      return ctl.startBackends(target);
    case 'restart-lb':
      return ctl.restartLb();
    case 'set-lb-nodes':
      return;
    case 'fail-lb-node':
      return ctl.failLbNode(e.how);
  }
}

/**
 * set-lb-nodes says where to end up; what happens is a withdrawal or an announcement of so many
 * nodes, which is what the loss accounting and the report need to know.
 */
export function effectiveEvent(e: EventSpec, inLb: number): EventSpec {
  if (e.action !== 'set-lb-nodes' || e.count === inLb) return e;
  return e.count < inLb ? { at: e.at, action: 'remove-lb-nodes', count: inLb - e.count } : { at: e.at, action: 'add-lb-nodes', count: e.count - inLb };
}

/**
 * Applies the events at their times after `t0` (runner clock). A failing event is recorded and the
 * rest still run: the measurement is already under way and the other events are still worth having.
 */
export async function runEventSchedule(events: EventSpec[], ctl: EventControl, t0: number, signal: AbortSignal): Promise<AppliedEvent[]> {
  const done: AppliedEvent[] = [];
  for (const spec of [...events].sort((a, b) => a.at - b.at)) {
    const wait = t0 + spec.at * 1000 - Date.now();
    if (wait > 0) await sleep(wait, signal);
    signal.throwIfAborted();
    const e = effectiveEvent(spec, ctl.inLb().length);
    let target = resolveTarget(e, ctl);
    const startedEpochMs = Date.now();
    ctl.takeUpdateMs?.();
    try {
      target = (await apply(e, target, ctl)) ?? target;
      const updateMs = ctl.takeUpdateMs?.();
      done.push({ spec: e, target, startedEpochMs, tookMs: Date.now() - startedEpochMs, inLb: ctl.inLb().length, ...(updateMs !== undefined ? { updateMs } : {}) });
    } catch (err) {
      if (signal.aborted) throw err;
      done.push({ spec: e, target, startedEpochMs, tookMs: Date.now() - startedEpochMs, inLb: ctl.inLb().length, error: (err as Error).message ?? String(err) });
    }
  }
  return done;
}

/** Actions whose ideal is to break exactly the connections on their targets; the others ideally break none. */
const BREAKS_TARGETS: EventAction[] = ['remove-backends', 'remove-lb-nodes', 'kill-backends', 'fail-lb-node'];
/** An active/backup pair's active node (lb0) carries every connection; an ECMP LB node is a backend and carries its own. */
const carriesAll = (target: string[]) => target.some((t) => /^lb\d+$/.test(t));

/**
 * Pure. For each event (at = ms on the tester's timeline, ascending): the connections alive at
 * that moment, those of them lost before the next event (or the end), and the ideal.
 * idealLoss is what a perfectly consistent LB without connection state would break: the share of
 * alive connections on the backends taken away (k/n of them on an even spread). An LB that keeps
 * connection state can do better for a removal (its old connections drain); a hash that reshuffles
 * does worse.
 */
export function accountEvents(
  records: ConnectionRecord[],
  events: { atMs: number; action: EventAction; target: string[] }[],
  endMs: number,
): Pick<EventResult, 'alive' | 'lost' | 'observedLoss' | 'idealLoss' | 'perBackend' | 'lostBy'>[] {
  return events.map((e, k) => {
    const until = events[k + 1]?.atMs ?? endMs;
    const alive = records.filter((r) => r.outcome !== 'connect-failed' && r.start <= e.atMs && (r.end === null || r.end > e.atMs));
    const lost = alive.filter((r) => r.outcome === 'lost' && r.end! <= until);
    const perBackend: Record<string, { alive: number; lost: number }> = {};
    for (const r of alive) {
      const b = (perBackend[r.backend ?? 'unknown'] ??= { alive: 0, lost: 0 });
      b.alive++;
      if (lost.includes(r)) b.lost++;
    }
    const lostBy: Record<string, number> = {};
    for (const r of lost) lostBy[r.reason ?? 'unknown'] = (lostBy[r.reason ?? 'unknown'] ?? 0) + 1;
    const onTarget = !BREAKS_TARGETS.includes(e.action) ? 0 : carriesAll(e.target) ? alive.length : alive.filter((r) => r.backend !== null && e.target.includes(r.backend)).length;
    const share = (n: number) => (alive.length ? n / alive.length : 0);
    return { alive: alive.length, lost: lost.length, observedLoss: share(lost.length), idealLoss: share(onTarget), perBackend, lostBy };
  });
}

/**
 * How far `host`'s clock is ahead of this process's, in ms, with its uncertainty (half the round
 * trip). Events are timed here and connections on the generator host; on one machine this is ~0,
 * on a guest or an SSH host it need not be.
 */
export async function clockOffset(host: Host): Promise<{ offsetMs: number; uncertaintyMs: number }> {
  let best: { offsetMs: number; uncertaintyMs: number } | undefined;
  for (let i = 0; i < 3; i++) {
    const t0 = Date.now();
    const out = (await host.exec(['date', '+%s%N'], { timeoutMs: 10_000 })).stdout.trim();
    const t1 = Date.now();
    const remote = Number(out) / 1e6;
    if (!Number.isFinite(remote)) throw new Error(`date +%s%N on ${host.name} printed ${JSON.stringify(out)}`);
    const cand = { offsetMs: remote - (t0 + t1) / 2, uncertaintyMs: (t1 - t0) / 2 };
    if (!best || cand.uncertaintyMs < best.uncertaintyMs) best = cand;
  }
  return best!;
}

/**
 * The running point as events see it, and the way back to how it started: every repetition begins
 * with the point's backends in the LB, none killed, the scenario's weights.
 */
export class PointState implements EventControl {
  readonly available: string[];
  private current: string[];
  private dead: string[] = [];
  private weightsChanged = false;

  constructor(
    private readonly topo: RunTopology,
    private readonly initial: BackendNode[],
    private readonly spec: { weights?: Record<string, number> },
    private readonly deployed: () => Deployed,
    private readonly redeploy: (backends: BackendNode[]) => Promise<void>,
  ) {
    this.available = topo.backends.map((b) => b.name);
    this.current = initial.map((b) => b.name);
  }

  inLb(): string[] {
    return [...this.current];
  }

  killed(): string[] {
    return [...this.dead];
  }

  private nodes(names: string[]): BackendNode[] {
    return names.map((n) => {
      const b = this.topo.backends.find((x) => x.name === n);
      if (!b) throw new ProvisionError(`no backend ${n} in this topology`);
      return b;
    });
  }

  async setBackends(names: string[]): Promise<void> {
    const d = this.deployed();
    const before = d.timings?.().routeUpdateMs?.length ?? 0;
    await d.setBackends(this.nodes(names));
    this.current = [...names];
    const delays = d.timings?.().routeUpdateMs ?? [];
    if (delays.length > before) this.lastUpdateMs = delays.at(-1);
  }

  private lastUpdateMs: number | undefined;
  takeUpdateMs(): number | undefined {
    const ms = this.lastUpdateMs;
    this.lastUpdateMs = undefined;
    return ms;
  }

  async setWeights(weights: Record<string, number>): Promise<void> {
    const d = this.deployed();
    if (!d.setWeights) throw new ProvisionError('this load balancer takes no weights');
    this.weightsChanged = true;
    await d.setWeights(weights);
  }

  async killBackends(names: string[]): Promise<void> {
    if (!this.topo.killBackends) throw new ProvisionError('this topology cannot kill backend servers');
    this.dead.push(...names.filter((n) => !this.dead.includes(n)));
    await this.topo.killBackends(names);
  }

  async startBackends(names: string[]): Promise<void> {
    if (!this.topo.startBackends) throw new ProvisionError('this topology cannot start backend servers');
    await this.topo.startBackends(names);
    this.dead = this.dead.filter((n) => !names.includes(n));
  }

  async restartLb(): Promise<void> {
    await this.redeploy(this.nodes(this.current));
    // A fresh deployment has the scenario's weights again.
    this.weightsChanged = false;
  }

  private failed: { restore(): Promise<void> }[] = [];
  async failLbNode(how: 'link-down' | 'kill'): Promise<string[]> {
    const d = this.deployed();
    if (!d.failLbNode) throw new ProvisionError('this load balancer has no LB node to fail (vrrp and ecmp have)');
    const f = await d.failLbNode(how);
    this.failed.push(f);
    return f.target;
  }

  async restore(): Promise<void> {
    // Nodes come back first: the rest of the way back may need them.
    for (const f of this.failed.splice(0).reverse()) await f.restore();
    if (this.dead.length) await this.startBackends(this.dead);
    const want = this.initial.map((b) => b.name);
    if (want.join() !== this.current.join()) await this.setBackends(want);
    if (this.weightsChanged) {
      await this.setWeights(Object.fromEntries(want.map((n) => [n, this.spec.weights?.[n] ?? 1])));
      this.weightsChanged = false;
    }
  }
}

/** A failure shows within this long of the event or was not the event's doing. */
const OUTAGE_ONSET_MS = 1000;

/**
 * Pure. The outage an event caused, from the tester's answer gaps: the first span without any answer
 * that began between one gap threshold before the event and OUTAGE_ONSET_MS after it (and before
 * `untilMs`, the next event). ms: from the last answer before to the first after (to the end if
 * none came); 0 when answers never stopped for longer than the threshold.
 */
export function interruptionAt(
  gaps: { overMs: number; spans: [number, number | null][] },
  atMs: number,
  untilMs: number,
  endMs: number,
): NonNullable<EventResult['interruption']> {
  const span = gaps.spans.find(([from, to]) => from >= atMs - gaps.overMs && from < Math.min(untilMs, atMs + OUTAGE_ONSET_MS) && (to === null || to > atMs));
  if (!span) return { ms: 0, overMs: gaps.overMs };
  const [from, to] = span;
  return { ms: Math.round((to ?? endMs) - from), overMs: gaps.overMs, lastAnswerMs: Math.round(from - atMs), firstAnswerMs: to === null ? null : Math.round(to - atMs) };
}

/**
 * Pure. How long after the event connections kept failing: the last loss or failed connect before
 * the next event, in ms after this one. A failure that nothing repairs (a dead path still in a
 * static route) keeps this near the next event or the end.
 */
export function lastFailure(records: ConnectionRecord[], atMs: number, untilMs: number): { lastFailureMs?: number } {
  const ends = records.filter((r) => r.outcome !== 'lasted' && r.end !== null && r.end >= atMs && r.end < untilMs).map((r) => r.end!);
  return ends.length ? { lastFailureMs: Math.round(Math.max(...ends) - atMs) } : {};
}

/** Puts the runner-clock events on the generator's timeline and accounts their losses. */
export function placeEvents(
  happened: AppliedEvent[],
  driver: LoadDriver,
  stdout: string,
  clock: { offsetMs: number },
): EventResult[] {
  if (!driver.timeline) throw new ProvisionError(`${driver.name} does not follow connections; events need generator: traffic`);
  const { startEpochMs, endMs, records, answerGaps } = driver.timeline(stdout);
  const placed = happened.map((h) => ({ h, atMs: h.startedEpochMs + clock.offsetMs - startEpochMs }));
  const losses = accountEvents(records, placed.map((p) => ({ atMs: p.atMs, action: p.h.spec.action, target: p.h.target })), endMs);
  return placed.map(({ h, atMs }, i) => ({
    at: Math.round(atMs) / 1000,
    scheduledAt: h.spec.at,
    action: h.spec.action,
    target: h.target,
    ...(h.spec.action === 'set-weights' ? { weights: h.spec.weights } : {}),
    ...(h.spec.action === 'fail-lb-node' ? { how: h.spec.how } : {}),
    tookMs: h.tookMs,
    inLb: h.inLb,
    ...(h.updateMs !== undefined ? { updateMs: h.updateMs } : {}),
    ...losses[i]!,
    ...(answerGaps ? { interruption: interruptionAt(answerGaps, atMs, placed[i + 1]?.atMs ?? endMs, endMs) } : {}),
    ...lastFailure(records, atMs, placed[i + 1]?.atMs ?? endMs),
    ...(h.error ? { error: h.error } : {}),
  }));
}

export function fmtEvent(e: EventResult): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const what = `${e.action}${e.target.length ? ` ${e.target.join(',')}` : ''}`;
  if (e.error) return `${what} @${e.at.toFixed(2)}s FAILED: ${e.error}`;
  const out = e.interruption?.ms ? `; no answers for ${e.interruption.ms} ms` : '';
  return `${what} @${e.at.toFixed(2)}s (${e.tookMs} ms): lost ${e.lost}/${e.alive} = ${pct(e.observedLoss)} (ideal ${pct(e.idealLoss)})${out}`;
}
