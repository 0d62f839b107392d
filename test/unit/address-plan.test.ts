import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PLAN } from '../../harness/topology/address-plan.ts';

function range(cidr: string): [number, number] {
  const [ip, len] = cidr.split('/');
  const n = ip!.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(len));
  return [n, n + size - 1];
}

test('address plan: every range is inside 198.18.0.0/15 and no two overlap', () => {
  const nets = { client: PLAN.clientNet, backend: PLAN.backendNet, pool: PLAN.sourcePool, vip: PLAN.vipNet };
  const [lo, hi] = range('198.18.0.0/15');
  for (const [name, cidr] of Object.entries(nets)) {
    const [a, b] = range(cidr);
    assert.ok(a >= lo && b <= hi, `${name} ${cidr} outside the benchmarking range`);
  }
  const entries = Object.entries(nets);
  for (let i = 0; i < entries.length; i++)
    for (let j = i + 1; j < entries.length; j++) {
      const [a1, b1] = range(entries[i]![1]);
      const [a2, b2] = range(entries[j]![1]);
      assert.ok(b1 < a2 || b2 < a1, `${entries[i]![0]} ${entries[i]![1]} overlaps ${entries[j]![0]} ${entries[j]![1]}`);
    }
});

test('address plan: backend addresses stay below the infrastructure range', () => {
  assert.equal(PLAN.backendIp(PLAN.maxBackends - 1), '198.18.1.199');
  assert.equal(PLAN.backendIp(0), '198.18.1.11');
});
