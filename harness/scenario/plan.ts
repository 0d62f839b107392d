// Matrix expansion: a Scenario becomes the ordered list of points the runner measures. Pure, so
// `run --dry-run` and the runner always agree on what a scenario means.
import type { NamedLbSpec, Overlay, Scenario, TuningProfile } from './schema.ts';

export interface PointParams {
  backends: number;
  connections: number;
  threads: number;
  /** The tuning profile's name, when the scenario has profiles. */
  tuning?: string;
  /** The backend network, when the scenario sweeps it. */
  overlay?: Overlay;
  /** Background flood rate (packets/s) under which the load is the probe, when the scenario has a flood. */
  floodPps?: number;
  /** The address family, when the scenario sweeps it. */
  family?: 4 | 6;
}

export interface PlannedPoint {
  /** Stable across runs of the same scenario: results are matched on it by compare-reports. */
  id: string;
  lb: NamedLbSpec;
  params: PointParams;
  repetitions: number;
  /** Host settings applied to the LB node for this point (scenario `tuning`). */
  tuning?: TuningProfile;
  /** Seconds each repetition takes before any provisioning cost, for estimates. */
  timing: { warmup: number; duration: number; settle: number };
}

/**
 * Load balancers in scenario order, then backends, connections, threads, tuning profiles, each in
 * the order written.
 * An axis appears in the id only when it is listed under `sweep` (backends always is), so adding
 * `sweep.connections` later does not rename the points of scenarios that never swept it.
 */
export function plan(scenario: Scenario): PlannedPoint[] {
  const { sweep, load } = scenario;
  const axes = {
    backends: sweep.backends,
    connections: sweep.connections ?? [load.connections],
    threads: sweep.threads ?? [load.threads],
  };
  const floods: (number | undefined)[] = sweep.floodPps ?? (load.flood ? [load.flood.pps] : [undefined]);
  const families: (4 | 6 | undefined)[] = sweep.family ?? [undefined];
  const inId = (axis: 'backends' | 'connections' | 'threads') => axis === 'backends' || sweep[axis] !== undefined;
  // A fixed flood rate is the scenario's, like load.connections: only a swept one names points.
  const shown = (k: keyof PointParams) => (k === 'tuning' || k === 'overlay' || k === 'family' ? true : k === 'floodPps' ? sweep.floodPps !== undefined : inId(k));
  const timing = { warmup: load.warmup, duration: load.duration, settle: scenario.settle };
  const profiles: (TuningProfile | undefined)[] = scenario.tuning.length ? scenario.tuning : [undefined];
  // Outermost: each overlay is a topology of its own, built once for all its points.
  const overlays: (Overlay | undefined)[] = sweep.overlay ?? [undefined];
  return overlays.flatMap((overlay) => scenario.loadBalancers.flatMap((lb) =>
    axes.backends.flatMap((backends) =>
      axes.connections.flatMap((connections) =>
        axes.threads.flatMap((threads) =>
          profiles.flatMap((tuning) => floods.flatMap((floodPps) => families.map((family) => {
            const params: PointParams = {
              backends,
              connections,
              threads,
              ...(tuning ? { tuning: tuning.name } : {}),
              ...(overlay ? { overlay } : {}),
              ...(floodPps !== undefined ? { floodPps } : {}),
              ...(family ? { family } : {}),
            };
            const tags = (Object.keys(params) as (keyof PointParams)[]).filter(shown).map((k) => `${k}=${params[k]}`);
            return { id: `${lb.name}/${tags.join(',')}`, lb, params, repetitions: scenario.repetitions, timing, ...(tuning ? { tuning } : {}) };
          }))),
        ),
      ),
    ),
  ));
}

/** One line for humans: what will be measured and roughly how long it takes. */
export function describePlan(points: PlannedPoint[]): string {
  if (!points.length) return 'nothing to run: the plan has no points';
  const distinct = <T>(f: (p: PlannedPoint) => T) => [...new Set(points.map(f))];
  const lbs = distinct((p) => p.lb.name);
  const dims = [`${lbs.length} load balancer${lbs.length === 1 ? '' : 's'}`];
  for (const axis of ['backends', 'connections', 'threads', 'tuning', 'overlay', 'floodPps', 'family'] as const) {
    const values = distinct((p) => p.params[axis]);
    if ((values.length > 1 || axis === 'backends') && values[0] !== undefined) dims.push(`${axis} ${values.join(',')}`);
  }
  const runs = points.reduce((n, p) => n + p.repetitions, 0);
  const seconds = points.reduce((s, p) => s + p.repetitions * (p.timing.warmup + p.timing.duration + p.timing.settle), 0);
  const reps = distinct((p) => p.repetitions);
  const repText = reps.length === 1 ? `${reps[0]} repetition${reps[0] === 1 ? '' : 's'}` : 'repetitions';
  return (
    `${points.length} point${points.length === 1 ? '' : 's'} (${dims.join(' × ')}) × ${repText} = ` +
    `${runs} measurement${runs === 1 ? '' : 's'}, about ${formatSeconds(seconds)} plus setup`
  );
}

/** "45s", "7m21s", "2h05m": precise enough for an estimate, short enough for one line. */
export function formatSeconds(total: number): string {
  const s = Math.round(total);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
