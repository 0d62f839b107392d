// The netns topology built through a Host that is not this process's own machine (the path a
// qemu guest or an SSH host takes): every command goes through the Host, counters come from one
// command, and teardown removes it all. A LocalHost under another name stands in for the remote
// here, so the path runs without a VM; test/e2e/qemu.test.ts runs it in a real guest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { LocalHost } from '../../harness/host/local.ts';
import { NsOnHost } from '../../harness/host/netns.ts';
import { Teardown } from '../../harness/teardown.ts';
import { buildNetnsTopology } from '../../harness/topology/netns.ts';
import { lbDrivers } from '../../harness/lb/index.ts';
import { LbSpec } from '../../harness/scenario/schema.ts';
import { perBackendDelta } from '../../harness/run/runner.ts';
import { missingCapability, namespacesWithPrefix, processesMentioning } from './helpers.ts';

const skip = missingCapability(['ip', 'nginx', 'wrk', 'iptables', 'curl']);

test('a topology on a non-local root host: namespaces via the host, counters in one command, clean teardown', { skip }, async () => {
  const td = new Teardown();
  const root = new LocalHost('remote-shaped');
  let prefix = '';
  let workDir = '';
  try {
    const topo = await buildNetnsTopology({ backends: 2, backendWorkers: 1, root }, td);
    ({ prefix, workDir } = topo);
    assert.ok(topo.client.host instanceof NsOnHost && topo.client.host.parent === root, 'nodes run through the root host');
    const lb = await lbDrivers['iptables-dnat'].apply({
      topo,
      spec: LbSpec.parse({ kind: 'iptables-dnat' }) as never,
      backends: topo.backends,
      port: 80,
      teardown: td,
      workDir: `${topo.workDir}/lb`,
      log: () => {},
    });
    const before = await topo.backendCounters();
    const r = await topo.client.host.exec(['wrk', '-t1', '-c4', '-d1s', `http://${lb.endpoint.ip}/`]);
    assert.match(r.stdout, /Requests\/sec/);
    const served = perBackendDelta(before, await topo.backendCounters(), ['be0', 'be1']);
    assert.ok(served.be0! > 20 && served.be1! > 20, JSON.stringify(served));
  } finally {
    assert.deepEqual(await td.unwind(), []);
  }
  assert.deepEqual(namespacesWithPrefix(prefix), []);
  assert.deepEqual(processesMentioning(workDir), []);
  assert.equal(existsSync(workDir), false, 'work dir removed through the host');
});
