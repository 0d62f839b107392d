// LB-count responsiveness: set-lb-nodes resolved against the running state, and the chart's data
// from a run recorded on namespaces (ECMP static and BGP, 5 → 2 → 5 → 3 LB nodes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { effectiveEvent, resolveTarget } from '../../harness/run/events.ts';
import { EventSpec } from '../../harness/scenario/schema.ts';
import { lbNodesData, lbNodesSpec, routeUpdateData } from '../../harness/report/experiment-specs.ts';
import { charts } from '../../harness/report/specs.ts';
import { resultProblems } from '../../harness/results/schema.ts';
import type { RunResult } from '../../harness/results/types.ts';

const run = JSON.parse(readFileSync(new URL('../fixtures/results/lb-count-run.json', import.meta.url), 'utf8')) as RunResult;

test('set-lb-nodes withdraws the last nodes in use or announces the first ones out, and is a no-op at the count it asks for', () => {
  const ctl = { available: ['be0', 'be1', 'be2', 'be3', 'be4'], inLb: () => ['be0', 'be1', 'be2'], killed: () => [] };
  const set = (count: number) => effectiveEvent(EventSpec.parse({ at: 2, action: 'set-lb-nodes', count }), ctl.inLb().length);
  assert.deepEqual(set(1), { at: 2, action: 'remove-lb-nodes', count: 2 });
  assert.deepEqual(resolveTarget(set(1), ctl), ['be1', 'be2']);
  assert.deepEqual(set(5), { at: 2, action: 'add-lb-nodes', count: 2 });
  assert.deepEqual(resolveTarget(set(5), ctl), ['be3', 'be4']);
  assert.deepEqual(set(3), { at: 2, action: 'set-lb-nodes', count: 3 });
  assert.deepEqual(resolveTarget(set(3), ctl), []);
});

test('the recorded run: each event has the LB nodes it left and the router update delay', () => {
  assert.deepEqual(resultProblems(run), []);
  for (const p of run.points) {
    const ev = p.repetitions[0]!.events!;
    assert.deepEqual(ev.map((e) => e.inLb), [2, 5, 3]);
    for (const e of ev) assert.ok(e.updateMs! > 0 && e.updateMs! <= e.tookMs);
  }
});

test('the chart: messages/s per second beside a step line of LB nodes, one update label per change', () => {
  const data = lbNodesData(run);
  for (const series of ['ecmp-static', 'ecmp-bgp']) {
    const nodes = data.filter((d) => d.series === series && d.measure === 'LB nodes');
    assert.deepEqual(nodes.map((d) => d.value), [5, 2, 5, 3, 3], series);
    assert.equal(nodes[0]!.t, 0);
    assert.ok(nodes.slice(1, -1).every((d, k) => Math.abs(d.t - [2, 5, 8][k]!) < 0.5), JSON.stringify(nodes));
    const msgs = data.filter((d) => d.series === series && d.measure === 'messages/s');
    assert.equal(msgs.length, 11, 'one per tester second');
    // 60 connections at 600 messages/s: the tester kept its rate while connections were re-opened.
    assert.ok(msgs.every((d) => d.value > 450 && d.value <= 660), JSON.stringify(msgs.map((d) => d.value)));
    assert.equal(nodes.at(-1)!.t, msgs.at(-1)!.t, 'the step line runs to the end of the measurement');
  }
  const labels = routeUpdateData(run);
  assert.equal(labels.length, 6);
  assert.ok(labels.every((l) => /^\d+(\.\d)? ms$/.test(l.label)), JSON.stringify(labels.map((l) => l.label)));
  const spec = lbNodesSpec(run) as { resolve: unknown; spec: { resolve: unknown } };
  assert.deepEqual(spec.resolve, { scale: { y: 'independent' } });
  assert.deepEqual(spec.spec.resolve, { scale: { y: 'independent' } });
  assert.ok(charts(run).some((c) => c.id === 'lb-nodes'));
});

test('runs without LB-node changes have no such chart', () => {
  const events = JSON.parse(readFileSync(new URL('../fixtures/results/events-run.json', import.meta.url), 'utf8')) as RunResult;
  assert.equal(lbNodesSpec(events), null);
  assert.ok(!charts(events).some((c) => c.id === 'lb-nodes'));
});
