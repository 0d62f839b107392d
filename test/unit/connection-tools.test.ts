// The real mconnect and ctraffic as generators: their reports (fixtures constructed from their Go
// sources) become connection metrics and connection records, and their servers are started on the
// backends under the backend's hostname, with the LB's port redirected to them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PreflightError } from '../../harness/errors.ts';
import { mconnect, mconnectMetrics, parseMconnect, MCONNECT_SERVER_PORT } from '../../harness/load/mconnect.ts';
import { ctraffic, ctrafficMetrics, ctrafficRecords, parseCtraffic } from '../../harness/load/ctraffic.ts';
import { asHostname } from '../../harness/load/backend-servers.ts';
import { accountEvents } from '../../harness/run/events.ts';
import { LoadSpec } from '../../harness/scenario/schema.ts';

const fixture = (tool: string, name: string) => readFileSync(new URL(`../fixtures/${tool}/${name}`, import.meta.url), 'utf8');

test('mconnect: answered connections per backend hostname, failed reads are lost connections', () => {
  const r = parseMconnect(fixture('mconnect', 'ok.stdout'));
  const m = mconnectMetrics(r);
  assert.deepEqual(m.connections, { total: 1000, lost: 0, failedConnects: 0, failedReads: 0 });
  assert.deepEqual(m.connectionsPerBackend, { 'vm-001': 251, 'vm-002': 248, 'vm-003': 252, 'vm-004': 249 });
  assert.equal(m.connectionsPerSec, 1000 / r.durationS);
  assert.ok(m.fairness > 0.99 && m.fairness <= 1);
  const bad = mconnectMetrics(parseMconnect(fixture('mconnect', 'read-errors.stdout')));
  assert.equal(bad.connections.lost, bad.connections.failedReads);
  assert.ok(bad.connections.lost > 0);
});

test('ctraffic: connection records for event accounting, lost and lasting apart', () => {
  const ok = parseCtraffic(fixture('ctraffic', 'all-ok.stdout'));
  const records = ctrafficRecords(ok);
  assert.equal(records.length, ok.perConnection.length);
  assert.equal(records.filter((r) => r.outcome === 'lasted').length, ok.connections.lasting);
  assert.ok(records.every((r) => r.outcome !== 'lasted' || r.end === null));
  const m = ctrafficMetrics(ok);
  assert.equal(m.connections.lost, 0);
  assert.equal(Object.values(m.connectionsPerBackend).reduce((a, b) => a + b, 0), records.filter((r) => r.backend).length);
  const lost = parseCtraffic(fixture('ctraffic', 'all-lost.stdout'));
  const lr = ctrafficRecords(lost);
  assert.equal(lr.filter((r) => r.outcome === 'lost').length, lost.perConnection.filter((c) => c.error && c.connectNs !== null).length);
  assert.ok(lr.filter((r) => r.outcome === 'lost').every((r) => r.reason && r.end !== null));
  // An event before any loss sees every established connection alive, and all of them lost.
  const [e] = accountEvents(lr, [{ atMs: 1, action: 'kill-backends', target: [] }], lost.durationS * 1000);
  assert.equal(e!.alive, lr.filter((r) => r.outcome !== 'connect-failed' && r.start <= 1).length);
  const tl = ctraffic.timeline!(fixture('ctraffic', 'all-ok.stdout'));
  assert.equal(tl.startEpochMs, Date.parse(ok.started));
});

test('argv: the VIP and port, connections, rate as KB/s of 1 KiB packets, source pool', () => {
  const load = LoadSpec.parse({ generator: 'ctraffic', connections: 100, rate: 500, sourceAddresses: 10 });
  const target = { ip: '198.18.100.1', port: 80, path: '/' };
  const c = ctraffic.buildArgv({ load, target, durationS: 30, workDir: '/w' });
  for (const [flag, value] of [['-address', '198.18.100.1:80'], ['-nconn', '100'], ['-rate', '500'], ['-psize', '1024'], ['-timeout', '30s'], ['-srccidr', '198.18.128.0/18']]) {
    assert.equal(c[c.indexOf(flag!) + 1], value, `${flag} in ${c.join(' ')}`);
  }
  const m = mconnect.buildArgv({ load: LoadSpec.parse({ generator: 'mconnect', connections: 1000 }), target, durationS: 10, workDir: '/w' });
  assert.deepEqual(m.slice(0, 7), ['mconnect', '-address', '198.18.100.1:80', '-nconn', '1000', '-timeout', '10s']);
  assert.ok(!m.includes('-srccidr'));
});

test('absent binaries: preflight says where to get them and what to use instead', async () => {
  const host = { name: 'client0', exec: async () => ({ stdout: '', stderr: '', code: 1 }) } as never;
  for (const [driver, instead] of [[mconnect, 'generator: connect'], [ctraffic, 'generator: traffic']] as const) {
    await assert.rejects(driver.preflight(host), (e: unknown) => {
      assert.ok(e instanceof PreflightError);
      assert.match(e.message, new RegExp(`^${driver.name} is not installed on client0`));
      assert.match(e.hint ?? '', new RegExp(`github\\.com/Nordix/${driver.name}.*${instead}`));
      return true;
    });
  }
});

test('servers on every backend under its own hostname, the LB port redirected to them, all undone by the teardown', async () => {
  const calls: string[] = [];
  const labels: string[] = [];
  const be = (name: string) => ({
    name,
    ip: '198.18.1.11',
    port: 80,
    statusPort: 8081,
    host: {
      name,
      exec: async (argv: string[]) => {
        calls.push(`${name}: ${argv.join(' ')}`);
        return { stdout: argv[0] === 'ss' ? 'LISTEN 0 4096 0.0.0.0:5001 0.0.0.0:*\n' : '', stderr: '', code: 0 };
      },
      spawn: (argv: string[]) => {
        calls.push(`${name}: spawn ${argv.join(' ')}`);
        return { running: () => true, stop: async () => ({ stdout: '', stderr: '', code: 0 }) };
      },
    },
  });
  const attached = await mconnect.attach!({
    topo: {} as never,
    backends: [be('be0'), be('be1')] as never,
    endpoint: { ip: '198.18.100.1', port: 80 },
    load: {} as never,
    teardown: { add: (label: string) => labels.push(label) } as never,
    workDir: '/w',
  });
  assert.ok(calls.includes(`be1: iptables -t nat -I PREROUTING -p tcp --dport 80 -m comment --comment lbbench-mconnect -j REDIRECT --to-ports ${MCONNECT_SERVER_PORT}`));
  assert.ok(calls.includes(`be0: spawn ${asHostname('be0', ['mconnect', '-server', '-address', '0.0.0.0:5001']).join(' ')}`));
  assert.deepEqual(labels.sort(), ['be0: remove the mconnect tcp redirect', 'be0: stop the mconnect server', 'be1: remove the mconnect tcp redirect', 'be1: stop the mconnect server']);
  const m = attached.metrics(mconnectMetrics(parseMconnect(fixture('mconnect', 'ok.stdout'))) as never, {});
  assert.deepEqual(m.perBackend, { 'vm-001': 251, 'vm-002': 248, 'vm-003': 252, 'vm-004': 249 });
});
