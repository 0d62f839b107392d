// Cross-field checks of `events:` that zod cannot express: which backends exist at every point,
// which LBs and topologies can do an action, and whether events are far enough apart for their
// losses to be told apart. Each finding names the event and says what to write instead.
import { EventSpec, expandTimeline, LbNodeTimeline, LbSpec, LoadSpec, ownsNamespaces, SweepSpec, topologyName, type TopologySpec } from './schema.ts';
import { rawList, valueAt, type Finding } from './raw.ts';

/** Generators that record every connection's outcome, which event accounting works from. */
export const EVENT_GENERATORS = ['traffic', 'ctraffic'];
/** LB kinds whose spec has weights, i.e. whose driver changes them live. */
export const WEIGHTED_KINDS = LbSpec.options.filter((o) => 'weights' in o.shape).map((o) => o.shape.kind.value as string);
const LB_NODE_KINDS = ['ecmp'];
const LB_NODE_ACTIONS: string[] = ['remove-lb-nodes', 'add-lb-nodes', 'set-lb-nodes'];

const BACKEND_ACTIONS = new Set(['remove-backends', 'add-backends', 'remove-lb-nodes', 'add-lb-nodes', 'kill-backends', 'start-backends']);

/** Topologies where the harness started the backend servers itself and can kill them. */
export function canKillBackends(t: TopologySpec | undefined): boolean {
  return !t || ownsNamespaces(t);
}

export function eventFindings(data: unknown, topo: TopologySpec | undefined): Finding[] {
  const raw = rawList(data, ['events']);
  if (raw.length === 0) return [];
  const load = LoadSpec.safeParse(valueAt(data, ['load']) ?? {});
  const sweep = SweepSpec.safeParse(valueAt(data, ['sweep']) ?? {});
  const lbs = rawList(data, ['loadBalancers'])
    .map((l) => LbSpec.safeParse(l))
    .filter((r) => r.success)
    .map((r) => r.data);
  const findings: Finding[] = [];
  if (load.success && !EVENT_GENERATORS.includes(load.data.generator)) {
    findings.push({
      path: ['events'],
      message: `events are measured by what each connection went through; load.generator ${load.data.generator} does not record that — set load.generator: traffic`,
    });
  }
  const minBackends = sweep.success ? Math.min(...sweep.data.backends) : Infinity;
  const topoBackends = topo ? (topo.kind === 'baremetal' ? topo.backendHosts.length : (topo.backends ?? (sweep.success ? Math.max(...sweep.data.backends) : Infinity))) : Infinity;
  // A timeline's steps are checked as the events they become; findings name the timeline.
  const parsed: { i: number; e: EventSpec; step?: number }[] = [];
  raw.forEach((r, i) => {
    const p = EventSpec.safeParse(r);
    if (p.success) parsed.push({ i, e: p.data });
    const t = LbNodeTimeline.safeParse(r);
    if (t.success) expandTimeline(t.data).forEach((e, step) => parsed.push({ i, e, step }));
  });

  for (const { i, e, step } of parsed) {
    const path = ['events', i];
    const which = step === undefined ? '' : `step ${step + 1} of the timeline: `;
    if (load.success && e.at >= load.data.duration) {
      findings.push({
        path: [...path, step === undefined ? 'at' : 'every'],
        message: step === undefined
          ? `at ${e.at} s is not inside the ${load.data.duration} s measurement; choose a time below load.duration`
          : `${which}at ${e.at} s is not inside the ${load.data.duration} s measurement; use fewer steps, a shorter every, or a longer load.duration`,
      });
      if (step !== undefined) continue;
    }
    if (e.action === 'set-lb-nodes' && e.count > topoBackends) {
      findings.push({ path: step === undefined ? [...path, 'count'] : path, message: `${which}${e.count} LB nodes: the topology builds ${topoBackends} (for ecmp the LB nodes are the backends); use at most ${topoBackends}` });
    }
    if (BACKEND_ACTIONS.has(e.action)) {
      const t = e as { backends?: string[]; count?: number };
      if ((t.backends === undefined) === (t.count === undefined)) {
        findings.push({ path, message: `${e.action} needs either backends: [be1, …] or count: N (not ${t.backends ? 'both' : 'neither'})` });
      }
      const removing = e.action.startsWith('remove') || e.action === 'kill-backends';
      if (t.count !== undefined && removing && t.count >= minBackends) {
        findings.push({ path: [...path, 'count'], message: `count ${t.count} would leave no backend at the point with ${minBackends} (sweep.backends); use at most ${minBackends - 1}` });
      }
      for (const [j, name] of (t.backends ?? []).entries()) {
        const n = Number(name.slice(2));
        const limit = removing || e.action === 'start-backends' ? minBackends : topoBackends;
        if (n >= limit) {
          findings.push({
            path: [...path, 'backends', j],
            message: removing || e.action === 'start-backends'
              ? `${name} is not in use at the point with ${minBackends} backends (sweep.backends); name one of be0…be${minBackends - 1}, or use count:`
              : `${name} does not exist: the topology builds ${topoBackends} backends (be0…be${topoBackends - 1})`,
          });
        }
      }
    }
    if (e.action === 'set-weights') {
      const other = lbs.filter((l) => !WEIGHTED_KINDS.includes(l.kind)).map((l) => l.name ?? l.kind);
      if (other.length) findings.push({ path: [...path, 'action'], message: `set-weights: ${other.join(', ')} take no weights (only ${WEIGHTED_KINDS.join(', ')}); measure them in a scenario of their own` });
    }
    if (LB_NODE_ACTIONS.includes(e.action) && (step ?? 0) === 0) {
      const other = lbs.filter((l) => !LB_NODE_KINDS.includes(l.kind)).map((l) => l.name ?? l.kind);
      const action = step === undefined ? e.action : 'lb-node-timeline';
      const instead = e.action === 'set-lb-nodes' ? 'measure the others in a scenario of their own' : `use ${e.action.replace('lb-nodes', 'backends')}, which for ecmp changes the LB nodes too`;
      if (other.length) findings.push({ path: [...path, 'action'], message: `${action}: only ecmp has several LB nodes (not ${other.join(', ')}); ${instead}` });
    }
    if (e.action === 'fail-lb-node') {
      const can = e.how === 'kill' ? ['vrrp'] : ['vrrp', 'ecmp'];
      const other = lbs.filter((l) => !can.includes(l.kind)).map((l) => l.name ?? l.kind);
      if (other.length) {
        findings.push({
          path: [...path, e.how === 'kill' ? 'how' : 'action'],
          message: e.how === 'kill'
            ? `fail-lb-node how: kill kills keepalived on vrrp's active node; ${other.join(', ')} ${other.length > 1 ? 'have no LB daemon of their own' : 'has no LB daemon of its own'} to kill (for ecmp use how: link-down, or kill-backends)`
            : `fail-lb-node: only vrrp (its active node) and ecmp (an LB node) have LB nodes to fail, not ${other.join(', ')}; measure ${other.length > 1 ? 'them' : 'it'} in a scenario of ${other.length > 1 ? 'their' : 'its'} own`,
        });
      }
      if (topo && !canKillBackends(topo)) findings.push({ path: [...path, 'action'], message: `fail-lb-node takes links down in namespaces lbbench built (netns, or qemu one-guest), not ${topologyName(topo)}` });
    }
    if ((e.action === 'kill-backends' || e.action === 'start-backends') && !canKillBackends(topo)) {
      findings.push({ path: [...path, 'action'], message: `${e.action} needs a topology whose backend servers lbbench started in namespaces (netns, or qemu one-guest), not ${topo ? topologyName(topo) : ''}` });
    }
  }

  // A connection an event broke is only known lost once its next message goes unanswered: up to
  // one send interval plus the reply timeout later. Closer events would share their losses.
  if (load.success && EVENT_GENERATORS.includes(load.data.generator)) {
    const gap = load.data.timeout + load.data.connections / load.data.rate;
    const byTime = [...parsed].sort((a, b) => a.e.at - b.e.at);
    byTime.forEach(({ i, e, step }, k) => {
      const next = byTime[k + 1]?.e.at ?? load.data.duration;
      if (e.at < load.data.duration && next - e.at < gap) {
        findings.push({
          path: ['events', i, step === undefined ? 'at' : 'every'],
          message: `only ${(next - e.at).toFixed(1)} s until ${byTime[k + 1] ? 'the next event' : 'the end of the measurement'}; losses show up to ${gap.toFixed(1)} s later (load.timeout + connections/rate) — leave at least that much`,
        });
      }
    });
  }
  return findings;
}
