import { test } from 'node:test';
import assert from 'node:assert/strict';
import { counterDelta, perBackendDelta } from '../../harness/run/runner.ts';

test('counterDelta: what happened between two snapshots, new counters from zero, a reset keeps its new value', () => {
  assert.deepEqual(counterDelta({ 'packets.be0': 10, 'drop.x': 2 }, { 'packets.be0': 25, 'drop.x': 2, 'packets.be1': 7 }), {
    'packets.be0': 15,
    'drop.x': 0,
    'packets.be1': 7,
  });
  assert.deepEqual(counterDelta({ 'program.packets': 900 }, { 'program.packets': 40 }), { 'program.packets': 40 });
});

test('perBackendDelta: the snapshot read itself is one request per backend, never below zero', () => {
  assert.deepEqual(perBackendDelta({ be0: 10, be1: 5 }, { be0: 21, be1: 5 }, ['be0', 'be1', 'be2']), { be0: 10, be1: 0, be2: 0 });
});
