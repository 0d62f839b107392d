// `lbbench doctor` on this machine: every datapath gets a verdict from its own preflight, a
// missing piece is reported with its fix, and the probes leave nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { LocalHost } from '../../harness/host/local.ts';
import type { Host } from '../../harness/host/types.ts';
import { datapathChecks } from '../../harness/setup.ts';
import { lbDrivers } from '../../harness/lb/index.ts';
import { WORK_ROOT } from '../../harness/topology/leftovers.ts';
import { missingCapability, namespacesWithPrefix, sh } from './helpers.ts';

const skip = missingCapability(['ip', 'nginx', 'haproxy', 'iptables', 'nft', 'bird', 'bpftool']);

test('doctor reports every datapath usable here, and XDP attach modes were really tried', { skip }, async () => {
  const checks = await datapathChecks(new LocalHost());
  for (const kind of Object.keys(lbDrivers)) {
    assert.ok(checks.some((c) => c.name.startsWith(`datapath ${kind}`)), `a check for ${kind}`);
  }
  assert.deepEqual(checks.filter((c) => !c.ok), [], 'this machine runs every datapath (lbbench setup was run)');
  const xdp = checks.find((c) => c.name === 'datapath xdp')!;
  assert.match(xdp.detail, /native attach works on veth, generic attach works/);
  assert.deepEqual(namespacesWithPrefix('lbb-pf'), [], 'probe namespaces removed');
  assert.doesNotMatch(sh('cat /proc/mounts'), /doctor-xdp/, 'probe bpffs unmounted');
  assert.deepEqual(readdirSync(WORK_ROOT).filter((d) => d.startsWith('doctor-xdp')), [], 'probe dir removed');
});

test('a datapath whose tool is missing fails with the package that fixes it', { skip }, async () => {
  const local = new LocalHost();
  // The real host, except that bird is not on PATH.
  const noBird: Host = {
    name: local.name,
    exec: (argv, opts) => (argv.at(-1) === 'bird' && argv[0] === 'sh' ? Promise.resolve({ code: 1, stdout: '', stderr: '' }) : local.exec(argv, opts)),
    spawn: (argv, opts) => local.spawn(argv, opts),
    writeFile: (p, d) => local.writeFile(p, d),
    readFile: (p) => local.readFile(p),
  };
  const checks = await datapathChecks(noBird);
  const bgp = checks.find((c) => c.name === 'datapath ecmp bgp/classic')!;
  assert.equal(bgp.ok, false);
  assert.match(bgp.detail, /bird/);
  assert.match(bgp.fix ?? '', /apt-get install -y bird2/);
  assert.ok(checks.find((c) => c.name === 'datapath ecmp static/classic')!.ok, 'static ECMP does not need bird');
});
